"""Strict mode's "continue over HTTP" exceptions: the warning page, its secret link, and the time limit.

The link carries an HMAC over the host, URL and expiry made with a per-process secret, so only someone shown
the page can open the exception; a web page cannot forge it. Pure apart from the clock.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import secrets
import time
from collections.abc import Callable
from urllib.parse import parse_qs, quote, urlsplit

#: Requests for this path on any plain-HTTP host are the "continue" links of the warning page.
BYPASS_PATH = "/.port443/continue"


class Bypasses:
    """Time-limited, per-host exceptions to strict mode."""

    def __init__(
        self, *, ttl: float = 3600, clock: Callable[[], float] = time.time, secret: bytes | None = None
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self._secret = secret or secrets.token_bytes(32)
        self._until: dict[str, float] = {}

    def allowed(self, host: str) -> bool:
        """The user chose to continue over HTTP on `host`, and that choice has not expired."""
        until = self._until.get(host)
        if until is None:
            return False
        if until < self.clock():
            del self._until[host]
            return False
        return True

    def link(self, host: str, url: str) -> str:
        """The secret "continue over HTTP" link for the warning page; it stays valid for ten minutes."""
        expires = int(self.clock()) + 600
        token = self._sign(host, url, expires)
        return f"http://{host}{BYPASS_PATH}?expires={expires}&token={token}&url={quote(url, safe='')}"

    def redeem(self, host: str, path_and_query: str) -> str | None:
        """Open the exception if the link is genuine and fresh; return where to send the user, else None."""
        query = parse_qs(urlsplit(path_and_query).query)
        try:
            expires = int(query["expires"][0])
            token, url = query["token"][0], query["url"][0]
        except (KeyError, ValueError, IndexError):
            return None
        if expires < self.clock() or not hmac.compare_digest(token, self._sign(host, url, expires)):
            return None
        if urlsplit(url).hostname != host or not url.startswith("http://"):
            return None
        self._until[host] = self.clock() + self.ttl
        return url

    def _sign(self, host: str, url: str, expires: int) -> str:
        message = f"{host}\n{url}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()


def warning_page(host: str, url: str, reason: str, detail: str, continue_link: str) -> str:
    """The page strict mode shows instead of a site that cannot be reached over HTTPS."""
    e = html.escape
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Not secure: {e(host)}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;color:#222}}
h1{{color:#b00020;font-size:1.6em}}code{{background:#f3f3f3;padding:.1em .3em}}
a.continue{{color:#555}}</style></head>
<body><h1>{e(host)} does not offer a secure connection</h1>
<p>port443 tried to open <code>{e(url.replace("http://", "https://", 1))}</code> and could not:
<strong>{e(reason)}</strong>{": " + e(detail) if detail else ""}.</p>
<p>Over plain HTTP, anyone on the network path can read and change this page and anything you send to it.</p>
<p><a class="continue" href="{e(continue_link)}">Continue to {e(host)} over HTTP anyway</a> (for one hour).</p>
</body></html>
"""
