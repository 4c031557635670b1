"""Decisions under realistic traffic: repeats, polling, shared resources, several devices, stale rules.

A real port443 proxy, real HTTP and HTTPS upstreams, httpx clients bound to different loopback addresses
so the proxy sees several devices. Many of these only show a problem on the second request.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.certs import Certs
from tests.support.proxy import Launch, report
from tests.support.servers import Handler, Server, closed_port, page, serve

pytestmark = pytest.mark.e2e

RULE = "name: {name}\ntargets: [{host}]\nrules:\n  - from: '^http:'\n    to: 'https:'\n"


@contextmanager
def site(certs: Certs, host: str, https: Handler | None = None) -> Iterator[tuple[Server, Server, list[str]]]:
    """An HTTPS and an HTTP upstream for `host`, and the connect-to entries that reach them."""
    with ExitStack() as stack:
        secure = stack.enter_context(serve(https or page(f"{host} over https"), context=certs.context(host)))
        plain = stack.enter_context(serve(page(f"{host} over http")))
        yield secure, plain, [f"{host}:443:127.0.0.1:{secure.port}", f"{host}:80:127.0.0.1:{plain.port}"]


def explain(url: str, db: Path, rules: Path | None = None) -> dict[str, object]:
    """`port443 explain --json` against the proxy's store."""
    argv = [sys.executable, "-m", "port443", "explain", "--json", "--db", str(db), url]
    if rules is not None:
        argv += ["--rules", str(rules)]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    result: dict[str, object] = json.loads(out)
    return result


def upgraded(response: httpx.Response) -> bool:
    """The client was sent to HTTPS by the proxy and ended on the HTTPS page."""
    return response.url.scheme == "https" and [r.status_code for r in response.history] == [307]


def test_a_polling_device_keeps_being_upgraded(launch: Launch, certs: Certs, tmp_path: Path) -> None:
    db = tmp_path / "log.sqlite3"
    with site(certs, "poll.test") as (secure, plain, connect_to):
        proxy = launch(connect_to=connect_to, db=db, extra=["port443_loop_window=2"])
        results = []
        with proxy.client(bind="127.0.0.2", follow_redirects=True) as device:
            for _ in range(10):  # a status page polled every 0.4 s: every poll is a "repeat"
                results.append(upgraded(device.get("http://poll.test/status")))
                time.sleep(0.4)  # the device's polling interval, not synchronisation
        assert results == [True] * 10
        assert plain.requests == []
        assert secure.requests.count("/status") >= 10  # the polls, plus the proxy's own look at the URL
        assert proxy.stop() == 0
    assert "poll.test" not in report(db)
    assert explain("http://poll.test/status", db)["upgrade"] is True


def test_pages_sharing_an_image_all_get_it_over_https(launch: Launch, certs: Certs, tmp_path: Path) -> None:
    with site(certs, "img.test") as (_secure, plain, connect_to):
        proxy = launch(connect_to=connect_to, db=tmp_path / "log.sqlite3")
        with (
            proxy.client(bind="127.0.0.2", follow_redirects=True) as phone,
            proxy.client(bind="127.0.0.3", follow_redirects=True) as tv,
        ):
            loads = [
                phone.get("http://img.test/logo.png"),  # page one
                phone.get("http://img.test/logo.png"),  # page two, the same image at once
                tv.get("http://img.test/logo.png"),
                phone.get("http://img.test/logo.png"),  # a reload
            ]
        assert [upgraded(r) for r in loads] == [True] * 4
        assert plain.requests == []


def test_a_loop_at_the_root_loads_over_http_at_once_and_is_logged_once(
    launch: Launch, certs: Certs, tmp_path: Path
) -> None:
    def bounce(req):  # type: ignore[no-untyped-def]
        return 301, {"Location": f"http://bounce.test{req.path}"}, b""

    db = tmp_path / "log.sqlite3"
    with site(certs, "bounce.test", https=bounce) as (_secure, plain, connect_to):
        proxy = launch(connect_to=connect_to, db=db)
        with proxy.client(follow_redirects=True) as client:
            first = client.get("http://bounce.test/")
            later = client.get("http://bounce.test/page")
        assert first.status_code == 200 and first.history == [] and first.url.scheme == "http"
        assert later.history == [] and plain.requests == ["/", "/page"]
        assert proxy.stop() == 0
    row = report(db)["bounce.test"]
    assert (row["reason"], row["hits"]) == ("redirects-to-http", 2)


def test_a_stale_rule_loads_the_page_over_http_and_says_why(
    launch: Launch, certs: Certs, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "stale.yaml").write_text(RULE.format(name="Stale", host="stale.test"))
    db = tmp_path / "log.sqlite3"
    with closed_port() as nothing, serve(page("stale over http")) as plain:
        connect_to = [f"stale.test:443:127.0.0.1:{nothing}", f"stale.test:80:127.0.0.1:{plain.port}"]
        proxy = launch(connect_to=connect_to, db=db, rules=rules)
        with proxy.client(follow_redirects=True) as client:
            pages = [client.get("http://stale.test/"), client.get("http://stale.test/b")]
        assert [(p.status_code, len(p.history), p.url.scheme) for p in pages] == [(200, 0, "http")] * 2
        assert proxy.stop() == 0
    row = report(db)["stale.test"]
    assert row["reason"] == "refused" and "ruleset 'Stale' would upgrade" in str(row["detail"])
    said = explain("http://stale.test/c", db, rules)
    assert (said["upgrade"], said["reason"]) == (False, "refused")


def test_a_second_device_is_never_downgraded_by_the_first_ones_repeats(
    launch: Launch, certs: Certs, tmp_path: Path
) -> None:
    db = tmp_path / "log.sqlite3"
    with site(certs, "busy.test") as (_secure, _plain, connect_to):
        proxy = launch(connect_to=connect_to, db=db)
        with proxy.client(bind="127.0.0.2") as stuck, proxy.client(bind="127.0.0.3") as other:
            burst = [stuck.get("http://busy.test/x").status_code for _ in range(12)]  # never follows
            seen = other.get("http://busy.test/x")
        assert burst[:3] == [307, 307, 307] and burst[-1] == 200  # held on HTTP: for this client only
        assert seen.status_code == 307 and seen.headers["location"] == "https://busy.test/x"
        assert proxy.stop() == 0
    assert explain("http://busy.test/x", db)["upgrade"] is True  # nothing was learned from it


def test_rewrite_mode_falls_back_after_one_failure_for_every_later_request(
    launch: Launch, certs: Certs, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text(RULE.format(name="R", host="fall.test"))
    db = tmp_path / "log.sqlite3"
    with serve(page("fall over http")) as plain:
        with serve(page("fall over https"), context=certs.context("fall.test")) as secure:
            connect_to = [f"fall.test:443:127.0.0.1:{secure.port}", f"fall.test:80:127.0.0.1:{plain.port}"]
            proxy = launch(mode="rewrite", connect_to=connect_to, db=db, rules=rules)
            with proxy.client() as client:
                assert "over https" in client.get("http://fall.test/1").text  # confirmed, then fetched
        # The site's HTTPS is gone now (its port refuses); the proxy still believes it works.
        responses = []
        for n in range(4):
            with proxy.client() as client:  # a new client connection: no kept-alive upstream to reuse
                responses.append(client.get(f"http://fall.test/{n}"))
        assert responses[0].status_code == 502  # the one request that finds out
        assert [(r.status_code, "over http" in r.text) for r in responses[1:]] == [(200, True)] * 3
        assert proxy.stop() == 0
    row = report(db)["fall.test"]
    assert (row["reason"], row["hits"]) == ("refused", 4), row
    assert explain("http://fall.test/9", db, rules)["upgrade"] is False


def test_a_client_giving_up_is_not_an_https_failure(launch: Launch, certs: Certs, tmp_path: Path) -> None:
    def slow(req):  # type: ignore[no-untyped-def]
        if req.path == "/slow":
            time.sleep(2)  # a slow page: the workload, not synchronisation
        return 200, {"Content-Type": "text/html"}, b"<title>slow over https</title>"

    db = tmp_path / "log.sqlite3"
    with site(certs, "slow.test", https=slow) as (_secure, plain, connect_to):
        proxy = launch(mode="rewrite", connect_to=connect_to, db=db)
        with proxy.client() as client:
            with pytest.raises(httpx.ReadTimeout):
                client.get("http://slow.test/slow", timeout=0.5)  # like `curl -m 0.5`
        with proxy.client() as client:
            after = client.get("http://slow.test/fast")
        assert after.status_code == 200 and "over https" in after.text and plain.requests == []
        proxy.wait_for_log("client disconnect")  # the proxy has seen the client give up
        assert proxy.stop() == 0
    assert "slow.test" not in report(db)
