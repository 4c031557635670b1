"""What every rule pattern shares: the bounds one lookup runs within, and the interface that keeps to them.

The patterns run by a regex engine (`pattern`) and those answered by string operations (`string_pattern`)
both subclass `Pattern`, charge `Budget` and raise `Undecided`, and `pattern` builds both kinds: with these
definitions in `pattern` itself, the two modules would import each other. Here, both import this one, and
`pattern`'s docstring keeps the reasoning behind each bound.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_URL_LENGTH = 8192
"""The longest text (URL, cookie name) rule regexes run over."""
WORK_LIMIT = 500_000
"""RE2 work one call may take: characters x program instructions (about 4 ms at worst)."""
LOOKUP_WORK = 2_500_000
"""RE2 work all calls of one lookup may take together."""
MATCH_BUDGET = 0.005
"""Seconds the backtracking engine may run, all calls of one lookup together."""
LOOKUP_COMPILE_COST = 25_000
"""Estimated microseconds of compiling patterns on first use one lookup may spend (see `pattern.compile_cost`)."""
REPEAT_LIMIT = 1000
"""Counted repetitions nested in each other may multiply to this much (RE2's own limit)."""


class Undecided(Exception):
    """A pattern could not run within its bounds; `too_long` when the text (not the budget) was the reason."""

    def __init__(self, too_long: bool) -> None:
        super().__init__("text too long" if too_long else "time budget spent")
        self.too_long = too_long


class Budget:
    """What one lookup may still spend: RE2 work units, backtracking seconds, compiling microseconds."""

    __slots__ = ("work", "seconds", "compile")

    def __init__(
        self, work: int = LOOKUP_WORK, seconds: float = MATCH_BUDGET, compile: int = LOOKUP_COMPILE_COST
    ) -> None:
        self.work = work
        self.seconds = seconds
        self.compile = compile
        """Estimated compile microseconds left (see `pattern.compile_cost`); the first pattern may always compile."""


class Pattern:
    """A compiled pattern; `search` and `replace_first` raise `Undecided` rather than run unbounded."""

    __slots__ = ("source", "groups")

    def __init__(self, source: str, groups: int) -> None:
        self.source = source
        self.groups = groups

    def search(self, text: str, data: bytes, budget: Budget) -> bool:
        """Whether the pattern matches anywhere in `text` (`data` is its UTF-8 encoding)."""
        raise NotImplementedError

    def replace_first(
        self, template: Sequence[str | int], text: str, data: bytes, budget: Budget
    ) -> str | None:
        """`text` with its first match replaced by `template` (text and group numbers), None when no match."""
        raise NotImplementedError


def expand_template(template: Sequence[str | int], text: str, spans: Sequence[tuple[int, int]]) -> str:
    """A replacement: literal text and group numbers; a group that took no part is empty, as in JavaScript."""
    if len(template) == 1 and type(first := template[0]) is str:  # most: no group named
        return first
    out = []
    for part in template:
        if isinstance(part, str):
            out.append(part)
        else:
            a, b = spans[part]
            if a >= 0:
                out.append(text[a:b])
    return "".join(out)
