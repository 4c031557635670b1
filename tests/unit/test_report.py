"""The insecure-site report as JSON, CSV and a table, from a real store."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from port443.report import FIELDS, as_dicts, print_csv, print_json, print_table
from port443.store import InsecureSite, InsecureStore

DAY = 86400.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[InsecureStore]:
    s = InsecureStore(tmp_path / "insecure.sqlite3")
    s.note_insecure("busy.test", "refused", "connection refused on port 443", "/a?secret=1", now=DAY)
    s.note_insecure("busy.test", "refused", "connection refused on port 443", "/b", now=DAY + 61.9)
    s.note_insecure("quiet.test", "no-tls", "", "/", now=2 * DAY)
    s.note_upgrade("ruleset")
    s.note_upgrade("ruleset")
    s.note_upgrade("probe")
    s.flush()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich folds tables to the terminal width


EXPECTED = [
    {
        "host": "busy.test",
        "reason": "refused",
        "detail": "connection refused on port 443",
        "hits": 2,
        "first_seen": "1970-01-02T00:00:00+00:00",
        "last_seen": "1970-01-02T00:01:01+00:00",  # whole seconds
        "example_path": "/a",
    },
    {
        "host": "quiet.test",
        "reason": "no-tls",
        "detail": "",
        "hits": 1,
        "first_seen": "1970-01-03T00:00:00+00:00",
        "last_seen": "1970-01-03T00:00:00+00:00",
        "example_path": "/",
    },
]


def test_as_dicts(store: InsecureStore) -> None:
    rows = as_dicts(store.insecure_sites())
    assert rows == EXPECTED
    assert all(tuple(row) == FIELDS for row in rows)


@pytest.mark.parametrize(
    ("seconds", "iso"),
    [(0, "1970-01-01T00:00:00+00:00"), (1_700_000_000.75, "2023-11-14T22:13:20+00:00")],
)
def test_timestamps_are_utc(seconds: float, iso: str) -> None:
    site = InsecureSite("a.test", "refused", "", 1, seconds, seconds, "/")
    assert as_dicts([site])[0]["first_seen"] == iso


def test_print_json(store: InsecureStore, capsys: pytest.CaptureFixture[str]) -> None:
    print_json(store.insecure_sites())
    out = capsys.readouterr().out
    assert json.loads(out) == EXPECTED
    assert out.endswith("]\n")


def test_print_json_empty(capsys: pytest.CaptureFixture[str]) -> None:
    print_json([])
    assert capsys.readouterr().out == "[]\n"


def test_print_csv(store: InsecureStore, capsys: pytest.CaptureFixture[str]) -> None:
    print_csv(store.insecure_sites())
    out = capsys.readouterr().out
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == list(FIELDS)
    assert rows[1:] == [[str(value) for value in row.values()] for row in EXPECTED]


def test_print_csv_quotes_commas(capsys: pytest.CaptureFixture[str]) -> None:
    print_csv([InsecureSite("a.test", "bad-certificate", 'expired, "really"', 1, 0, 0, "/")])
    out = capsys.readouterr().out
    assert '"expired, ""really"""' in out
    assert list(csv.DictReader(io.StringIO(out)))[0]["detail"] == 'expired, "really"'


def test_print_table(store: InsecureStore, capsys: pytest.CaptureFixture[str]) -> None:
    print_table(store.insecure_sites(), store.upgrade_counts())
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].strip() == "Sites still on plain HTTP"
    busy = next(line for line in lines if "busy.test" in line)
    for cell in ("refused: connection refused on port 443", " 2 ", "1970-01-02 00:01:01", "/a"):
        assert cell in busy
    quiet = next(line for line in lines if "quiet.test" in line)
    assert "no-tls " in quiet and "no-tls:" not in quiet
    assert lines.index(busy) < lines.index(quiet)  # most hits first
    assert lines[-1] == "Upgraded requests: 3 (ruleset 2, probe 1)"


def test_print_table_empty(capsys: pytest.CaptureFixture[str]) -> None:
    print_table([], {})
    assert capsys.readouterr().out == "No insecure sites recorded.\n"
