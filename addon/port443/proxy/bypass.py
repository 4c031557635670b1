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

from port443.proxy.pages import MAX_SHOWN, shown

#: Requests for this path on any plain-HTTP host are the "continue" links of the warning page.
BYPASS_PATH = "/.port443/continue"


class Bypasses:
    """Time-limited exceptions to strict mode, per device (client address) and host.

    A choice belongs to the device that made it: the link is signed for that device, and opening it opens
    the host for that device only, never for the rest of the household.
    """

    def __init__(
        self, *, ttl: float = 3600, clock: Callable[[], float] = time.time, secret: bytes | None = None
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self._secret = secret or secrets.token_bytes(32)
        self._until: dict[tuple[str, str], float] = {}

    def allowed(self, host: str, *, client: str = "") -> bool:
        """This device chose to continue over HTTP on `host`, and that choice has not expired."""
        key = (client, host)
        until = self._until.get(key)
        if until is None:
            return False
        if until < self.clock():
            del self._until[key]
            return False
        return True

    def revoke(self, host: str) -> int:
        """Remove every device's exception for `host` (the dashboard's "remove exception"); returns how many."""
        keys = [k for k in self._until if k[1] == host]
        for key in keys:
            del self._until[key]
        return len(keys)

    def active(self) -> list[tuple[str, str, float]]:
        """(client, host, until) of the exceptions in force."""
        now = self.clock()
        return [(c, h, t) for (c, h), t in self._until.items() if t >= now]

    def link(self, host: str, url: str, *, client: str = "") -> str:
        """The secret "continue over HTTP" link for the warning page; it stays valid for ten minutes.

        It carries the URL to go back to, unless that is longer than a page may echo: then the site's root.
        """
        if len(url) > MAX_SHOWN:
            url = f"http://{host}/"
        expires = int(self.clock()) + 600
        token = self._sign(client, host, url, expires)
        return f"http://{host}{BYPASS_PATH}?expires={expires}&token={token}&url={quote(url, safe='')}"

    def redeem(self, host: str, path_and_query: str, *, client: str = "") -> str | None:
        """Open the exception if the link is genuine and fresh; return where to send the user, else None."""
        query = parse_qs(urlsplit(path_and_query).query)
        try:
            expires = int(query["expires"][0])
            token, url = query["token"][0], query["url"][0]
        except (KeyError, ValueError, IndexError):
            return None
        if expires < self.clock() or not hmac.compare_digest(token, self._sign(client, host, url, expires)):
            return None
        if urlsplit(url).hostname != host or not url.startswith("http://"):
            return None
        self._until[(client, host)] = self.clock() + self.ttl
        return url

    def _sign(self, client: str, host: str, url: str, expires: int) -> str:
        message = f"{client}\n{host}\n{url}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()


def warning_page(host: str, url: str, reason: str, detail: str, continue_link: str) -> str:
    """The page strict mode shows instead of a site that cannot be reached over HTTPS.

    Everything it embeds is HTML-escaped; what comes from traffic is cut to `pages.MAX_SHOWN` first (the
    link is bounded by `Bypasses.link`, and cutting it would break it).
    """

    def e(text: str) -> str:
        return html.escape(shown(text))

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
<p><a class="continue" href="{html.escape(continue_link)}">Continue to {e(host)} over HTTP anyway</a> (for one hour).</p>
</body></html>
"""
