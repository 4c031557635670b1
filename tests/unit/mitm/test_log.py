"""InsecureLog with mitmproxy's test helpers: decisions reach the store once per request, with the client's
address and without query strings; its options; and a real kill -9 while it logs."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import exceptions, http
from mitmproxy.flow import Error
from mitmproxy.test import taddons

from port443.mitm.log import InsecureLog
from port443.mitm.upgrade import HttpsUpgrade
from port443.proxy.decide import Decision, Learned, Policy, Reason, Step
from port443.proxy.store import ClientUse, InsecureStore
from tests.support.flows import http_flow

REFUSED = Decision.stay(Step.PROBE, Reason.REFUSED, "connection refused")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "db.sqlite3"


@pytest.fixture
def log(db: Path) -> Iterator[InsecureLog]:
    addon = InsecureLog()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, port443_db=str(db))
        yield addon
        addon.done()


def decided(url: str, decision: Decision, client: str = "10.0.0.7") -> http.HTTPFlow:
    flow = http_flow(url)
    flow.client_conn.peername = (client, 50000)
    flow.metadata["port443.decision"] = decision
    return flow


def read(db: Path) -> InsecureStore:
    return InsecureStore(db)


def test_insecure_log_records_decisions(log: InsecureLog, db: Path) -> None:
    log.response(decided("http://plain.test/path?secret=1", REFUSED))
    upgraded = Decision.upgrade_to("https://mine.test/", Step.RULESET, Reason.RULESET)
    log.response(decided("http://mine.test/", upgraded))
    log.response(decided("http://router.lan/", Decision.stay(Step.EXEMPT, Reason.EXEMPT, "local")))
    log.response(http_flow("http://undecided.test/"))  # HttpsUpgrade never saw it (an https request, say)
    log.done()
    store = read(db)
    (site,) = store.insecure_sites()
    assert (site.host, site.reason, site.example_path, site.clients) == ("plain.test", "refused", "/path", 1)
    assert store.upgrade_counts() == {"ruleset": 1}
    assert [(c.address, c.requests, c.upgraded, c.insecure) for c in store.clients()] == [
        ("10.0.0.7", 3, 1, 1)
    ]
    store.close()


def test_a_failing_upstream_is_counted_once(log: InsecureLog, db: Path) -> None:
    flow = decided("http://plain.test/", REFUSED)
    flow.error = Error("connection refused")  # the plain-HTTP upstream is down too
    log.error(flow)
    answered = decided("http://plain.test/", REFUSED)
    log.response(answered)
    log.error(answered)  # a flow may see both (the client went away while the answer streamed)
    log.done()
    store = read(db)
    assert [s.hits for s in store.insecure_sites()] == [2]
    store.close()


def test_rewrite_fallback_counts_the_failure_not_an_upgrade(log: InsecureLog, db: Path) -> None:
    flow = decided(
        "http://stale.test/", Decision.upgrade_to("https://stale.test/", Step.RULESET, Reason.RULESET)
    )
    # HttpsUpgrade.error (which runs first) replaced the decision with what happened.
    flow.metadata["port443.decision"] = Decision.stay(Step.LEARNED, Reason.TLS_ERROR, "certificate expired")
    log.error(flow)
    log.done()
    store = read(db)
    assert [(s.host, s.reason) for s in store.insecure_sites()] == [("stale.test", "tls-error")]
    assert store.upgrade_counts() == {}
    store.close()


def test_a_huge_path_is_read_only_as_far_as_it_is_kept(log: InsecureLog, db: Path) -> None:
    flow = decided("http://plain.test/", REFUSED, client="2001:db8::1")
    flow.request.data.path = b"/" + "é".encode() * (1 << 20)
    flow.request.headers["Host"] = "PLAIN.test."
    log.response(flow)
    log.done()
    store = read(db)
    (site,) = store.insecure_sites()
    assert (site.host, site.example_path) == ("plain.test", "/" + "é" * 199 + "…")
    assert store.clients()[0].address == "2001:db8::1"
    store.close()


def test_options(db: Path) -> None:
    log = InsecureLog()
    with taddons.context(log) as tctx:
        tctx.configure(log, port443_db=str(db))
        assert tctx.options.port443_flush_interval <= 1000  # what kill -9 can lose, at most
        assert log.store is not None and log.store.limits.max_hosts == 10_000
        tctx.configure(log, port443_keep_days=7, port443_keep_hosts=50)
        assert (log.store.limits.max_age, log.store.limits.max_hosts) == (7 * 86400, 50)
        for name, value in [
            ("port443_flush_interval", 0),
            ("port443_keep_days", 0),
            ("port443_keep_hosts", -1),
        ]:
            with pytest.raises(exceptions.OptionsError, match=name):
                tctx.configure(log, **{name: value})
        log.done()


def test_what_the_store_learned_goes_back_to_the_decider(db: Path) -> None:
    first = InsecureStore(db)
    first.note_learned(Learned("a.test", True, Reason.OK, "", 1e12))
    first.note_learned(Learned("a.test", False, Reason.REDIRECT_LOOP, "bounces", 1e12, "/login"))
    first.close()

    upgrade, log = HttpsUpgrade(), InsecureLog()
    with taddons.context(upgrade, log) as tctx:
        tctx.configure(upgrade, port443_shipped_rules=False)
        tctx.configure(log, port443_db=str(db))
        decider = upgrade.ensure_built()  # built after the store was attached: it still gets what it knew
        assert decider is not None
        assert list(decider.learned) == ["a.test"]
        assert list(decider.learned_paths) == [("a.test", "/login")]
        assert decider.on_learned == log.store.note_learned  # type: ignore[union-attr]
        log.done()


async def test_the_flusher_writes_in_the_background(log: InsecureLog, db: Path) -> None:
    log.response(decided("http://plain.test/", REFUSED))
    await log.flush()
    assert log.store is not None and log.store.pending == 0
    store = read(db)
    assert [c for c in store.clients()] == [
        ClientUse("10.0.0.7", 1, 0, 1, 1, *[store.clients()[0].first_seen] * 2)
    ]
    store.close()


async def test_choices_and_forgetting_by_another_process_reach_the_running_proxy(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = InsecureStore(db)
    before.set_policy("tv.test", Policy.NEVER)  # chosen before the proxy started
    before.close()
    upgrade, log = HttpsUpgrade(), InsecureLog()
    with taddons.context(upgrade, log) as tctx:
        tctx.configure(upgrade, port443_shipped_rules=False, port443_probe=False)
        tctx.configure(log, port443_db=str(db))
        decider = upgrade.ensure_built()
        assert decider is not None and decider.policies == {"tv.test": Policy.NEVER}
        decider.learn(Learned("probed.test", True, Reason.OK, "", 1e12))
        await log.flush()
        await log.follow()
        assert decider.policies == {"tv.test": Policy.NEVER}  # nothing changed elsewhere: nothing read
        cli = InsecureStore(db)  # `port443 always`, `port443 forget` in another process
        cli.set_policy("tv.test", None)
        cli.set_policy("box.test", Policy.ALWAYS)
        cli.forget("probed.test")
        cli.close()
        decider.learn(Learned("probed.test", True, Reason.OK, "", 1e12))  # buffered, not written yet
        with caplog.at_level(logging.INFO, logger="port443.mitm.log"):
            await log.follow()
        assert decider.policies == {"box.test": Policy.ALWAYS}
        assert "probed.test" not in decider.learned
        assert "the store changed: 1 per-site choices in force, 1 hosts forgotten" in caplog.text
        await log.flush()
        assert log.store is not None and log.store.learned() == []  # the buffer did not write it back
        rebuilt = upgrade.ensure_built()
        assert rebuilt is not None and rebuilt.policies == {"box.test": Policy.ALWAYS}
        log.done()


# --- kill -9 while logging ------------------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    from mitmproxy.test import taddons, tflow
    from port443.mitm.log import InsecureLog
    from port443.proxy.decide import Decision, Reason, Step

    async def main(db):
        log = InsecureLog()
        noted = 0
        with taddons.context(log) as tctx:
            tctx.configure(log, port443_db=db)  # the default flush interval
            print(f"interval {tctx.options.port443_flush_interval}", flush=True)
            store = log.store
            write = store.flush
            def flush(now=None):  # runs in the flusher's worker thread
                before = noted  # at most this many hits are in the notes it takes
                write(now)
                print(f"flushed {before} {time.monotonic():.6f}", flush=True)
            store.flush = flush
            log.running()  # the real flush loop
            decision = Decision.stay(Step.PROBE, Reason.REFUSED, "connection refused")
            while True:
                flow = tflow.tflow()
                flow.request.url = "http://plain.test/"
                flow.metadata["port443.decision"] = decision
                log.response(flow)
                noted += 1
                if noted % 10 == 0:
                    print(f"noted {noted} {time.monotonic():.6f}", flush=True)
                await asyncio.sleep(0.001)  # traffic's pace, and lets the flusher run

    asyncio.run(main(sys.argv[1]))
    """
)


def _numbers(line: str) -> tuple[int, float]:
    _, count, at = line.split()
    return int(count), float(at)


@pytest.mark.e2e
def test_kill_9_while_logging_loses_at_most_a_second(tmp_path: Path, db: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    child = subprocess.Popen(
        [sys.executable, str(script), str(db)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    interval = int(child.stdout.readline().split()[1]) / 1000
    noted: list[tuple[int, float]] = []
    flushed: list[tuple[int, float]] = []
    for line in child.stdout:  # after a few flushes, kill it late in a flush interval (the worst case)
        if line.startswith("flushed"):
            flushed.append(_numbers(line))
        elif line.startswith("noted"):
            noted.append(_numbers(line))
            if len(flushed) >= 3 and noted[-1][1] >= flushed[-1][1] + 0.8 * interval:
                child.send_signal(signal.SIGKILL)
                break
    noted += [_numbers(line) for line in child.stdout.read().splitlines() if line.startswith("noted")]
    child.stdout.close()
    assert child.wait(timeout=30) == -signal.SIGKILL
    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    ((stored,),) = raw.execute("SELECT hits FROM insecure WHERE host = 'plain.test'").fetchall()
    raw.close()
    (first, started), (last, killed_at) = noted[0], noted[-1]
    assert flushed[-1][0] <= stored <= last + 9  # every flush that returned survived; nothing invented
    lost = last + 9 - stored  # at most: the child may have noted 9 more than it printed
    per_second = (last - first) / (killed_at - started)
    assert interval <= 1.0
    assert lost <= per_second * 1.0, (
        f"lost {lost} hits, {lost / per_second:.2f} s of them at {per_second:.0f}/s"
    )
