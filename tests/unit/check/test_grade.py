"""Grading and hstspreload.org's preload-eligibility rules."""

from __future__ import annotations

import pytest

from port443.check.grade import Facts, Hsts, grade, parse_hsts, preload_problems

GOOD_HSTS = Hsts("max-age=63072000; includeSubDomains; preload", 63_072_000, True, True)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, Hsts()),
        ("max-age=31536000", Hsts("max-age=31536000", 31_536_000)),
        (
            'Max-Age="600"; INCLUDESUBDOMAINS; preload',
            Hsts('Max-Age="600"; INCLUDESUBDOMAINS; preload', 600, True, True),
        ),
        (
            "max-age=abc; preload",
            Hsts("max-age=abc; preload", None, False, True),
        ),  # no usable max-age: no policy
        ("includeSubDomains", Hsts("includeSubDomains", None, True, False)),
        ("max-age=0", Hsts("max-age=0", 0)),
    ],
)
def test_parse_hsts(header: str | None, expected: Hsts) -> None:
    assert parse_hsts(header) == expected


def test_a_malformed_header_is_no_policy() -> None:
    assert not parse_hsts("max-age=abc").present and parse_hsts("max-age=0").present


@pytest.mark.parametrize(
    ("facts", "expected_grade", "passes", "reason"),
    [
        (Facts(http_reachable=True, redirects_to_https=True, hsts=GOOD_HSTS), "A+", True, "HTTPS works"),
        (
            Facts(http_reachable=False, hsts=GOOD_HSTS),
            "A+",
            True,
            "HTTPS works",
        ),  # nothing on port 80 is fine
        (Facts(http_reachable=True, redirects_to_https=True), "A", True, "no HSTS"),
        (
            Facts(http_reachable=True, redirects_to_https=True, hsts=parse_hsts("max-age=300")),
            "A",
            True,
            "short",
        ),
        (
            Facts(http_reachable=True, redirects_to_https=True, hsts=GOOD_HSTS, mixed_passive=2),
            "B",
            True,
            "2 passive",
        ),
        (
            Facts(http_reachable=True, redirects_to_https=True, hsts=GOOD_HSTS, days_left=3),
            "B",
            True,
            "expires in 3",
        ),
        (
            Facts(http_reachable=True, redirects_to_https=True, hsts=GOOD_HSTS, parity_same=False),
            "B",
            True,
            "differ",
        ),
        (Facts(http_reachable=True, hsts=GOOD_HSTS), "C", False, "plain HTTP is still served"),
        (
            Facts(http_reachable=True, redirects_to_https=True, hsts=GOOD_HSTS, mixed_active=1),
            "C",
            False,
            "1 active",
        ),
        (
            Facts(http_reachable=True, redirects_to_https=True, hsts=GOOD_HSTS, tls_version="TLSv1.1"),
            "C",
            False,
            "outdated",
        ),
        (
            Facts(http_reachable=True, redirects_to_https=True, downgrade="https://a/ -> http://a/"),
            "D",
            False,
            "back to plain",
        ),
        (Facts(https_error="connection refused on port 443"), "F", False, "HTTPS does not work"),
        (Facts(cert_error="certificate has expired"), "F", False, "certificate is not valid"),
    ],
)
def test_grade(facts: Facts, expected_grade: str, passes: bool, reason: str) -> None:
    verdict, reasons, passed = grade(facts)
    assert (verdict, passed) == (expected_grade, passes)
    assert reason in reasons[0]


def test_reasons_come_worst_first() -> None:
    facts = Facts(http_reachable=True, mixed_passive=1, downgrade="x -> y", hsts=parse_hsts("max-age=1"))
    verdict, reasons, _ = grade(facts)
    assert verdict == "D" and len(reasons) == 4
    assert [r.split()[0] for r in reasons] == ["a", "plain", "1", "HSTS"]


@pytest.mark.parametrize(
    ("host", "base", "kwargs", "problems"),
    [
        ("good.test", "good.test", {}, []),
        (
            "www.good.test",
            "good.test",
            {},
            ["only a registrable domain can be preloaded (this is a subdomain of good.test)"],
        ),
        ("good.test", "good.test", {"cert_valid": False}, ["the certificate must be valid"]),
        (
            "good.test",
            "good.test",
            {"http_redirect_ok": False},
            ["http:// must first redirect to https:// on the same host"],
        ),
        ("good.test", "good.test", {"http_redirect_ok": None}, []),  # port 80 closed: nothing to redirect
        ("good.test", "good.test", {"hsts": Hsts()}, ["no Strict-Transport-Security header on HTTPS"]),
        (
            "good.test",
            "good.test",
            {"hsts": parse_hsts("max-age=300")},
            [
                "max-age must be at least 31536000 (one year); it is 300",
                "the includeSubDomains directive is missing",
                "the preload directive is missing",
            ],
        ),
        (
            "good.test",
            "good.test",
            {"hsts": parse_hsts("max-age=31536000; preload")},
            ["the includeSubDomains directive is missing"],
        ),
    ],
)
def test_preload_eligibility(host: str, base: str, kwargs: dict[str, object], problems: list[str]) -> None:
    args: dict[str, object] = {"cert_valid": True, "http_redirect_ok": True, "hsts": GOOD_HSTS} | kwargs
    assert preload_problems(host, base, **args) == problems  # type: ignore[arg-type]


def test_no_https_at_all_is_named_as_such_for_preloading() -> None:
    problems = preload_problems(
        "a.test", "a.test", cert_valid=False, http_redirect_ok=None, hsts=Hsts(), https_error="refused"
    )
    assert problems[0] == "HTTPS must work on port 443"
