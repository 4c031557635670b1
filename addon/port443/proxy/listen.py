"""What `port443 run` listens on: mode specs from its flags, the start line, and the "port in use" hint.

mitmproxy spells a listener `MODE[:DATA][@[HOST:]PORT]` (`transparent@:8080`, `regular@127.0.0.1:8080`,
`wireguard:/path/keys.json@51820`). The CLI writes the host and port into the specs of the modes it starts,
so a WireGuard listener never inherits the HTTP proxy's port. Pure text; no mitmproxy.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from port443.proxy.clients import parse_address

WIREGUARD = "wireguard"


@dataclass(frozen=True, slots=True)
class ModeSpec:
    """A mitmproxy mode spec, split as mitmproxy splits it (proxy/mode_specs.py)."""

    name: str
    data: str
    host: str | None
    port: int | None

    def __str__(self) -> str:
        head = self.name + (f":{self.data}" if self.data else "")
        if self.port is None:
            return head
        if self.host is None:
            return f"{head}@{self.port}"
        return f"{head}@{self.host}:{self.port}"


def parse_mode(spec: str) -> ModeSpec:
    """Split `MODE[:DATA][@[HOST:]PORT]` (the last `@` starts the address, as in mitmproxy).

    Raises:
        ValueError: the port is not a number from 0 to 65535.
    """
    head, at, listen = spec.rpartition("@")
    if not at:
        head, listen = listen, ""
    name, _, data = head.partition(":")
    host: str | None = None
    port: int | None = None
    if listen:
        if ":" in listen:
            host, _, port_text = listen.rpartition(":")
        else:
            port_text = listen
        if not port_text.isdigit() or int(port_text) > 65535:
            raise ValueError(f"mode {spec!r}: invalid port {port_text!r}")
        port = int(port_text)
    return ModeSpec(name.lower(), data, host, port)


def listen_spec(name: str, host: str, port: int, data: str = "") -> str:
    """The spec that makes `name` listen on exactly `host:port` (`""` is every address, IPv4 and IPv6)."""
    return str(ModeSpec(name, data, host, port))


def wireguard_spec(spec: str, *, keys: str, port: int) -> str:
    """A user's `wireguard[...]` spec with port443's keys file and port filled in where it gave none.

    mitmproxy would take the HTTP proxy's --listen-port and a keys file of its own otherwise.
    """
    mode = parse_mode(spec)
    if mode.name != WIREGUARD:
        return spec
    host = mode.host if mode.host is not None else ""
    return str(ModeSpec(WIREGUARD, mode.data or keys, host, mode.port if mode.port is not None else port))


def is_loopback(host: str) -> bool:
    """Whether listening on `host` keeps the proxy to this machine (`""`, `0.0.0.0` and `::` do not)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    address = parse_address(host)
    return address is not None and address.is_loopback


def format_address(host: str, port: int) -> str:
    """`127.0.0.1:8080`, `[::]:8080`, `[::1]:8080`: a socket name as it goes in a URL."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return f"{host}:{port}"
    return f"[{host}]:{port}" if address.version == 6 else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class Listener:
    """One running server: its mode's name and description, and the sockets it has."""

    mode: str
    description: str
    addresses: tuple[tuple[str, int], ...]


_SCHEMES = {"regular": "http://", "upstream": "http://", "socks5": "socks5://", WIREGUARD: "udp://"}
_NOTES = {
    "regular": "HTTP proxy",
    "transparent": "transparent, for redirected port 80",
    WIREGUARD: "WireGuard; `port443 wireguard-config` prints a device's configuration",
}


def start_line(listeners: Sequence[Listener], mode: str, clients: Sequence[str] = ()) -> str:
    """The line `port443 run` prints once every listener is up: real addresses, real modes."""
    parts = []
    for listener in listeners:
        scheme = _SCHEMES.get(listener.mode, "")
        ordered = sorted(listener.addresses, key=lambda a: ":" in a[0])  # IPv4 first, as people read them
        addresses = " and ".join(scheme + format_address(h, p) for h, p in ordered)
        note = _NOTES.get(listener.mode, listener.description)
        parts.append(f"{addresses or listener.description} ({note})")
    line = "port443: listening on " + ", ".join(parts) + f"; {mode} mode"
    if clients:
        line += "; clients: " + ", ".join(clients)
    return line


_BUSY = re.compile(r"failed to listen on (?P<host>.*):(?P<port>\d+) with .*(?:Errno 98|in use)", re.S)


def busy_hint(message: str, flags: Mapping[int, str]) -> str | None:
    """For mitmproxy's "failed to listen ... address already in use": which `port443 run` flag picks another port.

    `flags` maps a port to the flag that set it (--listen-port, --wireguard-port).
    """
    match = _BUSY.search(message)
    if match is None:
        return None
    port = int(match["port"])
    host = match["host"] or "every address"
    flag = flags.get(port)
    fix = f"stop what uses it, or pick another with {flag} {port + 1}" if flag else "stop what uses it"
    return f"port {port} on {host} is already in use (another port443 or proxy?): {fix}"
