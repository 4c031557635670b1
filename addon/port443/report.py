"""The insecure-site report: store rows as a table for people, JSON or CSV for scripts."""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, datetime

from port443.store import InsecureSite

FIELDS = ("host", "reason", "detail", "hits", "first_seen", "last_seen", "example_path")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def as_dicts(sites: list[InsecureSite]) -> list[dict[str, object]]:
    """Rows with ISO 8601 UTC timestamps."""
    return [
        {
            "host": s.host,
            "reason": s.reason,
            "detail": s.detail,
            "hits": s.hits,
            "first_seen": _iso(s.first_seen),
            "last_seen": _iso(s.last_seen),
            "example_path": s.example_path,
        }
        for s in sites
    ]


def print_json(sites: list[InsecureSite]) -> None:
    """A JSON list of objects."""
    json.dump(as_dicts(sites), sys.stdout, indent=2)
    sys.stdout.write("\n")


def print_csv(sites: list[InsecureSite]) -> None:
    """CSV with a header row."""
    writer = csv.DictWriter(sys.stdout, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(as_dicts(sites))


def print_table(sites: list[InsecureSite], upgrades: dict[str, int]) -> None:
    """A table sorted by hits, and what was upgraded by which step."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if sites:
        table = Table(title="Sites still on plain HTTP", title_justify="left")
        for column, justify in (
            ("host", "left"),
            ("reason", "left"),
            ("hits", "right"),
            ("last seen (UTC)", "left"),
            ("example", "left"),
        ):
            table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
        for row in as_dicts(sites):
            reason = f"{row['reason']}: {row['detail']}" if row["detail"] else str(row["reason"])
            table.add_row(
                str(row["host"]),
                reason,
                str(row["hits"]),
                str(row["last_seen"]).replace("T", " ")[:19],
                str(row["example_path"]),
            )
        console.print(table)
    else:
        console.print("No insecure sites recorded.")
    if upgrades:
        total = sum(upgrades.values())
        parts = ", ".join(f"{step} {count}" for step, count in upgrades.items())
        console.print(f"Upgraded requests: {total} ({parts})")
