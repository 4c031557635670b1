"""The proxy benchmark's report: rows over rounds, ratios to the baseline, the table, and the machine's noise.

Req/s is the median over rounds with its spread; the proxy's CPU time per request (utime + stime from
/proc) is steadier than req/s on a shared machine, so both are shown. The background load before the run
and the steal time during it are measured too, as the noise the numbers carry. Linux only (/proc).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.proxy_load import Measurement

TARGET_RATIO = 0.95


@dataclass
class Row:
    """One line of the report: a proxy (or the direct ceiling) at one concurrency, over all rounds."""

    scenario: str
    concurrency: int
    variant: str
    label: str
    rounds: list[Measurement] = field(default_factory=list)
    ratio: float | None = None
    """port443's median req/s over the compared row's (on the port443 row: over the scenario's baseline)."""
    ratio_range: tuple[float, float] | None = None
    """Lowest and highest of the per-round ratios (rounds pair up: both ran back to back)."""
    cpu_ratio: float | None = None
    """The compared row's CPU time per request over port443's: above 1, port443 costs less."""
    ratio_to: str | None = None
    meets_target: bool | None = None

    def compare(self, other: Row) -> tuple[float | None, tuple[float, float] | None, float | None]:
        """This row (port443) against `other`: median req/s ratio, per-round range, CPU ratio."""
        mine, theirs = self.median("rps"), other.median("rps")
        ratio = mine / theirs if mine is not None and theirs else None
        pairs = [a.rps / b.rps for a, b in zip(self.rounds, other.rounds, strict=False) if b.rps]
        cpu_mine, cpu_theirs = self.median("cpu_us_per_request"), other.median("cpu_us_per_request")
        cpu = cpu_theirs / cpu_mine if cpu_mine and cpu_theirs is not None else None
        return ratio, ((min(pairs), max(pairs)) if pairs else None), cpu

    def median(self, key: str) -> float | None:
        """The median of one Measurement field over the rounds that have it."""
        values = [getattr(m, key) for m in self.rounds]
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    def spread(self) -> float | None:
        """Half the range of req/s over rounds, relative to the median."""
        rates = [m.rps for m in self.rounds]
        if len(rates) < 2 or not statistics.median(rates):
            return None
        return (max(rates) - min(rates)) / 2 / statistics.median(rates)

    def as_dict(self) -> dict[str, Any]:
        """The row for the JSON report and the table."""
        return {
            "scenario": self.scenario,
            "concurrency": self.concurrency,
            "variant": self.variant,
            "label": self.label,
            "rps": self.median("rps"),
            "spread": self.spread(),
            "p50_ms": self.median("p50_ms"),
            "p99_ms": self.median("p99_ms"),
            "cpu_us_per_request": self.median("cpu_us_per_request"),
            "errors": sum(m.errors for m in self.rounds),
            "bad_status": sum(m.bad_status for m in self.rounds),
            "ratio": self.ratio,
            "ratio_range": self.ratio_range,
            "cpu_ratio": self.cpu_ratio,
            "ratio_to": self.ratio_to,
            "meets_target": self.meets_target,
            "rounds": [{**asdict(m), "rps": m.rps} for m in self.rounds],
        }


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    """A number in `spec`, or n/a."""
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def print_table(report: dict[str, Any]) -> None:
    """Render the report for people: one section per scenario and concurrency."""

    table = Table(title="port443 vs bare mitmdump, keep-alive, same run", title_justify="left")
    for name, justify in (
        ("scenario", "left"),
        ("c", "right"),
        ("proxy", "left"),
        ("req/s", "right"),
        ("±", "right"),
        ("p50 ms", "right"),
        ("p99 ms", "right"),
        ("CPU µs/req", "right"),
        ("port443 req/s ×\n(round range)", "right"),
        ("port443\nCPU ×", "right"),
        ("≥ 0.95×", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    previous: tuple[str, int] | None = None
    for row in report["rows"]:
        key = (row["scenario"], row["concurrency"])
        if previous is not None and key != previous:
            table.add_section()
        previous = key
        direct = row["variant"] == "direct"
        style = "dim" if direct else ("bold" if row["variant"] == "port443" else "")
        ratio_text = _fmt(row["ratio"], ".2f", "×")
        if row["ratio_range"] is not None:
            low, high = row["ratio_range"]
            ratio_text += f" ({low:.2f}–{high:.2f})"
        ok = {None: "", True: "[green]yes[/]", False: "[red]NO[/]"}[row["meets_target"]]
        failures = row["errors"] + row["bad_status"]
        label = row["label"] + (f" [red]({failures} errors)[/]" if failures else "")
        table.add_row(
            row["scenario"],
            str(row["concurrency"]),
            label,
            _fmt(row["rps"], ",.0f"),
            _fmt(row["spread"] * 100 if row["spread"] is not None else None, ".1f", "%"),
            _fmt(row["p50_ms"], ".2f"),
            _fmt(row["p99_ms"], ".2f"),
            _fmt(row["cpu_us_per_request"], ",.0f"),
            "" if direct or row["ratio"] is None else ratio_text,
            "" if direct or row["cpu_ratio"] is None else f"{row['cpu_ratio']:.2f}×",
            ok,
            style=style,
        )
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 150  # piped: rich would squeeze the table into 80 columns
    console.print(table)
    for line in report["notes"]:
        console.print(f"[dim]{line}[/]", highlight=False)


# ---------------------------------------------------------------------------------------------------------
# The machine


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process so far (Linux /proc), or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_times() -> list[int] | None:
    """The aggregate `cpu` line of /proc/stat: user nice system idle iowait irq softirq steal ..."""
    try:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None


def busy_share(seconds: float) -> float | None:
    """Share of all CPUs busy over `seconds` while this script does nothing: other tenants' load."""
    before = cpu_times()
    time.sleep(seconds)  # the measurement window itself, not a wait for anything
    after = cpu_times()
    if before is None or after is None:
        return None
    delta = [a - b for a, b in zip(after, before, strict=False)]
    total = sum(delta[:8])
    return (total - delta[3] - delta[4]) / total if total else None


def steal_share(before: list[int] | None, after: list[int] | None) -> float | None:
    """Share of CPU time the hypervisor gave to others between two cpu_times() readings."""
    if before is None or after is None or len(before) < 8:
        return None
    delta = [a - b for a, b in zip(after, before, strict=False)]
    total = sum(delta[:8])
    return delta[7] / total if total else None


def pct(value: float | None) -> str:
    """A share as a whole percentage, or n/a."""
    return "n/a" if value is None else f"{value:.0%}"
