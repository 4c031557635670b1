"""Smoke runs of the benchmarks: tiny settings, a few seconds each, so a renamed option cannot break them unseen.

They run the benchmarks as a user does (`python -m bench.engine`, `bench.proxy`, `bench.startup`,
`bench.memory_burst`) and check that
every row got its numbers, not what the numbers are: on a shared machine only ratios mean anything, and
not at these durations. The engine's baseline is measured only when the `bench` extra is installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.engine_report import print_table as print_engine_table
from bench.proxy_report import print_table as print_proxy_table
from bench.proxy_scenarios import SCENARIOS
from port443.engine.shipped import shipped_rules_path
from tests.conftest import REPO

pytestmark = pytest.mark.slow
SAMPLE = REPO / "tests" / "data" / "importer" / "corpus"
HAS_BASELINE = importlib.util.find_spec("https_everywhere") is not None


def run_bench(module: str, args: list[str], home: Path) -> dict[str, Any]:
    """`python -m MODULE ARGS --json` from the repository root, with a private cache; its JSON report."""
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
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.fixture
def small_rules(tmp_path: Path) -> Path:
    """The shipped YAML of the importer's XML sample: real rulesets, few enough to build in a moment."""
    rules = tmp_path / "rules"
    rules.mkdir()
    for xml in SAMPLE.glob("*.xml"):
        shutil.copy(shipped_rules_path() / f"{xml.stem}.yaml", rules)
    return rules


def test_engine_benchmark(small_rules: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--rules", str(small_rules), "--repeat", "1", "--min-round", "0.01", "--urls", "300"]
    report = run_bench("bench.engine", args + ([] if HAS_BASELINE else ["--skip-baseline"]), tmp_path)
    rows = {row["key"]: row for row in report["rows"]}
    for key in ("import_s", "load_cold_s", "load_cached_s", "rss_delta", "urls_per_s", "agreement"):
        assert rows[key]["port443"] is not None, rows[key]
    assert report["port443"]["urls"]["urls"] == 300
    if HAS_BASELINE:
        for key in ("import_s", "load_cold_s", "urls_per_s", "urls_per_s_requests", "agreement"):
            assert rows[key]["baseline"] is not None, rows[key]
    print_engine_table(report)
    assert "URLs/s" in capsys.readouterr().out


@pytest.mark.e2e
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_proxy_benchmark(scenario: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--scenario", scenario, "--concurrency", "2", "--duration", "1", "--warmup", "0", "--rounds", "1"]
    report = run_bench("bench.proxy", args, tmp_path)
    rows = report["rows"]
    assert {row["variant"] for row in rows} >= {"direct", "port443"}
    for row in rows:
        assert row["rps"], row
        assert (row["errors"], row["bad_status"]) == (0, 0), row
    port443 = next(row for row in rows if row["variant"] == "port443")
    assert port443["ratio"] is not None and port443["cpu_us_per_request"] is not None
    print_proxy_table(report)
    assert scenario in capsys.readouterr().out


@pytest.mark.e2e
def test_startup_benchmark(tmp_path: Path) -> None:
    report = run_bench("bench.startup", ["--repeat", "1"], tmp_path)
    assert set(report["median_s"]) == {"first", "restart", "yaml"}
    assert all(seconds > 0 for seconds in report["median_s"].values())


@pytest.mark.e2e
def test_memory_burst_benchmark(tmp_path: Path) -> None:
    args = ["--requests", "5", "--bursts", "1", "--url-kib", "64", "--idle", "0.5", "--settle", "0.2"]
    report = run_bench("bench.memory_burst", args, tmp_path)
    rows = {row["key"]: row for row in report["rows"]}
    assert set(rows) == {"mitmdump", "port443-untouched", "port443"}
    for row in rows.values():
        assert row["before"] > 0 and len(row["bursts"]) == 1 and row["idle"] > 0, row
        assert row["statuses"] == {"414": 5}, row
