"""What a JavaScript pattern matches, spelled out as texts when they are few: the forms without lookaround.

RE2 has no lookaround, and string operations no regex. An anchored pattern with no repetition spells out a
few texts (`spell_pattern`), which `string_pattern.WordPattern` answers with `startswith`; a final lookahead
whose body spells out finitely many texts becomes the texts that may follow instead, which RE2 runs
(`translate_lookahead_tail`). Both stand on the same reading of a pattern into texts (`_Words`), a job of its
own beside `jsregex`'s translation of syntax, which every pattern goes through. Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from port443.engine.jsregex import GROUP_NAME, HEX2, HEX4, JS_QUANTIFIER, translate_pattern

# --- a final lookahead, as RE2 can run it ---------------------------------------------------------------------

# What can hold a lookaround, a backreference, a group or a `|`: escapes, classes, group openings.
_TOKEN = re.compile(r"\\.|\[(?:\\.|[^\]\\])*\]|\(\?<?[=!]|\(\?:|\(\?<|[()|]", re.DOTALL)
_LOOKAHEADS = ("(?=", "(?!")
_LOOKAROUNDS = ("(?=", "(?!", "(?<=", "(?<!")
_LEADING_RUN = re.compile(r"(?:\\[^A-Za-z0-9]|[^\\^$.|?*+()\[\]{}])\*(?!\?)")  # `/*` (not lazy)
_MAX_WORDS = 256  # a lookahead body with more spellings than this stays with the backtracking engine
_NEVER = r"[^\x00-\x{10ffff}]"


class Tail(NamedTuple):
    """A pattern ending in its only lookaround, `P(?=X)` or `P(?!X)`, rewritten into what RE2 runs."""

    re2: str
    """`P` then a consuming form of the lookahead (for `(?!X)`: every text X does not match at its start)."""
    shifted: bool
    """`P` is wrapped in a group, so a match of the original pattern is group 1 of this one."""
    reads: int
    """At most how many characters the consuming form reads past `P`."""
    positions: int
    """Its character positions (as `syntax.reach` counts them), for the work model."""
    unbounded: bool = False
    """It reads any number of characters (a leading `/*`): its positions stay active over the text."""


def translate_lookahead_tail(source: str, *, capture: bool) -> Tail | None:
    """RE2 syntax for a pattern whose only lookaround is one lookahead at its very end, else None.

    A lookahead at the end reads nothing: `P(?=X)` matches where `P` matches and X then matches, which is
    what `(P)X` finds as group 1, RE2's leftmost-first order being the backtracking order. `P(?!X)` matches
    where `P` is followed by a text that does not start with a spelling of X; when X spells out finitely
    many texts (literals, small classes, `?`, `$`), those texts are what follow P through a trie of them.
    Two thirds of the corpus's lookahead patterns have this shape (`^http://a\\.com/+(?!css/|images/)`),
    so RE2 runs them in linear time instead of a backtracking engine compiling them at eight times the cost.
    """
    split = _final_lookahead(source)
    if split is None:
        return None
    start, positive = split
    body = source[start + 3 : -1]
    if capture and not positive and any(t.group() in ("(", "(?<") for t in _TOKEN.finditer(body)):
        return None  # a replacement may name a group of the negative lookahead (always empty): keep them
    run = None if positive else _LEADING_RUN.match(source, start + 3)
    words = _Words(source, run.end() if run else start + 3, len(source) - 1).parse()
    if words is None:
        return None
    if positive:
        tail, reads, positions = translate_pattern(body, re2=True), *_measure(words)
    elif run is None:
        tail, reads, positions = _complement(words)
    else:
        # `(?!/*Y)`, the corpus's way of allowing extra slashes: when no spelling of Y starts with a slash,
        # Y can only start where the run of slashes ends, so that is where the complement of Y must start.
        c = _one_char_escape(run.group(), 0)[0] if run.group()[0] == "\\" else run.group()[0]
        if any(w.startswith(c) for w, _e, _s in words):
            return None
        tail, reads, positions = _complement(words, exclude=c)
        tail = _re2_char(c) + "*" + tail
    head = translate_pattern(source[:start], re2=True)
    unbounded = run is not None
    if capture:
        return Tail(f"({head})(?:{tail})", True, reads, positions + unbounded, unbounded)
    return Tail(f"{head}(?:{tail})", False, reads, positions + unbounded, unbounded)


def _final_lookahead(source: str) -> tuple[int, bool] | None:
    """Where the final lookahead opens and whether it is positive, if it is the only lookaround, stands
    outside every group and alternation and closes the pattern, and there is no backreference."""
    opened: list[tuple[int, str]] = []
    looks, last, closed_at = 0, ("", -1), -1
    for m in _TOKEN.finditer(source):
        token = m.group()
        if token[0] == "\\":
            if token[1] in "123456789k":
                return None  # a backreference (or, without named groups, a plain k: rare enough)
        elif token == "|":
            if not opened:
                return None
        elif token == ")":
            if not opened:
                return None
            start, kind = opened.pop()
            last, closed_at = (kind, start), m.end()
        elif token[0] == "(":
            looks += token in _LOOKAROUNDS
            opened.append((m.start(), token))
    if opened or looks != 1 or closed_at != len(source) or last[0] not in _LOOKAHEADS:
        return None
    return last[1], last[0] == "(?="


Word = tuple[str, bool, tuple[tuple[int, int, int], ...]]
"""A text a pattern spells; whether the pattern also asserts that the text ends right after it (`$`); and the
(group, start, end) of each capturing group that took part, in that text."""


def spell_pattern(source: str, *, limit: int) -> tuple[list[Word], list[Word] | None, bool] | None:
    """What an anchored pattern with no repetition matches, spelled out: at most `limit` texts, in the
    order a backtracking engine tries them, then the texts of its final lookahead (None: it has none) and
    whether that lookahead is positive. None when the pattern is not of that kind.

    `^http://(www\\.)?a\\.com/(?!css/|img/)` is two texts (`$1` set in the first), then two it must not
    be followed by: string operations answer it exactly, and nothing needs compiling.
    """
    if not source.startswith("^") or "^" in source[1:] or ("|" in source and alternates_at_top(source)):
        return None  # `^a|b`: the second branch is not anchored
    split = _final_lookahead(source) if "(?" in source else None
    end = split[0] if split is not None else len(source)
    words = _Words(source, 1, end, limit=limit).parse()  # gives up on any other lookaround
    if words is None:
        return None
    if split is None:
        return words, None, False
    start, positive = split
    groups = count_capturing(source[:start])
    tail = _Words(source, start + 3, len(source) - 1, groups=groups).parse()
    if tail is None or any(spans for _t, _e, spans in tail):
        return None  # a replacement may name a group of the lookahead: rare, left to a regex engine
    return words, tail, positive


def alternates_at_top(source: str) -> bool:
    """Whether a `|` outside every group splits the pattern into alternatives."""
    depth = 0
    for m in _TOKEN.finditer(source):
        token = m.group()
        if token[0] == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif token == "|" and depth == 0:
            return True
    return False


def count_capturing(source: str) -> int:
    """The capturing groups of (part of) a valid JavaScript pattern."""
    return sum(1 for m in _TOKEN.finditer(source) if m.group() in ("(", "(?<"))


class _Words:
    """Spell out what (part of) a pattern matches: a finite set of texts, or None when it is not finite/small.

    Only literals, escapes of one character, small classes, groups, `|`, `?` and `$`; anything else (other
    quantifiers, `.`, `\\w`, anchors, lookarounds) gives up, and a regex engine keeps the pattern. The texts
    come in the order a backtracking engine tries them (`?` first with, `??` first without).
    """

    def __init__(
        self, source: str, start: int, end: int, *, limit: int = _MAX_WORDS, groups: int = 0
    ) -> None:
        self.s = source
        self.i = start
        self.end = end
        self.limit = limit
        self.groups = groups
        """Capturing groups opened so far (those before `start` included): the next one's number - 1."""

    def parse(self) -> list[Word] | None:
        try:
            words = self.disjunction()
        except _GiveUp:
            return None
        return words if self.i == self.end else None

    def disjunction(self) -> list[Word]:
        words = self.sequence()
        while self.i < self.end and self.s[self.i] == "|":
            self.i += 1
            words += self.sequence()
            if len(words) > self.limit:
                raise _GiveUp
        return words

    def sequence(self) -> list[Word]:
        words: list[Word] = [_EMPTY]
        s = self.s
        while self.i < self.end and s[self.i] not in "|)":
            run = _SPELLED_RUN.match(s, self.i, self.end)
            if run is not None:  # characters that stand for themselves, at once (not the one a `?` takes)
                self.i = run.end()
                text = _IDENTITY_ESCAPE.sub(r"\1", run.group()) if "\\" in run.group() else run.group()
                words = [(t + text, e, spans) for t, e, spans in words if not e]  # `$` then text: never
                continue
            atom = self.atom()
            if self.i < self.end and s[self.i] == "?":
                lazy = self.i + 1 < self.end and s[self.i + 1] == "?"
                self.i += 1 + lazy
                atom = [_EMPTY, *atom] if lazy else [*atom, _EMPTY]
            elif self.i < self.end and (s[self.i] in "*+" or JS_QUANTIFIER.match(s, self.i)):
                raise _GiveUp
            words = [w for a in words for b in atom if (w := _concat(a, b)) is not None]
            if len(words) > self.limit:
                raise _GiveUp
        return words

    def atom(self) -> list[Word]:
        s, i = self.s, self.i
        c = s[i]
        if c == "(":
            if s.startswith(_LOOKAROUNDS, i):
                raise _GiveUp
            capturing = not s.startswith("(?:", i)
            if s.startswith("(?<", i):
                m = GROUP_NAME.match(s, i + 3)
                if m is None or not s.startswith(">", m.end()):
                    raise _GiveUp
                self.i = m.end() + 1
            else:
                self.i = i + 1 if capturing else i + 3
            group = self.groups = self.groups + capturing
            words = self.disjunction()
            if self.i >= self.end or s[self.i] != ")":
                raise _GiveUp
            self.i += 1
            if capturing:
                return [(t, e, ((group, 0, len(t)), *spans)) for t, e, spans in words]
            return words
        if c == "[":
            return [(ch, False, ()) for ch in self.char_class()]
        if c == "\\":
            ch, self.i = _one_char_escape(s, i)
            return [(ch, False, ())]
        if c in "^.*+?" or (c == "{" and JS_QUANTIFIER.match(s, i)):
            raise _GiveUp
        self.i = i + 1
        return [("", True, ())] if c == "$" else [(c, False, ())]

    def char_class(self) -> list[str]:
        s, j = self.s, self.i + 1
        if s.startswith("^", j):
            raise _GiveUp
        chars: list[str] = []
        while j < self.end and s[j] != "]":
            lo, j = _one_char_escape(s, j) if s[j] == "\\" else (s[j], j + 1)
            if s.startswith("-", j) and j + 1 < self.end and s[j + 1] != "]":
                hi, j = _one_char_escape(s, j + 1) if s[j + 1] == "\\" else (s[j + 1], j + 2)
                if ord(hi) - ord(lo) > 64:
                    raise _GiveUp
                chars += [chr(k) for k in range(ord(lo), ord(hi) + 1)]
            else:
                chars.append(lo)
        if j >= self.end:
            raise _GiveUp
        self.i = j + 1
        return list(dict.fromkeys(chars))


class _GiveUp(Exception):
    """The lookahead body is not a small finite set of texts."""


_CONTROL_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "f": "\f", "v": "\v"}


def _one_char_escape(source: str, i: int) -> tuple[str, int]:
    """The one character an escape stands for (JavaScript's meaning), or give up on classes and the rest."""
    c = source[i + 1] if i + 1 < len(source) else ""
    if c in _CONTROL_ESCAPES:
        return _CONTROL_ESCAPES[c], i + 2
    if c == "x" and HEX2.match(source, i + 2):
        return chr(int(source[i + 2 : i + 4], 16)), i + 4
    if c == "u" and HEX4.match(source, i + 2):
        return chr(int(source[i + 2 : i + 6], 16)), i + 6
    if c and not c.isalnum() and c.isascii():
        return c, i + 2
    raise _GiveUp  # \d \w \b, backreferences, \0, \c, non-ASCII identity escapes: not worth the care


_EMPTY: Word = ("", False, ())
# A run of characters that stand for themselves (ASCII punctuation escaped or not, any other character but
# the syntax ones), none of them followed by a quantifier, which would take the last one.
_SPELLED_RUN = re.compile(r"(?:(?:[^\\^$.|?*+()\[\]{}]|\\[!-/:-@\[-`{-~])(?![?*+{]))+")
_IDENTITY_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def _concat(a: Word, b: Word) -> Word | None:
    """`a` then `b`; None when `a` asserted the end and `b` still reads a character."""
    text, end, spans = a
    if end and b[0]:
        return None
    if b[2]:
        n = len(text)
        spans = spans + tuple((g, start + n, stop + n) for g, start, stop in b[2])
    return text + b[0], end or b[1], spans


def _measure(words: list[Word]) -> tuple[int, int]:
    """The longest text, and the character positions, of a set of texts."""
    return max((len(w) for w, _e, _s in words), default=0), sum(len(w) for w, _e, _s in words)


class _Node:
    __slots__ = ("children", "full", "end")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.full = False  # a text ends here: the lookahead body matches, whatever follows
        self.end = False  # a text ends here if the input ends here too (`$`)


def _complement(words: list[Word], *, exclude: str = "") -> tuple[str, int, int]:
    """RE2 syntax for the texts that start with none of `words` (a text ending where `$` is asserted is one
    that does), nor with `exclude`: the regex, how many characters it reads at most, its positions."""
    root = _Node()
    for text, end, _spans in words:
        node = root
        for ch in text:
            node = node.children.setdefault(ch, _Node())
        if end:
            node.end = True
        else:
            node.full = True
    emitted = _emit(root, exclude)
    if emitted is None:
        return _NEVER, 1, 1
    regex, reads, positions = emitted
    return regex, reads, positions


def _emit(node: _Node, exclude: str = "") -> tuple[str, int, int] | None:
    """What may follow once the text has spelled the path to `node`: None when nothing may (a text ends).

    `exclude`: a character the text may not continue with here either.
    """
    if node.full:
        return None
    if not node.children:
        if not node.end:
            return "", 0, 0
        return (f"[^{_re2_char(exclude)}]" if exclude else "(?s:.)"), 1, 1
    # A chain of nodes with one child each (most of a trie of words) nests one level per character.
    opened: list[str] = []
    reads = 0
    while len(node.children) == 1 and not node.end and not exclude:
        ((ch, child),) = node.children.items()
        if child.full:
            break
        c = _re2_char(ch)
        opened.append(f"(?:\\z|[^{c}]|{c}")
        reads += 1
        node = child
        if not node.children:
            return _close(opened, ("(?s:.)", 1, 1) if node.end else ("", 0, 0), reads)
    parts = [] if node.end else [r"\z"]
    parts.append("[^" + "".join(_re2_char(c) for c in [*node.children, *exclude]) + "]")
    longest, positions = 1, 1
    for ch, child in node.children.items():
        sub = _emit(child)
        if sub is not None:
            parts.append(_re2_char(ch) + sub[0])
            longest, positions = max(longest, 1 + sub[1]), positions + 1 + sub[2]
    return _close(opened, ("(?:" + "|".join(parts) + ")", longest, positions), reads)


def _close(opened: list[str], inner: tuple[str, int, int], reads: int) -> tuple[str, int, int]:
    """Wrap what follows a chain in the chain's levels."""
    if not opened:
        return inner
    regex, longest, positions = inner
    return "".join(opened) + regex + ")" * len(opened), reads + longest, 2 * reads + positions


def _re2_char(c: str) -> str:
    """One character as an RE2 literal, inside or outside a class."""
    return _RE2_CHARS.get(c) or f"\\x{{{ord(c):x}}}"


_RE2_CHARS = {chr(i): chr(i) if chr(i).isalnum() else "\\" + chr(i) for i in range(ord("!"), ord("~") + 1)}
