"""The dashboard's checks: whose Host it answers, same-origin actions, CSRF tokens, sessions, sign-in limits.

A web page can reach 127.0.0.1 too, so nothing here trusts the network alone:
- the Host must be one of the proxy's own addresses or names (a page that rebinds its DNS name to the
  proxy's address still sends its own name, and gets nothing);
- an action needs an Origin (or, without one, a Referer) of the dashboard's own origin and a CSRF token
  bound to the viewer's session, which only a page of that origin can read;
- sessions (for devices beyond this machine, after the password) are random tokens bound to the device's
  address, kept in memory with an expiry and a size limit; failed sign-ins are limited per address and
  overall. Pure apart from the clock.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from port443.proxy.clients import Address, Network, parse_address

COOKIE = "port443_session"
SESSION_TTL = 12 * 3600.0
MAX_SESSIONS = 64
LOGIN_WINDOW = 300.0
"""Seconds over which failed sign-ins are counted."""
LOGIN_TRIES = 5
"""Failed sign-ins one address may make per window."""
LOGIN_TRIES_ALL = 20
"""Failed sign-ins all addresses together may make per window (many addresses, one guesser)."""
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def split_authority(authority: str) -> tuple[str, int | None] | None:
    """`host[:port]` (IPv6 in brackets) as (lower-case host, port); None when malformed."""
    text = authority.strip().lower()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:]
    else:
        host, colon, port_text = text.partition(":")
        if colon and not port_text:
            return None
    if port_text and (not port_text.isdigit() or int(port_text) > 65535):
        return None
    host = host.rstrip(".")
    if not host or any(c.isspace() or c in "/\\@?#" for c in host):
        return None
    return host, int(port_text) if port_text else None


def own_host(authority: str, names: Iterable[str], is_local: Callable[[Address], bool]) -> bool:
    """Whether a Host header names this proxy: one of its addresses, `localhost`, or one of `names`."""
    parts = split_authority(authority)
    if parts is None:
        return False
    host = parts[0]
    address = parse_address(host)
    if address is not None:
        return is_local(address)
    return host in LOCAL_NAMES or host.endswith(".localhost") or host in names


def same_origin(origin: str | None, referer: str | None, host: str) -> bool:
    """The request came from a page of the dashboard's own origin, `http://` + its Host.

    Browsers send Origin with every POST; a Referer is the fallback for the few that do not (our pages
    ask for `Referrer-Policy: same-origin`). Neither: refused, since nothing vouches for the request.
    """
    expected = split_authority(host)
    if expected is None:
        return False
    want = (expected[0], expected[1] or 80)
    for value in (origin, referer):
        if value is None:
            continue
        if value == "null":
            return False
        parsed = urlsplit(value)
        if parsed.scheme != "http" or parsed.username is not None or parsed.password is not None:
            return False
        try:
            port = parsed.port or 80
        except ValueError:
            return False
        return ((parsed.hostname or "").rstrip("."), port) == want
    return False


def in_networks(address: str, networks: Iterable[Network]) -> bool:
    """Whether a client address (a peername's host) is inside one of `networks`."""
    parsed = parse_address(address)
    return parsed is not None and any(parsed.version == n.version and parsed in n for n in networks)


@dataclass(slots=True)
class _Session:
    client: str
    expires: float
    generation: int


class Guard:
    """CSRF tokens, sessions and the sign-in limits of one running dashboard (a per-process secret)."""

    def __init__(self, *, clock: Callable[[], float] = time.time, secret: bytes | None = None) -> None:
        self.clock = clock
        self._secret = secret or secrets.token_bytes(32)
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._failures: OrderedDict[str, list[float]] = OrderedDict()
        self._all_failures: list[float] = []

    # --- CSRF ------------------------------------------------------------------------------------------

    def csrf_token(self, session: str = "") -> str:
        """The token action forms carry: bound to the session (or to "no session" for trusted devices)."""
        return hmac.new(self._secret, f"csrf\n{session}".encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, token: str, session: str = "") -> bool:
        """Whether `token` is the one `csrf_token(session)` gives."""
        return hmac.compare_digest(token.encode(), self.csrf_token(session).encode())

    # --- sessions --------------------------------------------------------------------------------------

    def open_session(self, client: str, generation: int) -> str:
        """A new session for `client`, valid while the password stays at `generation`; returns its cookie value."""
        token = secrets.token_urlsafe(32)
        self._sessions[_digest(token)] = _Session(client, self.clock() + SESSION_TTL, generation)
        while len(self._sessions) > MAX_SESSIONS:  # the oldest sign-in goes first
            self._sessions.popitem(last=False)
        return token

    def session(self, token: str, client: str, generation: int) -> bool:
        """Whether `token` is a live session of `client` made under the current password."""
        if not token or len(token) > 100:
            return False
        key = _digest(token)
        found = self._sessions.get(key)
        if found is None:
            return False
        if found.expires < self.clock() or found.generation != generation:
            del self._sessions[key]
            return False
        return found.client == client

    def close_session(self, token: str) -> None:
        """Sign out."""
        self._sessions.pop(_digest(token), None)

    # --- sign-in limits --------------------------------------------------------------------------------

    def may_try(self, client: str) -> bool:
        """Whether `client` may try a password now (few failures lately, from it and from everyone)."""
        cutoff = self.clock() - LOGIN_WINDOW
        self._all_failures = [t for t in self._all_failures if t > cutoff]
        mine = [t for t in self._failures.get(client, []) if t > cutoff]
        return len(mine) < LOGIN_TRIES and len(self._all_failures) < LOGIN_TRIES_ALL

    def failed(self, client: str) -> None:
        """Count a wrong password from `client`."""
        now = self.clock()
        self._failures.setdefault(client, []).append(now)
        self._failures.move_to_end(client)
        self._all_failures.append(now)
        while len(self._failures) > 1024:
            self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        """A right password: `client`'s failures are forgiven."""
        self._failures.pop(client, None)


def _digest(token: str) -> str:
    """Sessions are kept by a hash of their token, so memory holds nothing a cookie could be made from."""
    return hashlib.sha256(token.encode()).hexdigest()
