"""The engine benchmark's report: which number of which measurement each row shows, port443's targets, the table.

Pure data in, rows and text out: `bench.engine` collects the measurements, this module only arranges them.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from rich.console import Console
from rich.table import Table

MIB = 1024 * 1024
TARGET_CACHED_LOAD_S = 0.200
TARGET_RSS_BYTES = 40 * MIB
TARGET_URLS_PER_S = 170_000
# Issue 12's targets are ratios to the baseline measured in the same run (a shared machine's speed varies).
TARGET_FIRST_PASS_RATIO = 1.5
TARGET_CLI_RATIO = 2.5

Result = dict[str, Any]


class Metric(NamedTuple):
    """One row of the report: where each engine's number is in the results, and port443's target."""

    key: str
    label: str
    unit: str  # "s", "B", "/s" or "%"
    port443: tuple[str, ...] | None  # path into port443's results; None: no such number for port443
    baseline: tuple[str, ...] | str  # path into the baseline's results, or why it has no such number
    target: float | None = None
    higher_is_better: bool = False
    note: str = ""
    target_ratio: float | None = None
    """port443's number over the baseline's must reach this (higher is better), instead of `target`."""


METRICS = (
    Metric(
        "import_s",
        "import",
        "s",
        ("cached", "import_s"),
        ("cold", "import_s"),
        note="baseline imports requests",
    ),
    Metric(
        "load_cold_s",
        "load, cold",
        "s",
        ("cold", "load_s"),
        ("cold", "load_s"),
        note="port443: YAML -> index, writes the cache; baseline: default.rulesets JSON -> dict",
    ),
    Metric(
        "load_cached_s",
        "load, cached",
        "s",
        ("cached", "load_s"),
        "n/a: no compiled cache; its cache dir only keeps the downloaded JSON, which 'load, cold' reads",
        TARGET_CACHED_LOAD_S,
    ),
    Metric(
        "rss_delta",
        "RSS delta, import + load",
        "B",
        ("cached", "rss_delta"),
        ("cold", "rss_delta"),
        TARGET_RSS_BYTES,
        note="port443: cached load; baseline: its only load path",
    ),
    Metric("rss_peak_delta", "RSS peak delta", "B", ("cached", "peak_delta"), ("cold", "peak_delta")),
    Metric("rss_delta_cold", "RSS delta, cold build", "B", ("cold", "rss_delta"), ("cold", "rss_delta")),
    Metric(
        "rss_peak_delta_cold",
        "RSS peak delta, cold build",
        "B",
        ("cold", "peak_delta"),
        ("cold", "peak_delta"),
    ),
    Metric(
        "urls_per_s",
        "URLs/s",
        "/s",
        ("urls", "urls_per_s"),
        ("urls", "urls_per_s"),
        TARGET_URLS_PER_S,
        higher_is_better=True,
        note="port443: rewrite_url (canonicalises); baseline: https_url_rewrite",
    ),
    Metric(
        "urls_per_s_requests",
        "URLs/s, via requests",
        "/s",
        None,
        ("urls_requests", "urls_per_s"),
        higher_is_better=True,
        note="baseline as a requests session runs it: PreparedRequest.prepare_url + adapter.get_redirect",
    ),
    Metric(
        "first_pass_large",
        "first pass, fresh process (74k URLs)",
        "/s",
        ("first", "first_pass_urls_per_s"),
        ("first", "first_pass_urls_per_s"),
        higher_is_better=True,
        target_ratio=TARGET_FIRST_PASS_RATIO,
        note="one pass right after loading (port443: from its warm compiled cache), each engine's lazy "
        "per-ruleset work included; the large list of bench/engine_urls.py",
    ),
    Metric(
        "best_pass_large",
        "URLs/s, best pass (74k URLs)",
        "/s",
        ("first", "best_pass_urls_per_s"),
        ("first", "best_pass_urls_per_s"),
        higher_is_better=True,
        note="the best of the passes after the first, in the same process",
    ),
    Metric(
        "cli_warm",
        "rewrite --json, warm (74k URLs)",
        "/s",
        ("cli", "warm_urls_per_s"),
        ("first", "best_pass_urls_per_s"),
        higher_is_better=True,
        target_ratio=TARGET_CLI_RATIO,
        note="port443: the whole `port443 rewrite --json` command, URLs on stdin, JSON lines out, at its warm "
        "rate (the list 5 times over minus once); baseline: its best pass over the same URLs",
    ),
    Metric(
        "cli_run",
        "rewrite --json, one run (74k URLs)",
        "/s",
        ("cli", "run_urls_per_s"),
        "n/a: no command line",
        higher_is_better=True,
        note="port443: the list once: start, load from the warm cache, first-use compiling, output",
    ),
    Metric(
        "agreement",
        "oracle agreement",
        "%",
        ("urls", "agreement"),
        ("urls", "agreement"),
        higher_is_better=True,
    ),
    Metric(
        "agreement_requests",
        "oracle agreement, via requests",
        "%",
        None,
        ("urls_requests", "agreement"),
        higher_is_better=True,
    ),
)


def build_rows(p4: Result, base: Result) -> list[Result]:
    """The comparison table as data: one row per metric in METRICS."""
    rows: list[Result] = []
    for m in METRICS:
        p_val, p_why = _value("port443", p4, m.port443)
        b_val, b_why = _value("baseline", base, m.baseline)
        ratio = p_val / b_val if p_val is not None and b_val and m.unit != "%" else None
        meets = None
        if m.target is not None and p_val is not None:
            meets = p_val >= m.target if m.higher_is_better else p_val <= m.target
        elif m.target_ratio is not None and ratio is not None:
            meets = ratio >= m.target_ratio
        rows.append(
            {
                "key": m.key,
                "label": m.label,
                "unit": m.unit,
                "port443": p_val,
                "baseline": b_val,
                "ratio": ratio,
                "target": m.target,
                "target_ratio": m.target_ratio,
                "higher_is_better": m.higher_is_better,
                "meets_target": meets,
                "note": "; ".join(why for why in (p_why, b_why) if why) or m.note,
            }
        )
    return rows


def _value(engine: str, result: Result, path: tuple[str, ...] | str | None) -> tuple[float | None, str]:
    """One engine's number for a metric, or None and the reason it has none."""
    if path is None:
        return None, ""
    if "error" in result:
        return None, f"{engine}: {'skipped' if result['error'] == 'skipped' else 'not available'}"
    if isinstance(path, str):
        return None, f"{engine}: {path}"
    node: Any = result
    for key in path:
        if isinstance(node, dict) and "error" in node:
            return None, f"{engine}: {node['error']}"
        if not isinstance(node, dict) or key not in node:
            return None, f"{engine}: not measured"
        node = node[key]
    if isinstance(node, int | float) and not isinstance(node, bool):
        return float(node), ""
    return None, f"{engine}: not measured"


def _fmt(value: float | None, unit: str) -> str:
    """A number for people: ms or s, MiB, %, thousands per second."""
    if value is None:
        return "n/a"
    if unit == "s":
        return f"{value * 1000:,.0f} ms" if value < 10 else f"{value:,.1f} s"
    if unit == "B":
        return f"{value / MIB:,.1f} MiB"
    if unit == "%":
        return f"{value * 100:.2f} %"
    return f"{value / 1000:,.1f}k/s"


def print_table(report: Result) -> None:
    """Render the report for people."""
    table = Table(title="port443 rule engine vs https-everywhere 0.2.2", title_justify="left")
    table.add_column("metric")
    for name in ("port443", "baseline", "port443/baseline"):
        table.add_column(name, justify="right")
    table.add_column("target (port443)")
    table.add_column("met")
    table.add_column("note / reason", overflow="fold")
    for row in report["rows"]:
        unit = row["unit"]
        target = (
            ""
            if row["target"] is None
            else ("≥ " if row["higher_is_better"] else "≤ ") + _fmt(row["target"], unit)
        )
        if row.get("target_ratio") is not None:
            target = f"≥ {row['target_ratio']:.2f}× baseline"
        ok = {None: "", True: "[green]yes[/]", False: "[red]no[/]"}[row["meets_target"]]
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f}×"
        table.add_row(
            row["label"],
            _fmt(row["port443"], unit),
            _fmt(row["baseline"], unit),
            ratio,
            target,
            ok,
            row["note"],
        )
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 160  # piped: rich would squeeze the table into 80 columns
    console.print(table)
    for line in report["notes"]:
        console.print(f"[dim]{line}[/]", highlight=False)


def engine_notes(engine: str, result: Result) -> list[str]:
    """Lines under the table: an engine's error, its setup, and URLs that raised."""
    if "error" in result:
        return [] if result["error"] == "skipped" else [f"{engine}: {result['error']}"]
    notes = []
    if "rules_file" in result:
        notes.append(f"{engine} {result['version']}: rules from {result['rules_file']}")
        if result["cold"].get("simplified") is False:
            notes.append(
                f"{engine}: sre_yield is not installed, so _reduce_rules() skips its rule simplification"
            )
    for key in ("urls", "urls_requests"):
        errors = result.get(key, {}).get("errors")
        if errors:
            notes.append(f"{engine} ({key}): URLs that raised, per exception type: {errors}")
    first = result.get("first", {})
    if "urls" in first:
        notes.append(
            f"{engine}: large list of {first['urls']:,} URLs; first pass {first['first_pass_s']:.2f} s"
            + (f", {first['errors']} URLs raised" if first.get("errors") else "")
        )
    cli = result.get("cli", {})
    if "error" in cli:
        notes.append(f"{engine} (rewrite --json): {cli['error']}")
    elif "runs_s" in cli:
        notes.append(
            f"{engine} rewrite --json: the list once {min(cli['runs_s']):.2f} s, {cli['copies']} times "
            f"{min(cli['more_runs_s']):.2f} s (best of {len(cli['runs_s'])}); its answers for the oracle's "
            f"URLs agree {cli['agreement'] * 100:.2f} %"
        )
    return notes
