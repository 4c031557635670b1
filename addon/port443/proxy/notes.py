"""What the store was told since its last flush: counts per key, in memory, each dict capped; no SQL here.

Text from traffic (hosts, paths, details, client addresses) is cut here, before anything keeps it, so a
client sending megabytes costs a few hundred bytes. A flood of new keys evicts the oldest buffered ones
instead of growing memory (the store prunes the least recently seen rows the same way).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from port443.proxy.decide import Learned

DAY = 86400.0
MAX_PATH = 200
"""Characters of an example path kept (then `…`); a client may send megabytes."""
MAX_HOST = 255
"""Characters of a host kept: more than any DNS name has."""
MAX_DETAIL = 500
"""Characters of a reason's detail kept: it may quote a probed site's Location header."""
MAX_REASON = 64
MAX_CLIENT = 64
"""Characters of a client address kept: an IPv6 address with a zone fits."""
MAX_LEARNED_PATH = 2048
"""Longer paths are learned in memory only: persisting them would let a client fill the disk."""


@dataclass(slots=True)
class Limits:
    """How much the store keeps; rows beyond a count go least recently seen first."""

    max_age: float = 90 * DAY
    """Seconds after its last use a row goes (learned entries go when they expire)."""
    max_hosts: int = 10_000
    """Insecure sites."""
    max_clients: int = 1_000
    """Client addresses."""
    max_host_clients: int = 50_000
    """(insecure site, client address) records."""
    max_learned: int = 10_000
    """Learned entries (per host or per path)."""
    hourly_keep: float = 14 * DAY
    """Seconds hourly counts are kept."""


def bounded(text: str, limit: int) -> str:
    """`text` cut to `limit` characters (then `…`), as valid UTF-8: undecodable bytes become `\\xNN`."""
    if len(text) > limit:
        text = text[:limit] + "…"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: mitmproxy decodes bytes that are not UTF-8 that way
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = text.encode("utf-8", "backslashreplace")
        text = raw.decode("utf-8", "backslashreplace")
    return text


def example_path(path: str) -> str:
    """What is kept of a request path: no query string or fragment, at most `MAX_PATH` characters."""
    head = path[: MAX_PATH + 1]  # never copy more of a huge path than could be kept
    head = head.partition("?")[0].partition("#")[0]
    return bounded(head, MAX_PATH) or "/"


def hour_of(seconds: float) -> int:
    """The start of the hour that holds `seconds` (Unix time, UTC)."""
    return int(seconds // 3600) * 3600


@dataclass(slots=True)
class Hits:
    """Hits on one insecure host."""

    reason: str
    detail: str
    hits: int
    first_seen: float
    last_seen: float
    example_path: str


@dataclass(slots=True)
class Use:
    """What one client address did."""

    requests: int
    upgraded: int
    insecure: int
    first_seen: float
    last_seen: float


@dataclass(slots=True)
class Seen:
    """Hits of one client on one insecure host."""

    hits: int
    last_seen: float


def _room[K, V](buffer: dict[K, V], key: K, limit: int) -> None:
    """Make room for a new `key`: the oldest buffered keys go first."""
    while buffer and len(buffer) >= limit and key not in buffer:
        del buffer[next(iter(buffer))]


@dataclass(slots=True)
class Notes:
    """Notes not yet written. Not thread-safe: the store holds its lock around every call."""

    limits: Limits
    insecure: dict[str, Hits] = field(default_factory=dict)
    host_clients: dict[tuple[str, str], Seen] = field(default_factory=dict)
    clients: dict[str, Use] = field(default_factory=dict)
    learned: dict[tuple[str, str], Learned] = field(default_factory=dict)
    upgrades: dict[str, int] = field(default_factory=dict)
    hourly: dict[int, list[int]] = field(default_factory=dict)
    """Start of the hour -> [upgrades, insecure hits]."""

    def __len__(self) -> int:
        """Changes waiting; hourly counts only ever come with another note, so they are not counted."""
        return (
            len(self.insecure)
            + len(self.host_clients)
            + len(self.clients)
            + len(self.learned)
            + len(self.upgrades)
        )

    def insecure_hit(self, host: str, reason: str, detail: str, path: str, now: float, client: str) -> None:
        """One plain-HTTP request to `host` (from `client` when not empty)."""
        host, reason, detail = (
            bounded(host, MAX_HOST),
            bounded(reason, MAX_REASON),
            bounded(detail, MAX_DETAIL),
        )
        row = self.insecure.get(host)
        if row is None:
            _room(self.insecure, host, self.limits.max_hosts)
            self.insecure[host] = Hits(reason, detail, 1, now, now, example_path(path))
        else:
            row.reason, row.detail, row.last_seen = reason, detail, now
            row.hits += 1
        self.hourly.setdefault(hour_of(now), [0, 0])[1] += 1
        if client:
            client = bounded(client, MAX_CLIENT)
            seen = self.host_clients.get((host, client))
            if seen is None:
                _room(self.host_clients, (host, client), self.limits.max_host_clients)
                self.host_clients[(host, client)] = Seen(1, now)
            else:
                seen.hits, seen.last_seen = seen.hits + 1, now
            self.request(client, now, insecure=1)

    def upgrade(self, step: str, now: float, client: str) -> None:
        """One request upgraded by `step`."""
        self.upgrades[step] = self.upgrades.get(step, 0) + 1
        self.hourly.setdefault(hour_of(now), [0, 0])[0] += 1
        if client:
            self.request(bounded(client, MAX_CLIENT), now, upgraded=1)

    def request(self, client: str, now: float, *, upgraded: int = 0, insecure: int = 0) -> None:
        """One request of `client` (already bounded), counted as upgraded or insecure as said."""
        use = self.clients.get(client)
        if use is None:
            _room(self.clients, client, self.limits.max_clients)
            self.clients[client] = Use(1, upgraded, insecure, now, now)
        else:
            use.requests += 1
            use.upgraded += upgraded
            use.insecure += insecure
            use.last_seen = now

    def learn(self, learned: Learned) -> None:
        """A probe result for a host or one path; an overlong host or path is not kept."""
        if len(learned.host) > MAX_HOST or len(learned.path) > MAX_LEARNED_PATH:
            return
        key = (learned.host, learned.path)
        _room(self.learned, key, self.limits.max_learned)
        self.learned[key] = learned

    def forget(self, host: str) -> tuple[set[str], bool]:
        """Drop everything about `host`; returns the learned paths that went and whether it had hits."""
        paths = {path for h, path in self.learned if h == host}
        for path in paths:
            del self.learned[(host, path)]
        for key in [k for k in self.host_clients if k[0] == host]:
            del self.host_clients[key]
        return paths, self.insecure.pop(host, None) is not None

    def merge_newer(self, newer: Notes) -> None:
        """Add `newer` (noted while these failed to be written) into these; its values win."""
        for host, row in newer.insecure.items():
            old = self.insecure.setdefault(host, row)
            if old is not row:
                old.reason, old.detail, old.last_seen = row.reason, row.detail, row.last_seen
                old.hits += row.hits
        for key, seen in newer.host_clients.items():
            mine = self.host_clients.setdefault(key, seen)
            if mine is not seen:
                mine.hits, mine.last_seen = mine.hits + seen.hits, seen.last_seen
        for client, use in newer.clients.items():
            known = self.clients.setdefault(client, use)
            if known is not use:
                known.requests += use.requests
                known.upgraded += use.upgraded
                known.insecure += use.insecure
                known.last_seen = use.last_seen
        self.learned |= newer.learned
        for step, count in newer.upgrades.items():
            self.upgrades[step] = self.upgrades.get(step, 0) + count
        for hour, (up, insecure) in newer.hourly.items():
            counts = self.hourly.setdefault(hour, [0, 0])
            counts[0], counts[1] = counts[0] + up, counts[1] + insecure
