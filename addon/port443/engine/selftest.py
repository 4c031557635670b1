"""Offline ruleset tests (`port443 rules test`): do a ruleset's tests and targets work, and are its rules covered?

Every test URL must be rewritten or excluded by its own ruleset, and every non-wildcard target's root URL
must be rewritten (or deliberately excluded). Coverage follows HTTPS Everywhere's ruleset-testing guide: a rule or exclusion needs
1 + (number of `*`, `+`, `?`, `|` in its regex) test URLs. Broken tests fail; coverage gaps are reported.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from port443.engine.canon import canonicalize
from port443.engine.index import CompiledRule, compile_record, lookup_keys, record_of
from port443.engine.pattern import compile_js
from port443.engine.pattern_base import Budget, Undecided
from port443.engine.ruleset import Ruleset, load_rulesets
from port443.errors import RulesetError

_VARIABLE = re.compile(r"[*+?|]")


@dataclass(slots=True)
class RulesetTestResult:
    """What testing one ruleset found."""

    name: str
    source: str
    tests: int = 0
    broken: list[str] = field(default_factory=list)
    uncovered: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """For `--json`."""
        return {
            "ruleset": self.name,
            "file": self.source,
            "tests": self.tests,
            "broken": self.broken,
            "uncovered": self.uncovered,
        }


@dataclass(frozen=True, slots=True)
class TestReport:
    """All rulesets' results."""

    results: tuple[RulesetTestResult, ...]
    errors: tuple[RulesetError, ...]

    @property
    def broken(self) -> int:
        """How many broken tests in all."""
        return sum(len(r.broken) for r in self.results)

    @property
    def uncovered(self) -> int:
        """How many rules and exclusions lack enough tests."""
        return sum(len(r.uncovered) for r in self.results)


def test_rulesets(
    paths: Sequence[str | os.PathLike[str]], *, progress: Callable[[int, int], None] | None = None
) -> TestReport:
    """Load the rulesets under `paths` and test each of them."""
    loaded = load_rulesets(paths)
    results = []
    for n, ruleset in enumerate(loaded.rulesets, 1):
        results.append(test_ruleset(ruleset))
        if progress is not None and (n % 500 == 0 or n == len(loaded.rulesets)):
            progress(n, len(loaded.rulesets))
    return TestReport(tuple(results), loaded.errors)


test_rulesets.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite its name


def test_ruleset(ruleset: Ruleset) -> RulesetTestResult:
    """Run one ruleset's own tests and its targets' root URLs through it, counting what each rule covers."""
    result = RulesetTestResult(ruleset.name, ruleset.source, len(ruleset.tests))
    compiled = compile_record(record_of(ruleset))
    exclusions = [compile_js(e, capture=False) for e in ruleset.exclusions]
    rule_hits = [0] * len(compiled.rules)
    exclusion_hits = [0] * len(exclusions)
    targets = set(ruleset.targets)
    cases = [(url, "test") for url in ruleset.tests]
    cases += [(f"http://{t}/", "target") for t in ruleset.targets if "*" not in t]
    for url, kind in cases:
        canon = canonicalize(url)
        if canon is None:
            result.broken.append(f"{kind} {url!r} is not a valid URL")
            continue
        if not targets.intersection(lookup_keys(canon.host)):
            result.broken.append(
                f"{kind} {url!r}: host {canon.host!r} is not covered by the ruleset's targets"
            )
            continue
        href, data = canon.href, canon.href.encode()
        try:
            hit = [i for i, e in enumerate(exclusions) if e.search(href, data, Budget())]
            rule = None if hit else _first_rule(compiled.rules, href, data)
        except Undecided as e:
            why = "longer than rules are run over" if e.too_long else "beyond the rules' time budget"
            result.broken.append(f"{kind} {url!r} is {why}")
            continue
        for i in hit:
            exclusion_hits[i] += 1
        if hit:
            continue  # excluded on purpose (a "partial" ruleset): it covers the exclusion
        if rule is None:
            result.broken.append(f"{kind} {url!r} is neither rewritten nor excluded by this ruleset")
        else:
            rule_hits[rule] += 1
    for i, each in enumerate(ruleset.rules):
        _coverage(result, f"rules[{i}] {each.from_!r}", each.from_, rule_hits[i], trivial=each.trivial)
    for i, pattern in enumerate(ruleset.exclusions):
        _coverage(result, f"exclusions[{i}] {pattern!r}", pattern, exclusion_hits[i], trivial=False)
    return result


def _first_rule(rules: Sequence[CompiledRule], href: str, data: bytes) -> int | None:
    for i, (pattern, template) in enumerate(rules):
        if pattern is None:
            if href.startswith("http:"):
                return i
        elif pattern.replace_first(template, href, data, Budget()) not in (None, href):
            return i
    return None


def _coverage(result: RulesetTestResult, label: str, pattern: str, hits: int, *, trivial: bool) -> None:
    needed = 1 if trivial else 1 + len(_VARIABLE.findall(pattern))
    if hits < needed:
        result.uncovered.append(f"{label} is hit by {hits} test URL(s); {needed} needed")
