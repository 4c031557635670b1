"""A small HTTP/1.1 client for `port443 check`, on the same connection path as the proxy's probes.

One request per connection (`Connection: close`), bodies capped, redirects not followed (the checker
records each hop itself). Network errors propagate; the caller classifies them with `probe.classify`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from port443.net.connect import NETWORK_ERRORS, open_tls

_MAX_HEAD = 64 * 1024

FETCH_ERRORS = (*NETWORK_ERRORS, ValueError)
"""What `fetch` may raise for a site that fails or answers something that is not HTTP; anything else is a bug."""


@dataclass(frozen=True, slots=True)
class Response:
    """One HTTP response, with what the TLS layer said when there was one."""

    url: str
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    tls_version: str | None = None
    peer_cert: bytes | None = None
    """The server's certificate (DER) for https URLs."""

    def header(self, name: str) -> str | None:
        """The first header of that name (case-insensitive), or None."""
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


async def fetch(
    url: str,
    *,
    timeout: float,
    context: ssl.SSLContext,
    connect_to: Mapping[tuple[str, int], tuple[str, int]] | None = None,
    max_body: int = 2 * 1024 * 1024,
) -> Response:
    """GET `url` (http or https) and return the response without following redirects.

    Raises:
        OSError, ssl.SSLError, TimeoutError, ValueError: as the connection or the response goes wrong.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    authority = host if parts.port is None else f"{host}:{parts.port}"
    async with asyncio.timeout(timeout):
        tls_context = context if parts.scheme == "https" else None
        reader, writer = await open_tls(host, port, context=tls_context, connect_to=connect_to)
        try:
            request = (
                f"GET {target} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: port443-check\r\n"
                "Accept: text/html,*/*\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
            )
            writer.write(request.encode("latin-1"))
            await writer.drain()
            status, headers = await _read_head(reader)
            body = await _read_body(reader, headers, status, max_body)
            tls = writer.get_extra_info("ssl_object")
            version = tls.version() if tls is not None else None
            cert = tls.getpeercert(binary_form=True) if tls is not None else None
        finally:
            writer.close()
    return Response(url, status, headers, body, version, cert)


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, list[tuple[str, str]]]:
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > _MAX_HEAD:
        raise ValueError("response headers too large")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP response: {lines[0][:80]!r}")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers.append((name.strip(), value.strip()))
    return int(parts[1]), headers


async def _read_body(
    reader: asyncio.StreamReader, headers: list[tuple[str, str]], status: int, limit: int
) -> bytes:
    if status in (204, 304) or 100 <= status < 200:
        return b""
    fields = {k.lower(): v for k, v in headers}
    if "chunked" in fields.get("transfer-encoding", "").lower():
        return await _read_chunked(reader, limit)
    length = fields.get("content-length")
    if length is not None and length.isdigit():
        return await reader.readexactly(min(int(length), limit))
    return await reader.read(limit)


async def _read_chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
    body = bytearray()
    while len(body) < limit:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            break
        body += await reader.readexactly(size)
        await reader.readexactly(2)
    return bytes(body[:limit])
