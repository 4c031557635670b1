"""Smoke runs of the benchmarks that start `port443 run` itself: start-up time and memory after bursts.

As in test_smoke.py: run as a user does, tiny settings, check that every row got its numbers, not what
they are (on a shared machine only ratios mean anything, and not at these sizes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def run_bench(module: str, args: list[str], home: Path) -> Any:
    env = {**os.environ, "XDG_CACHE_HOME": str(home / "cache"), "XDG_DATA_HOME": str(home / "data")}
    done = subprocess.run(
        [sys.executable, "-m", module, *args, "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_startup_benchmark(tmp_path: Path) -> None:
    report = run_bench("bench.startup", ["--repeat", "1"], tmp_path)
    assert set(report["median_s"]) == {"first", "restart", "yaml"}
    assert all(seconds > 0 for seconds in report["median_s"].values())


def test_memory_burst_benchmark(tmp_path: Path) -> None:
    args = ["--requests", "5", "--bursts", "1", "--url-kib", "64", "--idle", "0.5", "--settle", "0.2"]
    report = run_bench("bench.memory_burst", args, tmp_path)
    rows = {row["key"]: row for row in report["rows"]}
    assert set(rows) == {"mitmdump", "port443-untouched", "port443"}
    for row in rows.values():
        assert row["before"] > 0 and len(row["bursts"]) == 1 and row["idle"] > 0, row
        assert row["statuses"] == {"414": 5}, row
