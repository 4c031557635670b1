"""Does HTTPS work on a host? An asyncio probe of host:443 with certificate verification, and a pure classifier.

The probe completes a verified TLS handshake, then asks for `/` and reads the status line and headers, so a
site whose HTTPS only redirects back to plain HTTP is caught too. The connection function is a parameter,
so tests can inject failures; network errors become a ProbeResult, never an exception.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urljoin, urlsplit

from port443.net.connect import NETWORK_ERRORS, Connect, open_tls

_MAX_HEADER_BYTES = 32 * 1024


class ProbeStatus(StrEnum):
    """How a probe ended; the values are the reasons written to the insecure-site log."""

    OK = "ok"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    BAD_CERT = "bad-certificate"
    NO_TLS = "no-tls"
    REDIRECTS_TO_HTTP = "redirects-to-http"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The outcome of one probe, with a detail a person can act on."""

    host: str
    status: ProbeStatus
    detail: str
    seconds: float
    tls_version: str | None = None
    http_status: int | None = None

    @property
    def ok(self) -> bool:
        """HTTPS works: the handshake verified and the site did not send us back to HTTP."""
        return self.status is ProbeStatus.OK


async def probe(
    host: str,
    port: int = 443,
    *,
    path: str = "/",
    timeout: float,
    context: ssl.SSLContext,
    connect_to: Mapping[tuple[str, int], tuple[str, int]] | None = None,
    connect: Connect = asyncio.open_connection,
) -> ProbeResult:
    """Probe HTTPS on `host:port` within `timeout` seconds (connect, handshake and first response together).

    `path` is what the HEAD request asks for: `/` tells whether the site's HTTPS works at all; another path
    tells whether that one page sends clients back to plain HTTP (a suspected redirect loop).
    """
    started = time.monotonic()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await open_tls(
                host, port, context=context, connect_to=connect_to, connect=connect
            )
            tls = writer.get_extra_info("ssl_object")
            version = tls.version() if tls is not None else None
            status, location = await _first_response(reader, writer, host, path)
    except NETWORK_ERRORS as e:  # what the network throws is a result; a bug still propagates
        kind, detail = classify(e)
        return ProbeResult(host, kind, detail, time.monotonic() - started)
    finally:
        if writer is not None:
            writer.close()
    elapsed = time.monotonic() - started
    if status is not None and 300 <= status < 400 and location is not None:
        target = urljoin(f"https://{host}{path}", location)
        if urlsplit(target).scheme == "http":
            return ProbeResult(
                host, ProbeStatus.REDIRECTS_TO_HTTP, f"{status} to {target}", elapsed, version, status
            )
    detail = f"{version}, HTTP {status}" if status is not None else f"{version}, no HTTP response"
    return ProbeResult(host, ProbeStatus.OK, detail, elapsed, version, status)


async def _first_response(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str
) -> tuple[int | None, str | None]:
    """Send `HEAD path` and return the status code and Location header, if any."""
    request = (
        f"HEAD {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: port443-probe\r\nConnection: close\r\n\r\n"
    )
    writer.write(request.encode("latin-1", "replace"))
    await writer.drain()
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None, None
    lines = head[:_MAX_HEADER_BYTES].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    location = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "location":
            location = value.strip()
    return status, location


def classify(error: BaseException) -> tuple[ProbeStatus, str]:
    """Map a connection error to a status and a human-readable detail."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return ProbeStatus.BAD_CERT, getattr(error, "verify_message", None) or str(error)
    if isinstance(error, ssl.SSLError):
        return ProbeStatus.NO_TLS, f"TLS handshake failed ({getattr(error, 'reason', None) or error})"
    if isinstance(error, TimeoutError):
        return ProbeStatus.TIMEOUT, "no answer in time"
    if isinstance(error, ConnectionRefusedError):
        return ProbeStatus.REFUSED, "connection refused on port 443"
    if isinstance(error, socket.gaierror):
        return ProbeStatus.UNREACHABLE, f"name does not resolve ({error.strerror})"
    if isinstance(error, ConnectionResetError | asyncio.IncompleteReadError):
        return ProbeStatus.NO_TLS, "connection closed during the TLS handshake"
    if isinstance(error, OSError):
        return ProbeStatus.UNREACHABLE, error.strerror or str(error)
    return ProbeStatus.UNREACHABLE, f"{type(error).__name__}: {error}"
