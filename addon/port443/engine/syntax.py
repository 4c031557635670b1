"""A parse tree of JavaScript regex syntax, for static facts about a pattern: never used to match.

`parse` builds the tree; the functions below answer what the engine and the validator ask: does the pattern
need a backtracking engine (lookaround, backreferences), is it anchored at the start, how long can a match
be, and where do nested quantifiers make a backtracking engine take exponential time. Character sets are
approximated (ASCII exactly, everything else as one "non-ASCII" member), always erring towards overlap.
Longer than most modules: a parser is one grammar, and splitting it would scatter the grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A character set is an int bitmask: bits 0-127 are the ASCII code points, bit 128 stands for all others.
_OTHER = 1 << 128
_ALL = (1 << 129) - 1
_DIGITS = sum(1 << c for c in range(ord("0"), ord("9") + 1))
_WORD = _DIGITS | sum(1 << ord(c) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_SPACE = sum(1 << c for c in (9, 10, 11, 12, 13, 32)) | _OTHER
_DOT = _ALL & ~((1 << 10) | (1 << 13))
_CLASSES = {"d": _DIGITS, "D": _ALL & ~_DIGITS, "w": _WORD, "W": _ALL & ~_WORD, "s": _SPACE, "S": _ALL}
_QUANTIFIER = re.compile(r"\{(\d+)(,(\d*))?\}")
_GROUP_NAME = re.compile(r"<([A-Za-z_$][A-Za-z0-9_$]*)>")
_HEX2 = re.compile(r"[0-9A-Fa-f]{2}")
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_PLAIN = {"n": "\n", "r": "\r", "t": "\t", "f": "\f", "v": "\v", "0": "\0", "b": "\b"}


class PatternSyntaxError(ValueError):
    """The source is not JavaScript regex syntax this parser understands (jsregex reports the user's error)."""


@dataclass(frozen=True, slots=True)
class Chars:
    """One character out of `mask`."""

    mask: int


@dataclass(frozen=True, slots=True)
class Seq:
    """Items matched one after another."""

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Alt:
    """Alternatives, tried in order."""

    branches: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Group:
    """A group, capturing or not."""

    body: Node


@dataclass(frozen=True, slots=True)
class Look:
    """A lookahead or lookbehind: zero-width, and beyond what RE2 can run."""

    body: Node


@dataclass(frozen=True, slots=True)
class Repeat:
    """`body` repeated `low` to `high` times (None: no upper bound); `start:end` is its source text."""

    body: Node
    low: int
    high: int | None
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Anchor:
    """A zero-width assertion: `^`, `$`, `\\b` or `\\B`."""

    kind: str


@dataclass(frozen=True, slots=True)
class Backref:
    """A backreference (`\\1`, `\\k<name>`): beyond what RE2 can run."""


Node = Chars | Seq | Alt | Group | Look | Repeat | Anchor | Backref


def parse(source: str) -> Node:
    """Parse a JavaScript regex (no flags, Annex B syntax).

    Raises:
        PatternSyntaxError: on anything unbalanced or unknown.
    """
    node, i = _Parser(source).disjunction(0)
    if i != len(source):
        raise PatternSyntaxError(f"unexpected {source[i]!r} at {i}")
    return node


class _Parser:
    def __init__(self, source: str) -> None:
        self.s = source

    def disjunction(self, i: int) -> tuple[Node, int]:
        branches = []
        while True:
            branch, i = self.alternative(i)
            branches.append(branch)
            if i < len(self.s) and self.s[i] == "|":
                i += 1
                continue
            return (branches[0] if len(branches) == 1 else Alt(tuple(branches))), i

    def alternative(self, i: int) -> tuple[Node, int]:
        items: list[Node] = []
        while i < len(self.s) and self.s[i] not in "|)":
            start = i
            atom, i = self.atom(i)
            item, i = self.quantified(atom, start, i)
            items.append(item)
        return (items[0] if len(items) == 1 else Seq(tuple(items))), i

    def quantified(self, atom: Node, start: int, i: int) -> tuple[Node, int]:
        """Apply the quantifier following `atom`, if there is one."""
        s = self.s
        low, high = -1, None
        if i < len(s) and s[i] in "*+?":
            low, high = {"*": (0, None), "+": (1, None), "?": (0, 1)}[s[i]]
            i += 1
        elif (m := _QUANTIFIER.match(s, i)) is not None:
            low = int(m.group(1))
            high = low if m.group(2) is None else (int(m.group(3)) if m.group(3) else None)
            i = m.end()
        if low < 0:
            return atom, i
        if i < len(s) and s[i] == "?":
            i += 1  # lazy: the same language, the same backtracking
        return Repeat(atom, low, high, start, i), i

    def atom(self, i: int) -> tuple[Node, int]:
        s, c = self.s, self.s[i]
        if c == "(":
            return self.group(i)
        if c == "[":
            return self.char_class(i)
        if c == "\\":
            return self.escape(i)
        if c in "^$":
            return Anchor(c), i + 1
        if c == ".":
            return Chars(_DOT), i + 1
        if c in "*+?" or (c == "{" and _QUANTIFIER.match(s, i)):
            raise PatternSyntaxError(f"nothing to repeat at {i}")
        return Chars(_char(c)), i + 1

    def group(self, i: int) -> tuple[Node, int]:
        s = self.s
        look = s.startswith(("(?=", "(?!"), i) or s.startswith(("(?<=", "(?<!"), i)
        if look:
            i += 4 if s[i + 2] == "<" else 3
        elif s.startswith("(?:", i):
            i += 3
        elif s.startswith("(?<", i) and (m := _GROUP_NAME.match(s, i + 2)) is not None:
            i = m.end()
        elif s.startswith("(?", i):
            raise PatternSyntaxError(f"unknown group {s[i : i + 3]!r} at {i}")
        else:
            i += 1
        body, i = self.disjunction(i)
        if i >= len(s) or s[i] != ")":
            raise PatternSyntaxError("missing )")
        return (Look(body) if look else Group(body)), i + 1

    def char_class(self, i: int) -> tuple[Node, int]:
        s = self.s
        j = i + 1
        negated = s.startswith("^", j)
        j += negated
        mask, prev = 0, -1
        while j < len(s) and s[j] != "]":
            if s[j] == "\\":
                piece, j = self.class_escape(j)
            else:
                piece, j = _char(s[j]), j + 1
            if piece == (1 << ord("-")) and prev >= 0 and j < len(s) and s[j] != "]":
                hi, j = self.class_escape(j) if s[j] == "\\" else (_char(s[j]), j + 1)
                mask |= _range(prev, hi)
                prev = -1
                continue
            mask |= piece
            prev = piece if piece.bit_count() == 1 else -1
        if j >= len(s):
            raise PatternSyntaxError("unterminated character class")
        return Chars((_ALL & ~mask) | _OTHER if negated else mask), j + 1

    def class_escape(self, i: int) -> tuple[int, int]:
        node, j = self.escape(i, in_class=True)
        return (node.mask if isinstance(node, Chars) else _ALL), j

    def escape(self, i: int, *, in_class: bool = False) -> tuple[Node, int]:
        s = self.s
        if i + 1 >= len(s):
            raise PatternSyntaxError("lone backslash")
        c = s[i + 1]
        if c in _CLASSES:
            return Chars(_CLASSES[c]), i + 2
        if c in "bB" and not in_class:
            return Anchor(c), i + 2
        if c.isdigit() and c != "0" and not in_class:
            j = i + 1
            while j < len(s) and s[j].isdigit():
                j += 1
            return Backref(), j
        if c == "k" and not in_class and (m := _GROUP_NAME.match(s, i + 2)) is not None:
            return Backref(), m.end()
        if c in "xu" and (m := (_HEX2 if c == "x" else _HEX4).match(s, i + 2)):
            return Chars(_char(chr(int(m.group(), 16)))), m.end()
        if c == "c" and i + 2 < len(s) and s[i + 2].isascii() and s[i + 2].isalpha():
            return Chars(1 << (ord(s[i + 2]) % 32)), i + 3
        return Chars(_char(_PLAIN.get(c, c))), i + 2


def _char(c: str) -> int:
    return 1 << ord(c) if ord(c) < 128 else _OTHER


def _range(lo: int, hi: int) -> int:
    """The set of a class range, from the one-character sets of its ends (bit 128: beyond ASCII)."""
    a, b = lo.bit_length() - 1, hi.bit_length() - 1
    if a > b:
        raise PatternSyntaxError("range out of order")
    ascii_part = (1 << (min(b, 127) + 1)) - (1 << a) if a < 128 else 0
    return ascii_part | (_OTHER if b == 128 else 0)


# --- facts ---------------------------------------------------------------------------------------------------


def needs_backtracking(node: Node) -> bool:
    """Whether the pattern uses lookaround or backreferences, which no linear-time engine runs."""
    if isinstance(node, Look | Backref):
        return True
    return any(needs_backtracking(child) for child in _children(node))


def anchored(node: Node) -> bool:
    """Whether every match must start at the beginning of the text (`^` first on every path)."""
    if isinstance(node, Anchor):
        return node.kind == "^"
    if isinstance(node, Seq):
        return bool(node.items) and anchored(node.items[0])
    if isinstance(node, Alt):
        return all(anchored(b) for b in node.branches)
    if isinstance(node, Group):
        return anchored(node.body)
    if isinstance(node, Repeat):
        return node.low >= 1 and anchored(node.body)
    return False


def max_length(node: Node) -> int | None:
    """The longest text a match can span (None: unbounded); lookarounds count as zero width."""
    if isinstance(node, Chars):
        return 1
    if isinstance(node, Anchor | Look):
        return 0
    if isinstance(node, Backref):
        return None
    if isinstance(node, Group):
        return max_length(node.body)
    if isinstance(node, Repeat):
        inner = max_length(node.body)
        if inner == 0:
            return 0
        return None if inner is None or node.high is None else inner * node.high
    parts = [max_length(child) for child in _children(node)]
    if any(p is None for p in parts):
        return None
    known = [p for p in parts if p is not None]
    return sum(known) if isinstance(node, Seq) else max(known, default=0)


def reach(node: Node) -> tuple[int, int]:
    """How an automaton matching `node` from the start of a text spends its work: `(prefix, tail)`.

    Until `prefix` characters are read, any instruction may be active; after that only the `tail` character
    positions that follow an unbounded repetition (or lie inside one) can be. A pattern without unbounded
    repetition has tail 0: it stops after `prefix` characters. Counted repetitions count once per copy, as
    RE2 expands them.
    """
    if isinstance(node, Chars | Anchor | Look | Backref) or _bounded(node):
        length = max_length(node)
        return (length if length is not None else 0), 0
    if isinstance(node, Seq):
        prefix = 0
        for k, item in enumerate(node.items):
            if _bounded(item):
                prefix += max_length(item) or 0
                continue
            item_prefix, tail = reach(item)
            return prefix + item_prefix, tail + sum(_size(rest) for rest in node.items[k + 1 :])
        return prefix, 0
    if isinstance(node, Alt):
        parts = [reach(b) for b in node.branches]
        return max(p for p, _ in parts), sum(t for _, t in parts)
    if isinstance(node, Group):
        return reach(node.body)
    assert isinstance(node, Repeat)
    return 0, _size(node)  # inside an unbounded repetition everything may stay active


def _bounded(node: Node) -> bool:
    """No unbounded repetition (nor backreference) inside."""
    if isinstance(node, Repeat) and node.high is None or isinstance(node, Backref):
        return False
    return all(_bounded(child) for child in _children(node))


def _size(node: Node) -> int:
    """Character positions (consuming instructions) of the expanded pattern."""
    if isinstance(node, Chars):
        return 1
    if isinstance(node, Repeat):
        copies = node.high if node.high is not None else max(node.low, 1)
        return copies * _size(node.body)
    return sum(_size(child) for child in _children(node))


def repeat_product(node: Node) -> int:
    """The largest product of counted repetitions nested in each other (`(a{10}){20}` is 200).

    The `regex` package unrolls counted repetitions when it compiles, so this is what its memory grows with.
    """
    inner = max((repeat_product(child) for child in _children(node)), default=1)
    if isinstance(node, Repeat):
        count = node.high if node.high is not None else max(node.low, 1)
        return max(count, 1) * inner
    return inner


def nested_quantifiers(node: Node) -> list[tuple[int, int]]:
    """Source spans of repetitions whose body can split one text into iterations in many ways.

    That is a repeated body holding a repetition of its own (`(a+)+`, `(\\w+\\.?)*`) where the body can match
    empty text or where what can end one iteration can also begin the next: on a text that almost matches, a
    backtracking engine tries every split, which takes exponential time. `(\\w+\\.)+` is fine: every
    iteration ends at a dot that the next cannot start with.
    """
    found: list[tuple[int, int]] = []
    _collect_nested(node, found)
    return found


def _collect_nested(node: Node, found: list[tuple[int, int]]) -> None:
    if isinstance(node, Repeat) and (node.high is None or node.high > 1):
        body = node.body
        if _has_repeat(body) and (_nullable(body) or _first(body) & _last(body)):
            found.append((node.start, node.end))
            return  # the outermost one is the one to rewrite
    for child in _children(node):
        _collect_nested(child, found)


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Seq):
        return node.items
    if isinstance(node, Alt):
        return node.branches
    if isinstance(node, Group | Look | Repeat):
        return (node.body,)
    return ()


def _has_repeat(node: Node) -> bool:
    if isinstance(node, Repeat) and (node.high is None or node.high > 1):
        return True
    return any(_has_repeat(child) for child in _children(node))


def _nullable(node: Node) -> bool:
    if isinstance(node, Chars):
        return False
    if isinstance(node, Seq):
        return all(_nullable(i) for i in node.items)
    if isinstance(node, Alt):
        return any(_nullable(b) for b in node.branches)
    if isinstance(node, Group):
        return _nullable(node.body)
    if isinstance(node, Repeat):
        return node.low == 0 or _nullable(node.body)
    return True  # anchors, lookarounds, backreferences


def _first(node: Node) -> int:
    """The characters a match can start with."""
    return _edge(node, forward=True)


def _last(node: Node) -> int:
    """The characters a match can end with."""
    return _edge(node, forward=False)


def _edge(node: Node, *, forward: bool) -> int:
    if isinstance(node, Chars):
        return node.mask
    if isinstance(node, Backref):
        return _ALL
    if isinstance(node, Seq):
        mask = 0
        for item in node.items if forward else reversed(node.items):
            mask |= _edge(item, forward=forward)
            if not _nullable(item):
                break
        return mask
    if isinstance(node, Alt):
        mask = 0
        for branch in node.branches:
            mask |= _edge(branch, forward=forward)
        return mask
    if isinstance(node, Group | Repeat):
        return _edge(node.body, forward=forward)
    return 0  # zero-width
