"""How soon `port443 run` serves: a fresh install's first start, a restart, and compiling from YAML beside them.

Each scenario starts a real `port443 run` with its own cache and data directories and times, from the moment
the process is spawned, until the proxy has answered a request that only a ruleset can decide (requests wait
for the rules, so an answer means the whole shipped corpus is active). The baseline, measured in the same run,
is the same start with the corpus given as a copied --rules folder, which has no seed: what every first start
cost before the seed shipped. `--wheel` also builds the wheel and installs it into a new virtualenv, so the
first start is measured exactly as a `pip install` user gets it.

    python -m bench.startup [--repeat N] [--wheel] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import httpx
from rich.console import Console
from rich.table import Table

from port443.engine.shipped import shipped_rules_path

REPO = Path(__file__).resolve().parents[1]
TARGET_FIRST_S = 3.0
TARGET_RESTART_S = 1.0
# A host only a shipped ruleset upgrades (not HSTS-preloaded), asked with rules trusted blindly: no network.
PROBE_URL = "http://www.amazon.in/"
EXPECTED = "https://www.amazon.in/"
_OPTIONS = ("--set", "port443_confirm_rules=false", "--no-dashboard")


class Timing(NamedTuple):
    serving_s: float
    """From spawn to the first upgraded answer."""
    rules_line: str


def serve_time(port443: Path, home: Path, extra: tuple[str, ...] = ()) -> Timing:
    """Start `port443 run`, time it until it upgrades PROBE_URL, stop it."""
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
    }
    port = _free_port()
    argv = [str(port443), "run", "--listen-port", str(port), *_OPTIONS, *extra]
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:  # the start line comes once the listener is up
            if "port443: listening on" in line:
                break
        else:
            raise RuntimeError(f"port443 run exited with {process.wait()} before listening")
        with httpx.Client(proxy=f"http://127.0.0.1:{port}", timeout=120) as client:
            answer = client.get(PROBE_URL)  # held until the rules are loaded
        serving = time.perf_counter() - started
        if answer.headers.get("location") != EXPECTED:
            raise RuntimeError(
                f"expected a redirect to {EXPECTED}, got {answer.status_code} {answer.headers}"
            )
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=30)
    loaded = next((line for line in out.splitlines() if "rulesets loaded" in line), "")
    return Timing(serving, loaded.split("port443: ", 1)[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def installed_wheel(work: Path) -> Path:
    """Build the wheel of this checkout and install it into a new virtualenv; return its `port443` script."""
    wheels = work / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)], check=True
    )
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    wheel = next(wheels.glob("port443-*.whl"))
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], check=True)
    return venv / "bin" / "port443"


def measure(port443: Path, work: Path, repeat: int) -> dict[str, list[Timing]]:
    """Every scenario `repeat` times, interleaved so that the machine's load falls on all alike."""
    corpus = work / "corpus-copy" / "https-everywhere"
    shutil.copytree(shipped_rules_path(), corpus)  # the same files, with no seed beside them
    results: dict[str, list[Timing]] = {"first": [], "restart": [], "yaml": []}
    for n in range(repeat):
        home = work / f"home-{n}"
        results["first"].append(serve_time(port443, home))
        results["restart"].append(serve_time(port443, home))
        cold = ("--set", "port443_shipped_rules=false", "--rules", str(corpus))
        results["yaml"].append(serve_time(port443, work / f"yaml-{n}", cold))
    return results


def report(results: dict[str, list[Timing]], where: str, as_json: bool) -> None:
    medians = {name: statistics.median(t.serving_s for t in runs) for name, runs in results.items()}
    if as_json:
        print(
            json.dumps(
                {
                    "where": where,
                    "median_s": medians,
                    "runs": {k: [t.serving_s for t in v] for k, v in results.items()},
                }
            )
        )
        return
    table = Table(title=f"port443 run: spawn to first upgraded answer ({where})")
    for column in ("start", "median", "vs compiling from YAML", "target", "met", "rules line (last run)"):
        table.add_column(column, justify="left" if column in ("start", "rules line (last run)") else "right")
    rows = (
        ("first start, fresh cache (shipped seed)", "first", TARGET_FIRST_S),
        ("restart, warm cache", "restart", TARGET_RESTART_S),
        ("baseline: first start compiling the YAML", "yaml", None),
    )
    for label, key, target in rows:
        met = "" if target is None else ("yes" if medians[key] <= target else "no")
        table.add_row(
            label,
            f"{medians[key]:.2f} s",
            f"{medians[key] / medians['yaml']:.2f}x",
            "" if target is None else f"<= {target:.1f} s",
            met,
            results[key][-1].rules_line,
        )
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each scenario (default: 3; medians)")
    parser.add_argument(
        "--wheel", action="store_true", help="measure a wheel installed into a new virtualenv"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="port443-startup-") as tmp:
        work = Path(tmp)
        if args.wheel:
            port443, where = installed_wheel(work), "the wheel, installed into a new virtualenv"
        else:
            port443, where = Path(sys.executable).with_name("port443"), "this installation"
        report(measure(port443, work, args.repeat), where, args.json)


if __name__ == "__main__":
    main()
