"""Who may use a proxy that listens beyond loopback, where CONNECT may go, and how many connections a client holds.

Pure decisions with bounded memory: the allowed-client networks, the CONNECT port list, a per-client count
of open connections, and a "say it once" memory for log lines about one address. The addon in mitm/access.py
applies them to mitmproxy's hooks; the address of the gateway itself is proxy/own.py's business.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from port443.errors import UsageError
from port443.proxy.clients import Network, parse_address, parse_network

DEFAULT_CONNECT_PORTS = ("443",)
DEFAULT_MAX_CONNECTIONS = 256
"""Per client address. Chromium opens at most 256 sockets per profile (32 per proxy), so a browser never
meets it; one misbehaving device meets it long before the gateway runs out of file descriptors."""


def parse_networks(specs: Iterable[str], *, what: str) -> tuple[Network, ...]:
    """CIDR networks (or single addresses); a spec may hold several, comma-separated.

    Raises:
        UsageError: naming `what` and the first malformed value.
    """
    out: list[Network] = []
    for spec in specs:
        out += [parse_network(part, what=what) for part in spec.split(",") if part.strip()]
    return tuple(dict.fromkeys(out))


def parse_ports(specs: Iterable[str]) -> frozenset[int]:
    """Ports and ranges: `443`, `8443`, `8000-8100` (a spec may hold several, comma-separated).

    Raises:
        UsageError: naming the first value that is not a port or a range of ports.
    """
    ports: set[int] = set()
    for spec in specs:
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            low, sep, high = part.partition("-")
            try:
                first, last = int(low), int(high) if sep else int(low)
            except ValueError:
                raise UsageError(f"port443_connect_ports: {part!r} is not a port or a range") from None
            if not 0 < first <= last < 65536:
                raise UsageError(f"port443_connect_ports: {part!r} is not a port or a range (1-65535)")
            ports.update(range(first, last + 1))
    return frozenset(ports)


@dataclass(frozen=True, slots=True)
class ClientGate:
    """Loopback clients are always let in; others only with allow_lan and inside one of the networks."""

    networks: tuple[Network, ...] = ()
    allow_lan: bool = False

    def allows(self, address: str | None) -> bool:
        """Whether a client at `address` (a peername's host) may use the proxy."""
        parsed = parse_address(address) if address is not None else None
        if parsed is None:
            return False
        if parsed.is_loopback:
            return True
        return self.allow_lan and any(
            parsed.version == net.version and parsed in net for net in self.networks
        )


class ConnectionCounter:
    """Open connections per client address, refusing the one beyond `limit` (0: no limit)."""

    def __init__(self, limit: int = DEFAULT_MAX_CONNECTIONS) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def open(self, address: str) -> bool:
        """Count a new connection from `address`; False (and not counted) when it would exceed the limit."""
        count = self._open.get(address, 0)
        if self.limit and count >= self.limit:
            return False
        self._open[address] = count + 1
        return True

    def close(self, address: str) -> None:
        """A counted connection from `address` ended."""
        count = self._open.get(address, 0) - 1
        if count > 0:
            self._open[address] = count
        else:
            self._open.pop(address, None)

    def count(self, address: str) -> int:
        """How many connections from `address` are open."""
        return self._open.get(address, 0)

    def __len__(self) -> int:
        return len(self._open)


class SayOnce:
    """Remembers the last `size` keys it was asked about, so a log line about a key appears once.

    Bounded: a flood of new addresses evicts the oldest, which may then be logged again, never more memory.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._seen: OrderedDict[object, None] = OrderedDict()

    def first(self, key: object) -> bool:
        """True the first time `key` is seen (since it was last evicted)."""
        if key in self._seen:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = None
        if len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True
