"""Conformance with the reference HTTPS Everywhere engine on the real corpus: every public oracle answer.

The answers (tests/data/oracle/) were computed on the XML corpus; the index here is built from the shipped
YAML conversion of that corpus (rules/), so the conversion is checked along with the engine.

Each test walks a whole oracle file and reports every mismatch at once, so one failure shows the pattern.
"""

from __future__ import annotations

from port443.engine.cache import LoadedRules
from port443.engine.rewrite import rewrite_url, secure_cookie
from tests.conformance.oracle import COOKIES, HOSTS, REWRITES, records


def _report(mismatches: list[str], total: int) -> str:
    shown = "\n".join(mismatches[:25])
    return f"{len(mismatches)} of {total} cases differ from the reference engine:\n{shown}"


def test_shipped_corpus_loads_without_errors(shipped: LoadedRules) -> None:
    assert not shipped.errors, "\n".join(str(e) for e in shipped.errors[:10])
    assert len(shipped.index) == 23_764


def test_urls_match_reference(shipped: LoadedRules) -> None:
    mismatches, total = [], 0
    for case in records(REWRITES):
        total += 1
        got = rewrite_url(case["url"], shipped.index)
        applied = got.ruleset if got.url is not None else None
        if got.url != case["expect"] or applied != case["applied"]:
            mismatches.append(
                f"{case['kind']}: {case['url']!r}: want {case['expect']!r} by {case['applied']!r}, got {got}"
            )
    assert total == 32_052  # every case of the file (README)
    assert not mismatches, _report(mismatches, total)


def test_url_candidates_match_reference(shipped: LoadedRules) -> None:
    index = shipped.index
    mismatches, total = [], 0
    for case in records(REWRITES):
        total += 1
        ids = index.candidates(case["host"])
        active = [index.name(i) for i in ids if index.active[i]]
        inactive = [index.name(i) for i in ids if not index.active[i]]
        if active != case["rulesets"] or inactive != case["inactive"]:
            mismatches.append(
                f"{case['host']!r}: want {case['rulesets']}/{case['inactive']}, got {active}/{inactive}"
            )
    assert not mismatches, _report(mismatches, total)


def test_hosts_match_reference(shipped: LoadedRules) -> None:
    index = shipped.index
    mismatches, total = [], 0
    for case in records(HOSTS):
        total += 1
        found = index.candidate_keys(case["host"])
        active = [index.name(i) for _, i in found if index.active[i]]
        inactive = [index.name(i) for _, i in found if not index.active[i]]
        keys = list(dict.fromkeys(key for key, _ in found))
        want = (case["rulesets"], case["inactive"], case["keys"])
        if (active, inactive, keys) != want:
            mismatches.append(
                f"{case['kind']}: {case['host']!r}: want {want}, got {(active, inactive, keys)}"
            )
    assert total == 5_342  # every case of the file (README)
    assert not mismatches, _report(mismatches, total)


def test_cookies_match_reference(shipped: LoadedRules) -> None:
    mismatches, total = [], 0
    for case in records(COOKIES):
        total += 1
        got = secure_cookie(case["domain"], case["name"], shipped.index)
        if (got.secure, got.ruleset) != (case["secure"], case["cookie_rule_ruleset"]):
            mismatches.append(
                f"{case['kind']}: {case['domain']!r} {case['name']!r}: want {case['secure']}, got {got}"
            )
    assert total == 3_149  # every case of the file (README)
    assert not mismatches, _report(mismatches, total)
