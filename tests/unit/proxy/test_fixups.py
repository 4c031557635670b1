"""Rewrite mode's response fix-ups, on a plain dict and on mitmproxy's own Headers."""

from __future__ import annotations

import pytest
from mitmproxy.http import Headers

from port443.proxy.fixups import adapt_response

HOST = "site.test"


@pytest.mark.parametrize(
    ("cookie", "adapted"),
    [
        ("sid=1; Secure", "sid=1"),
        ("sid=1; secure; HttpOnly", "sid=1; HttpOnly"),
        ("sid=1;Secure;Path=/", "sid=1;Path=/"),
        ("sid=1; SECURE ", "sid=1"),
        ("sid=1;  sEcUrE  ; Path=/", "sid=1; Path=/"),
        ("sid=1; Secure\t", "sid=1"),
        ("sid=1; HttpOnly; Secure; Secure", "sid=1; HttpOnly"),
        (
            "sid=1; Path=/; Domain=site.test; Secure; HttpOnly; SameSite=Lax; Max-Age=60",
            "sid=1; Path=/; Domain=site.test; HttpOnly; SameSite=Lax; Max-Age=60",
        ),
        (
            "sid=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Secure",
            "sid=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT",
        ),
        # not the Secure attribute: left as they are
        ("sid=1; Path=/secure", "sid=1; Path=/secure"),
        ("secure=1; Path=/", "secure=1; Path=/"),
        ("sid=1; Domain=secure.test", "sid=1; Domain=secure.test"),
        ("sid=1; Securely", "sid=1; Securely"),
        ('sid="a; secure"; Path=/', 'sid="a; secure"; Path=/'),
        ("sid=1", "sid=1"),
    ],
)
def test_secure_is_dropped_from_a_dict(cookie: str, adapted: str) -> None:
    headers = {"Set-Cookie": cookie, "Content-Type": "text/html"}
    assert adapt_response(headers, HOST) is None
    assert headers == {"Set-Cookie": adapted, "Content-Type": "text/html"}


def test_secure_is_dropped_from_every_set_cookie_line() -> None:
    headers = Headers(
        [
            (b"Set-Cookie", b"a=1; Secure"),
            (b"Content-Type", b"text/html"),
            (b"set-cookie", b"b=2; Path=/; secure; HttpOnly"),
            (b"Set-Cookie", b"c=3; SameSite=Lax"),
            (b"SET-COOKIE", b"d=4;SECURE;Max-Age=10"),
        ]
    )
    assert adapt_response(headers, HOST) is None
    assert headers.get_all("Set-Cookie") == [
        "a=1",
        "b=2; Path=/; HttpOnly",
        "c=3; SameSite=Lax",
        "d=4;Max-Age=10",
    ]
    assert headers["Content-Type"] == "text/html"


def test_headers_without_cookies_are_untouched() -> None:
    headers = Headers([(b"Content-Type", b"text/html"), (b"Content-Length", b"3")])
    assert adapt_response(headers, HOST) is None
    assert headers.fields == ((b"Content-Type", b"text/html"), (b"Content-Length", b"3"))
    empty: dict[str, str] = {}
    assert adapt_response(empty, HOST) is None
    assert empty == {}


@pytest.mark.parametrize(
    "location",
    ["http://site.test/", "http://site.test/login?next=/a", "HTTP://Site.TEST/x", "http://site.test:8080/"],
)
def test_a_location_back_to_http_on_the_same_host_is_a_loop(location: str) -> None:
    for headers in ({"Location": location}, Headers(Location=location)):
        assert adapt_response(headers, HOST) is not None
        assert headers["Location"] == location  # never rewritten


def test_the_host_is_compared_case_insensitively() -> None:
    assert adapt_response({"Location": "http://site.test/"}, "SITE.test") is not None


@pytest.mark.parametrize(
    "location",
    [
        "http://other.test/",  # another host's plain HTTP is that host's business
        "http://www.site.test/",
        "https://other.test/a",
        "https://site.test:8443/a",  # another port on the same host
        "/relative/path",
        "//cdn.test/x",
        "?page=2",
    ],
)
def test_other_locations_are_left_alone(location: str) -> None:
    for headers in ({"Location": location}, Headers(Location=location)):
        assert adapt_response(headers, HOST) is None
        assert headers["Location"] == location


def test_loop_check_also_drops_secure_from_cookies() -> None:
    headers = Headers([(b"Location", b"http://site.test/"), (b"Set-Cookie", b"a=1; Secure")])
    assert adapt_response(headers, HOST) is not None
    assert headers.get_all("Set-Cookie") == ["a=1"]


@pytest.mark.parametrize(
    "location", ["https://site.test/account", "https://site.test:443/account", "HTTPS://Site.Test/"]
)
def test_a_same_host_https_location_is_left_alone(location: str) -> None:
    headers = {"Location": location}
    assert adapt_response(headers, HOST) is None
    assert headers["Location"] == location
