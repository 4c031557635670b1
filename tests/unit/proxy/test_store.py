"""The insecure-site store: buffered notes, batched writes, what survives a reopen, failed writes,
forgetting, clients and hourly counts, per-site choices and what another process changed, and its bounds
(truncation, pruning, floods, the WAL).

Most tests note at small timestamps (1970) for readable expectations, so their stores keep rows forever
(`max_age=inf`); the pruning tests use the real limits.
"""

from __future__ import annotations

import gc
import math
import random
import sqlite3
import string
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from port443.errors import StoreError
from port443.proxy import store as store_module
from port443.proxy.decide import Learned, Policy, Reason
from port443.proxy.schema import SCHEMA_VERSION
from port443.proxy.store import Choice, ClientUse, HourlyCount, InsecureSite, InsecureStore

FOREVER = math.inf


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "insecure.sqlite3"  # the folder does not exist yet


@pytest.fixture
def store(path: Path) -> Iterator[InsecureStore]:
    s = InsecureStore(path, max_age=FOREVER)
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
    first = InsecureStore(path, max_age=FOREVER)
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
    store.flush(now=0)  # a flush drops what has expired by `now`
    store.note_learned(Learned("b.test", False, Reason.TIMEOUT, "", expires=50))  # replaces the stored one
    store.flush(now=0)
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
        expected = {"insecure", "learned", "upgrades", "insecure_clients", "clients", "hourly", "policy"}
        expected |= {"forgotten", "sqlite_sequence"}  # AUTOINCREMENT: forgotten rows are never renumbered
        assert tables == expected
        assert other.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
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


# --- bounds: what a client sends is cut, tables are pruned, the WAL is truncated ------------------------------

MB = 1 << 20
BIG_PATH = "/" + "a" * MB


def on_disk(path: Path) -> int:
    """The store's bytes on disk: the database and its WAL."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def test_example_paths_and_details_are_cut(store: InsecureStore) -> None:
    store.note_insecure("a.test", "refused", "d" * 10_000, "/" + "é" * 300 + "?q=" + "x" * MB, now=1)
    store.note_insecure(
        "b.test", "refused", "", "/bytes-\udcff\udcfe-not-utf8", now=1
    )  # mitmproxy's decoding
    store.note_insecure("h" * 1000 + ".test", "refused", "", "/", now=1)
    store.flush()
    rows = {s.host: s for s in store.insecure_sites()}
    a = rows["a.test"]
    assert a.example_path == "/" + "é" * 199 + "…" and len(a.detail) == 501
    assert rows["b.test"].example_path == "/bytes-\\xff\\xfe-not-utf8"
    assert {len(host) for host in rows} == {6, 256}


def test_a_hundred_one_megabyte_paths_stay_small(path: Path, store: InsecureStore) -> None:
    for n in range(100):  # one host and a hundred hosts, a flush after each request as under load
        store.note_insecure("big.test", "refused", "", BIG_PATH + str(n), client="10.0.0.1")
        store.note_insecure(f"big{n}.test", "refused", "", BIG_PATH, client="10.0.0.1")
        store.flush()
    assert {len(s.example_path) for s in store.insecure_sites()} == {201}
    assert on_disk(path) < 2 * MB  # measured: about 1.1 MB (mostly WAL, truncated at the next checkpoint)


def test_twenty_thousand_random_hosts_are_pruned_to_the_limit(path: Path) -> None:
    store = InsecureStore(path)  # the defaults: 10,000 hosts, 1,000 clients, 50,000 (host, client) records
    rng = random.Random(443)
    hosts = ["".join(rng.choices(string.ascii_lowercase, k=12)) + ".test" for _ in range(20_000)]
    try:
        for n, host in enumerate(hosts):
            store.note_insecure(host, "refused", "x" * 1000, BIG_PATH, client=f"10.{n % 7}.{n % 251}.1")
            if n % 1000 == 999:
                store.flush()
        sites = {s.host for s in store.insecure_sites()}
        assert len(sites) == 10_000
        assert hosts[-1] in sites and hosts[0] not in sites  # the least recently seen went first
        assert len(store.clients()) == 1_000
    finally:
        store.close()
    # Each row holds at most 255 + 500 + 200 characters of text; measured: about 11 MB with the WAL.
    assert on_disk(path) < 16 * MB


def test_rows_are_pruned_by_age(path: Path) -> None:
    now = 1_000 * 86400.0
    store = InsecureStore(path, max_age=10 * 86400, hourly_keep=2 * 86400)
    store.note_insecure("old.test", "refused", "", "/", now=now - 11 * 86400, client="10.0.0.1")
    store.note_insecure("new.test", "refused", "", "/", now=now, client="10.0.0.2")
    store.note_upgrade("probe", now - 3 * 86400)
    store.note_learned(Learned("gone.test", True, Reason.OK, "", expires=now))
    store.note_learned(Learned("kept.test", True, Reason.OK, "", expires=now + 1))
    store.flush(now=now)
    assert [s.host for s in store.insecure_sites()] == ["new.test"]
    assert [c.address for c in store.clients()] == ["10.0.0.2"]
    assert store.hourly(0) == [HourlyCount(now // 3600 * 3600, 0, 1)]
    assert [x.host for x in store.learned(now=0)] == ["kept.test"]
    store.close()


def test_rows_beyond_the_count_go_least_recently_seen_first(path: Path) -> None:
    store = InsecureStore(path, max_age=FOREVER, max_hosts=3, max_learned=2)
    for n, host in enumerate(["a.test", "b.test", "c.test", "d.test"]):
        store.note_insecure(host, "refused", "", "/", now=100 + n)
    store.flush()
    store.note_insecure("a.test", "refused", "", "/", now=200)  # seen again: now the most recent
    store.note_insecure("e.test", "refused", "", "/", now=150)
    for n, host in enumerate(["x.test", "y.test", "z.test"]):
        store.note_learned(Learned(host, True, Reason.OK, "", expires=1e12 + n))
    store.flush()
    assert sorted(s.host for s in store.insecure_sites()) == ["a.test", "d.test", "e.test"]
    assert [x.host for x in store.learned()] == ["y.test", "z.test"]  # the soonest to expire went
    store.close()


def test_buffers_are_capped_between_flushes(path: Path) -> None:
    store = InsecureStore(path, max_age=FOREVER, max_hosts=100, max_clients=10)
    for n in range(10_000):
        store.note_insecure(f"h{n}.test", "refused", "", "/", now=n, client=f"10.0.{n}.1")
    assert store.pending <= 100 + 10 + 50_000
    assert len(store._notes.insecure) == 100 and len(store._notes.clients) == 10
    store.close()


def test_the_wal_is_checkpointed_and_truncated(path: Path, store: InsecureStore) -> None:
    wal = path.with_name(path.name + "-wal")
    assert store._db.execute("PRAGMA journal_size_limit").fetchone() == (1024 * 1024,)
    store.note_insecure("a.test", "refused", "", "/", now=1)
    store.flush()
    assert wal.stat().st_size > 0
    store._next_checkpoint = 0  # as if a minute had passed: the next flush checkpoints
    store.note_insecure("a.test", "refused", "", "/", now=2)
    store.flush()
    assert wal.stat().st_size == 0
    assert store._db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# --- per-path learning, forgetting ------------------------------------------------------------------------------


def test_learned_entries_per_path(store: InsecureStore) -> None:
    store.note_learned(Learned("a.test", True, Reason.OK, "", 1e12))
    store.note_learned(Learned("a.test", False, Reason.REDIRECT_LOOP, "bounces", 1e12, "/login"))
    store.note_learned(Learned("a.test", False, Reason.REDIRECT_LOOP, "bounces", 1e12, "/" + "p" * 5000))
    store.flush()
    assert store.learned() == [
        Learned("a.test", True, Reason.OK, "", 1e12),
        Learned("a.test", False, Reason.REDIRECT_LOOP, "bounces", 1e12, "/login"),
    ]  # an overlong path stays in the running proxy's memory only


def test_forget_removes_the_host_buffered_and_stored(store: InsecureStore) -> None:
    store.note_learned(Learned("a.test", False, Reason.REFUSED, "", 1e12))
    store.note_learned(Learned("a.test", False, Reason.REDIRECT_LOOP, "", 1e12, "/one"))
    store.note_insecure("a.test", "refused", "", "/", now=1, client="10.0.0.1")
    store.note_learned(Learned("b.test", False, Reason.REFUSED, "", 1e12))
    store.flush()
    store.note_learned(Learned("a.test", False, Reason.REDIRECT_LOOP, "", 1e12, "/two"))  # not flushed yet
    store.note_insecure("a.test", "refused", "", "/", now=2, client="10.0.0.2")
    assert store.forget("a.test") == 4  # three learned entries and the insecure-site row
    store.flush()
    assert [x.host for x in store.learned()] == ["b.test"]
    assert store.insecure_sites() == []
    assert [c.insecure_hosts for c in store.clients()] == [0, 0]
    assert store.forget("a.test") == 0


def test_clients_are_counted_per_site_and_per_address(store: InsecureStore) -> None:
    for client in ("10.0.0.1", "10.0.0.1", "10.0.0.2"):
        store.note_insecure("plain.test", "refused", "", "/", now=10, client=client)
    store.note_insecure("other.test", "refused", "", "/", now=11, client="10.0.0.1")
    store.note_insecure("anon.test", "refused", "", "/", now=12)  # no address known
    store.note_upgrade("probe", 13, client="10.0.0.2")
    store.note_request("10.0.0.2", now=14)  # an exempt host, say
    store.flush()
    store.note_upgrade("probe", 20, client="10.0.0.1")
    store.flush()
    assert {s.host: s.clients for s in store.insecure_sites()} == {
        "plain.test": 2,
        "other.test": 1,
        "anon.test": 0,
    }
    assert store.clients() == [
        ClientUse("10.0.0.1", 4, 1, 3, 2, 10.0, 20.0),
        ClientUse("10.0.0.2", 3, 1, 1, 1, 10.0, 14.0),
    ]


def test_hourly_counts(store: InsecureStore) -> None:
    hour = 500_000 * 3600.0
    store.note_upgrade("ruleset", hour + 5)
    store.note_upgrade("probe", hour + 3599)
    store.note_insecure("a.test", "refused", "", "/", now=hour + 10)
    store.note_insecure("a.test", "refused", "", "/", now=hour + 2 * 3600)
    store.flush(now=hour + 2 * 3600)
    store.note_upgrade("ruleset", hour + 20)
    store.flush(now=hour + 2 * 3600)
    assert store.hourly(hour + 1800) == [HourlyCount(hour, 3, 1), HourlyCount(hour + 7200, 0, 1)]
    assert store.hourly(hour + 3600) == [HourlyCount(hour + 7200, 0, 1)]


# --- per-site choices, and following another process -------------------------------------------------------


def test_choices_are_written_at_once_and_cleared(path: Path, store: InsecureStore) -> None:
    assert store.set_policy("tv.test", Policy.NEVER, now=1)
    assert not store.set_policy("tv.test", Policy.NEVER, now=2)  # nothing changed
    assert store.set_policy("tv.test", Policy.ALWAYS, now=3)
    assert store.set_policy("a.test", Policy.NEVER, now=4)
    other = InsecureStore(path)  # another process sees them without any flush
    assert other.policies() == [Choice("a.test", Policy.NEVER, 4), Choice("tv.test", Policy.ALWAYS, 3)]
    assert other.set_policy("a.test", None)
    assert not other.set_policy("a.test", None)
    other.close()
    assert [c.host for c in store.policies()] == ["tv.test"]


def test_choices_are_bounded(store: InsecureStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "MAX_POLICIES", 2)
    store.set_policy("a.test", Policy.NEVER)
    store.set_policy("b.test", Policy.NEVER)
    with pytest.raises(StoreError, match="2 per-site choices already"):
        store.set_policy("c.test", Policy.NEVER)
    store.set_policy("b.test", Policy.ALWAYS)  # changing one is fine
    assert len(store.policies()) == 2


def test_a_running_proxy_sees_what_another_process_changed(path: Path, store: InsecureStore) -> None:
    version, seq = store.data_version(), store.last_forgotten()
    store.set_policy("mine.test", Policy.NEVER)
    store.forget("mine.test")
    assert store.data_version() == version  # its own commits do not count
    mine, seq = store.forgotten_since(seq)
    assert mine == []  # nor its own forgetting
    other = InsecureStore(path)
    other.set_policy("cli.test", Policy.ALWAYS)
    other.forget("cli.test")
    other.forget("cli.test")
    other.close()
    assert store.data_version() != version
    hosts, last = store.forgotten_since(seq)
    assert hosts == ["cli.test"]
    assert store.forgotten_since(last) == ([], last)


def test_forgotten_rows_are_pruned_after_a_day(store: InsecureStore) -> None:
    store.forget("old.test")
    store.note_upgrade("probe")
    store.flush(now=time.time() + 2 * 86400)
    assert store._db.execute("SELECT COUNT(*) FROM forgotten").fetchone() == (0,)


def test_drop_pending_keeps_a_forgotten_host_from_coming_back(store: InsecureStore) -> None:
    store.note_learned(Learned("a.test", True, Reason.OK, "", 1e12))
    store.note_insecure("a.test", "refused", "", "/", now=1)
    store.drop_pending("a.test")
    store.flush()
    assert store.learned() == [] and store.insecure_sites() == []


def test_the_devices_of_each_site_and_the_sites_of_each_device(store: InsecureStore) -> None:
    for client, hits in (("10.0.0.1", 3), ("10.0.0.2", 1), ("10.0.0.3", 2)):
        for _ in range(hits):
            store.note_insecure("a.test", "refused", "", "/", now=1, client=client)
    store.note_insecure("b.test", "refused", "", "/", now=1, client="10.0.0.2")
    store.flush()
    assert store.site_clients(2) == {"a.test": ["10.0.0.1", "10.0.0.3"], "b.test": ["10.0.0.2"]}
    assert store.client_sites() == {
        "10.0.0.1": ["a.test"],
        "10.0.0.2": ["a.test", "b.test"],
        "10.0.0.3": ["a.test"],
    }
