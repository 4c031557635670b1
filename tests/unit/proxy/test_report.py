"""The insecure-site report as JSON, CSV and a table, from a real store."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from port443.proxy.report import FIELDS, as_dicts, print_csv, print_json
from port443.proxy.store import InsecureSite, InsecureStore
from tests.support.samples import fill_store

DAY = 86400.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[InsecureStore]:
    s = fill_store(InsecureStore(tmp_path / "insecure.sqlite3"))
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
