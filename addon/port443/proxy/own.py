"""The gateway's own addresses: is a destination this machine, and is it the proxy's own listening port?

A transparent proxy sends a connection to its original destination; a connection that reached the proxy
port without the firewall's REDIRECT has the proxy itself as that destination, and following it opens
another connection to the proxy, and so on (thousands a second). A LAN client must also not reach the
gateway's loopback-only services through it. Deciding needs no interface list: an address is this
machine's when a socket can bind to it (the kernel's own local-address table answers). No mitmproxy.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

from port443.proxy.clients import Address, parse_address

LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


def is_local_address(address: Address) -> bool:
    """Loopback, unspecified (connecting to 0.0.0.0 reaches this machine) or an address of this machine."""
    if address.is_loopback or address.is_unspecified:
        return True
    if address.is_multicast:
        return False
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            # bind() only succeeds for addresses in the kernel's local table (no IP_FREEBIND set here).
            probe.bind((str(address), 0))
    except OSError:
        return False
    return True


def is_local_name(host: str) -> bool:
    """Names that always mean this machine (RFC 6761: localhost and everything under it)."""
    name = host.lower().rstrip(".")
    return name in LOCAL_NAMES or name.endswith(".localhost")


def literal_address(host: str) -> Address | None:
    """The address in `host` when it is an IP literal (brackets, scope and IPv4-mapped forms allowed)."""
    return parse_address(host)


@dataclass(frozen=True, slots=True)
class Listeners:
    """The proxy's listening sockets: (host, port) pairs as mitmproxy reports them."""

    addresses: tuple[tuple[str, int], ...] = ()
    ports: frozenset[int] = field(init=False)
    """The ports the proxy listens on (asked on every request, so computed once)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "ports", frozenset(port for _, port in self.addresses))

    def is_proxy(self, address: Address, port: int) -> bool:
        """Whether `address:port` reaches one of the proxy's own sockets: a local address on a listening port.

        A listener on a wildcard address covers every local address; one on a specific address leaves the
        others to whatever else listens there, which is this machine too, so the answer is the same.
        """
        return port in self.ports and is_local_address(address)


def listeners_of(addresses: Iterable[tuple[object, ...]]) -> Listeners:
    """Listeners from socket names as returned by getsockname() (IPv6 ones have four fields)."""
    return Listeners(tuple((str(a[0]), int(str(a[1]))) for a in addresses))
