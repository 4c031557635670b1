"""Redirect mode through a real proxy: probes, their failures, rulesets, tunnels, loops and concurrency."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.certs import Certs
from tests.support.proxy import Launch, report
from tests.support.servers import closed_port, page, redirect_to, serve, silent_port

pytestmark = pytest.mark.e2e


def test_probe_success_redirects_and_https_is_tunnelled_with_the_sites_own_certificate(
    launch: Launch, certs: Certs
) -> None:
    with (
        serve(page("secure site"), context=certs.context("site.test")) as https,
        serve(page("plain site")) as http,
    ):
        proxy = launch(
            connect_to=[f"site.test:443:127.0.0.1:{https.port}", f"site.test:80:127.0.0.1:{http.port}"]
        )
        with proxy.client() as client:
            first = client.get("http://site.test/some/path?q=1")
            assert first.status_code == 307
            assert first.headers["location"] == "https://site.test/some/path?q=1"
            final = client.get(first.headers["location"])
            assert "secure site" in final.text
            cert = final.extensions["network_stream"].get_extra_info("ssl_object").getpeercert()
        issuer = dict(pair[0] for pair in cert["issuer"])
        assert ("DNS", "site.test") in cert["subjectAltName"]
        assert "mitmproxy" not in json.dumps(issuer)  # not intercepted: the site's own certificate
        assert http.requests == []  # nothing went over plain HTTP
        assert https.requests.count("/") == 1  # the probe's HEAD /


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("no-443", "refused"),
        ("wrong-host", "bad-certificate"),
        ("expired", "bad-certificate"),
        ("self-signed", "bad-certificate"),
        ("timeout", "timeout"),
        ("https-redirects-to-http", "redirects-to-http"),
    ],
)
def test_probe_failures_stay_on_http_and_are_logged(
    launch: Launch, certs: Certs, tmp_path: Path, case: str, reason: str
) -> None:
    with ExitStack() as stack:
        http = stack.enter_context(serve(page("plain site")))
        if case == "no-443":
            port = stack.enter_context(closed_port())
        elif case == "timeout":
            port = stack.enter_context(silent_port())
        else:
            handler = redirect_to("http://bad.test{path}") if case == "https-redirects-to-http" else page("x")
            context = {
                "wrong-host": lambda: certs.context("other.test"),
                "expired": lambda: certs.context("bad.test", expired=True),
                "self-signed": lambda: certs.context("bad.test", untrusted=True),
                "https-redirects-to-http": lambda: certs.context("bad.test"),
            }[case]()
            port = stack.enter_context(serve(handler, context=context)).port
        db = tmp_path / "log.sqlite3"
        proxy = launch(
            connect_to=[f"bad.test:443:127.0.0.1:{port}", f"bad.test:80:127.0.0.1:{http.port}"],
            extra=["port443_probe_timeout=1000"],
            db=db,
        )
        with proxy.client() as client:
            response = client.get("http://bad.test/page?secret=1")
        assert response.status_code == 200 and "plain site" in response.text
        assert http.requests == ["/page?secret=1"]
        assert proxy.stop() == 0
    row = report(db)["bad.test"]
    assert (row["reason"], row["hits"], row["example_path"]) == (reason, 1, "/page")  # never the query string
    if case == "wrong-host":
        assert "bad.test" in str(row["detail"])


def test_fifty_concurrent_requests_to_a_new_host_share_one_probe(launch: Launch, certs: Certs) -> None:
    with serve(page("secure"), context=certs.context("busy.test")) as https:
        proxy = launch(connect_to=[f"busy.test:443:127.0.0.1:{https.port}"])
        with proxy.client() as client, ThreadPoolExecutor(50) as pool:
            responses = list(pool.map(lambda n: client.get(f"http://busy.test/{n}"), range(50)))
    assert [r.status_code for r in responses] == [307] * 50
    assert sorted(r.headers["location"] for r in responses) == sorted(
        f"https://busy.test/{n}" for n in range(50)
    )
    assert https.requests == ["/"]  # exactly one probe


def test_rulesets_upgrade_without_probing_and_exclusions_stay_on_http(
    launch: Launch, certs: Certs, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "ruled.yaml").write_text(
        "name: Ruled\ntargets: [ruled.test]\nrules:\n  - from: ^http://ruled\\.test/\n    to: https://www.ruled.test/\n"
        "exclusions:\n  - ^http://ruled\\.test/legacy/\n"
    )
    with serve(page("plain")) as http:
        db = tmp_path / "log.sqlite3"
        proxy = launch(
            connect_to=[f"ruled.test:80:127.0.0.1:{http.port}"],
            rules=rules,
            db=db,
            extra=["port443_probe=false"],
        )
        with proxy.client() as client:
            upgraded = client.get("http://ruled.test/a")
            excluded = client.get("http://ruled.test/legacy/b")
        assert (upgraded.status_code, upgraded.headers["location"]) == (307, "https://www.ruled.test/a")
        assert excluded.status_code == 200 and http.requests == ["/legacy/b"]
        assert proxy.stop() == 0
    assert report(db)["ruled.test"]["reason"] == "excluded-by-rule"


def test_a_redirect_loop_is_confirmed_and_only_that_path_left_on_http(
    launch: Launch, certs: Certs, tmp_path: Path
) -> None:
    def https_handler(req):  # type: ignore[no-untyped-def]
        if req.path == "/":
            return 200, {}, b"home"  # the probe sees a working site ...
        return 301, {"Location": f"http://loop.test{req.path}"}, b""  # ... but pages bounce back to http

    db = tmp_path / "log.sqlite3"
    with serve(https_handler, context=certs.context("loop.test")) as https, serve(page("plain loop")) as http:
        proxy = launch(
            connect_to=[f"loop.test:443:127.0.0.1:{https.port}", f"loop.test:80:127.0.0.1:{http.port}"], db=db
        )
        with proxy.client(follow_redirects=True) as client:
            response = client.get("http://loop.test/page")
            again = client.get("http://loop.test/page")
            home = client.get("http://loop.test/")
        assert response.status_code == 200 and "plain loop" in response.text
        assert [str(r.url) for r in response.history] == ["http://loop.test/page", "https://loop.test/page"]
        assert again.history == []  # the confirmed loop is remembered for this path ...
        assert [str(r.url) for r in home.history] == ["http://loop.test/"]  # ... and only for it
        assert str(home.url) == "https://loop.test/" and home.text == "home"
        assert proxy.stop() == 0
    row = report(db)["loop.test"]
    assert (row["reason"], row["hits"]) == ("redirect-loop", 2)
    assert "HTTPS /page sends clients back to HTTP" in str(row["detail"])


def test_exempt_hosts_are_never_upgraded(launch: Launch) -> None:
    with serve(page("router")) as http:
        proxy = launch(
            connect_to=[f"router.lan:80:127.0.0.1:{http.port}", f"printer:80:127.0.0.1:{http.port}"]
        )
        with proxy.client() as client:
            assert client.get("http://router.lan/").status_code == 200
            assert client.get("http://printer/").status_code == 200
        assert http.requests == ["/", "/"]
