"""The insecure-site report as JSON and CSV, from a real store: JSON exact, CSV inert for spreadsheets."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from port443.proxy.report import (
    CLIENT_FIELDS,
    FIELDS,
    as_dicts,
    print_clients_csv,
    print_clients_json,
    print_csv,
    print_json,
)
from port443.proxy.store import ClientUse, InsecureSite, InsecureStore
from tests.support.samples import fill_store

DAY = 86400.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[InsecureStore]:
    s = fill_store(InsecureStore(tmp_path / "insecure.sqlite3", max_age=math.inf))  # rows from 1970
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
        "clients": 0,
    },
    {
        "host": "quiet.test",
        "reason": "no-tls",
        "detail": "",
        "hits": 1,
        "first_seen": "1970-01-03T00:00:00+00:00",
        "last_seen": "1970-01-03T00:00:00+00:00",
        "example_path": "/",
        "clients": 0,
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


HOSTILE = InsecureSite(
    "=1+2*cmd.test",
    "redirects-to-http",
    "301 to http://x.test/\x1b]0;owned\x07\u202e",
    1,
    0,
    0,
    '/[red]x[/red]\x1b[2J\r\n,"q"',
    2,
)


def test_print_json_is_exact_and_ascii(capsys: pytest.CaptureFixture[str]) -> None:
    print_json([HOSTILE])
    out = capsys.readouterr().out
    assert out.isascii() and "\\u001b" in out  # escaped by JSON itself, so a terminal shows it as text
    (row,) = json.loads(out)
    assert (row["host"], row["detail"], row["example_path"]) == (
        HOSTILE.host,
        HOSTILE.detail,
        HOSTILE.example_path,
    )


@pytest.mark.parametrize(
    "host",
    ["=1+2*cmd.test", "+1.test", "-1.test", "@a.test", "\t=1.test", "\r=1.test"],
)
def test_print_csv_neutralises_formulas(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    print_csv([InsecureSite(host, "refused", "-detail", -1, 0, 0, "/")])
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert row["host"].startswith("'") and row["detail"] == "'-detail"
    assert row["hits"] == "-1"  # a number stays a number


def test_print_csv_shows_control_characters_as_escapes(capsys: pytest.CaptureFixture[str]) -> None:
    print_csv([HOSTILE])
    out = capsys.readouterr().out
    assert not any(c in out for c in "\x1b\x07\u202e")
    (row,) = csv.DictReader(io.StringIO(out))
    assert row["detail"] == "301 to http://x.test/\\x1b]0;owned\\x07\\u202e"
    assert row["example_path"] == '/[red]x[/red]\\x1b[2J\\x0d\\x0a,"q"'
    assert row["clients"] == "2"


def test_clients_as_json_and_csv(capsys: pytest.CaptureFixture[str]) -> None:
    clients = [ClientUse("=10.0.0.1", 5, 3, 2, 1, 0, 86400)]
    print_clients_json(clients)
    assert json.loads(capsys.readouterr().out) == [
        {
            "client": "=10.0.0.1",
            "requests": 5,
            "upgraded": 3,
            "insecure": 2,
            "insecure_hosts": 1,
            "first_seen": "1970-01-01T00:00:00+00:00",
            "last_seen": "1970-01-02T00:00:00+00:00",
        }
    ]
    print_clients_csv(clients)
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == list(CLIENT_FIELDS)
    assert rows[1][:2] == ["'=10.0.0.1", "5"]
