"""Host lookup keys, candidate order and activation, as HTTPS Everywhere's potentiallyApplicableRulesets."""

from __future__ import annotations

import pytest

from port443.engine.cache import LoadedRules
from port443.engine.index import _HOST_MEMO_SIZE, Activation, RuleIndex, lookup_keys
from port443.engine.pattern import LazyPattern
from port443.engine.pattern_base import Budget
from port443.engine.ruleset import Rule, Ruleset, SecureCookie
from port443.engine.string_pattern import AnyLiteral, LiteralPattern
from tests.conformance.oracle import REWRITES, records

TRIVIAL = Rule("^http:", "https:")


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


def test_rulesets_are_prepared_once_without_compiling_a_regex(index: RuleIndex) -> None:
    assert index.compiled(1) is index.compiled(1)
    rules = (
        Rule(r"^http://(www\.)?c\.test/", "https://c.test/"),
        Rule(r"^http://d\.c\.test/x", "https://d/"),
    )
    built = RuleIndex.build([Ruleset("C", ("c.test",), rules, exclusions=(r"^http://c\.test/(?!y)",))])
    ruleset = built.compiled(0)
    assert [type(r.pattern) for r in ruleset.rules] == [LazyPattern, LiteralPattern]
    assert not any(isinstance(p, LazyPattern) and p.compiled for p in ruleset.exclusions)
    assert (ruleset.trivial, ruleset.plain) == (False, False)


@pytest.mark.parametrize(
    ("rules", "exclusions", "trivial", "plain"),
    [
        ((Rule("^http:", "https:"),), (), True, True),
        ((Rule("^http:", "https:"),), (r"^http://a\.test/x",), False, True),  # a literal exclusion
        ((Rule(r"^http://a\.test/", "https://a.test/"),), (), False, True),
        ((Rule(r"^http://a\.test/.", "https://a.test/"),), (), False, False),
    ],
)
def test_rulesets_say_what_they_need(
    rules: tuple[Rule, ...], exclusions: tuple[str, ...], trivial: bool, plain: bool
) -> None:
    ruleset = RuleIndex.build([Ruleset("R", ("a.test",), rules, exclusions=exclusions)]).compiled(0)
    assert (ruleset.trivial, ruleset.plain) == (trivial, plain)


def test_literal_exclusions_are_searched_at_once() -> None:
    exclusions = (r"^http://a\.test/x", r"^http://a\.test/y$", r"\.pdf", r"^http://a\.test/(?!z)")
    ruleset = RuleIndex.build([Ruleset("R", ("a.test",), (TRIVIAL,), exclusions=exclusions)]).compiled(0)
    assert [type(p) for p in ruleset.exclusions] == [AnyLiteral, LazyPattern]
    literal = ruleset.exclusions[0]
    for text, hit in [("http://a.test/x1", True), ("http://a.test/y", True), ("http://a.test/y1", False)]:
        assert literal.search(text, b"", Budget()) is hit
    assert literal.search("http://b.test/a.pdf", b"", Budget())


def test_securecookies_are_prepared_apart() -> None:
    cookies = (SecureCookie(r"^a\.test$", ".+"), SecureCookie(r"^b\.a\.test$", "^sid$"))
    built = RuleIndex.build([Ruleset("R", ("a.test",), (TRIVIAL,), securecookies=cookies)])
    (host, name), (host2, name2) = built.cookies(0)
    assert built.cookies(0) is built.cookies(0)
    assert host.search("a.test", b"a.test", Budget()) and not host2.search("a.test", b"a.test", Budget())
    assert name.search("x", b"x", Budget()) and name2.search("sid", b"sid", Budget())


def test_rulesets_for_is_the_active_candidates_memoised(index: RuleIndex) -> None:
    for host in ("www.example.com", "a.example.com", "www.example.org", "nowhere.test", "", "a..example.com"):
        want = [index.compiled(i) for i in index.candidates(host) if index.active[i]]
        assert list(index.rulesets_for(host)) == want
        assert index.active_candidates(host) == [i for i in index.candidates(host) if index.active[i]]
        assert index.host_rulesets[host] is index.rulesets_for(host)


def test_the_host_memo_is_bounded(index: RuleIndex) -> None:
    for n in range(3 * _HOST_MEMO_SIZE):
        index.rulesets_for(f"h{n}.example.com")
        assert len(index.host_rulesets) <= _HOST_MEMO_SIZE
    assert index.rulesets_for("h1.example.com") == (index.compiled(0),)


@pytest.mark.slow
def test_active_candidates_agree_with_the_reference_order(shipped: LoadedRules) -> None:
    """The hot path's own walk finds what `candidates` finds, for every host of the oracle's URL cases."""
    index = shipped.index
    for case in records(REWRITES):
        host = case["host"]
        assert index.active_candidates(host) == [i for i in index.candidates(host) if index.active[i]], host
