"""Measure the proxy's memory across bursts of requests with huge URLs, beside bare mitmdump, in the same run.

Run from the repository root:

    .venv/bin/python -m bench.memory_burst                   # a table (about a minute)
    .venv/bin/python -m bench.memory_burst --requests 20 --bursts 2 --variant port443 --json

Each proxy is a real process, started fresh (tests/support/proxy.py waits for its ready line), beside one
local upstream (tests/support/servers.py). A burst is `--requests` requests, `--concurrency` at a time, each
`GET http://127.0.0.1:<upstream>/xxx...` with a `--url-kib` path, sent raw on its own connection: port443
answers 414 itself; bare mitmdump forwards it and the upstream answers 414. RSS (VmRSS in /proc) is read
before the first burst, right after each burst, and once the proxy has been idle for `--idle` seconds.

Variants: bare mitmdump (no port443 addon); `port443 run` with the shipped rules but
port443_release_memory=false (urllib's cache, garbage and glibc's heap left as they come); `port443 run` as
shipped, whose release log lines are printed under the table. The store goes to a temporary directory, the
compiled rules come from the user's cache, as `port443 run` would take them. Ratios, not pass/fail:
what a shared machine measures is noise in timing, but RSS after a burst is a fact of the allocator. Linux
only (/proc). Exit status: 0 whatever the numbers, 1 when a proxy fails.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tests.support.proxy import READY_ADDON, Proxy, mitmdump, start
from tests.support.servers import page, serve

VARIANTS = ("mitmdump", "port443-untouched", "port443")
LOOPBACK = "127.0.0.1"
RELEASED = "memory given back"  # MemoryRelease's log line (addon/port443/mitm/memory.py)


class BenchError(Exception):
    """A proxy did not start, died, or answered what it should not."""


@dataclass(frozen=True)
class Variant:
    """One proxy configuration: how it is started."""

    key: str
    label: str
    argv: Callable[[Path], list[str]]
    env: tuple[tuple[str, str], ...] = ()
    """Extra environment, e.g. glibc tunables (MALLOC_ARENA_MAX=2) to compare against."""


@dataclass
class Row:
    """What one variant measured, in MiB of RSS."""

    key: str
    label: str
    before: float
    bursts: list[float] = field(default_factory=list)
    idle: float | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    seconds_per_burst: list[float] = field(default_factory=list)
    releases: list[str] = field(default_factory=list)
    """port443's own log lines on each release (RSS before and after, how long it held the loop)."""

    @property
    def kept(self) -> float | None:
        """MiB still held after idling, over the level before the first burst."""
        return None if self.idle is None else self.idle - self.before


def build_variants() -> dict[str, Variant]:
    """Every variant, by key; each gets a fresh temporary directory for its config and store."""

    def bare(tmp: Path) -> list[str]:
        argv = [mitmdump(), "-s", READY_ADDON, "--listen-host", LOOPBACK, "-p", "0"]
        return argv + ["--set", f"confdir={tmp / 'mitm'}", "--set", "flow_detail=0"]

    def port443(*sets: str) -> Callable[[Path], list[str]]:
        def argv(tmp: Path) -> list[str]:
            line = [
                sys.executable,
                "-m",
                "port443",
                "run",
                "--listen-port",
                "0",
                "--db",
                str(tmp / "db.sqlite3"),
            ]
            for setting in (f"scripts={READY_ADDON}", f"confdir={tmp / 'mitm'}", *sets):
                line += ["--set", setting]
            return line

        return argv

    return {
        "mitmdump": Variant("mitmdump", "bare mitmdump", bare),
        "port443-untouched": Variant(
            "port443-untouched", "port443, release_memory=false", port443("port443_release_memory=false")
        ),
        "port443": Variant("port443", "port443 as shipped", port443()),
    }


def rss_mib(pid: int) -> float:
    """The process's resident set size (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no VmRSS for pid {pid}")


def huge_request(upstream: int, url_bytes: int, n: int) -> bytes:
    """Request `n` of a burst: a path of `url_bytes` bytes, unique to it, in absolute form (an explicit proxy's).

    Unique, because a flood of one URL hides what caches keyed by the URL keep (urllib.parse.urlsplit
    keeps its last 128 answers, and mitmproxy parses every request target with it).
    """
    path = f"/{n:012d}" + "x" * (url_bytes - 13)
    head = f"GET http://{LOOPBACK}:{upstream}{path} HTTP/1.1\r\nHost: {LOOPBACK}:{upstream}\r\n"
    return (head + "Connection: close\r\n\r\n").encode()


def send(port: int, request: bytes) -> str:
    """Send one request on its own connection; the status code of the answer ('reset' if none came)."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=30) as sock:
            sock.sendall(request)
            answer = b""
            while b"\r\n" not in answer and (chunk := sock.recv(65536)):
                answer += chunk
    except OSError:  # a proxy that answers early and closes can reset the rest of a 1 MB send
        return "reset"
    parts = answer.split(b" ", 2)
    return parts[1].decode("ascii", "replace") if len(parts) > 1 else "none"


def burst(port: int, requests: Sequence[bytes], concurrency: int) -> dict[str, int]:
    """Send `requests`, `concurrency` at a time; how many got each status."""
    with ThreadPoolExecutor(concurrency) as pool:
        statuses = list(pool.map(lambda request: send(port, request), requests))
    return {s: statuses.count(s) for s in sorted(set(statuses))}


@contextmanager
def running(variant: Variant, tmp: Path, env: dict[str, str]) -> Iterator[Proxy]:
    """The variant's proxy process, stopped with SIGTERM at the end of the block."""
    try:
        proxy = start(variant.argv(tmp), tmp / "unused-ca.pem", env=env)
    except AssertionError as e:  # how tests/support reports a proxy that did not start
        raise BenchError(f"{variant.key}: {e}") from e
    try:
        yield proxy
    finally:
        if proxy.process.poll() is None:
            proxy.stop()
        elif proxy.process.stdout is not None:
            proxy.process.stdout.close()


def measure(variant: Variant, args: argparse.Namespace, upstream: int, say: Callable[[str], None]) -> Row:
    """Start the variant, settle, burst `--bursts` times, idle, read RSS at each step."""
    with tempfile.TemporaryDirectory(prefix="port443-bench-memory-") as tmp_name:
        tmp = Path(tmp_name)
        env = {"XDG_DATA_HOME": str(tmp / "data"), **dict(variant.env)}
        with running(variant, tmp, env) as proxy:
            pid = proxy.process.pid
            normal = f"GET http://{LOOPBACK}:{upstream}/ HTTP/1.1\r\nHost: {LOOPBACK}:{upstream}\r\n"
            if send(proxy.port, (normal + "Connection: close\r\n\r\n").encode()) != "200":
                raise BenchError(f"{variant.key}: a normal request failed:\n{proxy.log[-2000:]}")
            time.sleep(args.settle)
            row = Row(variant.key, variant.label, rss_mib(pid))
            for n in range(args.bursts):
                say(f"{variant.label}: burst {n + 1}/{args.bursts}")
                first = n * args.requests
                requests = [
                    huge_request(upstream, args.url_kib * 1024, first + i) for i in range(args.requests)
                ]
                started = time.perf_counter()
                for status, count in burst(proxy.port, requests, args.concurrency).items():
                    row.statuses[status] = row.statuses.get(status, 0) + count
                row.seconds_per_burst.append(time.perf_counter() - started)
                row.bursts.append(rss_mib(pid))
            say(f"{variant.label}: idle {args.idle:g} s")
            time.sleep(args.idle)
            row.idle = rss_mib(pid)
            with proxy.changed:  # the drain thread appends to it
                row.releases = [line.strip() for line in proxy.output if RELEASED in line]
            if proxy.process.poll() is not None:
                raise BenchError(
                    f"{variant.key}: exited with {proxy.process.returncode}:\n{proxy.log[-2000:]}"
                )
    return row


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    """The rich table: RSS at each step, what was kept, and ratios to the level before."""
    table = Table(title=f"RSS (MiB) across bursts of {args.requests} requests with {args.url_kib} KiB URLs")
    table.add_column("proxy")
    table.add_column("before", justify="right")
    for n in range(args.bursts):
        table.add_column(f"after burst {n + 1}", justify="right")
    table.add_column(f"idle {args.idle:g} s", justify="right")
    table.add_column("kept", justify="right")
    table.add_column("peak ×", justify="right")
    table.add_column("idle ×", justify="right")
    table.add_column("answers")
    for row in rows:
        idle = row.idle if row.idle is not None else float("nan")
        table.add_row(
            row.label,
            f"{row.before:.0f}",
            *(f"{b:.0f}" for b in row.bursts),
            f"{idle:.0f}",
            f"{row.kept:+.0f}" if row.kept is not None else "-",
            f"{max(row.bursts) / row.before:.2f}",
            f"{idle / row.before:.2f}",
            ", ".join(f"{k}×{v}" for k, v in row.statuses.items()),
        )
    console = Console()
    console.print(table)
    for row in rows:
        for line in row.releases:
            console.print(f"{row.label}: {line.partition('port443: ')[2] or line}", markup=False)
    console.print(
        f"{args.concurrency} connections at a time; RSS read right after each burst's last answer and after "
        f"{args.idle:g} s idle; kept = idle - before; ×: over 'before'. {os.cpu_count()} CPUs, Python "
        f"{sys.version.split()[0]}.",
        markup=False,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory_burst",
        description="RSS of the proxy across bursts of huge-URL requests, beside bare mitmdump.",
    )
    add = parser.add_argument
    add("--requests", type=int, default=100, metavar="N", help="requests per burst (default: 100)")
    add("--bursts", type=int, default=3, metavar="N", help="bursts per proxy (default: 3)")
    add("--concurrency", type=int, default=8, metavar="N", help="connections at a time (default: 8)")
    add("--url-kib", type=int, default=1024, metavar="KIB", help="length of each URL (default: 1024)")
    add(
        "--idle",
        type=float,
        default=3.0,
        metavar="S",
        help="idle seconds before the last reading (default: 3)",
    )
    add("--settle", type=float, default=1.0, metavar="S", help="seconds after start-up (default: 1)")
    add("--variant", action="append", choices=VARIANTS, help=f"repeatable (default: {', '.join(VARIANTS)})")
    add("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if min(args.requests, args.bursts, args.concurrency, args.url_kib) < 1 or min(args.idle, args.settle) < 0:
        parser.error("counts must be at least 1, seconds at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every chosen variant in turn and print the table (or JSON)."""
    args = parse_args(argv)
    variants = build_variants()
    console = Console(stderr=True)
    rows: list[Row] = []
    try:
        with serve(page("memory bench")) as upstream, console.status("starting") as status:
            for key in args.variant or VARIANTS:
                rows.append(measure(variants[key], args, upstream.port, status.update))
    except BenchError as e:
        print(f"bench.memory_burst: {e}", file=sys.stderr)
        return 1
    if args.json:
        report: dict[str, Any] = {
            "settings": vars(args),
            "rows": [asdict(r) | {"kept": r.kept} for r in rows],
        }
        print(json.dumps(report, indent=2))
    else:
        print_table(rows, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
