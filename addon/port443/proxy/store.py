"""The insecure-site store: SQLite (WAL) with what port443 saw and learned, written in batches, bounded.

Per host: why it stays on plain HTTP, how often, when, one example path (never a query string, cookie,
header or body) and which client addresses used it; what probes learned (per host or per path, with an
expiry, so it survives restarts); upgrades by deciding step; per client and per hour, the counts. Callers
buffer with `note_*` (cheap, in memory, from the event loop) and write with `flush()` from a worker thread.

Bounded by construction: text from traffic is cut before it is buffered, the buffers and every table have a
row limit (least recently seen rows go first), old rows are pruned at flush time, and the WAL is truncated.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from port443.errors import StoreError
from port443.proxy.decide import Learned, Reason
from port443.proxy.notes import DAY, MAX_CLIENT, MAX_DETAIL, MAX_HOST, Limits, Notes, bounded, hour_of

SCHEMA_VERSION = 2
"""1: learned keyed by host (no user_version). 2: learned keyed by (host, path); clients; hourly counts."""

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
"""

CHECKPOINT_EVERY = 60.0
"""Seconds between `wal_checkpoint(TRUNCATE)` calls made by `flush()`."""
WAL_LIMIT = 1024 * 1024
"""Bytes the WAL is truncated back to whenever SQLite resets it (`journal_size_limit`)."""


def default_db_path() -> Path:
    """The store in the user's data directory, shared by the proxy and `port443 report`."""
    import platformdirs

    return Path(platformdirs.user_data_dir("port443")) / "insecure.sqlite3"


@dataclass(frozen=True, slots=True)
class InsecureSite:
    """One row of the insecure-site report."""

    host: str
    reason: str
    detail: str
    hits: int
    first_seen: float
    last_seen: float
    example_path: str
    clients: int = 0
    """How many distinct client addresses used the site (while their records are kept)."""


@dataclass(frozen=True, slots=True)
class ClientUse:
    """What one client address did through the proxy."""

    address: str
    requests: int
    """Plain-HTTP requests port443 decided on: upgraded, left insecure, or exempt."""
    upgraded: int
    insecure: int
    insecure_hosts: int
    """Distinct insecure sites it used."""
    first_seen: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class HourlyCount:
    """Upgraded requests and insecure hits within one hour."""

    hour: float
    """Start of the hour, Unix seconds (UTC)."""
    upgrades: int
    insecure: int


class InsecureStore:
    """One SQLite file; safe to call from the event loop's thread and one writer thread.

    The limits are per table: `max_age` seconds after their last use rows go (learned rows go when they
    expire); at most `max_hosts` insecure sites, `max_clients` client addresses, `max_host_clients`
    (site, client) records and `max_learned` learned entries, least recently seen first; hourly counts
    for `hourly_keep` seconds.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_age: float = 90 * DAY,
        max_hosts: int = 10_000,
        max_clients: int = 1_000,
        max_host_clients: int = 50_000,
        max_learned: int = 10_000,
        hourly_keep: float = 14 * DAY,
    ) -> None:
        self.path = Path(path)
        # Public and mutable: the addon changes them when their options change; the next note and flush obey.
        self.limits = Limits(max_age, max_hosts, max_clients, max_host_clients, max_learned, hourly_keep)
        self._db = _open(self.path)
        self._lock = threading.Lock()  # guards the notes
        # Guards the connection: a flush runs in a worker thread, and close() at shutdown must wait for it
        # (closing a connection another thread is writing through can crash the process).
        self._db_lock = threading.RLock()
        self._notes = Notes(self.limits)
        self._next_checkpoint = time.monotonic() + CHECKPOINT_EVERY

    # --- buffering (cheap, in memory) ----------------------------------------------------------------------

    def note_insecure(
        self, host: str, reason: str, detail: str, path: str, now: float | None = None, *, client: str = ""
    ) -> None:
        """Count one plain-HTTP request to `host` (from `client`, if known); `path` loses its query here."""
        now = time.time() if now is None else now
        with self._lock:
            self._notes.insecure_hit(host, reason, detail, path, now, client)

    def note_upgrade(self, step: str, now: float | None = None, *, client: str = "") -> None:
        """Count one upgraded request by the step that decided it (and for `client`, if known)."""
        now = time.time() if now is None else now
        with self._lock:
            self._notes.upgrade(step, now, client)

    def note_request(self, client: str, now: float | None = None) -> None:
        """Count one request of `client` that was neither upgraded nor insecure (an exempt host, say)."""
        if client:
            now = time.time() if now is None else now
            with self._lock:
                self._notes.request(bounded(client, MAX_CLIENT), now)

    def note_learned(self, learned: Learned) -> None:
        """Remember a probe result, for the host or one path (replaces what was known about that key).

        An overlong host or path is not kept: only the running proxy remembers it.
        """
        with self._lock:
            self._notes.learn(learned)

    @property
    def pending(self) -> int:
        """How many buffered changes wait for `flush()`."""
        return len(self._notes)

    # --- writing -------------------------------------------------------------------------------------------

    def flush(self, now: float | None = None) -> None:
        """Write everything buffered in one transaction, prune what is too old or too much, and checkpoint.

        A flush that returned is on disk: the WAL is synced (`synchronous=FULL`), so it survives a killed
        process and a power cut.

        Raises:
            StoreError: when the database cannot be written (the buffer is kept for the next try).
        """
        now = time.time() if now is None else now
        with self._db_lock:
            with self._lock:
                notes, self._notes = self._notes, Notes(self.limits)
            if not len(notes):
                return
            try:
                with self._transaction() as db:
                    _write(db, notes)
                    self._prune(db, now)
            except sqlite3.Error as e:
                with self._lock:  # keep what could not be written; newer notes win over the retried ones
                    notes.merge_newer(self._notes)
                    self._notes = notes
                raise StoreError(f"{self.path}: cannot write ({e})") from e
            if time.monotonic() >= self._next_checkpoint:
                self.checkpoint()

    def _prune(self, db: sqlite3.Connection, now: float) -> None:
        """Drop rows past their age and the least recently seen beyond each limit (indexed: cheap)."""
        limits, cutoff = self.limits, now - self.limits.max_age
        gone = _prune_oldest(db, "insecure", "host", cutoff, limits.max_hosts)
        db.executemany("DELETE FROM insecure_clients WHERE host = ?", gone)
        _prune_oldest(db, "insecure_clients", "host, client", cutoff, limits.max_host_clients)
        _prune_oldest(db, "clients", "client", cutoff, limits.max_clients)
        db.execute("DELETE FROM learned WHERE expires <= ?", (now,))
        (count,) = db.execute("SELECT COUNT(*) FROM learned").fetchone()
        if count > limits.max_learned:  # the soonest to expire go first
            db.execute(
                "DELETE FROM learned WHERE rowid IN (SELECT rowid FROM learned ORDER BY expires LIMIT ?)",
                (count - limits.max_learned,),
            )
        db.execute("DELETE FROM hourly WHERE hour < ?", (now - limits.hourly_keep,))

    def checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it to zero bytes (skipped while a reader holds it)."""
        with self._db_lock:
            self._next_checkpoint = time.monotonic() + CHECKPOINT_EVERY
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.Error:
                pass  # busy or locked: the next one will do; autocheckpoint keeps the WAL bounded meanwhile

    def forget(self, host: str) -> int:
        """Remove what was learned about `host` (every path) and its insecure-site records, buffered or stored.

        Returns how many entries went: learned entries plus one for the host's insecure-site row. It
        waits for a flush under way, so call it off the event loop where that matters.

        Raises:
            StoreError: when the database cannot be written.
        """
        host = bounded(host, MAX_HOST)
        with self._db_lock:
            with self._lock:
                paths, insecure = self._notes.forget(host)
            try:
                with self._transaction() as db:
                    paths |= {p for (p,) in db.execute("SELECT path FROM learned WHERE host = ?", (host,))}
                    db.execute("DELETE FROM learned WHERE host = ?", (host,))
                    insecure |= db.execute("DELETE FROM insecure WHERE host = ?", (host,)).rowcount > 0
                    db.execute("DELETE FROM insecure_clients WHERE host = ?", (host,))
            except sqlite3.Error as e:
                raise StoreError(f"{self.path}: cannot write ({e})") from e
        return len(paths) + int(insecure)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._db_lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- reading -------------------------------------------------------------------------------------------

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        with self._db_lock:  # rows are whatever SQLite holds; each reader below types its own
            return self._db.execute(sql, args).fetchall()

    def insecure_sites(self) -> list[InsecureSite]:
        """All insecure sites, most hits first, with how many clients used each."""
        rows = self._query(
            "SELECT host, reason, detail, hits, first_seen, last_seen, example_path, "
            "(SELECT COUNT(*) FROM insecure_clients c WHERE c.host = i.host) FROM insecure i "
            "ORDER BY hits DESC, last_seen DESC, host"
        )
        return [InsecureSite(*row) for row in rows]

    def learned(self, now: float | None = None) -> list[Learned]:
        """What is still known (not expired): host-wide entries (`path` empty) and per-path ones."""
        now = time.time() if now is None else now
        rows = self._query(
            "SELECT host, secure, reason, detail, expires, path FROM learned WHERE expires > ? ORDER BY host, path",
            (now,),
        )
        return [
            Learned(host, bool(secure), Reason.parse(reason), detail, expires, path)
            for host, secure, reason, detail, expires, path in rows
        ]

    def upgrade_counts(self) -> dict[str, int]:
        """Upgraded requests by deciding step, most first."""
        return dict(self._query("SELECT step, count FROM upgrades ORDER BY count DESC"))

    def clients(self) -> list[ClientUse]:
        """Every client address kept, most requests first, with how many insecure sites it used."""
        rows = self._query(
            "SELECT client, requests, upgraded, insecure, "
            "(SELECT COUNT(*) FROM insecure_clients h WHERE h.client = c.client), first_seen, last_seen "
            "FROM clients c ORDER BY requests DESC, last_seen DESC, client"
        )
        return [ClientUse(*row) for row in rows]

    def hourly(self, since: float) -> list[HourlyCount]:
        """Counts per hour from the hour that holds `since` on, oldest first (hours with none are left out)."""
        rows = self._query(
            "SELECT hour, upgrades, insecure FROM hourly WHERE hour >= ? ORDER BY hour",
            (hour_of(since),),
        )
        return [HourlyCount(float(hour), up, insecure) for hour, up, insecure in rows]

    def close(self) -> None:
        """Flush and close, after any flush another thread has under way."""
        with self._db_lock:
            try:
                self.flush()
            finally:
                self._db.close()


def _open(path: Path) -> sqlite3.Connection:
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
    """Create the tables, or bring a store of an older port443 up to date keeping its rows."""
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


def _write(db: sqlite3.Connection, b: Notes) -> None:
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


def _prune_oldest(
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
