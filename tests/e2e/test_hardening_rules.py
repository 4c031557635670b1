"""No request and no rule file freezes the proxy: hostile URLs against a real port443, while another client waits.

One client (127.0.0.1) sends URLs that make backtracking regexes run for seconds or forever; a second client,
bound to 127.0.0.2 as another device of the household would be, times its own requests through the same
proxy meanwhile. Its requests follow the hostile ones on already open connections, so a stalled event loop
would hold them up; nothing here sleeps to synchronise.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.proxy import REPO, Launch, Proxy
from tests.support.servers import page, serve

pytestmark = pytest.mark.e2e

LATENCY_BOUND = 1.0  # generous: the proxy answers in milliseconds; the old engine took 10 s to 5 min
SETTINGS = ["port443_probe=false", "port443_hsts_preload=false"]  # plain HTTP to the local upstream


class RawClient:
    """One keep-alive connection to the proxy, writing requests of any size as they are."""

    def __init__(self, proxy: Proxy) -> None:
        self.sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=60)
        self.buffer = b""

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, url: str) -> None:
        host = url.split("/")[2]
        self.sock.sendall(f"GET {url} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())

    def status(self) -> int:
        """Read one response (status line, headers, Content-Length body) and return its status."""
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(
            (int(v) for k, _, v in (h.partition(":") for h in lines[1:]) if k.lower() == "content-length"), 0
        )
        while len(self.buffer) < length:
            self._fill()
        self.buffer = self.buffer[length:]
        return int(lines[0].split()[1])

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, "the proxy closed the connection"
        self.buffer += chunk


@contextmanager
def hostile_and_timed(proxy: Proxy) -> Iterator[tuple[RawClient, httpx.Client]]:
    """The hostile client and the timed one, both with an open connection and the rules compiled."""
    with RawClient(proxy) as attacker, proxy.client(bind="127.0.0.2") as timed:
        attacker.send("http://other.test/")
        assert attacker.status() == 200
        assert timed.get("http://other.test/").status_code == 200
        yield attacker, timed


def worst_latency_during(attacker: RawClient, timed: httpx.Client, url: str, *, requests: int = 10) -> float:
    """Send `url` from the attacker, then time `requests` requests of the other client right behind it."""
    attacker.send(url)
    worst = 0.0
    for _ in range(requests):
        started = time.perf_counter()
        assert timed.get("http://other.test/").status_code == 200
        worst = max(worst, time.perf_counter() - started)
    assert attacker.status() in (200, 307, 414)  # the hostile request got an answer too
    return worst


def _launch(launch: Launch, rules: Path, upstream: int, hosts: list[str]) -> Proxy:
    connect_to = [f"{host}:80:127.0.0.1:{upstream}" for host in [*hosts, "other.test"]]
    return launch(connect_to=connect_to, rules=rules, extra=SETTINGS)


def test_a_slash_flood_against_the_shipped_amazon_in_ruleset_stalls_no_one(
    launch: Launch, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(REPO / "rules" / "https-everywhere" / "amazon.in.yaml", rules)
    with serve(page("plain site")) as upstream:
        proxy = _launch(launch, rules, upstream.port, ["amazon.in", "www.amazon.in"])
        with hostile_and_timed(proxy) as (attacker, timed):
            for slashes in (5_000, 20_000, 40_000, 100_000):
                latency = worst_latency_during(attacker, timed, "http://amazon.in/" + "/" * slashes)
                assert latency < LATENCY_BOUND, f"{slashes} slashes held another client for {latency:.2f} s"
        # The ruleset still works, and its exclusion too, for URLs of every size it runs over (the
        # upstream closed the attacker's connection after answering 100,000 slashes with a 414).
        with RawClient(proxy) as client:
            client.send("http://amazon.in/" + "/" * 6_000 + "x")
            assert client.status() == 307
            client.send("http://amazon.in/" + "/" * 6_000 + "dp/x")
            assert client.status() == 200


RULES = {
    "nested.yaml": "name: Nested\ntargets: [x.test]\nrules:\n  - from: ^http://x\\.test/(a+)+b\n    to: https://x.test/\n",
    "lookahead.yaml": (
        "name: Lookahead\ntargets: [y.test]\nrules:\n  - from: ^http://y\\.test/(?!z)(a|aa)+b\n    to: https://y.test/\n"
    ),
}


@pytest.mark.parametrize(
    "url",
    ["http://x.test/" + "a" * 30, "http://x.test/" + "a" * 8_000, "http://y.test/" + "a" * 40],
    ids=["nested-30", "nested-8000", "lookahead-40"],
)
def test_a_nested_quantifier_user_rule_on_a_hostile_url_stalls_no_one(
    launch: Launch, tmp_path: Path, url: str
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    for name, text in RULES.items():
        (rules / name).write_text(text)
    with serve(page("plain site")) as upstream:
        proxy = _launch(launch, rules, upstream.port, ["x.test", "y.test"])
        with hostile_and_timed(proxy) as (attacker, timed):
            for _ in range(3):
                latency = worst_latency_during(attacker, timed, url)
                assert latency < LATENCY_BOUND, f"{url[:30]}... held another client for {latency:.2f} s"
            attacker.send("http://x.test/aab")  # the rule itself still works
            assert attacker.status() == 307
