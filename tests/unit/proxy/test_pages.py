"""The proxy's own small HTML bodies: escaped, and never echoing more than a couple of KB of URL."""

from __future__ import annotations

import pytest

from port443.proxy.pages import MAX_SHOWN, redirect_page, shown


def test_redirect_page_links_to_the_https_url() -> None:
    assert (
        redirect_page("https://a.test/p?q=1&r=2")
        == '<a href="https://a.test/p?q=1&amp;r=2">Moved to HTTPS</a>\n'
    )


@pytest.mark.parametrize(
    ("url", "escaped"),
    [
        (
            'https://a.test/"><script>alert(1)</script>',
            "https://a.test/&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;",
        ),
        ("https://a.test/'onmouseover='x", "https://a.test/&#x27;onmouseover=&#x27;x"),
    ],
)
def test_redirect_page_escapes_the_url(url: str, escaped: str) -> None:
    body = redirect_page(url)
    assert "<script>" not in body and "'" not in body
    assert f'href="{escaped}"' in body


def test_only_https_urls_become_links() -> None:
    body = redirect_page("javascript:alert(1)")
    assert "href" not in body and "<code>javascript:alert(1)</code>" in body


def test_a_long_url_is_shown_cut_and_not_linked() -> None:
    body = redirect_page("https://a.test/" + "&" * (1 << 20))
    assert "href" not in body
    assert len(body) < 6 * MAX_SHOWN  # `&` escapes to five characters
    assert body.endswith("&amp;…</code></p>\n")


@pytest.mark.parametrize(("text", "limit", "out"), [("abc", 3, "abc"), ("abcd", 3, "abc…"), ("", 1, "")])
def test_shown(text: str, limit: int, out: str) -> None:
    assert shown(text, limit) == out
