"""The store's in-memory notes: text cut before it is kept, capped dicts, and merging after a failed write."""

from __future__ import annotations

import pytest

from port443.proxy.decide import Learned, Reason
from port443.proxy.notes import MAX_PATH, Limits, Notes, bounded, example_path, hour_of


@pytest.mark.parametrize(
    ("text", "limit", "kept"),
    [
        ("short", 10, "short"),
        ("exactly10!", 10, "exactly10!"),
        ("eleven char", 10, "eleven cha…"),
        ("ééééé", 3, "ééé…"),  # characters, not bytes
        ("😀😀😀", 2, "😀😀…"),
        ("/\udcff\udcfe", 10, "/\\xff\\xfe"),  # bytes that were not UTF-8, as mitmproxy decodes them
        ("/\ud800x", 10, "/\\ud800x"),  # a surrogate no decoder makes: still valid UTF-8 afterwards
    ],
)
def test_bounded(text: str, limit: int, kept: str) -> None:
    assert bounded(text, limit) == kept
    kept.encode("utf-8")


@pytest.mark.parametrize(
    ("path", "kept"),
    [
        ("/a/b", "/a/b"),
        ("/login?user=alice&password=secret", "/login"),
        ("/a#frag?not-a-query", "/a"),
        ("?q=1", "/"),
        ("", "/"),
        ("/" + "x" * (MAX_PATH - 1), "/" + "x" * (MAX_PATH - 1)),
        ("/" + "x" * MAX_PATH, "/" + "x" * (MAX_PATH - 1) + "…"),
        ("/" + "x" * 1_000_000 + "?secret", "/" + "x" * (MAX_PATH - 1) + "…"),
    ],
)
def test_example_path(path: str, kept: str) -> None:
    assert example_path(path) == kept


def test_hour_of() -> None:
    assert (hour_of(7199.9), hour_of(7200), hour_of(0)) == (3600, 7200, 0)


def test_a_flood_of_new_keys_evicts_the_oldest_buffered() -> None:
    notes = Notes(Limits(max_hosts=3, max_clients=2, max_host_clients=4, max_learned=2))
    for n in range(6):
        notes.insecure_hit(f"h{n}.test", "refused", "", "/", float(n), f"10.0.0.{n}")
        notes.learn(Learned(f"h{n}.test", True, Reason.OK, "", 1e12))
    notes.insecure_hit("h5.test", "refused", "", "/", 9.0, "10.0.0.5")  # known keys are counted, not evicted
    assert list(notes.insecure) == ["h3.test", "h4.test", "h5.test"] and notes.insecure["h5.test"].hits == 2
    assert list(notes.clients) == ["10.0.0.4", "10.0.0.5"]
    assert len(notes.host_clients) == 4 and [k[0] for k in notes.learned] == ["h4.test", "h5.test"]


def test_overlong_learned_keys_are_not_kept() -> None:
    notes = Notes(Limits())
    notes.learn(Learned("h" * 300, True, Reason.OK, "", 1e12))
    notes.learn(Learned("a.test", True, Reason.OK, "", 1e12, "/" + "p" * 3000))
    assert notes.learned == {}


def test_merge_newer_adds_counts_and_newer_values_win() -> None:
    old, new = Notes(Limits()), Notes(Limits())
    old.insecure_hit("a.test", "refused", "old", "/first", 1.0, "10.0.0.1")
    old.upgrade("probe", 2.0, "10.0.0.1")
    new.insecure_hit("a.test", "timeout", "new", "/later", 3.0, "10.0.0.1")
    new.insecure_hit("b.test", "refused", "", "/", 4.0, "")
    new.upgrade("probe", 5.0, "10.0.0.2")
    old.merge_newer(new)
    a = old.insecure["a.test"]
    assert (a.reason, a.detail, a.hits, a.first_seen, a.last_seen, a.example_path) == (
        "timeout",
        "new",
        2,
        1.0,
        3.0,
        "/first",
    )
    assert old.upgrades == {"probe": 2} and old.hourly == {0: [2, 3]}
    assert old.host_clients[("a.test", "10.0.0.1")].hits == 2
    assert (old.clients["10.0.0.1"].requests, old.clients["10.0.0.2"].upgraded) == (3, 1)
    assert len(old) == 2 + 1 + 2 + 1  # hits, the (host, client) pair, two clients, one step
