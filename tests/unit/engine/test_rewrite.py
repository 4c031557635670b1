"""Applying rulesets: HTTPS Everywhere's rewrite and securecookie decisions on small hand-made rulesets."""

from __future__ import annotations

import pytest

from port443.engine.index import RuleIndex
from port443.engine.rewrite import Outcome, rewrite_url, secure_cookie
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
