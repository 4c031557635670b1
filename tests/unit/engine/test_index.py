"""Host lookup keys, candidate order and activation, as HTTPS Everywhere's potentiallyApplicableRulesets."""

from __future__ import annotations

import pytest

from port443.engine.index import Activation, RuleIndex, lookup_keys
from port443.engine.ruleset import Rule, Ruleset


def ruleset(name: str, *targets: str, default_off: str | None = None, platform: str | None = None) -> Ruleset:
    return Ruleset(name, targets, (Rule("^http:", "https:"),), default_off=default_off, platform=platform)


@pytest.mark.parametrize(
    ("host", "keys"),
    [
        ("a.b.c.d.com", ["a.b.c.d.com", "a.b.c.d.*", "*.b.c.d.com", "*.c.d.com", "*.d.com"]),
        ("example.com", ["example.com", "example.*"]),
        ("www.example.co.uk", ["www.example.co.uk", "www.example.co.*", "*.example.co.uk", "*.co.uk"]),
        ("localhost", ["localhost"]),
        (".example.com", [".example.com", ".example.*", "*.example.com"]),
        ("a..example.com", ["a..example.com"]),
        ("*.example.com", ["*.example.com"]),
        ("[::1]", ["[::1]"]),
        ("", [""]),
        ("a." * 128 + "com", ["a." * 128 + "com"]),  # over 255 characters: exact only
    ],
)
def test_lookup_keys(host: str, keys: list[str]) -> None:
    assert lookup_keys(host) == keys


@pytest.fixture
def index() -> RuleIndex:
    return RuleIndex.build(
        [
            ruleset("Wild", "*.example.com"),
            ruleset("Exact", "www.example.com", "example.com"),
            ruleset("Right", "www.example.*"),
            ruleset("Off", "www.example.com", default_off="broken"),
            ruleset("Mixed", "www.example.com", platform="mixedcontent"),
            ruleset("MixedOff", "www.example.com", platform="mixedcontent", default_off="broken"),
        ]
    )


def names(index: RuleIndex, host: str) -> list[str]:
    return [index.name(i) for i in index.candidates(host)]


def test_candidates_come_in_probe_order_then_file_order(index: RuleIndex) -> None:
    assert names(index, "www.example.com") == ["Exact", "Off", "Mixed", "MixedOff", "Right", "Wild"]


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.com", ["Exact"]),  # *.example.com never covers the bare parent
        ("a.b.example.com", ["Wild"]),  # ... but any number of extra labels
        ("www.example.de", ["Right"]),
        ("www.example.co.uk", []),  # www.example.* covers one last label only
        ("WWW.EXAMPLE.COM", []),  # the engine itself is case-sensitive; canonicalisation lowers case first
    ],
)
def test_wildcards(index: RuleIndex, host: str, expected: list[str]) -> None:
    assert names(index, host) == expected


def test_default_activation(index: RuleIndex) -> None:
    active = {index.name(i): bool(a) for i, a in enumerate(index.active)}
    assert active == {
        "Wild": True,
        "Exact": True,
        "Right": True,
        "Off": False,
        "Mixed": False,
        "MixedOff": False,
    }


def test_platforms_and_overrides(index: RuleIndex) -> None:
    changed = index.with_activation(Activation(frozenset({"mixedcontent"}), {"Off": True, "Wild": False}))
    active = {changed.name(i): bool(a) for i, a in enumerate(changed.active)}
    # A default_off ruleset stays off when only its platform is enabled; an override by name wins over both.
    assert active == {
        "Wild": False,
        "Exact": True,
        "Right": True,
        "Off": True,
        "Mixed": True,
        "MixedOff": False,
    }
    assert index.active != changed.active  # the original is untouched


def test_a_ruleset_listing_a_target_twice_appears_once() -> None:
    index = RuleIndex.build([ruleset("Twice", "a.com", "a.com", "*.com.a.com")])
    assert index.candidates("a.com") == [0]


def test_regexes_compile_lazily_and_once(index: RuleIndex) -> None:
    assert index.compiled(1) is index.compiled(1)


def test_a_lookup_budget_pays_for_one_costly_compile_then_stops() -> None:
    from port443.engine.pattern import Budget, Undecided

    rules = tuple(Rule(rf"^http://c\.test/{i}/[a-z]+", "https://c.test/") for i in range(500))
    index = RuleIndex.build([Ruleset(f"C{n}", ("c.test",), rules) for n in range(2)])
    budget = Budget()
    index.compiled(0, budget)  # the first compile of a lookup is always paid for
    with pytest.raises(Undecided):
        index.compiled(1, budget)
    assert index.compiled(0, budget) is index.compiled(0)  # compiled ones cost nothing
