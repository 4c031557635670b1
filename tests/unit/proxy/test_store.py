"""The insecure-site store: buffered notes, batched writes, what survives a reopen, and failed writes."""

from __future__ import annotations

import gc
import sqlite3
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from port443.errors import StoreError
from port443.proxy.decide import Learned, Reason
from port443.proxy.store import InsecureSite, InsecureStore


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "insecure.sqlite3"  # the folder does not exist yet


@pytest.fixture
def store(path: Path) -> Iterator[InsecureStore]:
    s = InsecureStore(path)
    yield s
    s.close()


@pytest.fixture
def locked(path: Path, store: InsecureStore) -> Iterator[sqlite3.Connection]:
    """Another writer holds the database; the store gives up at once instead of after five seconds."""
    store._db.execute("PRAGMA busy_timeout=0")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    yield other
    if other.in_transaction:
        other.execute("ROLLBACK")
    other.close()


def test_note_insecure_aggregates_hits(store: InsecureStore) -> None:
    store.note_insecure("a.test", "refused", "connection refused", "/first", now=100)
    store.note_insecure("a.test", "timeout", "no answer", "/second", now=200)
    store.note_insecure("a.test", "timeout", "no answer", "/third", now=300)
    store.note_insecure("b.test", "no-tls", "", "/", now=150)
    assert store.pending == 2
    store.flush()
    assert store.pending == 0
    assert store.insecure_sites() == [
        InsecureSite("a.test", "timeout", "no answer", 3, 100.0, 300.0, "/first"),
        InsecureSite("b.test", "no-tls", "", 1, 150.0, 150.0, "/"),
    ]


@pytest.mark.parametrize(
    ("requested", "stored"),
    [
        ("/a/b", "/a/b"),
        ("/login?user=alice&password=secret", "/login"),
        ("/page#section", "/page"),
        ("/a#frag?not-a-query", "/a"),
        ("/a?q=1#frag", "/a"),
        ("?q=1", "/"),
        ("#top", "/"),
        ("", "/"),
    ],
)
def test_query_strings_and_fragments_are_never_stored(
    store: InsecureStore, requested: str, stored: str
) -> None:
    store.note_insecure("a.test", "refused", "", requested, now=1)
    store.flush()
    assert [s.example_path for s in store.insecure_sites()] == [stored]
    raw = store._db.execute("SELECT example_path FROM insecure").fetchall()
    assert raw == [(stored,)]


def test_flushes_accumulate_and_keep_first_seen(store: InsecureStore) -> None:
    store.note_insecure("a.test", "refused", "", "/one", now=10)
    store.flush()
    store.note_insecure("a.test", "timeout", "slow", "/two", now=20)
    store.note_insecure("a.test", "timeout", "slow", "/two", now=30)
    store.flush()
    assert store.insecure_sites() == [InsecureSite("a.test", "timeout", "slow", 3, 10.0, 30.0, "/one")]


def test_report_order_is_most_hits_first(store: InsecureStore) -> None:
    for host, hits, last in [
        ("few.test", 1, 50),
        ("many.test", 3, 10),
        ("tie-old.test", 2, 5),
        ("tie-new.test", 2, 9),
    ]:
        for n in range(hits):
            store.note_insecure(host, "refused", "", "/", now=last - n)
    store.flush()
    assert [s.host for s in store.insecure_sites()] == [
        "many.test",
        "tie-new.test",
        "tie-old.test",
        "few.test",
    ]


def test_flush_with_nothing_buffered_writes_nothing(store: InsecureStore) -> None:
    store.flush()
    assert (store.insecure_sites(), store.learned(), store.upgrade_counts()) == ([], [], {})


def test_reopen_keeps_everything(path: Path) -> None:
    first = InsecureStore(path)
    first.note_insecure("a.test", "refused", "", "/x", now=5)
    first.note_learned(Learned("b.test", True, Reason.OK, "TLSv1.3, HTTP 200", expires=1e12))
    first.note_upgrade("ruleset")
    first.close()  # close() flushes
    again = InsecureStore(path)
    try:
        assert again.insecure_sites() == [InsecureSite("a.test", "refused", "", 1, 5.0, 5.0, "/x")]
        assert again.learned(now=0) == [Learned("b.test", True, Reason.OK, "TLSv1.3, HTTP 200", 1e12)]
        assert again.upgrade_counts() == {"ruleset": 1}
    finally:
        again.close()


def test_upgrade_counts_add_up_across_flushes(store: InsecureStore) -> None:
    for step in ["ruleset", "ruleset", "hsts-preload"]:
        store.note_upgrade(step)
    assert store.pending == 2
    store.flush()
    for step in ["hsts-preload", "probe", "hsts-preload", "hsts-preload"]:
        store.note_upgrade(step)
    store.flush()
    counts = store.upgrade_counts()
    assert counts == {"hsts-preload": 4, "ruleset": 2, "probe": 1}
    assert list(counts) == ["hsts-preload", "ruleset", "probe"]  # most first


def test_learned_filters_expired_and_newest_note_wins(store: InsecureStore) -> None:
    store.note_learned(Learned("a.test", True, Reason.OK, "", expires=100))
    store.note_learned(Learned("a.test", False, Reason.REFUSED, "", expires=300))  # replaces the buffered one
    store.note_learned(Learned("b.test", True, Reason.OK, "", expires=200))
    store.flush()
    store.note_learned(Learned("b.test", False, Reason.TIMEOUT, "", expires=50))  # replaces the stored one
    store.flush()
    assert store.learned(now=0) == [
        Learned("a.test", False, Reason.REFUSED, "", 300.0),
        Learned("b.test", False, Reason.TIMEOUT, "", 50.0),
    ]
    assert store.learned(now=50) == [
        Learned("a.test", False, Reason.REFUSED, "", 300.0)
    ]  # expires is exclusive
    assert store.learned(now=300) == []
    assert [x.host for x in store.learned()] == []  # default: now


def test_a_failed_flush_keeps_the_buffer(store: InsecureStore, locked: sqlite3.Connection) -> None:
    store.note_insecure("a.test", "refused", "", "/", now=1)
    store.note_insecure("a.test", "refused", "", "/", now=2)
    store.note_learned(Learned("b.test", True, Reason.OK, "", expires=1e12))
    store.note_upgrade("probe")
    with pytest.raises(StoreError, match=r"insecure\.sqlite3: cannot write \(database is locked\)") as caught:
        store.flush()
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    assert store.pending == 3
    store.note_upgrade("probe")
    locked.execute("ROLLBACK")
    store.flush()
    assert store.insecure_sites() == [InsecureSite("a.test", "refused", "", 2, 1.0, 2.0, "/")]
    assert [x.host for x in store.learned(now=0)] == ["b.test"]
    assert store.upgrade_counts() == {"probe": 2}


def test_notes_during_a_failed_flush_are_merged(store: InsecureStore, locked: sqlite3.Connection) -> None:
    store.note_insecure("a.test", "refused", "", "/", now=1)
    store.note_insecure("a.test", "refused", "", "/", now=2)
    store.note_learned(Learned("b.test", True, Reason.OK, "old", expires=1e12))
    store.note_upgrade("probe")

    def meanwhile(statement: str) -> None:  # the event loop keeps noting while the writer thread works
        if statement.startswith("BEGIN"):
            store._db.set_trace_callback(None)
            store.note_learned(Learned("b.test", False, Reason.REFUSED, "new", expires=1e12))
            store.note_upgrade("probe")

    store._db.set_trace_callback(meanwhile)
    with pytest.raises(StoreError):
        store.flush()
    locked.execute("ROLLBACK")
    store.flush()
    assert store.learned(now=0) == [Learned("b.test", False, Reason.REFUSED, "new", 1e12)]  # newer note wins
    assert store.upgrade_counts() == {"probe": 2}


def test_insecure_hits_during_a_failed_flush_are_not_lost(
    store: InsecureStore, locked: sqlite3.Connection
) -> None:
    for now in (1, 2, 3):
        store.note_insecure("a.test", "refused", "", "/first", now=now)

    def meanwhile(statement: str) -> None:
        if statement.startswith("BEGIN"):
            store._db.set_trace_callback(None)
            store.note_insecure("a.test", "timeout", "", "/later", now=10)

    store._db.set_trace_callback(meanwhile)
    with pytest.raises(StoreError):
        store.flush()
    locked.execute("ROLLBACK")
    store.flush()
    assert store.insecure_sites() == [InsecureSite("a.test", "timeout", "", 4, 1.0, 10.0, "/first")]


def test_flush_on_a_closed_connection_raises_store_error(path: Path) -> None:
    store = InsecureStore(path)
    store._db.close()
    store.note_upgrade("ruleset")
    with pytest.raises(StoreError, match="cannot write"):
        store.flush()
    assert store.pending == 1
    with pytest.raises(StoreError):
        store.close()


def test_bad_paths_raise_store_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(StoreError, match="cannot open the store") as caught:
        InsecureStore(tmp_path / "a-file" / "insecure.sqlite3")
    assert isinstance(caught.value.__cause__, OSError)
    with pytest.raises(StoreError, match=r"cannot open the store \(unable to open database file\)"):
        InsecureStore(tmp_path)  # a folder


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"\x00not sqlite" * 400)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(StoreError, match=r"cannot open the store \(file is not a database\)"):
            InsecureStore(garbage)
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_wal_mode_and_schema(path: Path, store: InsecureStore) -> None:
    other = sqlite3.connect(path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {row[0] for row in other.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tables == {"insecure", "learned", "upgrades"}
    finally:
        other.close()


def test_close_waits_for_a_flush_under_way_in_another_thread(tmp_path: Path) -> None:
    import threading

    store = InsecureStore(tmp_path / "db.sqlite3")
    store.note_upgrade("ruleset")
    entered, release = threading.Event(), threading.Event()

    def slow_trace(statement: str) -> None:  # holds the writer inside its transaction
        if statement.startswith("INSERT INTO upgrades"):
            entered.set()
            release.wait(5)

    store._db.set_trace_callback(slow_trace)
    writer = threading.Thread(target=store.flush)
    writer.start()
    assert entered.wait(5)
    closer = threading.Thread(target=store.close)
    closer.start()
    closer.join(0.2)
    assert closer.is_alive()  # close() waits instead of closing under the writer
    release.set()
    writer.join(5)
    closer.join(5)
    assert not closer.is_alive()
    reopened = InsecureStore(tmp_path / "db.sqlite3")
    assert reopened.upgrade_counts() == {"ruleset": 1}
    reopened.close()
