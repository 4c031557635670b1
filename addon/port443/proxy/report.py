"""The insecure-site report: store rows as JSON or CSV for scripts (the tables for people are cli/render's).

JSON is exact (what the store holds, ASCII-escaped). CSV is for spreadsheets, so its cells are inert:
control characters shown as escapes, and a cell that would start a formula gets a leading `'`.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from port443.proxy.inert import csv_cell
from port443.proxy.store import ClientUse, InsecureSite

FIELDS = ("host", "reason", "detail", "hits", "first_seen", "last_seen", "example_path", "clients")
CLIENT_FIELDS = ("client", "requests", "upgraded", "insecure", "insecure_hosts", "first_seen", "last_seen")


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
            "clients": s.clients,
        }
        for s in sites
    ]


def clients_as_dicts(clients: list[ClientUse]) -> list[dict[str, object]]:
    """Per client address, with ISO 8601 UTC timestamps."""
    return [
        {
            "client": c.address,
            "requests": c.requests,
            "upgraded": c.upgraded,
            "insecure": c.insecure,
            "insecure_hosts": c.insecure_hosts,
            "first_seen": _iso(c.first_seen),
            "last_seen": _iso(c.last_seen),
        }
        for c in clients
    ]


def print_json(sites: list[InsecureSite]) -> None:
    """A JSON list of objects."""
    _json(as_dicts(sites))


def print_csv(sites: list[InsecureSite]) -> None:
    """CSV with a header row, safe to open in a spreadsheet."""
    _csv(as_dicts(sites), FIELDS)


def print_clients_json(clients: list[ClientUse]) -> None:
    """A JSON list of objects, one per client address."""
    _json(clients_as_dicts(clients))


def print_clients_csv(clients: list[ClientUse]) -> None:
    """CSV with a header row, one line per client address."""
    _csv(clients_as_dicts(clients), CLIENT_FIELDS)


def _json(rows: list[dict[str, object]]) -> None:
    # ensure_ascii (the default) keeps it exact and still inert on a terminal: every control character,
    # C1 and bidi override included, is written as a \u escape.
    json.dump(rows, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _csv(rows: list[dict[str, object]], fields: Sequence[str]) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=fields)
    writer.writeheader()
    writer.writerows({name: csv_cell(value) for name, value in row.items()} for row in rows)
