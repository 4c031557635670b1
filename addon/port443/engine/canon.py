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


# A URL that WHATWG would leave as it is, but for the case of its scheme and host, a default or zero-padded
# port and trailing dots on the host (which this module strips anyway): a special scheme; an LDH host without
# userinfo, `xn--` labels or a numeric last label (those go through IPv4/IDNA parsing); a path with no dot
# segments; only characters no percent-encode set touches. Most real URLs are like this, and checking is
# several times cheaper than a full parse. tests/unit/engine/test_canon.py checks it against the full parser.
_PATH, _QUERY, _FRAGMENT = (
    r"/[A-Za-z0-9\-._~!$&()*+,;=:@/%]*",
    r"\?[A-Za-z0-9\-._~!$&()*+,;=:@/?%]*",
    r"#[A-Za-z0-9\-._~!$&()*+,;=:@/?%#]*",
)
_PLAIN_URL = re.compile(
    rf"([A-Za-z]+)://([A-Za-z0-9.-]*[A-Za-z0-9-])(\.*)(?::([0-9]{{1,5}}))?({_PATH})((?:{_QUERY})?(?:{_FRAGMENT})?)"
)
# The most common of those, already canonical as written: http, a lower-case host, no port.
_CANONICAL_HTTP = re.compile(rf"http://([a-z0-9.-]*[a-z0-9-])({_PATH})(?:{_QUERY})?(?:{_FRAGMENT})?")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}
_new_canonical = tuple.__new__  # a NamedTuple's own __new__ is a Python function: this skips a call


def canonicalize(url: str) -> CanonicalURL | None:
    """Canonicalise `url` the way the reference request path does; None if WHATWG rejects it."""
    canonical = _CANONICAL_HTTP.fullmatch(url)
    if canonical is not None:
        host, path = canonical.groups()
        if "/." not in path and "%2e" not in path and "%2E" not in path and "xn--" not in host:
            last = host[host.rfind(".") + 1 :]
            if not last.isdigit() and not last.startswith("0x"):
                return _new_canonical(CanonicalURL, (url, host, ""))
    plain = _PLAIN_URL.fullmatch(url)
    if plain is not None:
        scheme, host, _, port, path, rest = plain.groups()
        if "/." not in path and "%2e" not in path and "%2E" not in path:
            known = _plain_canonical(scheme.lower(), host.lower(), port, path + rest)
            if known is not None:
                return known
    return _canonicalize_fully(url)


def _plain_canonical(scheme: str, host: str, port: str | None, rest: str) -> CanonicalURL | None:
    """The canonical form of a URL that matched `_PLAIN_URL` but not as written; None to leave it to WHATWG."""
    default = _DEFAULT_PORTS.get(scheme)
    last = host[host.rfind(".") + 1 :]
    if default is None or "xn--" in host or last.isdigit() or last.startswith("0x"):
        return None
    if port is None:
        port = ""
    else:
        number = int(port)
        if number > 65535:
            return None
        port = "" if number == default else f":{number}"
    return _new_canonical(CanonicalURL, (f"{scheme}://{host}{port}{rest}", host, ""))


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
