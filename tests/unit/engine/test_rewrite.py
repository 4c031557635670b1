"""Applying rulesets: HTTPS Everywhere's rewrite and securecookie decisions on small hand-made rulesets."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from port443.engine.cache import LoadedRules
from port443.engine.index import RuleIndex
from port443.engine.pattern import LazyPattern
from port443.engine.rewrite import Outcome, Rewrite, rewrite_url, secure_cookie
from port443.engine.ruleset import Rule, Ruleset, SecureCookie

TRIVIAL = Rule("^http:", "https:")


@pytest.fixture
def index() -> RuleIndex:
    return RuleIndex.build(
        [
            Ruleset(
                "Trivial",
                ("plain.test", "*.plain.test"),
                (TRIVIAL,),
                securecookies=(SecureCookie(r"plain\.test$", ".+"),),
            ),
            Ruleset(
                "Paths",
                ("paths.test",),
                (
                    Rule(r"^http://paths\.test/never/", "https://paths.test/never/"),
                    Rule(r"^http://paths\.test/(a|b)/", "https://paths.test/$1/"),
                ),
                exclusions=(r"^http://paths\.test/a/legacy", r"\.crl"),
                securecookies=(SecureCookie(r"^paths\.test$", "^sid$"),),
            ),
            Ruleset("Shared-1", ("shared.test",), (TRIVIAL,), exclusions=(r"^http://shared\.test/x",)),
            Ruleset(
                "Shared-2", ("shared.test",), (Rule(r"^http://shared\.test/", "https://www.shared.test/"),)
            ),
            Ruleset(
                "Refs", ("refs.test",), (Rule(r"^http://(r)(e)fs\.test/", "https://$012dialog.test/$2/$$1/"),)
            ),
            Ruleset(
                "Off",
                ("off.test",),
                (TRIVIAL,),
                default_off="broken",
                securecookies=(SecureCookie(".+", ".+"),),
            ),
        ]
    )


@pytest.mark.parametrize(
    ("url", "outcome", "result", "ruleset"),
    [
        ("http://plain.test/a?b#c", Outcome.UPGRADED, "https://plain.test/a?b#c", "Trivial"),
        ("http://PLAIN.test.:80/", Outcome.UPGRADED, "https://plain.test/", "Trivial"),
        (
            "http://plain.test:8080/",
            Outcome.UPGRADED,
            "https://plain.test:8080/",
            "Trivial",
        ),  # trivial keeps the port
        ("http://user:pw@a.plain.test/", Outcome.UPGRADED, "https://user:pw@a.plain.test/", "Trivial"),
        ("http://user:@a.plain.test/", Outcome.UPGRADED, "https://user@a.plain.test/", "Trivial"),
        ("https://plain.test/", Outcome.NO_MATCH, None, None),  # never touches https
        ("ftp://plain.test/", Outcome.NO_MATCH, None, None),
        ("http://paths.test/b/c", Outcome.UPGRADED, "https://paths.test/b/c", "Paths"),
        (
            "http://paths.test:8080/b/c",
            Outcome.NO_MATCH,
            None,
            None,
        ),  # host-specific rules do not match ports
        ("http://paths.test/c/", Outcome.NO_MATCH, None, None),
        ("http://paths.test/a/legacy/x", Outcome.EXCLUDED, None, "Paths"),
        (
            "http://paths.test/b/?f=x.crl",
            Outcome.EXCLUDED,
            None,
            "Paths",
        ),  # unanchored exclusions search anywhere
        # One ruleset's exclusion never blocks another ruleset for the same host.
        ("http://shared.test/x", Outcome.UPGRADED, "https://www.shared.test/x", "Shared-2"),
        ("http://shared.test/y", Outcome.UPGRADED, "https://shared.test/y", "Shared-1"),
        ("http://refs.test/", Outcome.UPGRADED, "https://r2dialog.test/e/$1/", "Refs"),
        ("http://off.test/", Outcome.NO_MATCH, None, None),
        ("http://other.test/", Outcome.NO_MATCH, None, None),
        ("http://a b/", Outcome.NO_MATCH, None, None),
        ("mailto:x@plain.test", Outcome.NO_MATCH, None, None),
    ],
)
def test_rewrite(
    index: RuleIndex, url: str, outcome: Outcome, result: str | None, ruleset: str | None
) -> None:
    got = rewrite_url(url, index)
    assert (got.outcome, got.url, got.ruleset) == (outcome, result, ruleset)


@pytest.mark.parametrize(
    ("domain", "name", "secure", "ruleset"),
    [
        (".plain.test", "sid", True, "Trivial"),
        ("plain.test", "anything", True, "Trivial"),
        ("plain.test", "", False, None),  # a name "" never matches .+
        (
            "paths.test",
            "sid",
            False,
            "Paths",
        ),  # the rule matches, but http://paths.test/<random> is not upgraded
        (".paths.test", "sid", False, None),  # the host regex sees the leading dot
        ("PLAIN.test", "sid", False, None),
        ("off.test", "sid", False, None),  # inactive rulesets are skipped
        ("nowhere.test", "sid", False, None),
    ],
)
def test_secure_cookie(index: RuleIndex, domain: str, name: str, secure: bool, ruleset: str | None) -> None:
    assert tuple(secure_cookie(domain, name, index)) == (secure, ruleset)


def test_cookie_safety_probe_is_memoised_and_bounded(index: RuleIndex) -> None:
    secure_cookie("plain.test", "a", index)
    assert index.cookie_memo == {"plain.test": True}
    for n in range(300):
        secure_cookie(f"h{n}.plain.test", "a", index)
    assert len(index.cookie_memo) == 250
    assert "plain.test" not in index.cookie_memo  # first in, first out


# --- bounded by construction: no URL, no rule makes a lookup stall the event loop -------------------------------

LAG_BOUND = 0.050


@pytest.fixture
def hostile_index() -> RuleIndex:
    return RuleIndex.build(
        [
            Ruleset(
                "Amazon.in (partial)",
                ("amazon.in", "www.amazon.in"),
                (TRIVIAL,),
                exclusions=(r"^http://(www\.)?amazon\.in/+(.+/)?(b|dp|e|s)($|[?/])",),
            ),
            Ruleset("Nested", ("x.test",), (Rule(r"^http://x\.test/(a+)+b", "https://x.test/"),)),
            # `regex` copes with (a+)+ itself, not with overlapping alternatives under a repetition.
            Ruleset("Lookahead", ("y.test",), (Rule(r"^http://y\.test/(?!z)(a|aa)+b", "https://y.test/"),)),
            Ruleset("Later", ("y.test",), (TRIVIAL,)),
        ]
    )


@pytest.mark.parametrize(
    ("url", "outcome", "result"),
    [
        ("http://amazon.in/" + "/" * 8000, Outcome.UPGRADED, "https://amazon.in/" + "/" * 8000),
        ("http://amazon.in/" + "/" * 8000 + "dp/x", Outcome.EXCLUDED, None),
        ("http://amazon.in/" + "/" * 20_000, Outcome.TOO_LONG, None),
        ("http://amazon.in/" + "/" * 1_000_000, Outcome.TOO_LONG, None),  # not even canonicalised
        ("http://x.test/" + "a" * 8000, Outcome.NO_MATCH, None),  # RE2: linear time, a full answer
        ("http://x.test/" + "a" * 8000 + "b", Outcome.UPGRADED, "https://x.test/"),
        ("http://y.test/" + "a" * 40, Outcome.TIMED_OUT, None),  # exponential: out of time, undecided
        ("http://y.test/aab", Outcome.UPGRADED, "https://y.test/"),
        ("http://y.test/aaa", Outcome.UPGRADED, "https://y.test/aaa"),  # the next ruleset, in time
    ],
)
def test_hostile_urls_are_answered_or_left_undecided_in_bounded_time(
    hostile_index: RuleIndex, url: str, outcome: Outcome, result: str | None
) -> None:
    """The event-loop lag probe, in-process: every call returns within the bound, whatever the URL."""
    rewrite_url("http://x.test/", hostile_index)  # compiling on first use is bounded and measured elsewhere
    started = time.perf_counter()
    got = rewrite_url(url, hostile_index)
    assert time.perf_counter() - started < LAG_BOUND
    assert (got.outcome, got.url) == (outcome, result)
    assert got.outcome.decided is (outcome not in (Outcome.TOO_LONG, Outcome.TIMED_OUT))


def test_an_undecided_lookup_names_the_ruleset_it_was_working_on(hostile_index: RuleIndex) -> None:
    got = rewrite_url("http://y.test/" + "a" * 40, hostile_index)
    assert got == Rewrite(Outcome.TIMED_OUT, None, "Lookahead")


def test_a_lookup_compiles_a_bounded_amount() -> None:
    # Three rulesets on one host, each costing most of a lookup's compile budget, every pattern past its
    # literal prefix: a lookup compiles the first ruleset's whole and some of the next, then gives up.
    rules = tuple(Rule(rf"^http://c\.test/[a-z]+/{i}", "https://c.test/") for i in range(500))
    index = RuleIndex.build([Ruleset(f"C{n}", ("c.test",), rules) for n in range(3)])
    outcomes = [rewrite_url("http://c.test/", index).outcome for _ in range(4)]
    assert outcomes == [Outcome.TIMED_OUT, Outcome.TIMED_OUT, Outcome.NO_MATCH, Outcome.NO_MATCH]


def test_patterns_a_url_cannot_reach_are_never_compiled() -> None:
    # 500 rules for other paths: their literal prefixes rule them out without a regex.
    rules = tuple(Rule(rf"^http://c\.test/{i}/[a-z]+", "https://c.test/") for i in range(500))
    index = RuleIndex.build([Ruleset("C", ("c.test",), rules)])
    patterns = [r.pattern for r in index.compiled(0).rules if isinstance(r.pattern, LazyPattern)]
    assert len(patterns) == 500
    assert rewrite_url("http://c.test/", index).outcome is Outcome.NO_MATCH
    assert not any(p.compiled for p in patterns)
    assert rewrite_url("http://c.test/7/x?y", index).url == "https://c.test/?y"
    assert [p.compiled for p in patterns].count(True) == 1


def test_hostile_cookies_are_left_alone_in_bounded_time(hostile_index: RuleIndex) -> None:
    started = time.perf_counter()
    assert secure_cookie("x.test", "a" * 100_000, hostile_index) == (False, None)
    assert time.perf_counter() - started < LAG_BOUND


# --- properties over the shipped corpus -----------------------------------------------------------------------

_HOSTS = st.sampled_from(
    ["amazon.in", "www.amazon.in", "northamptonshire.gov.uk", "s.yimg.jp", "www.appspot.com", "www.eff.org"]
    + [f"{label}.wikipedia.org" for label in ("en", "de", "www")]
    + ["www.google.com", "mail.yahoo.com", "github.com", "www.bbc.co.uk", "x.js.org", "example.com"]
)
_PATHS = st.text(alphabet="/.-_~%?=&#:;@+!$aZ09é\t ", max_size=200) | st.builds(
    lambda piece, n: piece * n, st.sampled_from(["/", ".", "a/", "%2F", "?a=", "ab"]), st.integers(0, 5000)
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scheme=st.sampled_from(["http", "https", "HTTP", "ws"]), host=_HOSTS, path=_PATHS)
def test_rewrites_are_https_and_never_downgrade(
    shipped: LoadedRules, scheme: str, host: str, path: str
) -> None:
    url = f"{scheme}://{host}/{path}"
    started = time.perf_counter()
    got = rewrite_url(url, shipped.index)
    assert time.perf_counter() - started < LAG_BOUND
    if got.outcome is Outcome.UPGRADED:
        assert got.url is not None and got.url.startswith("https://")
        assert scheme.lower() == "http"  # an https URL is never touched, let alone turned into http
    else:
        assert got.url is None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_shipped_rule_target_upgrades_to_https(shipped: LoadedRules, data: st.DataObject) -> None:
    index = shipped.index
    i = data.draw(st.integers(0, len(index) - 1))
    target = data.draw(st.sampled_from(index.records[i][7]))
    host = target.replace("*.", data.draw(st.sampled_from(["www.", "a.b."]))).replace(".*", ".com")
    got = rewrite_url(f"http://{host}/{data.draw(_PATHS)}", index)
    assert got.url is None or got.url.startswith("https://")
