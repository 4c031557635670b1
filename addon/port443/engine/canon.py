"""URL canonicalisation as a browser does it before HTTPS Everywhere sees a URL (WHATWG, via ada-url).

Rules are written against canonical URLs: lower-case scheme and host, punycode, IPv4 in dotted form, no
default port, dot segments resolved, percent-encoding applied. On top of WHATWG this strips trailing dots from
the host and takes the userinfo out (the engine matches without it and puts it back afterwards). Pure.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import ada_url

# Schemes whose requests the reference engine sees; others (mailto:, data:, file:...) are never rewritten.
_SCHEMES_WITH_HOSTS = frozenset(("http", "https", "ws", "wss", "ftp"))
_AUTHORITY = re.compile(r"[^/?#]*")


class CanonicalURL(NamedTuple):
    """A URL as rules see it, and what is needed to put the user's credentials back."""

    href: str
    """Canonical URL without userinfo: what rules and exclusions are matched against."""
    host: str
    """Host name for the ruleset lookup: lower-case, punycode, no trailing dots; IPv6 in brackets."""
    userinfo: str
    """`user:password` or `user` as it was in the URL, or "" when there was none."""


# An http URL that WHATWG would leave exactly as it is: lower-case LDH host without port, userinfo, `xn--`
# labels or a numeric last label (those go through IPv4/IDNA parsing); a path with no dot segments; only
# characters no percent-encode set touches. Most real URLs are already canonical, and this check is several
# times cheaper than a full parse. tests/unit/test_canon.py checks it against the full parser.
_CANONICAL_HTTP = re.compile(
    r"http://((?:[a-z0-9-]+\.)*[a-z0-9-]*[a-z-][a-z0-9-]*)(/[A-Za-z0-9\-._~!$&()*+,;=:@/%]*)"
    r"(?:\?[A-Za-z0-9\-._~!$&()*+,;=:@/?%]*)?(?:#[A-Za-z0-9\-._~!$&()*+,;=:@/?%#]*)?"
)


def canonicalize(url: str) -> CanonicalURL | None:
    """Canonicalise `url` the way the reference request path does; None if WHATWG rejects it."""
    fast = _CANONICAL_HTTP.fullmatch(url)
    if fast is not None:
        host, path = fast.groups()
        if (
            "/." not in path
            and "%2" not in path
            and "xn--" not in host
            and not host[host.rfind(".") + 1 :].startswith("0x")
        ):
            return CanonicalURL(url, host, "")
    return _canonicalize_fully(url)


def _canonicalize_fully(url: str) -> CanonicalURL | None:
    try:
        href = ada_url.normalize_url(url)
    except ValueError:
        return None
    scheme, sep, rest = href.partition("://")
    if not sep or scheme not in _SCHEMES_WITH_HOSTS:
        return CanonicalURL(href, "", "")
    start = len(scheme) + 3
    authority = _AUTHORITY.match(href, start)
    end = authority.end() if authority else start
    userinfo, at, hostport = href[start:end].rpartition("@")
    if hostport.startswith("["):
        host, port = hostport[: hostport.find("]") + 1], hostport[hostport.find("]") + 1 :]
    else:
        host, colon, port = hostport.partition(":")
        port = colon + port
    stripped = host.rstrip(".")
    if at or (stripped != host and stripped):
        host = stripped or host
        href = href[:start] + host + port + href[end:]
    return CanonicalURL(href, host, userinfo)


def restore_userinfo(url: str, userinfo: str) -> str:
    """Put credentials back into a rewritten URL, re-serialised as a browser's URL setters would do."""
    if not userinfo:
        return url
    username, _, password = userinfo.partition(":")
    try:
        return ada_url.replace_url(url, username=username, password=password)
    except ValueError:  # the rewritten URL does not parse; hand it back as the rule wrote it
        return url
