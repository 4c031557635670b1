"""Connections to sites, shared by the proxy's probes and `port443 check`: TLS contexts and connect-to maps.

One place opens sockets to sites, so TLS verification and curl-style address overrides behave the same
everywhere; TLS always verifies the name asked for, whatever address a mapping sends the connection to.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Mapping

from port443.errors import ProbeError

NETWORK_ERRORS = (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, UnicodeError)
"""What a connection to a site may raise (ssl.SSLError is an OSError); anything else is a bug."""

Connect = Callable[..., Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


def make_ssl_context(
    *, cafile: str | None = None, capath: str | None = None, insecure: bool = False
) -> ssl.SSLContext:
    """A client context with mitmproxy's upstream trust settings: certifi's roots unless a CA file/dir is given."""
    if cafile is None and capath is None:
        import certifi

        cafile = certifi.where()
    ctx = ssl.create_default_context(cafile=cafile, capath=capath)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def parse_connect_to(specs: list[str] | tuple[str, ...]) -> dict[tuple[str, int], tuple[str, int]]:
    """Parse curl-style `HOST:PORT:ADDR:PORT2` entries (IPv6 addresses in brackets).

    Raises:
        ProbeError: naming the first malformed entry.
    """
    out: dict[tuple[str, int], tuple[str, int]] = {}
    for spec in specs:
        host, port, rest = _split_host_port(spec, spec)
        addr, port2, extra = _split_host_port(rest, spec)
        if extra:
            raise ProbeError(f"connect-to entry {spec!r}: expected HOST:PORT:ADDR:PORT")
        out[(host_key(host), port)] = (addr, port2)
    return out


def _split_host_port(text: str, spec: str) -> tuple[str, int, str]:
    if text.startswith("["):
        end = text.find("]")
        host, text = text[1:end], text[end + 1 :]
    else:
        host, _, text = text.partition(":")
        text = ":" + text
    if not host or not text.startswith(":"):
        raise ProbeError(f"connect-to entry {spec!r}: expected HOST:PORT:ADDR:PORT")
    port, _, rest = text[1:].partition(":")
    if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ProbeError(f"connect-to entry {spec!r}: {port!r} is not a port")
    return host, int(port), rest


async def open_tls(
    host: str,
    port: int = 443,
    *,
    context: ssl.SSLContext | None,
    connect_to: Mapping[tuple[str, int], tuple[str, int]] | None = None,
    connect: Connect = asyncio.open_connection,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a connection to `host:port`, TLS with `context` (None: plain TCP), honouring `connect_to`.

    The one place port443 connects to sites, for the proxy's probes and for `port443 check` alike; TLS
    always verifies `host` itself, whatever address `connect_to` sends the connection to.
    """
    name = host_key(host)  # an IPv6 literal arrives in brackets from URLs; sockets and TLS want it bare
    address = (connect_to or {}).get((name, port), (name, port))
    if context is None:
        return await connect(address[0], address[1])
    return await connect(address[0], address[1], ssl=context, server_hostname=name)


def host_key(host: str) -> str:
    """A host as sockets, TLS and connect-to entries name it: lower-case, no brackets, no trailing dot."""
    host = host.strip().lower().rstrip(".")
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def parse_resolve(spec: str) -> str:
    """Turn curl's `--resolve HOST:PORT:ADDR` into the equivalent `HOST:PORT:ADDR:PORT` connect-to entry.

    Raises:
        ProbeError: naming the malformed entry.
    """
    host, sep, rest = spec.partition(":")
    port, sep2, addr = rest.partition(":")
    if not (sep and sep2 and host and port and addr):
        raise ProbeError(f"--resolve {spec!r}: expected HOST:PORT:ADDR")
    bracketed = addr if ":" not in addr or addr.startswith("[") else f"[{addr}]"
    return f"{host}:{port}:{bracketed}:{port}"
