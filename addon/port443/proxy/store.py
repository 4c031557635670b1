"""The insecure-site store: SQLite (WAL) with what port443 saw and learned, written in batches.

Per host: why it stays on plain HTTP, how often, when, and one example path (never a query string, cookie,
header or body). Also what probes learned (with an expiry, so it survives restarts) and how many requests
each deciding step upgraded. Callers buffer with `note_*` and write with `flush()`, off the event loop.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from port443.errors import StoreError
from port443.proxy.decide import Learned

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
CREATE TABLE IF NOT EXISTS learned (
    host TEXT PRIMARY KEY,
    secure INTEGER NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS upgrades (
    step TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
"""


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


@dataclass(slots=True)
class _Hits:
    """Buffered, not yet written hits on one insecure host."""

    reason: str
    detail: str
    hits: int
    first_seen: float
    last_seen: float
    example_path: str


class InsecureStore:
    """One SQLite file; safe to call from the event loop's thread and one writer thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as e:
            if db is not None:
                db.close()
            raise StoreError(f"{self.path}: cannot open the store ({e})") from e
        self._db = db
        self._lock = threading.Lock()  # guards the buffers
        # Guards the connection: a flush runs in a worker thread, and close() at shutdown must wait for it
        # (closing a connection another thread is writing through can crash the process).
        self._db_lock = threading.RLock()
        self._insecure: dict[str, _Hits] = {}
        self._learned: dict[str, Learned] = {}
        self._upgrades: dict[str, int] = {}

    # --- buffering (cheap, in memory) ----------------------------------------------------------------------

    def note_insecure(self, host: str, reason: str, detail: str, path: str, now: float | None = None) -> None:
        """Count one plain-HTTP request to `host`; `path` loses its query string here."""
        now = time.time() if now is None else now
        path = path.split("?", 1)[0].split("#", 1)[0] or "/"
        with self._lock:
            row = self._insecure.get(host)
            if row is None:
                self._insecure[host] = _Hits(reason, detail, 1, now, now, path)
            else:
                row.reason, row.detail, row.last_seen = reason, detail, now
                row.hits += 1

    def note_learned(self, learned: Learned) -> None:
        """Remember a probe result (replaces what was known about the host)."""
        with self._lock:
            self._learned[learned.host] = learned

    def note_upgrade(self, step: str) -> None:
        """Count one upgraded request by the step that decided it."""
        with self._lock:
            self._upgrades[step] = self._upgrades.get(step, 0) + 1

    @property
    def pending(self) -> int:
        """How many buffered changes wait for `flush()`."""
        return len(self._insecure) + len(self._learned) + len(self._upgrades)

    # --- writing and reading -------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write everything buffered in one transaction.

        Raises:
            StoreError: when the database cannot be written (the buffer is kept for the next try).
        """
        with self._lock:
            insecure, learned, upgrades = self._insecure, self._learned, self._upgrades
            self._insecure, self._learned, self._upgrades = {}, {}, {}
        if not (insecure or learned or upgrades):
            return
        try:
            with self._transaction() as db:
                db.executemany(
                    """INSERT INTO insecure (host, reason, detail, hits, first_seen, last_seen, example_path)
                       VALUES (?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT(host) DO UPDATE SET reason = excluded.reason, detail = excluded.detail,
                         hits = hits + excluded.hits, last_seen = excluded.last_seen""",
                    [
                        (host, r.reason, r.detail, r.hits, r.first_seen, r.last_seen, r.example_path)
                        for host, r in insecure.items()
                    ],
                )
                db.executemany(
                    "INSERT OR REPLACE INTO learned (host, secure, reason, detail, expires) VALUES (?, ?, ?, ?, ?)",
                    [(x.host, int(x.secure), x.reason, x.detail, x.expires) for x in learned.values()],
                )
                db.executemany(
                    """INSERT INTO upgrades (step, count) VALUES (?, ?)
                       ON CONFLICT(step) DO UPDATE SET count = count + excluded.count""",
                    list(upgrades.items()),
                )
        except sqlite3.Error as e:
            with self._lock:  # keep what could not be written; newer notes win over the retried ones
                self._learned = learned | self._learned
                for step, count in upgrades.items():
                    self._upgrades[step] = self._upgrades.get(step, 0) + count
                for host, row in insecure.items():
                    newer = self._insecure.get(host)
                    if newer is not None:  # noted while the write failed: add the two up
                        row.reason, row.detail, row.last_seen = newer.reason, newer.detail, newer.last_seen
                        row.hits += newer.hits
                    self._insecure[host] = row
            raise StoreError(f"{self.path}: cannot write ({e})") from e

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

    def insecure_sites(self) -> list[InsecureSite]:
        """All insecure sites, most hits first."""
        with self._db_lock:
            rows = self._db.execute(
                "SELECT host, reason, detail, hits, first_seen, last_seen, example_path FROM insecure "
                "ORDER BY hits DESC, last_seen DESC, host"
            ).fetchall()
        return [InsecureSite(*row) for row in rows]

    def learned(self, now: float | None = None) -> list[Learned]:
        """What is still known (not expired)."""
        now = time.time() if now is None else now
        with self._db_lock:
            rows = self._db.execute(
                "SELECT host, secure, reason, detail, expires FROM learned WHERE expires > ?", (now,)
            ).fetchall()
        return [
            Learned(host, bool(secure), reason, detail, expires)
            for host, secure, reason, detail, expires in rows
        ]

    def upgrade_counts(self) -> dict[str, int]:
        """Upgraded requests by deciding step."""
        with self._db_lock:
            return dict(self._db.execute("SELECT step, count FROM upgrades ORDER BY count DESC").fetchall())

    def close(self) -> None:
        """Flush and close, after any flush another thread has under way."""
        with self._db_lock:
            try:
                self.flush()
            finally:
                self._db.close()
