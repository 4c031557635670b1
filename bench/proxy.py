"""Benchmark port443 in mitmdump against bare mitmdump on identical keep-alive traffic, in the same run.

Run from the repository root (the venv needs the dev extras, for trustme; `wrk` is used when installed):

    .venv/bin/python -m bench.proxy                        # a table for people (3 to 4 minutes)
    .venv/bin/python -m bench.proxy --json                 # the same numbers for scripts
    .venv/bin/python -m bench.proxy --scenario rewrite --concurrency 16 --duration 10 --rounds 5
    .venv/bin/python -m bench.proxy --client python        # no wrk: the asyncio client for everything

The scenarios (redirect, rewrite, tunnel) are described in bench/proxy_scenarios.py. Each proxy process is
started fresh for its scenario (tests/support/proxy.py, which waits for its ready line) and stopped with
SIGTERM at its end. Fake names: bench/helper_addon.py resolves bench.test:80 and :443 to the upstreams'
loopback ports (bench/proxy_upstream.py, a process of its own). A "direct" row per scenario and
concurrency runs the same client straight against the upstream: the ceiling of client + upstream.

Method: per concurrency, `--rounds` rounds alternate the proxies (A B, then B A, ...), each phase a
`--warmup` on fresh connections and then `--duration` seconds measured on new ones. Reported: median req/s
and its spread, p50 and p99 latency, the proxy's CPU time per request, and port443's req/s over the
baseline's (target: >= 0.95x). Only 127.0.0.1 is contacted; every phase is bounded in time. Linux only
(/proc, prctl). Exit status: 0 whether or not targets are met, 1 when a proxy or upstream fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.proxy_load import (
    Measurement,
    fetch_once,
    plain_connector,
    run_python,
    run_wrk,
    tls_connector,
    tunnel_connector,
)
from bench.proxy_report import (
    TARGET_RATIO,
    Row,
    busy_share,
    cpu_seconds,
    cpu_times,
    pct,
    print_table,
    steal_share,
)
from bench.proxy_scenarios import SCENARIOS, Scenario, Variant, build_scenarios, proxy_argv, write_fixtures
from bench.proxy_traffic import PATHS, BenchError, proxy_request, tunnel_request
from bench.proxy_upstream import upstreams
from tests.support.proxy import Proxy, start

DIRECT_DURATION_S = 1  # the ceiling row: one short run, no warm-up


def stop_proxy(proxy: Proxy) -> int:
    """SIGTERM and wait (tests/support's stop); SIGKILL only if it does not stop in time. Returns the exit code."""
    try:
        return proxy.stop()
    except subprocess.TimeoutExpired:
        proxy.process.kill()
        code = proxy.process.wait()
        if proxy.process.stdout is not None:
            proxy.process.stdout.close()
        return code


class Bench:
    """One run: its settings, temp files and upstream ports, and the notes it collects."""

    def __init__(
        self, args: argparse.Namespace, tmp: Path, ports: dict[str, int], say: Callable[[str], None]
    ) -> None:
        self.args = args
        self.tmp = tmp
        self.ports = ports
        self.say = say
        self.wrk: str | None = None if args.client == "python" else shutil.which("wrk")
        if args.client == "wrk" and self.wrk is None:
            raise BenchError("--client wrk: wrk is not installed (apt-get install wrk)")
        self.client_tls = ssl.create_default_context(cafile=str(tmp / "ca.pem"))
        self.client_tls.set_alpn_protocols(["http/1.1"])
        self.env = {"XDG_CACHE_HOME": str(tmp / "xdg-cache"), "XDG_DATA_HOME": str(tmp / "xdg-data")}
        self.notes: list[str] = []

    def measure(
        self, scenario: Scenario, port: int, concurrency: int, seconds: int, *, direct: bool
    ) -> Measurement:
        """One load run against `port`: a proxy, or with `direct` the upstream itself."""
        if scenario.tunnel:
            tls = self.client_tls
            connect = tls_connector(port, tls) if direct else tunnel_connector(port, tls)
            return run_python(connect, tunnel_request, concurrency, seconds, scenario.status)
        if self.wrk is not None:
            return run_wrk(self.wrk, port, concurrency, seconds)
        return run_python(plain_connector(port), proxy_request, concurrency, seconds, scenario.status)

    def phase(
        self, scenario: Scenario, proxy: Proxy | None, port: int, concurrency: int, seconds: int
    ) -> Measurement:
        """Warm-up on fresh connections, then the measured run on new ones, with the proxy's CPU time."""
        direct = proxy is None
        if self.args.warmup > 0 and not direct:
            self.measure(scenario, port, concurrency, self.args.warmup, direct=direct)
        before = cpu_seconds(proxy.process.pid) if proxy is not None else None
        result = self.measure(scenario, port, concurrency, seconds, direct=direct)
        after = cpu_seconds(proxy.process.pid) if proxy is not None else None
        if before is not None and after is not None and result.requests:
            result.cpu_us_per_request = (after - before) / result.requests * 1e6
        if proxy is not None and proxy.process.poll() is not None:
            raise BenchError(
                f"{scenario.name}: mitmdump exited with {proxy.process.returncode}:\n{proxy.log[-2000:]}"
            )
        return result

    def check(self, scenario: Scenario, variant: Variant, proxy: Proxy) -> bytes:
        """One request before measuring: the response must come from where the variant says."""
        if scenario.tunnel:
            connect = tunnel_connector(proxy.port, self.client_tls)
            status, head, body = asyncio.run(fetch_once(connect, tunnel_request(PATHS.take())))
        else:
            status, head, body = asyncio.run(
                fetch_once(plain_connector(proxy.port), proxy_request(PATHS.take()))
            )
        if status != scenario.status or variant.marker not in head + body:
            raise BenchError(
                f"{scenario.name}/{variant.key}: unexpected answer {head[:200]!r}...{body[:200]!r}\n{proxy.log[-2000:]}"
            )
        return head + body

    def start_proxies(self, scenario: Scenario) -> dict[str, Proxy]:
        """Every variant's mitmdump, started side by side; if one fails, the others are stopped again."""
        with ThreadPoolExecutor(len(scenario.variants)) as pool:
            futures = {v.key: pool.submit(self._start, scenario, v) for v in scenario.variants}
        started = {key: f.result() for key, f in futures.items() if f.exception() is None}
        failed = [e for f in futures.values() if (e := f.exception()) is not None]
        if failed:
            for proxy in started.values():
                stop_proxy(proxy)
            raise failed[0]
        return started

    def _start(self, scenario: Scenario, variant: Variant) -> Proxy:
        argv = proxy_argv(variant, scenario, self.ports, self.tmp)
        try:
            return start(argv, self.tmp / "ca.pem", env=self.env)
        except AssertionError as e:  # how tests/support's launcher reports a proxy that did not start
            raise BenchError(f"{scenario.name}/{variant.key}: {e}") from e

    def run_scenario(self, scenario: Scenario) -> list[Row]:
        """Start the scenario's proxies, check who answers, measure every concurrency, check again, stop."""
        self.say(f"{scenario.name}: starting proxies")
        proxies = self.start_proxies(scenario)
        try:
            self.notes += scenario.notes
            sizes = {v.key: len(self.check(scenario, v, proxies[v.key])) for v in scenario.variants}
            if len(set(sizes.values())) > 1:
                self.notes.append(f"{scenario.name}: response sizes differ (bytes, head + body): {sizes}")
            rows = [row for c in self.args.concurrency for row in self._measure_at(scenario, proxies, c)]
            for v in scenario.variants:  # still answering from where it should (no fallback mid-run)
                self.check(scenario, v, proxies[v.key])
            return rows
        finally:
            for key, proxy in proxies.items():
                code = stop_proxy(proxy)
                if code not in (0, -signal.SIGTERM):
                    self.notes.append(f"{scenario.name}/{key}: mitmdump exited with {code} on SIGTERM")

    def _measure_at(self, scenario: Scenario, proxies: dict[str, Proxy], c: int) -> list[Row]:
        """The direct ceiling, then `--rounds` rounds alternating the proxies, at concurrency `c`."""
        direct = Row(scenario.name, c, "direct", "direct (ceiling)")
        self.say(f"{scenario.name} c={c}: direct (client + upstream ceiling)")
        direct.rounds.append(self.phase(scenario, None, scenario.direct_port, c, DIRECT_DURATION_S))
        by_key = {v.key: Row(scenario.name, c, v.key, v.label) for v in scenario.variants}
        for r in range(self.args.rounds):
            order = scenario.variants if r % 2 == 0 else tuple(reversed(scenario.variants))
            for v in order:
                self.say(f"{scenario.name} c={c} round {r + 1}/{self.args.rounds}: {v.label}")
                proxy = proxies[v.key]
                by_key[v.key].rounds.append(self.phase(scenario, proxy, proxy.port, c, self.args.duration))
        _compare(by_key, scenario.baseline)
        others = [by_key[v.key] for v in scenario.variants if v.key != "port443"]
        return [direct, *others, by_key["port443"]]


def _compare(by_key: dict[str, Row], baseline: str) -> None:
    """port443 against every other row: on port443's row against the baseline, on the others' own rows."""
    p443 = by_key["port443"]
    for row in by_key.values():
        if row.variant == "port443":
            continue
        ratio, spread, cpu = p443.compare(row)
        if row.variant == baseline:
            p443.ratio, p443.ratio_range, p443.cpu_ratio, p443.ratio_to = ratio, spread, cpu, row.variant
            p443.meets_target = None if ratio is None else ratio >= TARGET_RATIO
        else:  # context: port443 against this row, shown on this row
            row.ratio, row.ratio_range, row.cpu_ratio, row.ratio_to = ratio, spread, cpu, "this row"


def _csv_ints(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from e
    if not values or any(not 1 <= v <= 1024 for v in values):
        raise argparse.ArgumentTypeError("concurrency values must be between 1 and 1024")
    return values


def _csv_scenarios(text: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown scenario {unknown}; choose from {', '.join(SCENARIOS)}")
    return names


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.proxy",
        description="Benchmark port443 in mitmdump against bare mitmdump, side by side.",
    )
    add = parser.add_argument
    add("--duration", type=int, default=2, metavar="S", help="seconds per measured phase (default: 2)")
    add(
        "--warmup", type=int, default=1, metavar="S", help="seconds of warm-up before each phase (default: 1)"
    )
    add(
        "--rounds",
        type=int,
        default=3,
        metavar="N",
        help="alternating rounds; medians are reported (default: 3)",
    )
    add(
        "--concurrency",
        type=_csv_ints,
        default=[1, 16, 64],
        metavar="LIST",
        help="connections (default: 1,16,64)",
    )
    add(
        "--scenario",
        type=_csv_scenarios,
        default=list(SCENARIOS),
        metavar="LIST",
        help="default: redirect,rewrite,tunnel",
    )
    add(
        "--client",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator for plain HTTP (default: wrk if installed)",
    )
    add("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 0 or args.rounds < 1:
        parser.error("--duration and --rounds must be at least 1, --warmup at least 0")
    return args


def run(args: argparse.Namespace, console: Console) -> tuple[list[Row], Bench]:
    """Fixtures, upstreams, then every chosen scenario in turn."""
    with (
        tempfile.TemporaryDirectory(prefix="port443-bench-proxy-") as tmp_name,
        console.status("starting") as status,
    ):
        tmp = Path(tmp_name)
        write_fixtures(tmp)
        with upstreams(tmp / "server.pem") as ports:
            bench = Bench(args, tmp, ports, status.update)
            scenarios = build_scenarios(ports, tmp)
            rows = [row for name in args.scenario for row in bench.run_scenario(scenarios[name])]
    return rows, bench


def report(
    args: argparse.Namespace, rows: list[Row], bench: Bench, noise: dict[str, float | None]
) -> dict[str, Any]:
    """Everything measured, and the notes under the table."""
    client = "asyncio client" if bench.wrk is None else f"wrk ({bench.wrk}, 1 thread)"
    notes = [
        f"load: {client} for redirect/rewrite, the asyncio client for tunnel; {args.duration} s measured after "
        f"{args.warmup} s warm-up per phase; {args.rounds} rounds alternating the proxies; medians; ± = half "
        f"the range of req/s over rounds. 'direct': the client straight to the upstream, {DIRECT_DURATION_S} s, "
        "the ceiling the proxies are measured under.",
        "port443 req/s ×: port443's median req/s over this row's (on port443's row: over the scenario's "
        "baseline, its first bare row), with the lowest and highest per-round ratio; port443 CPU ×: this row's CPU "
        "per request over port443's (above 1: port443 costs less). CPU µs/req: the mitmdump process's utime + "
        f"stime per request. Target: port443 >= {TARGET_RATIO}x the baseline's req/s.",
        *bench.notes,
        f"noise: {os.cpu_count()} CPUs, {pct(noise['background'])} of them busy before the run started (other "
        f"tenants of the machine); steal time during the run {pct(noise['steal'])}. Python "
        f"{sys.version.split()[0]}; took {noise['seconds']:.0f} s.",
    ]
    meta = {
        "client": client,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "cpus": os.cpu_count(),
        "python": sys.version,
        "background_busy": noise["background"],
        "steal": noise["steal"],
    }
    return {"rows": [r.as_dict() for r in rows], "target_ratio": TARGET_RATIO, "meta": meta, "notes": notes}


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every chosen scenario and print the table (or JSON)."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up children on SIGTERM too
    console = Console(stderr=True)
    started = time.perf_counter()
    with console.status("measuring the machine's background load (1 s)"):
        background = busy_share(1.0)
    stat_before = cpu_times()
    try:
        rows, bench = run(args, console)
    except BenchError as e:
        print(f"bench.proxy: {e}", file=sys.stderr)
        return 1
    noise = {
        "background": background,
        "steal": steal_share(stat_before, cpu_times()),
        "seconds": time.perf_counter() - started,
    }
    result = report(args, rows, bench, noise)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
