"""The store's SQLite side: its schema, opening and migrating a file, and the statements a flush runs.

SQL only: buffering, locking and reading live in proxy/store.py. Every table that grows with traffic has an
index on what pruning walks (`last_seen`, `expires`, `at`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from port443.errors import StoreError
from port443.proxy.notes import MAX_DETAIL, Notes, bounded

SCHEMA_VERSION = 3
"""1: learned keyed by host (no user_version). 2: learned keyed by (host, path); clients; hourly counts.
3: per-site choices (`policy`) and the hosts forgotten (`forgotten`)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS insecure (
    host TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    hits INTEGER NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    example_path TEXT NOT NULL DEFAULT '/'
);
CREATE INDEX IF NOT EXISTS insecure_by_last_seen ON insecure (last_seen);
CREATE TABLE IF NOT EXISTS learned (
    host TEXT NOT NULL,
    path TEXT NOT NULL DEFAULT '',
    secure INTEGER NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    expires REAL NOT NULL,
    PRIMARY KEY (host, path)
);
CREATE INDEX IF NOT EXISTS learned_by_expiry ON learned (expires);
CREATE TABLE IF NOT EXISTS upgrades (
    step TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS insecure_clients (
    host TEXT NOT NULL,
    client TEXT NOT NULL,
    hits INTEGER NOT NULL,
    last_seen REAL NOT NULL,
    PRIMARY KEY (host, client)
);
CREATE INDEX IF NOT EXISTS insecure_clients_by_client ON insecure_clients (client);
CREATE INDEX IF NOT EXISTS insecure_clients_by_last_seen ON insecure_clients (last_seen);
CREATE TABLE IF NOT EXISTS clients (
    client TEXT PRIMARY KEY,
    requests INTEGER NOT NULL,
    upgraded INTEGER NOT NULL,
    insecure INTEGER NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS clients_by_last_seen ON clients (last_seen);
CREATE TABLE IF NOT EXISTS hourly (
    hour INTEGER PRIMARY KEY,  -- the start of the hour, Unix seconds (UTC)
    upgrades INTEGER NOT NULL,
    insecure INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS policy (
    host TEXT PRIMARY KEY,
    policy TEXT NOT NULL,  -- 'never' or 'always'
    set_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS forgotten (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- a running proxy applies the rows after the last it saw
    host TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS forgotten_by_at ON forgotten (at);
"""

WAL_LIMIT = 1024 * 1024
"""Bytes the WAL is truncated back to whenever SQLite resets it (`journal_size_limit`)."""


def open_db(path: Path) -> sqlite3.Connection:
    """Open (creating or migrating) the store.

    Raises:
        StoreError: when it cannot be opened, is no database, or was written by a newer port443.
    """
    db: sqlite3.Connection | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA synchronous=FULL")  # a committed flush is synced: it survives a power cut too
        db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
        db.execute("PRAGMA wal_autocheckpoint=256")  # pages: about 1 MB of WAL between checkpoints
        if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            _migrate(db)
    except (OSError, sqlite3.Error, StoreError) as e:
        if db is not None:
            db.close()
        raise StoreError(f"{path}: cannot open the store ({e})") from e
    return db


def _migrate(db: sqlite3.Connection) -> None:
    """Create the tables, or bring a store of an older port443 up to date keeping its rows.

    Version 1 -> 2 rebuilds `learned` with a path column; 2 -> 3 only adds tables (`policy`, `forgotten`),
    which the schema's CREATE ... IF NOT EXISTS does.
    """
    db.execute("BEGIN IMMEDIATE")  # another process may open the same file at the same moment
    try:
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise StoreError(f"written by a newer port443: schema {version}, this one knows {SCHEMA_VERSION}")
        columns = {row[1] for row in db.execute("PRAGMA table_info(learned)")}
        old_learned = bool(columns) and "path" not in columns
        if old_learned:  # version 1: learned keyed by host alone
            db.execute("ALTER TABLE learned RENAME TO learned_v1")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        if old_learned:
            db.execute(
                "INSERT OR REPLACE INTO learned (host, path, secure, reason, detail, expires) "
                "SELECT host, '', secure, reason, detail, expires FROM learned_v1"
            )
            db.execute("DROP TABLE learned_v1")
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def write_notes(db: sqlite3.Connection, b: Notes) -> None:
    db.executemany(
        """INSERT INTO insecure (host, reason, detail, hits, first_seen, last_seen, example_path)
           VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(host) DO UPDATE SET reason = excluded.reason, detail = excluded.detail,
             hits = hits + excluded.hits, last_seen = excluded.last_seen""",
        [
            (h, r.reason, r.detail, r.hits, r.first_seen, r.last_seen, r.example_path)
            for h, r in b.insecure.items()
        ],
    )
    db.executemany(
        """INSERT INTO insecure_clients (host, client, hits, last_seen) VALUES (?, ?, ?, ?)
           ON CONFLICT(host, client) DO UPDATE SET hits = hits + excluded.hits, last_seen = excluded.last_seen""",
        [(h, c, seen.hits, seen.last_seen) for (h, c), seen in b.host_clients.items()],
    )
    db.executemany(
        """INSERT INTO clients (client, requests, upgraded, insecure, first_seen, last_seen)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT(client) DO UPDATE SET requests = requests + excluded.requests,
             upgraded = upgraded + excluded.upgraded, insecure = insecure + excluded.insecure,
             last_seen = excluded.last_seen""",
        [(c, u.requests, u.upgraded, u.insecure, u.first_seen, u.last_seen) for c, u in b.clients.items()],
    )
    db.executemany(
        "INSERT OR REPLACE INTO learned (host, path, secure, reason, detail, expires) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (x.host, x.path, int(x.secure), str(x.reason), bounded(x.detail, MAX_DETAIL), x.expires)
            for x in b.learned.values()
        ],
    )
    db.executemany(
        """INSERT INTO upgrades (step, count) VALUES (?, ?)
           ON CONFLICT(step) DO UPDATE SET count = count + excluded.count""",
        list(b.upgrades.items()),
    )
    db.executemany(
        """INSERT INTO hourly (hour, upgrades, insecure) VALUES (?, ?, ?)
           ON CONFLICT(hour) DO UPDATE SET upgrades = upgrades + excluded.upgrades,
             insecure = insecure + excluded.insecure""",
        [(hour, up, insecure) for hour, (up, insecure) in b.hourly.items()],
    )


def prune_oldest(
    db: sqlite3.Connection, table: str, key: str, cutoff: float, limit: int
) -> list[tuple[object, ...]]:
    """Delete the rows of `table` last seen before `cutoff`, then the least recently seen beyond `limit`.

    Returns the keys deleted. Both selections walk the `last_seen` index; the count is SQLite's b-tree count.
    """
    old = db.execute(f"SELECT {key} FROM {table} WHERE last_seen < ?", (cutoff,)).fetchall()
    (count,) = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    excess = count - len(old) - limit
    if excess > 0:
        old += db.execute(
            f"SELECT {key} FROM {table} WHERE last_seen >= ? ORDER BY last_seen LIMIT ?", (cutoff, excess)
        ).fetchall()
    where = " AND ".join(f"{column.strip()} = ?" for column in key.split(","))
    db.executemany(f"DELETE FROM {table} WHERE {where}", old)
    return old
