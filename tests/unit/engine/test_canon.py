"""WHATWG canonicalisation plus the reference request path's host and userinfo handling."""

from __future__ import annotations

import pytest

from port443.engine.canon import CanonicalURL, canonicalize, restore_userinfo
from tests.conformance import oracle


@pytest.mark.parametrize(
    ("url", "href", "host", "userinfo"),
    [
        ("HTTP://WWW.Example.COM/a", "http://www.example.com/a", "www.example.com", ""),
        ("http://example.com:80/", "http://example.com/", "example.com", ""),
        ("http://example.com:0080/", "http://example.com/", "example.com", ""),
        ("http://example.com:8080/", "http://example.com:8080/", "example.com", ""),
        ("http://example.com./x", "http://example.com/x", "example.com", ""),
        ("http://example.com..:8080/x", "http://example.com:8080/x", "example.com", ""),
        ("http://user:pass@example.com/", "http://example.com/", "example.com", "user:pass"),
        ("http://user:@example.com/", "http://example.com/", "example.com", "user"),
        ("http://16843009/", "http://1.1.1.1/", "1.1.1.1", ""),
        ("http://0x01010101/", "http://1.1.1.1/", "1.1.1.1", ""),
        ("http://1.1.257/", "http://1.1.1.1/", "1.1.1.1", ""),
        ("http://1.1.1.1./", "http://1.1.1.1/", "1.1.1.1", ""),
        ("http://[::1]:8080/", "http://[::1]:8080/", "[::1]", ""),
        ("http://bücher.de/", "http://xn--bcher-kva.de/", "xn--bcher-kva.de", ""),
        ("http://a.com/x/../y/./z", "http://a.com/y/z", "a.com", ""),
        ("http://a.com\\x\\y", "http://a.com/x/y", "a.com", ""),
        ("http://a.com/a b?c d", "http://a.com/a%20b?c%20d", "a.com", ""),
        ("http://www.goo\tgle.com/", "http://www.google.com/", "www.google.com", ""),
        ("http:www.google.com/", "http://www.google.com/", "www.google.com", ""),
        ("http://a.com", "http://a.com/", "a.com", ""),
        ("http://*.a.com/", "http://*.a.com/", "*.a.com", ""),
        ("http://./", "http://./", ".", ""),
        ("mailto:someone@a.com", "mailto:someone@a.com", "", ""),
        ("git://a.com/x", "git://a.com/x", "", ""),
    ],
)
def test_canonicalize(url: str, href: str, host: str, userinfo: str) -> None:
    assert canonicalize(url) == CanonicalURL(href, host, userinfo)


@pytest.mark.parametrize("url", ["http://a b/", "not a url", "http://[::1/", ""])
def test_unparseable_urls_give_none(url: str) -> None:
    assert canonicalize(url) is None


@pytest.mark.parametrize(
    ("url", "userinfo", "expected"),
    [
        ("https://a.com/x", "", "https://a.com/x"),
        ("https://a.com/x", "user", "https://user@a.com/x"),
        ("https://a.com/x", "user:pass", "https://user:pass@a.com/x"),
        ("https://A.com/x", "u", "https://u@a.com/x"),  # re-serialised, as the browser's URL setters do
    ],
)
def test_restore_userinfo(url: str, userinfo: str, expected: str) -> None:
    assert restore_userinfo(url, userinfo) == expected


TRICKY = [
    "http://a.com/",
    "http://a.com/.well-known/x",
    "http://a.com/%2e%2E/x",
    "http://a.com/x?y=%2e#z",
    "http://1.2.3.4/",
    "http://a.0x10/",
    "http://a.0xz/",
    "http://a.123/",
    "http://a.12b/",
    "http://xn--bcher-kva.de/",
    "http://xn--a.com/",
    "http://-a-.b-/",
    "http://" + "a" * 70 + ".com/",
    "http://" + "a." * 130 + "com/",
    "http://a.com/x?'quote'",
    "http://a.com/x#frag#more",
    "http://a.com/~user/%zz;p=1",
    "http://a.com/a@b:c",
]


def _variants(url: str) -> list[str]:
    """`url` under other schemes, host cases, ports and trailing dots: what the fast path rewrites itself."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return []
    host, slash, path = rest.partition("/")
    hosts = [
        host.upper(),
        host + ".",
        host + "..",
        "." + host,
        host.replace(".", "..", 1),
        host.upper() + "...:0",
    ]
    hosts += [
        host + port for port in (":80", ":0080", ":443", ":21", ":65535", ":65536", ":99999", ":", ":8080")
    ]
    schemes = ("http", "HTTP", "https", "Wss", "ws", "ftp", "git")
    return [f"{s}://{h}{slash}{path}" for s in schemes for h in hosts]


DOT_SEGMENTS = [
    "/a/%2e/b",
    "/a/%2E%2e/b",
    "/a/.%2e",
    "/%20/x",
    "/a/%2f..",
    "/x/..",
    "/x/.",
    "/.x",
    "/x.",
    "/a%2eb",
]


def test_the_fast_path_agrees_with_the_full_parser() -> None:
    """URLs that are canonical but for case, port and dots skip the WHATWG parser; the answer must be its."""
    from port443.engine.canon import _PLAIN_URL, _canonicalize_fully

    urls = TRICKY + oracle.urls()
    urls += [variant for url in TRICKY + urls[:: len(urls) // 1500] for variant in _variants(url)]
    urls += [f"{origin}{path}" for origin in ("http://a.com", "HTTPS://A.com:443") for path in DOT_SEGMENTS]
    fast = [u for u in urls if _PLAIN_URL.fullmatch(u)]
    assert len(fast) > len(urls) // 2
    for url in urls:
        assert canonicalize(url) == _canonicalize_fully(url), url
