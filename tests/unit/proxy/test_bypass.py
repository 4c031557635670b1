"""Strict mode's "continue over HTTP" links: only a genuine, fresh link opens a time-limited exception."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from port443.proxy.bypass import BYPASS_PATH, Bypasses, warning_page

HOST = "plain.test"
URL = "http://plain.test/page?a=1&b=two+words#frag"


class Clock:
    def __init__(self, now: float = 10_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def bypasses(clock: Clock) -> Bypasses:
    return Bypasses(ttl=3600, clock=clock)


def path_and_query(link: str) -> str:
    """What the proxy hands to `redeem`: the request's path with its query."""
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def fields(link: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}


def with_fields(link: str, **changes: str) -> str:
    return f"{BYPASS_PATH}?{urlencode(fields(link) | changes)}"


def test_link_shape(bypasses: Bypasses) -> None:
    link = bypasses.link(HOST, URL)
    parts = urlsplit(link)
    assert (parts.scheme, parts.hostname, parts.path) == ("http", HOST, BYPASS_PATH)
    assert fields(link) == {"expires": "10600", "token": fields(link)["token"], "url": URL}
    assert len(fields(link)["token"]) == 64


def test_redeem_opens_the_exception(bypasses: Bypasses) -> None:
    assert not bypasses.allowed(HOST)
    assert bypasses.redeem(HOST, path_and_query(bypasses.link(HOST, URL))) == URL
    assert bypasses.allowed(HOST)
    assert not bypasses.allowed("other.test")
    assert not bypasses.allowed("www.plain.test")  # per host, not per site


def test_the_full_link_also_redeems(bypasses: Bypasses) -> None:
    assert bypasses.redeem(HOST, bypasses.link(HOST, URL)) == URL


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ({"token": "0" * 64}, "forged token"),
        ({"token": ""}, "empty token"),
        ({"url": "http://plain.test/elsewhere"}, "tampered url"),
        ({"url": "http://evil.test/"}, "tampered url, other host"),
        ({"expires": "99999999999"}, "extended expiry"),
        ({"expires": "soon"}, "expiry not a number"),
    ],
)
def test_tampered_links_are_refused(bypasses: Bypasses, tamper: dict[str, str], reason: str) -> None:
    link = bypasses.link(HOST, URL)
    assert bypasses.redeem(HOST, with_fields(link, **tamper)) is None, reason
    assert not bypasses.allowed(HOST)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?",
        "?expires=1",
        "?token=abc&url=http://plain.test/",
        "?expires=&token=&url=",
        "?expires=1&expires=2",
    ],
)
def test_incomplete_links_are_refused(bypasses: Bypasses, query: str) -> None:
    assert bypasses.redeem(HOST, BYPASS_PATH + query) is None


def test_a_link_for_one_host_does_not_open_another(bypasses: Bypasses) -> None:
    link = path_and_query(bypasses.link(HOST, URL))
    assert bypasses.redeem("other.test", link) is None
    assert not bypasses.allowed("other.test")
    assert not bypasses.allowed(HOST)


def test_a_link_from_another_process_is_refused(clock: Clock) -> None:
    mine, theirs = Bypasses(clock=clock), Bypasses(clock=clock)
    assert mine.redeem(HOST, path_and_query(theirs.link(HOST, URL))) is None


def test_same_secret_same_tokens(clock: Clock) -> None:
    a, b = Bypasses(clock=clock, secret=b"k" * 32), Bypasses(clock=clock, secret=b"k" * 32)
    assert a.link(HOST, URL) == b.link(HOST, URL)
    assert b.redeem(HOST, path_and_query(a.link(HOST, URL))) == URL


@pytest.mark.parametrize(
    "url",
    [
        "https://plain.test/",  # only plain-HTTP URLs: never a downgrade of something else
        "http://other.test/",  # signed, but for a URL on another host
        "http://plain.test@other.test/",
        "javascript:alert(1)",
    ],
)
def test_signed_links_to_other_places_are_refused(bypasses: Bypasses, url: str) -> None:
    assert bypasses.redeem(HOST, path_and_query(bypasses.link(HOST, url))) is None
    assert not bypasses.allowed(HOST)


@pytest.mark.parametrize(
    ("elapsed", "valid"), [(0, True), (599, True), (600, True), (601, False), (10**6, False)]
)
def test_links_expire_after_ten_minutes(
    bypasses: Bypasses, clock: Clock, elapsed: float, valid: bool
) -> None:
    link = path_and_query(bypasses.link(HOST, URL))
    clock.now += elapsed
    assert (bypasses.redeem(HOST, link) == URL) is valid
    assert bypasses.allowed(HOST) is valid


@pytest.mark.parametrize("ttl", [60, 3600])
def test_the_exception_expires(clock: Clock, ttl: float) -> None:
    bypasses = Bypasses(ttl=ttl, clock=clock)
    assert bypasses.redeem(HOST, path_and_query(bypasses.link(HOST, URL))) == URL
    clock.now += ttl
    assert bypasses.allowed(HOST)
    clock.now += 0.5
    assert not bypasses.allowed(HOST)
    clock.now -= 10  # forgotten once expired, even if the clock goes back
    assert not bypasses.allowed(HOST)


def test_redeeming_again_renews_the_exception(bypasses: Bypasses, clock: Clock) -> None:
    link = path_and_query(bypasses.link(HOST, URL))
    bypasses.redeem(HOST, link)
    clock.now += 500
    assert bypasses.redeem(HOST, link) == URL
    clock.now += 3600
    assert bypasses.allowed(HOST)


def test_warning_page_escapes_everything() -> None:
    page = warning_page(
        host="<script>alert(1)</script>.test",
        url='http://x.test/"><img src=x onerror=alert(2)>',
        reason="bad-certificate <b>",
        detail="Hostname mismatch, certificate is not valid for 'x.test' & more",
        continue_link='http://x.test/.port443/continue?expires=1&token=a&url=b"onclick="alert(3)',
    )
    assert "<script>" not in page
    assert "<img" not in page
    assert "<b>" not in page
    assert '"onclick="' not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.test does not offer a secure connection" in page
    assert "https://x.test/&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert "bad-certificate &lt;b&gt;</strong>: Hostname mismatch, certificate is not valid for " in page
    assert "&#x27;x.test&#x27; &amp; more.</p>" in page
    assert (
        'href="http://x.test/.port443/continue?expires=1&amp;token=a&amp;url=b&quot;onclick=&quot;alert(3)"'
        in page
    )


def test_warning_page_without_detail(bypasses: Bypasses) -> None:
    link = bypasses.link(HOST, URL)
    page = warning_page(HOST, URL, "refused", "", link)
    assert page.startswith("<!doctype html>")
    assert "<title>Not secure: plain.test</title>" in page
    assert "<strong>refused</strong>.</p>" in page
    assert "<code>https://plain.test/page?a=1&amp;b=two+words#frag</code>" in page
    assert f'href="{link.replace("&", "&amp;")}"' in page


def test_warning_page_is_bounded_whatever_the_client_sent(bypasses: Bypasses) -> None:
    url = "http://plain.test/" + "<" * (1 << 20)
    link = bypasses.link(HOST, url)
    page = warning_page("h" * 100_000, url, "refused", "d" * 100_000, link)
    assert len(page) < 40_000  # three values of at most 2,048 characters, escaped (up to 4x for `<`)
    assert "&lt;" * 100 in page and "<<" not in page
    assert "…" in page


def test_an_overlong_url_links_back_to_the_sites_root(bypasses: Bypasses) -> None:
    link = bypasses.link(HOST, "http://plain.test/" + "x" * 5000)
    assert len(link) < 300
    assert bypasses.redeem(HOST, path_and_query(link)) == "http://plain.test/"
    assert bypasses.allowed(HOST)


def test_an_exception_belongs_to_the_device_that_chose_it() -> None:
    bypasses = Bypasses()
    link = path_and_query(bypasses.link(HOST, URL, client="192.168.1.20"))
    assert bypasses.redeem(HOST, link, client="192.168.1.30") is None  # another device cannot use the link
    assert bypasses.redeem(HOST, link, client="192.168.1.20") == URL
    assert bypasses.allowed(HOST, client="192.168.1.20")
    assert not bypasses.allowed(HOST, client="192.168.1.30")  # the TV still gets the warning
    assert [(c, h) for c, h, _ in bypasses.active()] == [("192.168.1.20", HOST)]
    assert bypasses.revoke(HOST) == 1 and not bypasses.allowed(HOST, client="192.168.1.20")
