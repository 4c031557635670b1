"""The small HTML bodies the proxy answers with itself: every value HTML-escaped, no URL echoed unbounded.

A request URL is the client's (up to megabytes, with any characters), so what a page shows of it, or of
anything else from traffic, is cut to `MAX_SHOWN` characters before escaping. Pure: the addon sends them.
"""

from __future__ import annotations

import html

MAX_SHOWN = 2048
"""Characters of a URL (or host, or detail) a page shows at most: well under the 8 KB request line most
servers accept, so a page never grows with what a client sends."""


def shown(text: str, limit: int = MAX_SHOWN) -> str:
    """At most `limit` characters of `text`, with `…` when cut (not escaped yet)."""
    return text if len(text) <= limit else text[:limit] + "…"


def redirect_page(url: str) -> str:
    """The body of the redirect to HTTPS: a link for clients that do not follow the Location header.

    Only a short https URL becomes a link; a longer one is shown cut and as text, since the Location header
    carries it whole.
    """
    if len(url) <= MAX_SHOWN and url.startswith("https://"):
        return f'<a href="{html.escape(url)}">Moved to HTTPS</a>\n'
    return f"<p>Moved to HTTPS: <code>{html.escape(shown(url))}</code></p>\n"
