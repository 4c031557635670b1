"""Rule patterns answered by string operations, with no regex engine: plain text, and texts spelled out.

Half of the corpus's non-trivial patterns are plain text (`^http://a\\.com/`), and the most common other
shape is a few texts (`^http://(www\\.)?a\\.com/`): `startswith` answers them, with nothing to compile and
no work to charge. They are another mechanism than the regex engines of `pattern`, which chooses between
the two (`prepare_js`, `compile_any`) and so imports this module, never the reverse. Reading a pattern's
literal prefix from its source (`shape_of`) is here too: it is what makes a pattern a `LiteralPattern`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import NamedTuple

from port443.engine import spelling
from port443.engine.pattern_base import Budget, Pattern, expand_template


class LiteralPattern(Pattern):
    """A pattern that is plain text (`^http://a\\.com/`, `^...$`, `b\\.com/x`): string operations, no regex.

    Half of the corpus's non-trivial rules and exclusions are such literals. They need no compiling and run
    in time linear in the literal alone, so they also answer for texts of any length.
    """

    __slots__ = ("text", "anchored", "exact")

    def __init__(self, source: str, text: str, *, anchored: bool, exact: bool) -> None:
        super().__init__(source, 0)
        self.text = text
        self.anchored = anchored
        self.exact = exact

    def _start(self, text: str) -> int:
        if self.exact:
            return 0 if text == self.text else -1
        if self.anchored:
            return 0 if text.startswith(self.text) else -1
        return text.find(self.text)

    def search(self, text: str, data: bytes, budget: Budget) -> bool:
        return self._start(text) >= 0

    def replace_first(
        self, template: Sequence[str | int], text: str, data: bytes, budget: Budget
    ) -> str | None:
        start = self._start(text)
        if start < 0:
            return None
        end = start + len(self.text)
        return text[:start] + expand_template(template, text, ((start, end),)) + text[end:]


class AnyLiteral(Pattern):
    """Literal patterns searched together, as a ruleset's exclusions are: one string operation for all.

    Some rulesets list hundreds of literal exclusions (one per site of a shared host); `startswith` takes
    them all as one tuple. Only searched: an exclusion is never used to replace.
    """

    __slots__ = ("_prefixes", "_exact", "_inside")

    def __init__(self, patterns: Sequence[LiteralPattern]) -> None:
        super().__init__("|".join(p.source for p in patterns), 0)
        self._prefixes = tuple(p.text for p in patterns if p.anchored and not p.exact)
        self._exact = frozenset(p.text for p in patterns if p.exact)
        self._inside = tuple(p.text for p in patterns if not p.anchored)

    def search(self, text: str, data: bytes, budget: Budget) -> bool:
        if text.startswith(self._prefixes) or text in self._exact:
            return True
        return bool(self._inside) and any(inside in text for inside in self._inside)


class WordPattern(Pattern):
    """An anchored pattern without repetition, spelled out (`spelling.spell_pattern`): string operations.

    `^http://(www\\.)?a\\.com/` is two texts tried in the backtracking engine's order; a final lookahead is
    the texts that must (not) follow. The corpus's most common non-literal shape; no compiling, and every
    call is a few `startswith`, bounded by the number of texts.
    """

    __slots__ = ("_words", "_follow", "_follow_end", "_negative")

    def __init__(
        self, source: str, groups: int, spelled: tuple[list[spelling.Word], list[spelling.Word] | None, bool]
    ) -> None:
        super().__init__(source, groups)
        words, follow, positive = spelled
        self._words = tuple(words)
        tail = follow or []
        self._follow: tuple[str, ...] | None = (
            None if follow is None else tuple(t for t, end, _s in tail if not end)
        )
        self._follow_end = frozenset(t for t, end, _s in tail if end)
        """Texts that must (not) follow and then end the text (`$`)."""
        self._negative = not positive

    def _first(self, text: str) -> spelling.Word | None:
        """The first spelling the text starts with (and its lookahead accepts), in the engine's order."""
        for word in self._words:
            spelled, end, _spans = word
            if not text.startswith(spelled) or (end and len(text) != len(spelled)):
                continue
            follow = self._follow
            if follow is None:
                return word
            at = len(spelled)
            hit = text.startswith(follow, at) or (bool(self._follow_end) and text[at:] in self._follow_end)
            if hit is not self._negative:
                return word
        return None

    def search(self, text: str, data: bytes, budget: Budget) -> bool:
        return self._first(text) is not None

    def replace_first(
        self, template: Sequence[str | int], text: str, data: bytes, budget: Budget
    ) -> str | None:
        word = self._first(text)
        if word is None:
            return None
        spelled, _end, found = word
        spans = [(0, len(spelled))] + [(-1, -1)] * self.groups
        for group, start, stop in found:
            if group <= self.groups:  # compiled without captures (searched only): none are kept
                spans[group] = (start, stop)
        return expand_template(template, text, spans) + text[len(spelled) :]


# The pieces of JavaScript regex syntax the shape of a pattern is read from (no regex is compiled for it).
# An atom that stands for itself: any character but the syntax characters, or an identity escape (`\.`,
# `\/`; a backslash before a letter or digit is a class, an anchor or a reference). Braces are left out:
# Annex B reads them as literals only outside quantifier shapes. An atom followed by a quantifier is not
# part of the literal prefix.
_ATOM = r"(?:[^\\^$.|?*+()\[\]{}]|\\[^A-Za-z0-9])"
_LITERAL_RUN = re.compile(rf"(?:{_ATOM}(?![?*+{{]))*")
_LITERAL = re.compile(rf"{_ATOM}*", re.DOTALL)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


class Shape(NamedTuple):
    """What a pattern's source says at a glance: its literal prefix, and whether it is only that literal."""

    anchored: bool
    """It starts with `^` (and has no top-level alternation)."""
    prefix: str
    """Anchored: text every match starts with; else the whole literal when `literal`, or ""."""
    literal: bool
    """The pattern is `prefix` and nothing else (but `exact`)."""
    exact: bool
    """A literal that ends with `$`: it matches the one text `prefix`."""


_NO_SHAPE = Shape(False, "", False, False)


@functools.lru_cache(maxsize=8192)
def shape_of(source: str) -> Shape:
    """Read a JavaScript pattern's literal prefix from its source, in a few string operations."""
    if "|" in source and spelling.alternates_at_top(source):
        return _NO_SHAPE
    if not source.startswith("^"):
        literal = _LITERAL.fullmatch(source)
        return _NO_SHAPE if literal is None else Shape(False, _unescape(source), True, False)
    run = _LITERAL_RUN.match(source, 1)
    assert run is not None  # it matches the empty string
    end = run.end()
    prefix = _unescape(run.group())
    if end == len(source):
        return Shape(True, prefix, True, False)
    return Shape(True, prefix, source[end:] == "$", source[end:] == "$")


def _unescape(text: str) -> str:
    return _ESCAPE.sub(r"\1", text) if "\\" in text else text
