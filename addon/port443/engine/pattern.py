"""Rule regexes compiled so that one lookup takes bounded time, whatever URL or rule file it meets.

Why this mechanism (measured on the shipped corpus's 40,740 patterns and on hostile inputs):
- Python's `re` backtracks and holds the GIL: amazon.in's exclusion `^http://(www\\.)?amazon\\.in/+(.+/)?...`
  took 5 s on 20,000 slashes and 166 s on 100,000, a user's `(a+)+b` forever on 30 characters. A URL
  length bound alone cannot help (exponential patterns are slow on short URLs), nor can a thread (the GIL).
- So every pattern RE2 can express (96 %) runs in RE2 (google-re2), an automaton linear in the text: the
  slash flood takes microseconds. Calls go to its raw binding (~0.8 µs, `re` ~0.3; its wrapper 6 µs).
- RE2 has no lookaround. Of the 1,452 patterns with lookahead, the 1,023 whose only one ends the pattern
  (`^http://a\\.com/+(?!css/|img/)`) are rewritten into RE2 syntax (`spelling.translate_lookahead_tail`).
  The rest (and any backreference) run in the `regex` package, which backtracks but takes a `timeout`:
  they share MATCH_BUDGET per lookup, after which the lookup is undecided (Northamptonshire.gov.uk's
  exclusion takes 0.5 s on 8 KiB of slashes in `re`).
- RE2's time is also linear in its program size, and nested counted repetition (`((a{1,30}){1,30})+`)
  makes its DFA give up and its NFA cost ~8 ns per character per instruction (0.3 s on 16 KiB). So each
  call is charged characters x instructions, modelled from the pattern's tree (`syntax.reach`: past an
  anchored prefix only the instructions after an unbounded repetition stay active), must fit WORK_LIMIT,
  and a lookup's calls share LOOKUP_WORK. The charge is counted, not timed: answers never depend on load.
- Nothing runs over more than MAX_URL_LENGTH characters: 8 KiB, the request-line limit of the usual
  servers (nginx's 8k header buffers, Apache's LimitRequestLine 8190), so no rule was written for longer.
- Compiling costs too (RE2 ~30 µs a pattern, `regex` ~700): the index compiles a pattern only once a URL
  gets past its literal prefix (`LazyPattern`), and a pattern that is plain text (half the corpus's
  non-trivial ones: `^http://a\\.com/`) never compiles: `startswith` answers it (`LiteralPattern`).
A pattern that cannot run within these bounds raises `Undecided`; callers turn it into an outcome, and the
proxy decides such a URL by HSTS, what it learned or a probe, never by downgrading.

This module holds the regex engines' patterns and chooses what runs each pattern, at once or on first use
(`LazyPattern`). The bounds, `Budget`, `Undecided` and the `Pattern` interface are `pattern_base`'s; the
patterns answered by string operations (`LiteralPattern`, `WordPattern`) are `string_pattern`'s.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import regex
from re2 import _re2  # the raw binding (`re2.compile` wraps it in Python: 6 µs a call instead of 0.8)

from port443.engine import jsregex, spelling, syntax
from port443.engine.pattern_base import (
    LOOKUP_COMPILE_COST,
    MAX_URL_LENGTH,
    REPEAT_LIMIT,
    WORK_LIMIT,
    Budget,
    Pattern,
    Undecided,
    expand_template,
)
from port443.engine.string_pattern import LiteralPattern, WordPattern, shape_of

_UNANCHORED = _re2.RE2.Anchor.UNANCHORED
_ANCHOR_START = _re2.RE2.Anchor.ANCHOR_START
_RE2_MAX_MEM = 8 << 20  # RE2's default: enough DFA states for an 8 KiB text and the corpus's largest join


class Facts(NamedTuple):
    """What the engine needs to know about a pattern before compiling it."""

    backtracking: bool
    """It has lookaround or backreferences, so only the backtracking engine runs it."""
    anchored: bool
    """Every match starts at the beginning of the text."""
    prefix: int
    """Anchored: characters read before only the `tail` can still be active (`syntax.reach`)."""
    tail: int
    """Anchored: character positions that can stay active over any length of text; 0: it stops reading."""


@functools.lru_cache(maxsize=8192)
def tree_of(source: str) -> syntax.Node:
    """The parse tree of a JavaScript pattern (cached: validation and indexing ask about the same patterns).

    Raises:
        PatternSyntaxError: as `syntax.parse`.
    """
    return syntax.parse(source)


@functools.lru_cache(maxsize=8192)
def facts_of(source: str) -> Facts:
    """Analyse a JavaScript pattern (cached, as `tree_of`)."""
    try:
        tree = tree_of(source)
    except syntax.PatternSyntaxError:
        return Facts(True, False, 0, 0)  # jsregex reports the error; it never compiles
    prefix, tail = syntax.reach(tree)
    return Facts(syntax.needs_backtracking(tree), syntax.anchored(tree), prefix, tail)


def pack_facts(facts: Facts) -> int:
    """Facts as one int, for the compact index records (parsing patterns again at first use costs 35 µs each)."""
    return facts.tail << 34 | facts.prefix << 2 | facts.anchored << 1 | facts.backtracking


def unpack_facts(packed: int) -> Facts:
    """The inverse of `pack_facts`."""
    return Facts(bool(packed & 1), bool(packed & 2), (packed >> 2) & ((1 << 32) - 1), packed >> 34)


def compile_cost(sources: Sequence[str], facts: Sequence[Facts], *, joined: bool = False) -> int:
    """An estimate, in microseconds, of compiling patterns one by one, or `joined` as `compile_any` does.

    Measured on the corpus: RE2 takes about 16 µs plus 1 per character; the `regex` package about 8 times as
    long. It bounds what one ruleset, and one lookup, may compile on first use.
    """
    total = 0
    for backtracking in (False, True):
        lengths = [len(s) for s, f in zip(sources, facts, strict=True) if f.backtracking is backtracking]
        if not lengths:
            continue
        cost = 16 + sum(n + 6 for n in lengths) if joined else sum(16 + n for n in lengths)
        total += cost * 8 if backtracking else cost
    return total


class Re2Pattern(Pattern):
    """A pattern run by RE2: linear time, charged by work units."""

    __slots__ = ("_re", "_anchor", "_program", "_prefix", "_tail", "_shift")

    def __init__(self, source: str, translated: str, facts: Facts, *, capture: bool, shift: int = 0) -> None:
        """`shift` 1: a match of `source` is group 1 of `translated` (see `spelling.translate_lookahead_tail`)."""
        options = _re2.RE2.Options()
        options.log_errors = False
        options.never_capture = not capture
        options.max_mem = _RE2_MAX_MEM
        compiled = _re2.RE2(translated.encode(), options)
        if not compiled.ok():
            raise jsregex.TranslateError(str(compiled.error()))
        super().__init__(source, compiled.NumberOfCapturingGroups() - shift)
        self._re: Any = compiled
        self._shift = shift
        program = self._program = max(int(compiled.ProgramSize()), 1)
        self._anchor = _ANCHOR_START if facts.anchored else _UNANCHORED
        # The work model: reading the first `prefix` characters may involve every instruction; after that
        # only the tail's (about three instructions per character position), and unanchored, everything.
        if facts.anchored:
            self._prefix = facts.prefix + 1
            self._tail = min(program, 3 * facts.tail + 4) if facts.tail else 0
        else:
            self._prefix, self._tail = 0, program
        if self._prefix * program > WORK_LIMIT:
            raise jsregex.TranslateError(
                f"too complex: {program} RE2 instructions over the first {facts.prefix} characters"
            )

    @property
    def text_limit(self) -> int:
        """The longest text this pattern runs over."""
        if not self._tail:
            return MAX_URL_LENGTH
        return min(MAX_URL_LENGTH, (WORK_LIMIT - self._prefix * self._program) // self._tail)

    def _charge(self, size: int, budget: Budget) -> None:
        """Charge a call over `size` bytes to the lookup's work, or raise when it cannot run within bounds."""
        cost = min(size, self._prefix) * self._program + size * self._tail
        if cost > WORK_LIMIT or size > MAX_URL_LENGTH:
            raise Undecided(too_long=True)
        budget.work -= cost
        if budget.work < 0:
            raise Undecided(too_long=False)

    def _spans(self, text: str, data: bytes, budget: Budget) -> list[tuple[int, int]] | None:
        size = len(data)
        self._charge(size, budget)
        spans: list[tuple[int, int]] = self._re.Match(self._anchor, data, 0, size)
        if spans[0][0] < 0:
            return None
        if size != len(text):  # not ASCII: RE2 counts bytes, Python characters
            return [(-1, -1) if a < 0 else (len(data[:a].decode()), len(data[:b].decode())) for a, b in spans]
        return spans

    def search(self, text: str, data: bytes, budget: Budget) -> bool:
        # Not `_spans`: a search (the hot path of exclusions) needs no conversion of the spans.
        size = len(data)
        self._charge(size, budget)
        return bool(self._re.Match(self._anchor, data, 0, size)[0][0] >= 0)

    def replace_first(
        self, template: Sequence[str | int], text: str, data: bytes, budget: Budget
    ) -> str | None:
        spans = self._spans(text, data, budget)
        if spans is None:
            return None
        if self._shift:
            spans = spans[self._shift :]
        start, end = spans[0]
        return text[:start] + expand_template(template, text, spans) + text[end:]


class BacktrackingPattern(Pattern):
    """A pattern only a backtracking engine can run: the `regex` package, with the lookup's time budget."""

    __slots__ = ("_re",)

    def __init__(self, source: str, translated: str) -> None:
        try:
            compiled = regex.compile(translated, regex.ASCII | regex.VERSION0)
        except (regex.error, OverflowError, RecursionError) as e:
            raise jsregex.TranslateError(str(e)) from e
        super().__init__(source, compiled.groups)
        self._re = compiled

    def _match(self, text: str, budget: Budget) -> regex.Match[str] | None:
        if len(text) > MAX_URL_LENGTH:
            raise Undecided(too_long=True)
        if budget.seconds <= 0:
            raise Undecided(too_long=False)
        started = time.perf_counter()
        try:
            return self._re.search(text, timeout=budget.seconds)
        except TimeoutError:
            raise Undecided(too_long=False) from None
        finally:
            budget.seconds -= time.perf_counter() - started

    def search(self, text: str, data: bytes, budget: Budget) -> bool:
        return self._match(text, budget) is not None

    def replace_first(
        self, template: Sequence[str | int], text: str, data: bytes, budget: Budget
    ) -> str | None:
        m = self._match(text, budget)
        if m is None:
            return None
        spans = [m.span(g) for g in range(self.groups + 1)]
        return text[: spans[0][0]] + expand_template(template, text, spans) + text[spans[0][1] :]


class LazyPattern(Pattern):
    """A pattern compiled the first time a text passes its literal prefix, charged to that lookup's budget.

    HTTPS Everywhere compiled a ruleset's regexes when its host was first seen; this goes one step further,
    per pattern: a ruleset's rules for other subdomains, or for paths a URL does not have, are never
    compiled for it, since an anchored pattern cannot match a text that lacks its literal prefix.
    """

    __slots__ = ("_prefix", "_packed", "_capture", "_compiled")

    def __init__(self, source: str, groups: int, prefix: str, packed: int, *, capture: bool) -> None:
        super().__init__(source, groups)
        self._prefix = prefix
        self._packed = packed
        self._capture = capture
        self._compiled: Pattern | None = None

    @property
    def compiled(self) -> bool:
        """Whether the pattern has been compiled yet."""
        return self._compiled is not None

    def _compile(self, budget: Budget) -> Pattern:
        """Compile now, unless this lookup has already compiled other patterns and this one does not fit.

        Raises:
            Undecided: the lookup's compile budget cannot pay for this pattern (a later lookup will).
        """
        facts = unpack_facts(self._packed)
        cost = compile_cost((self.source,), (facts,))
        if budget.compile < LOOKUP_COMPILE_COST and cost > budget.compile:
            raise Undecided(too_long=False)
        budget.compile -= cost
        compiled = (
            _spell(self.source, self.groups)
            or compile_any([self.source], [facts], capture=self._capture, spell=False)[0]
        )
        self._compiled = compiled
        return compiled

    def search(self, text: str, data: bytes, budget: Budget) -> bool:
        if not text.startswith(self._prefix):
            return False
        return (self._compiled or self._compile(budget)).search(text, data, budget)

    def replace_first(
        self, template: Sequence[str | int], text: str, data: bytes, budget: Budget
    ) -> str | None:
        if not text.startswith(self._prefix):
            return None
        return (self._compiled or self._compile(budget)).replace_first(template, text, data, budget)


def count_groups(source: str) -> int:
    """The capturing groups of a valid JavaScript pattern, counted without compiling it."""
    if "\\(" not in source and "[" not in source:  # every `(` opens a group: count the openings
        return (
            source.count("(")
            - source.count("(?")
            + source.count("(?<")
            - source.count("(?<=")
            - source.count("(?<!")
        )
    return spelling.count_capturing(source)


def prepare_js(source: str, packed: int, *, capture: bool = True) -> Pattern:
    """A valid pattern ready to run: a literal one as string operations, any other compiled on first use.

    `packed` is its `pack_facts`. Nothing is parsed or compiled here: this runs for every pattern of a
    ruleset the first time its host is seen, most of which a session never runs.
    """
    shape = shape_of(source)
    if shape.literal:
        return LiteralPattern(source, shape.prefix, anchored=shape.anchored, exact=shape.exact)
    groups = count_groups(source) if capture else 0
    return LazyPattern(source, groups, shape.prefix, packed, capture=capture)


def compile_js(source: str, facts: Facts | None = None, *, capture: bool = True) -> Pattern:
    """Compile one JavaScript pattern with the engine it needs (`facts`: from `facts_of`, if known).

    Raises:
        TranslateError: when the pattern is invalid, or too complex to run within the bounds.
    """
    return compile_any([source], None if facts is None else [facts], capture=capture)[0]


def compile_any(
    sources: Sequence[str],
    facts: Sequence[Facts] | None = None,
    *,
    capture: bool = False,
    spell: bool = True,
) -> list[Pattern]:
    """Compile patterns that are only ever searched together (a ruleset's exclusions) into as few as possible.

    HTTPS Everywhere joined a ruleset's exclusions into one alternation; this joins those RE2 runs into one
    pattern (two: anchored ones stay anchored, so their work does not grow with the URL) and those only the
    backtracking engine runs into another, so a search costs one to three calls. Those that can be spelled
    out (`WordPattern`; unless `spell` is false: the caller tried) need no regex at all.

    Raises:
        TranslateError: naming the problem of the first offending pattern.
    """
    known = list(facts) if facts is not None else [facts_of(s) for s in sources]
    out: list[Pattern] = []
    if spell:
        spelled = [(s, _spell(s, count_groups(s) if capture else 0)) for s in sources]
        out += [w for _s, w in spelled if w is not None]
        known = [f for (_s, w), f in zip(spelled, known, strict=True) if w is None]
        sources = [s for s, w in spelled if w is None]
    linear = [(s, f) for s, f in zip(sources, known, strict=True) if not f.backtracking]
    for anchored in (True, False):
        group = [(s, f) for s, f in linear if f.anchored is anchored]
        if group:
            out.append(_compile_linear(group, capture=capture))
    backtracking = []
    for source, f in zip(sources, known, strict=True):
        if f.backtracking:
            tail = _compile_tail(source, f, capture=capture)
            if tail is None:
                backtracking.append(source)
            else:
                out.append(tail)
    if backtracking:
        for source in backtracking:
            _check_repeats(source)
        if len(backtracking) == 1:
            translated = jsregex.translate_pattern(backtracking[0])
        else:
            translated = "|".join(f"(?:{jsregex.translate_pattern(s)})" for s in backtracking)
        out.append(BacktrackingPattern("|".join(backtracking), translated))
    return out


_SPELLED_MAX = 16  # more texts than this, and RE2's one call beats the string operations


def _spell(source: str, groups: int) -> WordPattern | None:
    """A pattern as its texts, when it is anchored, has no repetition and spells out few enough of them.

    `groups`: its capturing groups, or 0 when it is only searched.
    """
    spelled = spelling.spell_pattern(source, limit=_SPELLED_MAX)
    return None if spelled is None else WordPattern(source, groups, spelled)


def _compile_tail(source: str, facts: Facts, *, capture: bool) -> Re2Pattern | None:
    """RE2 for a pattern whose only lookaround is a final lookahead, when it can be rewritten so."""
    try:
        tail = spelling.translate_lookahead_tail(source, capture=capture)
        if tail is None:
            return None
        # What the lookahead reads is read after the prefix, or in the tail's stretch when there is one.
        stretch = facts.tail or tail.unbounded
        reads = Facts(
            False, facts.anchored, facts.prefix + tail.reads, facts.tail + tail.positions if stretch else 0
        )
        return Re2Pattern(source, tail.re2, reads, capture=capture, shift=int(tail.shifted))
    except jsregex.TranslateError:
        return None  # too complex for RE2's bounds, say: the backtracking engine, with its time budget


def _compile_linear(patterns: Sequence[tuple[str, Facts]], *, capture: bool) -> Re2Pattern:
    if len(patterns) == 1:
        source, facts = patterns[0]
        return Re2Pattern(source, jsregex.translate_pattern(source, re2=True), facts, capture=capture)
    joined_facts = Facts(  # an alternation: the longest prefix, every branch's tail
        False,
        all(f.anchored for _, f in patterns),
        max(f.prefix for _, f in patterns),
        sum(f.tail for _, f in patterns),
    )
    joined = "|".join(f"(?:{jsregex.translate_pattern(s, re2=True)})" for s, _ in patterns)
    return Re2Pattern("|".join(s for s, _ in patterns), joined, joined_facts, capture=capture)


def _check_repeats(source: str) -> None:
    """The `regex` package unrolls counted repetitions: `((a{100}){100}){100}` would take gigabytes."""
    if "{" not in source:
        return  # no counted repetition (`*+?` count once): nothing to multiply, and no parse to pay for
    try:
        product = syntax.repeat_product(syntax.parse(source))
    except syntax.PatternSyntaxError:
        return  # translation reports it
    if product > REPEAT_LIMIT:
        raise jsregex.TranslateError(
            f"nested counted repetitions multiply to {product} (at most {REPEAT_LIMIT})"
        )
