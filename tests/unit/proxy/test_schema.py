"""The store's schema: a new file gets the current version, older stores are migrated keeping their rows,
and a store of a newer port443 is refused."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

from port443.errors import StoreError
from port443.proxy import schema
from port443.proxy.decide import Learned, Policy, Reason
from port443.proxy.schema import SCHEMA_VERSION
from port443.proxy.store import Choice, InsecureSite, InsecureStore

FOREVER = math.inf


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "insecure.sqlite3"


def test_a_new_file_gets_every_table_and_the_current_version(path: Path) -> None:
    schema.open_db(path).close()
    other = sqlite3.connect(path)
    try:
        tables = {row[0] for row in other.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {
            "insecure",
            "learned",
            "upgrades",
            "insecure_clients",
            "clients",
            "hourly",
            "policy",
            "forgotten",
        } <= tables
        assert other.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    finally:
        other.close()


V1_SCHEMA = """
CREATE TABLE insecure (host TEXT PRIMARY KEY, reason TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '',
    hits INTEGER NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL,
    example_path TEXT NOT NULL DEFAULT '/');
CREATE TABLE learned (host TEXT PRIMARY KEY, secure INTEGER NOT NULL, reason TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '', expires REAL NOT NULL);
CREATE TABLE upgrades (step TEXT PRIMARY KEY, count INTEGER NOT NULL);
INSERT INTO insecure VALUES ('old.test', 'refused', 'connection refused', 7, 10, 20, '/x');
INSERT INTO learned VALUES ('old.test', 0, 'refused', 'connection refused', 1e12);
INSERT INTO learned VALUES ('good.test', 1, 'ok', 'TLSv1.3, HTTP 200', 1e12);
INSERT INTO upgrades VALUES ('ruleset', 5);
"""


def test_a_store_of_the_previous_version_opens_and_keeps_its_rows(path: Path) -> None:
    path.parent.mkdir()
    old = sqlite3.connect(path)
    old.execute("PRAGMA journal_mode=WAL")
    old.executescript(V1_SCHEMA)
    old.close()
    store = InsecureStore(path, max_age=FOREVER)
    assert store.insecure_sites() == [
        InsecureSite("old.test", "refused", "connection refused", 7, 10, 20, "/x")
    ]
    assert store.learned(now=0) == [
        Learned("good.test", True, Reason.OK, "TLSv1.3, HTTP 200", 1e12),
        Learned("old.test", False, Reason.REFUSED, "connection refused", 1e12),
    ]
    assert store.upgrade_counts() == {"ruleset": 5}
    store.note_learned(Learned("good.test", False, Reason.REDIRECT_LOOP, "bounces", 1e12, "/login"))
    store.close()
    again = InsecureStore(path)
    assert [(x.host, x.path) for x in again.learned()] == [
        ("good.test", ""),
        ("good.test", "/login"),
        ("old.test", ""),
    ]
    assert again._db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    again.close()


def test_a_store_of_a_newer_version_is_refused(path: Path) -> None:
    path.parent.mkdir()
    newer = sqlite3.connect(path)
    newer.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    newer.close()
    with pytest.raises(
        StoreError, match=rf"cannot open the store \(written by a newer port443: schema {SCHEMA_VERSION + 1}"
    ):
        InsecureStore(path)


def test_a_version_2_store_gains_the_choice_tables_and_keeps_its_rows(path: Path) -> None:
    path.parent.mkdir()
    old = sqlite3.connect(path)
    tables = schema.SCHEMA.split("CREATE TABLE IF NOT EXISTS policy")[0]  # version 2's tables
    old.executescript(tables + "PRAGMA user_version=2;")
    old.execute("INSERT INTO upgrades VALUES ('probe', 3)")
    old.commit()
    old.close()
    store = InsecureStore(path)
    assert store.upgrade_counts() == {"probe": 3}
    assert store.policies() == []
    assert store.set_policy("tv.test", Policy.NEVER, now=5)
    assert store.policies() == [Choice("tv.test", Policy.NEVER, 5)]
    assert store._db.execute("PRAGMA user_version").fetchone() == (3,)
    store.close()
