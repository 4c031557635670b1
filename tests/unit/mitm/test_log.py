"""InsecureLog with mitmproxy's test helpers: decisions reach the store, without query strings."""

from __future__ import annotations

from pathlib import Path

from mitmproxy.test import taddons

from port443.mitm.log import InsecureLog
from port443.proxy.decide import Decision, Reason, Step
from port443.proxy.store import InsecureStore
from tests.support.flows import http_flow


def test_insecure_log_records_decisions(tmp_path: Path) -> None:
    log = InsecureLog()
    with taddons.context(log) as tctx:
        tctx.configure(log, port443_db=str(tmp_path / "db.sqlite3"))
        flow = http_flow("http://plain.test/path?secret=1")
        flow.metadata["port443.decision"] = Decision(
            False, None, Step.PROBE, Reason.REFUSED, "connection refused"
        )
        log.request(flow)
        upgraded = http_flow("http://mine.test/")
        upgraded.metadata["port443.decision"] = Decision(
            True, "https://mine.test/", Step.RULESET, Reason.RULESET
        )
        log.request(upgraded)
        log.done()

    store = InsecureStore(tmp_path / "db.sqlite3")
    (site,) = store.insecure_sites()
    assert (site.host, site.reason, site.example_path) == ("plain.test", "refused", "/path")
    assert store.upgrade_counts() == {"ruleset": 1}
    store.close()
