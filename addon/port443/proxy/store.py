"""The insecure-site store: SQLite (WAL) with what port443 saw and learned, written in batches, bounded.

Per host: why it stays on plain HTTP, how often, when, one example path (never a query string, cookie,
header or body) and which client addresses used it; what probes learned (per host or per path, with an
expiry, so it survives restarts); upgrades by deciding step; per client and per hour, the counts; a person's
per-site choices (never / always HTTPS), and which hosts were forgotten, so a running proxy follows what
another process (the CLI) changed. Callers buffer with `note_*` (cheap, in memory, from the event loop) and
write with `flush()` from a worker thread; choices and forgetting are written at once.

Bounded by construction: text from traffic is cut before it is buffered, the buffers and every table have a
row limit (least recently seen rows go first), old rows are pruned at flush time, and the WAL is truncated.
The schema, its migrations and the statements a flush runs are proxy/schema.py's.
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
from port443.proxy.decide import Learned, Policy, Reason
from port443.proxy.notes import DAY, MAX_CLIENT, MAX_HOST, Limits, Notes, bounded, hour_of
from port443.proxy.schema import open_db, prune_oldest, write_notes

MAX_POLICIES = 10_000
"""Per-site choices kept at most: a person makes them one by one, so this is never met in use."""
FORGOTTEN_KEEP = DAY
"""Seconds a "forgotten" row is kept: every running proxy has read it long before."""

CHECKPOINT_EVERY = 60.0
"""Seconds between `wal_checkpoint(TRUNCATE)` calls made by `flush()`."""


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
class Choice:
    """A person's choice for a site (and its subdomains)."""

    host: str
    policy: Policy
    set_at: float


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
        self._db = open_db(self.path)
        self._lock = threading.Lock()  # guards the notes
        # Guards the connection: a flush runs in a worker thread, and close() at shutdown must wait for it
        # (closing a connection another thread is writing through can crash the process).
        self._db_lock = threading.RLock()
        self._notes = Notes(self.limits)
        self._next_checkpoint = time.monotonic() + CHECKPOINT_EVERY
        self._own_forgets: set[int] = set()
        """`forgotten` rows this connection wrote: `forgotten_since` leaves them out (already applied)."""

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
                    write_notes(db, notes)
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
        gone = prune_oldest(db, "insecure", "host", cutoff, limits.max_hosts)
        db.executemany("DELETE FROM insecure_clients WHERE host = ?", gone)
        prune_oldest(db, "insecure_clients", "host, client", cutoff, limits.max_host_clients)
        prune_oldest(db, "clients", "client", cutoff, limits.max_clients)
        db.execute("DELETE FROM learned WHERE expires <= ?", (now,))
        (count,) = db.execute("SELECT COUNT(*) FROM learned").fetchone()
        if count > limits.max_learned:  # the soonest to expire go first
            db.execute(
                "DELETE FROM learned WHERE rowid IN (SELECT rowid FROM learned ORDER BY expires LIMIT ?)",
                (count - limits.max_learned,),
            )
        db.execute("DELETE FROM hourly WHERE hour < ?", (now - limits.hourly_keep,))
        db.execute("DELETE FROM forgotten WHERE at < ?", (now - FORGOTTEN_KEEP,))

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
                    done = db.execute("INSERT INTO forgotten (host, at) VALUES (?, ?)", (host, time.time()))
                    self._own_forgets.add(done.lastrowid or 0)
            except sqlite3.Error as e:
                raise StoreError(f"{self.path}: cannot write ({e})") from e
        return len(paths) + int(insecure)

    def drop_pending(self, host: str) -> None:
        """Drop what is buffered about `host` (another process forgot it: the buffer must not write it back)."""
        with self._lock:
            self._notes.forget(bounded(host, MAX_HOST))

    def forgotten_since(self, seq: int) -> tuple[list[str], int]:
        """Hosts another process forgot after row `seq`, and the last row number (pass it next time)."""
        rows = self._query("SELECT seq, host FROM forgotten WHERE seq > ? ORDER BY seq", (seq,))
        last = max([seq, *(int(n) for n, _ in rows)])
        with self._db_lock:
            hosts = [str(h) for n, h in rows if n not in self._own_forgets]
            self._own_forgets.difference_update(n for n, _ in rows)
        return list(dict.fromkeys(hosts)), last

    def last_forgotten(self) -> int:
        """The number of the newest `forgotten` row (0 when none): where a proxy starts following."""
        (seq,) = self._query("SELECT COALESCE(MAX(seq), 0) FROM forgotten")[0]
        return int(seq)

    def set_policy(self, host: str, policy: Policy | None, now: float | None = None) -> bool:
        """Record a person's choice for `host` (None clears it), at once; returns whether anything changed.

        Raises:
            StoreError: when the database cannot be written, or MAX_POLICIES choices exist already.
        """
        host, now = bounded(host, MAX_HOST), time.time() if now is None else now
        try:
            with self._transaction() as db:
                if policy is None:
                    return db.execute("DELETE FROM policy WHERE host = ?", (host,)).rowcount > 0
                known = db.execute("SELECT policy FROM policy WHERE host = ?", (host,)).fetchone()
                if known is not None and known[0] == policy.value:
                    return False
                (count,) = db.execute("SELECT COUNT(*) FROM policy").fetchone()
                if known is None and count >= MAX_POLICIES:
                    raise StoreError(
                        f"{self.path}: {MAX_POLICIES} per-site choices already; clear some first"
                    )
                db.execute(
                    "INSERT OR REPLACE INTO policy (host, policy, set_at) VALUES (?, ?, ?)",
                    (host, policy.value, now),
                )
                return True
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot write ({e})") from e

    def data_version(self) -> int:
        """SQLite's `data_version`: it changes when another connection (another process) committed."""
        (version,) = self._query("PRAGMA data_version")[0]
        return int(version)

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

    def policies(self) -> list[Choice]:
        """Every per-site choice, by host; a value this version does not know is left out."""
        rows = self._query("SELECT host, policy, set_at FROM policy ORDER BY host")
        known = {p.value: p for p in Policy}
        return [Choice(host, known[value], set_at) for host, value, set_at in rows if value in known]

    def site_clients(self, per_site: int = 5) -> dict[str, list[str]]:
        """For each insecure site, the client addresses that used it most (at most `per_site`)."""
        return _top_per(self, "host", "client", per_site)

    def client_sites(self, per_client: int = 5) -> dict[str, list[str]]:
        """For each client address, the insecure sites it used most (at most `per_client`)."""
        return _top_per(self, "client", "host", per_client)

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


def _top_per(store: InsecureStore, key: str, value: str, limit: int) -> dict[str, list[str]]:
    """`insecure_clients` grouped by `key`: the `limit` values with most hits each (a window function)."""
    rows = store._query(
        f"SELECT {key}, {value} FROM (SELECT {key}, {value}, ROW_NUMBER() OVER "
        f"(PARTITION BY {key} ORDER BY hits DESC, {value}) AS n FROM insecure_clients) WHERE n <= ? "
        f"ORDER BY {key}, n",
        (limit,),
    )
    out: dict[str, list[str]] = {}
    for k, v in rows:
        out.setdefault(str(k), []).append(str(v))
    return out
