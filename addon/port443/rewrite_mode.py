"""Rewrite mode's response fix-ups: the client speaks plain HTTP to port443 while port443 speaks HTTPS upstream.

Cookies marked Secure would never come back over the client's HTTP connection, so the flag is dropped for
that one hop (the connection between port443 and the site stays HTTPS). Locations are never rewritten from
https to http; a site whose HTTPS redirects back to HTTP is reported so the caller stops upgrading it. Pure.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlsplit

_SECURE_ATTRIBUTE = re.compile(r";\s*secure\s*(?=;|$)", re.IGNORECASE)


def adapt_response(headers: Any, host: str) -> bool:
    """Adjust `headers` (a mitmproxy Headers or a dict) in place; True if the site redirects back to HTTP."""
    _unsecure_cookies(headers)
    location = headers.get("Location")
    if location is None:
        return False
    target = urlsplit(location)
    if target.scheme == "http" and (target.hostname or "").lower() == host.lower():
        return True  # the site's HTTPS sends us back to HTTP: a loop waiting to happen
    if (
        target.scheme == "https"
        and (target.hostname or "").lower() == host.lower()
        and target.port in (None, 443)
    ):
        headers["Location"] = "http://" + location[len("https://") :]
    headers.pop("Strict-Transport-Security", None)
    return False


def _unsecure_cookies(headers: Any) -> None:
    if hasattr(headers, "get_all"):  # mitmproxy Headers: several Set-Cookie lines
        cookies = headers.get_all("Set-Cookie")
        if cookies:
            headers.set_all("Set-Cookie", [_SECURE_ATTRIBUTE.sub("", c) for c in cookies])
    elif isinstance(headers, MutableMapping) and "Set-Cookie" in headers:
        headers["Set-Cookie"] = _SECURE_ATTRIBUTE.sub("", headers["Set-Cookie"])
