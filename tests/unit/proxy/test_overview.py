"""The dashboard's data: one snapshot of the store, and the JSON documents of its API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from port443.proxy.decide import Learned, Policy, Reason
from port443.proxy.notes import hour_of
from port443.proxy.overview import (
    CHART_DAYS,
    Exemption,
    RulesInfo,
    build_overview,
    devices_json,
    fill_hours,
    insecure_json,
    learned_json,
    policy_json,
    summary_json,
)
from port443.proxy.report import as_dicts
from port443.proxy.store import HourlyCount, InsecureStore

NOW = 1_800_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[InsecureStore]:
    s = InsecureStore(tmp_path / "db.sqlite3")
    for client in ("10.0.0.2", "10.0.0.2", "10.0.0.3"):
        s.note_insecure("plain.test", "refused", "connection refused", "/a?secret=1", NOW - 60, client=client)
    s.note_upgrade("probe", NOW - 7200, client="10.0.0.2")
    s.note_upgrade("learned", NOW - 30, client="10.0.0.3")
    s.note_upgrade("learned", NOW - 20, client="10.0.0.3")
    s.note_learned(Learned("good.test", True, Reason.OK, "TLSv1.3", NOW + 100))
    s.note_learned(Learned("gone.test", True, Reason.OK, "", NOW - 1))  # expired
    s.set_policy("tv.test", Policy.NEVER, now=NOW - 5)
    yield s  # not flushed: build_overview flushes first
    s.close()


def test_the_overview_holds_everything_noted_until_now(store: InsecureStore) -> None:
    rules = RulesInfo(3, ("/etc/port443/mine.yaml",), True, 1, ("mine.yaml:4: rules[0].from: bad",))
    o = build_overview(
        store, now=NOW, rules=rules, exemptions=[Exemption("10.0.0.9", "b.test", NOW + 60)], mode="strict"
    )
    assert (o.upgraded, o.insecure_hits, o.requests) == (3, 3, 6)
    assert o.site_devices == {"plain.test": ["10.0.0.2", "10.0.0.3"]}
    assert o.device_sites == {"10.0.0.2": ["plain.test"], "10.0.0.3": ["plain.test"]}
    assert [x.host for x in o.learned] == ["good.test"]
    assert o.policy_of("tv.test") == "never" and o.policy_of("plain.test") == ""
    assert len(o.hourly) == CHART_DAYS * 24 and o.hourly[-1].hour == hour_of(NOW)
    assert sum(h.upgrades for h in o.hourly) == 3 and sum(h.insecure for h in o.hourly) == 3


def test_fill_hours_covers_every_hour_oldest_first() -> None:
    last = hour_of(NOW)
    hours = fill_hours([HourlyCount(float(last - 3600), 4, 1)], NOW, days=1)
    assert len(hours) == 24 and hours[0].hour == last - 23 * 3600
    assert hours[-2] == HourlyCount(float(last - 3600), 4, 1) and hours[-1] == HourlyCount(float(last), 0, 0)


def test_the_summary_counts_by_step(store: InsecureStore) -> None:
    summary = summary_json(build_overview(store, now=NOW, mode="redirect"))
    assert summary["upgraded"] == 3 and summary["insecure_hits"] == 3 and summary["insecure_sites"] == 1
    assert summary["upgraded_by_step"] == {
        "ruleset": 0,
        "hsts-preload": 0,
        "learned": 2,
        "probe": 1,
        "user-policy": 0,
    }
    assert summary["top_insecure"] == [{"host": "plain.test", "hits": 3}]
    assert summary["rules"] is None and summary["mode"] == "redirect" and summary["devices"] == 2
    assert summary["generated"] == "2027-01-15T08:00:00+00:00"


def test_the_insecure_rows_are_the_reports_with_devices_and_choices(store: InsecureStore) -> None:
    o = build_overview(store, now=NOW)
    (row,) = insecure_json(o)
    (reported,) = as_dicts(store.insecure_sites())
    assert {k: row[k] for k in reported} == reported  # the same numbers as `port443 report --json`
    assert row["devices"] == ["10.0.0.2", "10.0.0.3"] and row["policy"] is None
    assert row["example_path"] == "/a"  # never the query string


def test_learned_devices_and_policy_documents(store: InsecureStore) -> None:
    o = build_overview(store, now=NOW, exemptions=[Exemption("10.0.0.9", "b.test", NOW + 60)])
    assert learned_json(o) == [
        {
            "host": "good.test",
            "path": None,
            "secure": True,
            "reason": "ok",
            "detail": "TLSv1.3",
            "expires": "2027-01-15T08:01:40+00:00",
        }
    ]
    devices = {d["client"]: d for d in devices_json(o)}
    assert devices["10.0.0.3"]["requests"] == 3 and devices["10.0.0.3"]["insecure_sites"] == ["plain.test"]
    assert policy_json(o) == {
        "policies": [{"host": "tv.test", "policy": "never", "set_at": "2027-01-15T07:59:55+00:00"}],
        "exceptions": [{"client": "10.0.0.9", "host": "b.test", "until": "2027-01-15T08:01:00+00:00"}],
    }
