"""The proxy benchmark's upstreams: minimal asyncio HTTP/1.1 servers in a process of their own.

`python -m bench.proxy_upstream SERVER_PEM` serves three ports on 127.0.0.1 (redirect: the 307 port443
would answer; http: a 1 KiB page; https: the same page over TLS) and prints them as one JSON line. It
exits when its stdin closes, so it never outlives the benchmark. A process of its own, and not the
threaded servers of tests/support: the upstreams must stay far faster than a proxy and off the client's
CPU, or the benchmark would measure them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.proxy_traffic import LOOPBACK, BenchError, page_response, redirect_response

REPO = Path(__file__).resolve().parents[1]
STOP_TIMEOUT_S = 20.0
Response = bytes | Callable[[bytes], bytes]


class _Responder(asyncio.Protocol):
    """Answers every request head (GET, no body) on a keep-alive connection: a fixed response, or one made
    from the request's path (origin or absolute form)."""

    def __init__(self, response: Response) -> None:
        self.response = response
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        count = self.buffer.count(b"\r\n\r\n")
        if not count or self.transport is None:
            return
        *heads, self.buffer = self.buffer.split(b"\r\n\r\n")
        if isinstance(self.response, bytes):
            self.transport.write(self.response * count)
            return
        for head in heads:
            path = head.split(b" ", 2)[1]
            if path.startswith(b"http://"):
                path = b"/" + path[len(b"http://") :].partition(b"/")[2]
            self.transport.write(self.response(path))


async def serve(cert_pem: str) -> None:
    """Serve the three upstreams until stdin closes or SIGTERM arrives."""
    loop = asyncio.get_running_loop()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_pem)
    tls.set_alpn_protocols(["http/1.1"])
    specs: dict[str, tuple[Response, ssl.SSLContext | None]] = {
        "redirect": (redirect_response, None),
        "http": (page_response("tcp"), None),
        "https": (page_response("tls"), tls),
    }
    ports: dict[str, int] = {}
    servers = []
    for name, (response, context) in specs.items():
        server = await loop.create_server(
            lambda r=response: _Responder(r), LOOPBACK, 0, ssl=context, backlog=1024
        )
        servers.append(server)
        ports[name] = server.sockets[0].getsockname()[1]
    print(json.dumps(ports), flush=True)
    eof = asyncio.Event()  # stdin closes when the parent goes away: never outlive it
    loop.add_reader(sys.stdin.fileno(), lambda: eof.set() if not os.read(sys.stdin.fileno(), 4096) else None)
    loop.add_signal_handler(signal.SIGTERM, eof.set)
    await eof.wait()
    for server in servers:
        server.close()


def die_with_parent() -> None:
    """preexec_fn: SIGTERM the child if the benchmark dies without cleaning up (Linux prctl)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop(process: subprocess.Popen[Any]) -> int:
    """SIGTERM, then wait; SIGKILL only if it does not stop in time. Returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


@contextlib.contextmanager
def upstreams(cert_pem: Path) -> Iterator[dict[str, int]]:
    """The upstream process, its ports by name: redirect, http, https."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.proxy_upstream", str(cert_pem)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the servers listen, or the process is gone
        if not line:
            raise BenchError(f"upstream process exited with {process.wait()}")
        yield {k: int(v) for k, v in json.loads(line).items()}
    finally:
        stop(process)
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
