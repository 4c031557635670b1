"""The checker's HTTP/1.1 client against raw local servers: body framings and broken answers."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from port443.net.fetch import Response, fetch

CONTEXT = ssl.create_default_context()


@dataclass
class RawServer:
    """Answers each connection with the next canned bytes and records what clients sent."""

    port: int = 0
    answers: list[bytes] = field(default_factory=list)
    received: list[bytes] = field(default_factory=list)

    async def get(self, answer: bytes, path: str = "/") -> Response:
        self.answers.append(answer)
        connect_to = {("site.test", 80): ("127.0.0.1", self.port)}
        return await fetch(f"http://site.test{path}", timeout=5, context=CONTEXT, connect_to=connect_to)


@pytest.fixture
async def raw_server() -> AsyncIterator[RawServer]:
    raw = RawServer()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw.received.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(raw.answers.pop(0))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    raw.port = server.sockets[0].getsockname()[1]
    async with server:
        yield raw


@pytest.mark.parametrize(
    ("answer", "body"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello, extra", b"hello"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n",
            b"hello world",
        ),
        (b"HTTP/1.0 200 OK\r\n\r\nuntil close", b"until close"),
        (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", b""),
    ],
)
async def test_bodies(raw_server: RawServer, answer: bytes, body: bytes) -> None:
    response = await raw_server.get(answer, "/p?q=1")
    assert response.body == body
    assert raw_server.received[0].startswith(b"GET /p?q=1 HTTP/1.1\r\nHost: site.test\r\n")


async def test_headers_are_read_case_insensitively(raw_server: RawServer) -> None:
    response = await raw_server.get(
        b"HTTP/1.1 301 Moved\r\nlocation: https://site.test/\r\nContent-Length: 0\r\n\r\n"
    )
    assert response.status == 301 and response.header("Location") == "https://site.test/"
    assert response.tls_version is None and response.peer_cert is None


async def test_a_non_http_answer_is_an_error(raw_server: RawServer) -> None:
    with pytest.raises(ValueError, match="not an HTTP response"):
        await raw_server.get(b"SSH-2.0-OpenSSH\r\n\r\n")


async def test_only_http_urls() -> None:
    with pytest.raises(ValueError, match="not an http"):
        await fetch("ftp://site.test/", timeout=1, context=CONTEXT)
