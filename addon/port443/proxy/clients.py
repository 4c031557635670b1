"""Per-device policy: which upgrade mode applies to a client address, from `CIDR=MODE` specs.

`--client-mode 192.168.1.40/32=off --client-mode 192.168.1.0/24=strict`: the most specific network that
contains the address wins, and the global mode applies to every other client. Pure: no sockets, no
mitmproxy; the addon that reads the option lives in mitm/clients.py.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from port443.errors import UsageError
from port443.proxy.decide import MODES

CLIENT_MODES = (*MODES, "off")
"""A device can have any upgrade mode, or `off`: its requests are never touched."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(text: str) -> Address | None:
    """A client address as mitmproxy reports it (IPv4-mapped IPv6 and a `%scope` allowed), or None."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0].strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d; they are the IPv4 device.
        return address.ipv4_mapped
    return address


def parse_network(text: str, *, what: str) -> Network:
    """`192.168.1.0/24`, `fd00::/8` or a single address (a /32 or /128).

    Raises:
        UsageError: naming `what` and the value.
    """
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as e:
        raise UsageError(f"{what} {text!r}: not an address or CIDR network ({e})") from e
    if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped is not None:
        mapped = network.network_address.ipv4_mapped
        return ipaddress.ip_network(f"{mapped}/{max(network.prefixlen - 96, 0)}", strict=False)
    return network


@dataclass(frozen=True, slots=True)
class ClientModes:
    """The per-client modes, most specific network first, and the mode of everyone else."""

    rules: tuple[tuple[Network, str], ...] = ()
    default: str = "redirect"

    def mode_for(self, address: str | None) -> str:
        """The mode for a client address (as text, e.g. a peername's host); the default when none matches."""
        if not self.rules or address is None:
            return self.default
        parsed = parse_address(address)
        if parsed is None:
            return self.default
        for network, mode in self.rules:  # sorted longest prefix first: the first hit is the most specific
            if parsed.version == network.version and parsed in network:
                return mode
        return self.default

    def describe(self) -> list[str]:
        """`CIDR=MODE` per rule, most specific first (for the start line and logs)."""
        return [f"{network}={mode}" for network, mode in self.rules]


def parse_client_modes(specs: Iterable[str], *, default: str) -> ClientModes:
    """Parse `CIDR=MODE` specs (MODE one of CLIENT_MODES) into a ClientModes.

    Raises:
        UsageError: naming the first malformed spec, an unknown mode, or a network given two modes.
    """
    if default not in CLIENT_MODES:
        raise UsageError(f"mode {default!r}: not one of {', '.join(CLIENT_MODES)}")
    seen: dict[Network, str] = {}
    for spec in specs:
        where, sep, mode = spec.rpartition("=")
        mode = mode.strip().lower()
        if not sep or not where.strip():
            raise UsageError(f"client mode {spec!r}: expected CIDR=MODE, e.g. 192.168.1.40/32=off")
        if mode not in CLIENT_MODES:
            raise UsageError(f"client mode {spec!r}: {mode!r} is not one of {', '.join(CLIENT_MODES)}")
        try:
            network = parse_network(where, what="network")
        except UsageError as e:
            raise UsageError(f"client mode {spec!r}: {e}") from e
        if seen.get(network, mode) != mode:
            raise UsageError(f"client mode {spec!r}: {network} already has mode {seen[network]!r}")
        seen[network] = mode
    # Longest prefix first; IPv4 and IPv6 never match each other, so their relative order does not matter.
    rules = sorted(seen.items(), key=lambda item: (-item[0].prefixlen, item[0].version, str(item[0])))
    return ClientModes(tuple(rules), default)
