"""Benchmark port443's rule engine against the PyPI package https-everywhere 0.2.2, side by side.

Run from the repository root (`make bench` installs the baseline, the `bench` extra, first):

    .venv/bin/python -m bench.engine                   # a table for people
    .venv/bin/python -m bench.engine --json            # the same numbers for scripts
    .venv/bin/python -m bench.engine --skip-baseline   # port443 only
    .venv/bin/python -m bench.engine --rules DIR --repeat 5

Each engine is measured for
  * import time and load time, cold and cached. port443 cold: build from the YAML rules into a fresh, empty
    cache directory; cached: a new process loading what that build wrote. Baseline: `_get_rulesets()` over
    its `default.rulesets` JSON, written from the same YAML rules (bench/baseline.py). It has no compiled
    cache, so its cached row is n/a;
  * RSS: VmRSS before the import and after the load, plus the peak (VmHWM), in the load process;
  * URLs/s in a single process over the oracle URL list (tests/data/oracle/rewrite-public.jsonl.gz, field
    `url`). The request path is used end to end: port443 `rewrite_url(url, index)` (canonicalisation
    included), baseline `https_url_rewrite(url)`. One untimed pass warms the lazily compiled regexes and
    is checked against the oracle's `expect`; then each timed round repeats the list for at least
    `--min-round` seconds;
  * agreement with the oracle (share of URLs whose answer equals `expect`), as context;
  * over a larger list, the size of the oracle's held-out one (bench/engine_urls.py): the first pass in a
    fresh process right after loading, lazy per-ruleset work included, then the best of `--repeat` passes;
    and port443's `rewrite --json` command over it (see `bench_cli`).
The baseline is also timed the way a requests session drives it (`PreparedRequest.prepare_url`, then
`HTTPSEverywhereOnlyAdapter.get_redirect`), as an extra row. Every measurement runs in its own fresh
subprocess (bench/engine_measure.py), so RSS is clean. `--repeat N` (default 3) runs each load
measurement in N processes and times N throughput rounds; medians are reported. port443's cold build
stops repeating once its runs have taken a minute. port443 is also checked against its targets (see
bench/engine_report.py); the exit status stays 0 either way. Linux only (/proc/self/status).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import baseline
from bench.engine_measure import large_list
from bench.engine_report import (
    TARGET_CACHED_LOAD_S,
    TARGET_CLI_RATIO,
    TARGET_FIRST_PASS_RATIO,
    TARGET_RSS_BYTES,
    TARGET_URLS_PER_S,
    build_rows,
    engine_notes,
    print_table,
)
from port443.engine.shipped import shipped_rules_path
from port443.errors import RulesetError
from tests.conformance.oracle import REWRITES, records

REPO = Path(__file__).resolve().parents[1]
COLD_BUDGET_S = 60.0  # stop repeating port443's cold build once the runs so far took this long
SUBPROCESS_TIMEOUT_S = 300.0
CLI_COPIES = 9  # `rewrite --json` is also fed the large list this many times over: its warm rate

Result = dict[str, Any]
Say = Callable[[str], None]


def _spawn(
    kind: str, args: argparse.Namespace, *, cache_dir: Path | None = None, xdg: Path | None = None
) -> Result:
    """Run one measurement in a fresh interpreter and return its JSON, or {"error": ...}.

    `xdg` becomes the child's XDG_CACHE_HOME: where the baseline finds its `default.rulesets`.
    """
    command = [sys.executable, "-m", "bench.engine_measure", kind, "--rounds", str(args.repeat)]
    command += ["--oracle", str(args.oracle), "--min-round", str(args.min_round)]
    if args.urls is not None:
        command += ["--urls", str(args.urls)]
    if kind.endswith(":port443"):
        command += ["--rules", str(args.rules)]
    if cache_dir is not None:
        command += ["--cache-dir", str(cache_dir)]
    env = dict(os.environ)
    if xdg is not None:
        env["XDG_CACHE_HOME"] = str(xdg)
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            command, cwd=REPO, capture_output=True, text=True, env=env, timeout=SUBPROCESS_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {SUBPROCESS_TIMEOUT_S:.0f} s"}
    wall = time.perf_counter() - started
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        return {"error": f"failed: {tail[0]}"}
    result: Result = json.loads(lines[-1])
    result["wall_s"] = wall
    return result


def _median_runs(runs: list[Result]) -> Result:
    """Combine repeated load runs: the median of each number, plus every run's raw values."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return runs[0]
    combined: Result = dict(ok[len(ok) // 2])
    for key, value in ok[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            combined[key] = statistics.median(r[key] for r in ok)
    combined["runs"] = len(ok)
    combined["load_s_runs"] = [r["load_s"] for r in ok]
    return combined


def _cold_builds(args: argparse.Namespace, tmp: Path, say: Say) -> tuple[list[Result], Path]:
    """port443's cold builds, each into a fresh cache; returns them and the cache the last one filled."""
    colds: list[Result] = []
    spent = 0.0
    cache_dir = tmp / "cache-0"
    for i in range(args.repeat):
        say(f"port443: cold build from YAML {i + 1}/{args.repeat}")
        cache_dir = tmp / f"cache-{i}"
        cache_dir.mkdir()
        run = _spawn("load:port443", args, cache_dir=cache_dir)
        colds.append(run)
        if "error" in run:
            break
        spent += run["wall_s"]
        if spent > COLD_BUDGET_S:
            break
    return colds, cache_dir


def bench_port443(args: argparse.Namespace, say: Say) -> Result:
    """All port443 measurements: cold builds, cached loads, throughput."""
    out: Result = {"rules": str(args.rules)}
    with tempfile.TemporaryDirectory(prefix="port443-bench-") as tmp:
        colds, cache_dir = _cold_builds(args, Path(tmp), say)
        if "error" in colds[-1]:
            out["error"] = colds[-1]["error"]
            return out
        out["cold"] = _median_runs(colds)
        if out["cold"]["runs"] < args.repeat:
            out["cold"]["note"] = (
                f"{out['cold']['runs']} run(s): the cold builds took > {COLD_BUDGET_S:.0f} s"
            )
        # The last cold build filled cache_dir; every cached run is a new process reading it.
        cached: list[Result] = []
        for i in range(args.repeat):
            say(f"port443: load from the compiled cache {i + 1}/{args.repeat}")
            cached.append(_spawn("load:port443", args, cache_dir=cache_dir))
        out["cached"] = _median_runs(cached)
        say("port443: URLs/s over the oracle list")
        out["urls"] = _spawn("urls:port443", args, cache_dir=cache_dir)
        say("port443: first pass over the large list, in a fresh process")
        out["first"] = _spawn("first:port443", args, cache_dir=cache_dir)
        out["cli"] = bench_cli(args, Path(tmp), say)
    return out


def bench_cli(args: argparse.Namespace, tmp: Path, say: Say) -> Result:
    """`port443 rewrite --json` over the large list, as a script runs it: a new process, URLs on stdin.

    Its warm rate is what more copies of the list add: (CLI_COPIES copies - 1 copy) / the time between, so
    neither the start nor the first use of each ruleset counts; one run over one copy is reported too. Each
    is the fastest of `--repeat` runs, its output discarded (/dev/null: the command's work, not the disk's).
    The untimed first run, which fills the command's compiled cache, writes a file that is checked: one JSON
    object per URL, in order, and the oracle's answer for each of its URLs.
    """
    cases = list(records(args.oracle))[: args.urls]
    urls = large_list(args)
    once, many, output = tmp / "urls.txt", tmp / f"urls-{CLI_COPIES}.txt", tmp / "rewrite.jsonl"
    once.write_text("".join(u + "\n" for u in urls), encoding="utf-8")
    many.write_text(once.read_text(encoding="utf-8") * CLI_COPIES, encoding="utf-8")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "xdg")}  # the CLI's own cache, warmed below
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "addon"), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "port443", "rewrite", "--json", "--rules", str(args.rules)]
    try:
        say("port443: rewrite --json, filling its compiled cache")
        _run_cli(command, env, once, output)
        runs, longer = [], []
        for i in range(args.repeat):
            say(f"port443: rewrite --json over the large list {i + 1}/{args.repeat}")
            runs.append(_run_cli(command, env, once, None))
            longer.append(_run_cli(command, env, many, None))
    except (OSError, subprocess.SubprocessError) as e:
        return {"error": f"failed: {e}"}
    one, more = min(runs), min(longer)
    result: Result = {"urls": len(urls), "copies": CLI_COPIES, "runs_s": runs, "more_runs_s": longer}
    result["run_urls_per_s"] = len(urls) / one
    if more > one:
        result["warm_urls_per_s"] = (CLI_COPIES - 1) * len(urls) / (more - one)
    result["agreement"] = _cli_agreement(output, urls, cases)
    return result


def _run_cli(command: list[str], env: dict[str, str], stdin: Path | None, stdout: Path | None) -> float:
    """Run the command once, stdin from a file, stdout to a file (or discarded); its wall time.

    Raises:
        subprocess.CalledProcessError: when it fails.
    """
    with open(stdin or os.devnull, "rb") as source, open(stdout or os.devnull, "wb") as sink:
        started = time.perf_counter()
        subprocess.run(
            command,
            cwd=REPO,
            env=env,
            stdin=source,
            stdout=sink,
            stderr=subprocess.PIPE,
            timeout=SUBPROCESS_TIMEOUT_S,
            check=True,
        )
        return time.perf_counter() - started


def _cli_agreement(output: Path, urls: list[str], cases: list[Result]) -> float:
    """The share of the oracle's URLs the command answered as the oracle does (0 if the output is malformed)."""
    lines = output.read_text(encoding="ascii").splitlines()  # --json output is ASCII
    rows = [json.loads(line) for line in lines]
    if [row["url"] for row in rows] != urls:
        return 0.0
    results = {row["url"]: row["result"] for row in rows}
    agree = sum(1 for case in cases if results.get(case["url"], "missing") == case["expect"])
    return agree / len(cases) if cases else 0.0


def bench_baseline(args: argparse.Namespace, say: Say) -> Result:
    """All baseline measurements: load from default.rulesets, throughput via https_url_rewrite and via requests."""
    try:
        import https_everywhere
    except ImportError as e:
        return {"error": f"not available: {e} (pip install -e '.[bench]')"}
    say("baseline: writing default.rulesets from the YAML rules (once per set of rules)")
    try:
        xdg, built = baseline.baseline_home(args.rules)
    except (OSError, RulesetError) as e:  # an invalid ruleset, an unwritable cache dir
        return {"error": f"cannot write default.rulesets from {args.rules}: {type(e).__name__}: {e}"}
    out: Result = {
        "version": https_everywhere.__version__,
        "rules_file": str(baseline.rules_file(xdg)),
        "rules_file_built_now": built,
    }
    runs = []
    for i in range(args.repeat):
        say(f"baseline: load from default.rulesets {i + 1}/{args.repeat}")
        runs.append(_spawn("load:baseline", args, xdg=xdg))
    out["cold"] = _median_runs(runs)
    say("baseline: URLs/s over the oracle list (https_url_rewrite)")
    out["urls"] = _spawn("urls:baseline", args, xdg=xdg)
    say("baseline: URLs/s over the oracle list (requests prepare_url + adapter)")
    out["urls_requests"] = _spawn("urls:baseline-requests", args, xdg=xdg)
    say("baseline: first pass over the large list, in a fresh process")
    out["first"] = _spawn("first:baseline", args, xdg=xdg)
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; `--rules` defaults to the shipped rules."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.engine",
        description="Benchmark port443's rule engine against https-everywhere 0.2.2.",
    )
    parser.add_argument(
        "--rules",
        metavar="DIR",
        type=Path,
        help="ruleset folder for both engines (default: the shipped rules)",
    )
    parser.add_argument(
        "--oracle",
        metavar="FILE",
        type=Path,
        default=REWRITES,
        help="URL list (default: tests/data/oracle/rewrite-public.jsonl.gz)",
    )
    parser.add_argument(
        "--urls", metavar="N", type=int, help="use only the first N URLs of the list (default: all)"
    )
    parser.add_argument(
        "--repeat", metavar="N", type=int, default=3, help="processes per load, timed rounds (default: 3)"
    )
    parser.add_argument(
        "--min-round",
        metavar="S",
        type=float,
        default=1.0,
        help="seconds each timed round runs at least (default: 1)",
    )
    parser.add_argument("--skip-baseline", action="store_true", help="measure port443 only")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.repeat < 1 or (args.urls is not None and args.urls < 1) or args.min_round <= 0:
        parser.error("--repeat and --urls must be at least 1, --min-round above 0")
    if args.rules is None:
        args.rules = shipped_rules_path()
    args.rules = args.rules.resolve()
    if not args.rules.is_dir():
        parser.error(f"--rules: no such folder: {args.rules}")
    if not args.oracle.is_file():
        parser.error(f"--oracle: no such file: {args.oracle}")
    return args


def report(args: argparse.Namespace, p4: Result, base: Result, seconds: float) -> Result:
    """Everything measured, the table's rows and the notes under it."""
    notes = [
        f"rules: {args.rules}; URLs: {args.oracle} ({args.urls or 'all'}); Python {sys.version.split()[0]}; "
        f"{os.cpu_count()} CPUs; --repeat {args.repeat} (medians); took {seconds:.0f} s",
        *engine_notes("port443", p4),
        *engine_notes("baseline", base),
    ]
    return {
        "rows": build_rows(p4, base),
        "port443": p4,
        "baseline": base,
        "targets": {
            "load_cached_s": TARGET_CACHED_LOAD_S,
            "rss_bytes": TARGET_RSS_BYTES,
            "urls_per_s": TARGET_URLS_PER_S,
            "first_pass_ratio": TARGET_FIRST_PASS_RATIO,
            "cli_warm_ratio": TARGET_CLI_RATIO,
        },
        "meta": {
            "python": sys.version,
            "cpus": os.cpu_count(),
            "repeat": args.repeat,
            "oracle": str(args.oracle),
        },
        "notes": notes,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Measure both engines and print the table (or JSON)."""
    args = parse_args(argv)
    started = time.perf_counter()
    with Console(stderr=True).status("starting") as status:
        p4 = bench_port443(args, status.update)
        base: Result = {"error": "skipped"}
        if not args.skip_baseline:
            base = bench_baseline(args, status.update)
    result = report(args, p4, base, time.perf_counter() - started)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
