"""Memory returns to its level after bursts of requests with huge URLs (issue 9): a real proxy, RSS from /proc.

Every URL of a burst is unique (a flood of one URL would hide urlsplit's cache, which keeps the last 128)
and gets port443's 414. RSS is polled against a deadline, never slept on: MemoryRelease gives memory back
on the first tick that sees no new request. With port443_release_memory=false the same bursts stay held.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.proxy import Launch, Proxy
from tests.support.servers import Server, page, serve

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads RSS from /proc"),
]

MIB = 1024 * 1024
BURSTS, REQUESTS, AT_ONCE, URL = 2, 40, 4, 2 * 1024 * 1024
# Measured (three runs): from 88 MiB, the bursts peak at 166 to 178 MiB and RSS is back within 0.3 MiB of
# where it started about 4 s later; without the release 530 MiB stay held. 25 MiB leaves room for what a
# busy machine and lazy imports on a first burst add.
SLACK = 25 * MIB
DEADLINE = 30.0


@pytest.fixture
def upstream() -> Iterator[Server]:
    with serve(page("upstream")) as server:
        yield server


def rss(proxy: Proxy) -> int:
    """The proxy process's resident set size, in bytes."""
    for line in Path(f"/proc/{proxy.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


def send(port: int, target: str) -> str:
    """One request on its own connection; the status code of the answer."""
    request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n" not in answer and (chunk := sock.recv(65536)):
            answer += chunk
    return answer.split(b" ", 2)[1].decode()


def bursts(proxy: Proxy, upstream: Server) -> None:
    """BURSTS bursts of REQUESTS unique 2 MiB URLs, AT_ONCE at a time; each must get a 414."""
    base = f"http://127.0.0.1:{upstream.port}/"
    for n in range(BURSTS):
        targets = [f"{base}{n * REQUESTS + i:08d}" + "x" * URL for i in range(REQUESTS)]
        with ThreadPoolExecutor(AT_ONCE) as pool:
            statuses = list(pool.map(lambda target: send(proxy.port, target), targets))
        assert statuses == ["414"] * REQUESTS


def settle_below(proxy: Proxy, level: int, deadline: float) -> int:
    """Poll RSS until it is at most `level` or `deadline` passed; the last reading."""
    while (now := rss(proxy)) > level and time.monotonic() < deadline:
        time.sleep(0.2)
    return now


def test_memory_returns_to_its_level_after_bursts(launch: Launch, upstream: Server) -> None:
    proxy = launch(connect_to=[])
    normal = f"http://127.0.0.1:{upstream.port}/"
    assert send(proxy.port, normal) == "200"  # loopback is exempt: passed through
    before = rss(proxy)
    bursts(proxy, upstream)
    assert rss(proxy) > before + SLACK, "the bursts cost no memory: this test would prove nothing"
    after = settle_below(proxy, before + SLACK, time.monotonic() + DEADLINE)
    assert after <= before + SLACK, (
        f"RSS {before / MIB:.0f} -> {after / MIB:.0f} MiB after {DEADLINE:g} s\n"
        + "".join(line for line in proxy.output if "port443" in line)
    )
    proxy.wait_for_log("memory given back")
    assert send(proxy.port, normal) == "200"
    assert upstream.requests == ["/", "/"]  # the huge URLs never went upstream


def test_without_the_release_the_memory_stays_held(launch: Launch, upstream: Server) -> None:
    proxy = launch(connect_to=[], extra=["port443_release_memory=false"])
    assert send(proxy.port, f"http://127.0.0.1:{upstream.port}/") == "200"
    before = rss(proxy)
    bursts(proxy, upstream)
    # Three ticks of MemoryRelease's timer would have released it by now.
    after = settle_below(proxy, before + SLACK, time.monotonic() + 3.0)
    assert after > before + SLACK
    assert "memory given back" not in proxy.log
