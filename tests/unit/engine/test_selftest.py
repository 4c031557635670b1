"""`rules test`: a ruleset's own test URLs and targets, and rule coverage by HTTPS Everywhere's guideline."""

from __future__ import annotations

from pathlib import Path

import pytest

from port443.engine import selftest as ruletest
from port443.engine.ruleset import Rule, Ruleset
from port443.engine.selftest import RulesetTestResult

# ruletest's own functions are named test_*: call them through the module so pytest does not collect them.

TRIVIAL = Rule("^http:", "https:")
WWW = Rule(r"^http://(www\.)?example\.test/", "https://$1example.test/")  # one `?`: needs 2 test URLs


def test_a_passing_ruleset() -> None:
    good = Ruleset(
        "Good",
        ("example.test", "www.example.test", "*.cdn.example.test"),
        (WWW, Rule(r"^http://[a-z]+\.cdn\.example\.test/", "https://cdn.example.test/")),
        exclusions=(r"^http://example\.test/old/",),
        tests=(
            "http://www.example.test/page",
            "http://a.cdn.example.test/",
            "http://b.cdn.example.test/x",
            "http://example.test/old/",
        ),
        source="rules/good.yaml",
    )
    result = ruletest.test_ruleset(good)
    assert result == RulesetTestResult("Good", "rules/good.yaml", tests=4, broken=[], uncovered=[])
    assert result.as_json() == {
        "ruleset": "Good",
        "file": "rules/good.yaml",
        "tests": 4,
        "broken": [],
        "uncovered": [],
    }


def test_target_roots_count_as_tests() -> None:
    # no tests of its own, but both targets' root URLs hit the rule: two hits, two needed
    result = ruletest.test_ruleset(Ruleset("Roots", ("example.test", "www.example.test"), (WWW,)))
    assert (result.tests, result.broken, result.uncovered) == (0, [], [])


@pytest.mark.parametrize(
    ("ruleset", "broken"),
    [
        (
            Ruleset("Elsewhere", ("example.test",), (TRIVIAL,), tests=("http://other.test/",)),
            ["test 'http://other.test/': host 'other.test' is not covered by the ruleset's targets"],
        ),
        (
            Ruleset("Parent", ("*.example.test",), (TRIVIAL,), tests=("http://example.test/",)),
            ["test 'http://example.test/': host 'example.test' is not covered by the ruleset's targets"],
        ),
        (
            Ruleset("Invalid", ("example.test",), (TRIVIAL,), tests=("http://exa mple.test/",)),
            ["test 'http://exa mple.test/' is not a valid URL"],
        ),
        (
            Ruleset(
                "Paths",
                ("example.test",),
                (Rule(r"^http://example\.test/a/", "https://example.test/a/"),),
                tests=("http://example.test/a/1", "http://example.test/b/"),
            ),
            [
                "test 'http://example.test/b/' is neither rewritten nor excluded by this ruleset",
                "target 'http://example.test/' is neither rewritten nor excluded by this ruleset",
            ],
        ),
    ],
)
def test_broken_tests(ruleset: Ruleset, broken: list[str]) -> None:
    assert ruletest.test_ruleset(ruleset).broken == broken


def test_a_deliberately_excluded_target_is_coverage_not_breakage() -> None:
    # a "partial" ruleset: the bare domain stays on HTTP on purpose, www is upgraded
    ruleset = Ruleset(
        "Partial",
        ("example.test", "www.example.test"),
        (WWW,),
        exclusions=(r"^http://example\.test/$",),
        tests=("http://www.example.test/a",),
    )
    result = ruletest.test_ruleset(ruleset)
    assert (result.broken, result.uncovered) == ([], [])  # www root + test: 2 rule hits; exclusion: 1 hit


def test_an_excluded_test_url_is_fine() -> None:
    ruleset = Ruleset(
        "Excl", ("example.test",), (TRIVIAL,), exclusions=(r"/old/",), tests=("http://example.test/old/",)
    )
    assert ruletest.test_ruleset(ruleset).broken == []


@pytest.mark.parametrize(
    ("pattern", "needed"),
    [
        (r"^http://example\.test/", 1),
        (r"^http://(www\.)?example\.test/", 2),
        (r"^http://(a|b)\.example\.test/.*", 3),
        (r"^http://([\w-]+)\.example\.test/(.+)?$", 4),
        (
            r"^http://(a|b|c)\.example\.test/\?q",
            4,
        ),  # an escaped `?` still counts, as in HTTPS Everywhere's tool
    ],
)
def test_coverage_needs_one_plus_the_variable_parts(pattern: str, needed: int) -> None:
    ruleset = Ruleset("Cov", ("*.example.test",), (Rule(pattern, "https://example.test/"),))
    result = ruletest.test_ruleset(ruleset)
    uncovered = [f"rules[0] {pattern!r} is hit by 0 test URL(s); {needed} needed"]
    assert result.uncovered == uncovered  # wildcard targets add no root URLs
    assert result.broken == []


def test_coverage_counts_hits_per_rule_and_exclusion() -> None:
    ruleset = Ruleset(
        "Counted",
        ("a.example.test", "b.example.test"),
        (
            Rule(r"^http://(a|b)\.example\.test/x", "https://a.example.test/x"),  # 2 needed
            Rule(r"^http://a\.example\.test/", "https://a.example.test/"),  # 1 needed
            TRIVIAL,  # always 1 needed
        ),
        exclusions=(r"^http://b\.example\.test/old/.+",),  # 2 needed
        tests=("http://a.example.test/x", "http://b.example.test/x", "http://b.example.test/old/1"),
    )
    result = ruletest.test_ruleset(ruleset)
    # the target roots hit rules[1] (a) and rules[2] (b): every rule is covered, the exclusion is not
    assert result.broken == []
    assert result.uncovered == [
        r"exclusions[0] '^http://b\\.example\\.test/old/.+' is hit by 1 test URL(s); 2 needed"
    ]


def test_only_the_first_rewriting_rule_is_credited() -> None:
    ruleset = Ruleset(
        "First",
        ("example.test",),
        (TRIVIAL, Rule(r"^http://example\.test/", "https://example.test/")),
        tests=("http://example.test/a",),
    )
    assert ruletest.test_ruleset(ruleset).uncovered == [
        r"rules[1] '^http://example\\.test/' is hit by 0 test URL(s); 1 needed"
    ]


RULESET_YAML = (
    "name: {name}\ntargets: [{name}.test]\nrules:\n  - from: '^http:'\n    to: 'https:'\ntests: [{test}]\n"
)


def test_test_rulesets_over_a_folder(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(RULESET_YAML.format(name="a", test="http://a.test/x"))
    (tmp_path / "b.yaml").write_text(RULESET_YAML.format(name="b", test="http://elsewhere.test/"))
    (tmp_path / "c.yaml").write_text("name: c\n")  # invalid: reported, not fatal
    seen: list[tuple[int, int]] = []
    report = ruletest.test_rulesets([tmp_path], progress=lambda done, total: seen.append((done, total)))
    assert isinstance(report, ruletest.TestReport)
    assert [(r.name, r.tests, len(r.broken)) for r in report.results] == [("a", 1, 0), ("b", 1, 1)]
    assert (report.broken, report.uncovered) == (1, 0)
    assert [e.source for e in report.errors] == [str(tmp_path / "c.yaml")]
    assert seen == [(2, 2)]
