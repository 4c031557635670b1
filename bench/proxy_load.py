"""Load generation for the proxy benchmark: keep-alive clients that time each request.

`wrk` (one thread, bench/wrk.lua) for plain HTTP when installed; otherwise, and always for tunnels (wrk
cannot CONNECT), an asyncio client in the benchmark's own process. Every phase is bounded in time and in
requests, and connection errors are counted, not raised: a proxy that drops connections under load is a
result.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bench.proxy_traffic import HOST, LOOPBACK, PATHS, BenchError

PHASE_GRACE_S = 30.0  # a phase that overruns its duration by this much is stopped and reported as failed
MAX_REQUESTS_PER_PHASE = 5_000_000  # the asyncio client's hard bound, far above what a phase can reach
CONNECT_RETRY_S = 0.05  # back-off after a failed connect, so a dead proxy is not hammered
WRK_LUA = Path(__file__).with_name("wrk.lua")


@dataclass
class Measurement:
    """One measured phase."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    bad_status: int = 0
    cpu_us_per_request: float | None = None

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0


Connector = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


def plain_connector(port: int) -> Connector:
    """Plain TCP to a proxy (or the plain upstream) on loopback."""

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(LOOPBACK, port)

    return connect


def tls_connector(port: int, context: ssl.SSLContext) -> Connector:
    """TLS straight to the HTTPS upstream, verified as bench.test: the tunnel's ceiling."""

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(LOOPBACK, port, ssl=context, server_hostname=HOST)

    return connect


def tunnel_connector(proxy_port: int, context: ssl.SSLContext) -> Connector:
    """CONNECT bench.test:443 through the proxy, then TLS inside the tunnel (verified against the test CA)."""

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(LOOPBACK, proxy_port)
        writer.write(f"CONNECT {HOST}:443 HTTP/1.1\r\nHost: {HOST}:443\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if head[9:12] != b"200":
            writer.close()
            raise ConnectionError(f"CONNECT answered {head.splitlines()[0]!r}")
        await writer.start_tls(context, server_hostname=HOST)
        return reader, writer

    return connect


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    """One response: (status, head, body); bodies are always sized by Content-Length here."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return int(head[9:12]), head, body


async def fetch_once(connect: Connector, request: bytes) -> tuple[int, bytes, bytes]:
    """One request on a fresh connection: (status, head, body)."""
    reader, writer = await asyncio.wait_for(connect(), 15)
    try:
        writer.write(request)
        return await asyncio.wait_for(_read_response(reader), 15)
    finally:
        writer.close()


def _percentile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank percentile `q` of already sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


async def _load(
    connect: Connector, request: Callable[[int], bytes], concurrency: int, seconds: float, status: int
) -> Measurement:
    """`concurrency` keep-alive connections sending requests back to back for `seconds`."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + seconds
    latencies: list[float] = []
    counts = {"errors": 0, "bad_status": 0}

    async def worker() -> None:
        while loop.time() < deadline and len(latencies) < MAX_REQUESTS_PER_PHASE:
            try:
                reader, writer = await connect()
            except (OSError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                counts["errors"] += 1
                await asyncio.sleep(CONNECT_RETRY_S)
                continue
            try:
                while len(latencies) < MAX_REQUESTS_PER_PHASE:
                    sent = time.perf_counter()
                    if loop.time() >= deadline:
                        return
                    writer.write(request(PATHS.take()))
                    got, _, _ = await _read_response(reader)
                    if loop.time() > deadline:
                        return  # finished after the end: not counted
                    latencies.append(time.perf_counter() - sent)
                    if got != status:
                        counts["bad_status"] += 1
            except (
                OSError,
                ssl.SSLError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                ValueError,
            ):
                counts["errors"] += 1
            finally:
                writer.close()

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), seconds + PHASE_GRACE_S)
    latencies.sort()
    return Measurement(
        len(latencies),
        seconds,
        _percentile(latencies, 50) * 1000,
        _percentile(latencies, 99) * 1000,
        counts["errors"],
        counts["bad_status"],
    )


def run_python(
    connect: Connector, request: Callable[[int], bytes], concurrency: int, seconds: float, status: int
) -> Measurement:
    """The asyncio client: `concurrency` keep-alive connections for `seconds`, on a loop of its own."""
    return asyncio.run(_load(connect, request, concurrency, seconds, status))


def run_wrk(wrk: str, port: int, concurrency: int, seconds: int) -> Measurement:
    """wrk on one thread (far faster than a proxy here, and it leaves the second core to the proxy)."""
    argv = [wrk, "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s", "-s", str(WRK_LUA)]
    start = PATHS.next
    done = subprocess.run(
        [*argv, f"http://{LOOPBACK}:{port}/", "--", str(start)],
        capture_output=True,
        text=True,
        timeout=seconds + PHASE_GRACE_S,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH-RESULT "):
            data = json.loads(line[len("BENCH-RESULT ") :])
            PATHS.take(data["requests"] + data["errors"] + data["bad_status"] + concurrency + 1000)
            return Measurement(**data)
    raise BenchError(
        f"wrk printed no result (exit {done.returncode}): {done.stdout[-500:]}{done.stderr[-500:]}"
    )
