"""Rewrite mode's response fix-ups: the client speaks plain HTTP to port443 while port443 speaks HTTPS upstream.

Cookies marked Secure would never come back over the client's HTTP connection, so the flag is dropped for
that one hop (the connection between port443 and the site stays HTTPS). Locations are never rewritten from
https to http; an http Location back to the same host is reported, so the caller can tell a loop. Pure.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlsplit

_SECURE_ATTRIBUTE = re.compile(r";\s*secure\s*(?=;|$)", re.IGNORECASE)
# Browsers refuse SameSite=None without Secure; without the attribute the cookie falls back to Lax and is kept.
_SAMESITE_NONE = re.compile(r";\s*samesite\s*=\s*none\s*(?=;|$)", re.IGNORECASE)


def adapt_response(headers: Any, host: str) -> str | None:
    """Adjust `headers` (a mitmproxy Headers or a dict) in place.

    Returns the http Location on the same host when the site's HTTPS sends the client back to plain HTTP
    (the caller decides whether that is a loop), else None.
    """
    _unsecure_cookies(headers)
    location = headers.get("Location")
    if location is None:
        return None
    target = urlsplit(str(location))
    if target.scheme == "http" and (target.hostname or "").lower() == host.lower():
        return str(location)
    return None


def _unsecure_cookies(headers: Any) -> None:
    if hasattr(headers, "get_all"):  # mitmproxy Headers: several Set-Cookie lines
        cookies = headers.get_all("Set-Cookie")
        if cookies:
            headers.set_all("Set-Cookie", [_unsecure(c) for c in cookies])
    elif isinstance(headers, MutableMapping) and "Set-Cookie" in headers:
        headers["Set-Cookie"] = _unsecure(headers["Set-Cookie"])


def _unsecure(cookie: str) -> str:
    if not _SECURE_ATTRIBUTE.search(cookie):
        return cookie
    return _SAMESITE_NONE.sub("", _SECURE_ATTRIBUTE.sub("", cookie))
