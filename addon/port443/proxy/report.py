"""The insecure-site report: store rows as a table for people, JSON or CSV for scripts."""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, datetime

from port443.proxy.store import InsecureSite

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
