"""Rewrite and strict modes, the store across a restart, live rule reloads, and `port443 run` itself."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.certs import Certs
from tests.support.proxy import Launch, report, start
from tests.support.servers import closed_port, page, serve

pytestmark = pytest.mark.e2e


def test_rewrite_mode_fetches_https_and_answers_over_http(launch: Launch, certs: Certs) -> None:
    def https_handler(req):  # type: ignore[no-untyped-def]
        return (
            200,
            {"Set-Cookie": "sid=1; Path=/; Secure; HttpOnly", "Content-Type": "text/html"},
            b"<title>over https</title>",
        )

    with serve(https_handler, context=certs.context("site.test")) as https, serve(page("plain")) as http:
        proxy = launch(
            mode="rewrite",
            connect_to=[f"site.test:443:127.0.0.1:{https.port}", f"site.test:80:127.0.0.1:{http.port}"],
        )
        with proxy.client() as client:
            response = client.get("http://site.test/account")
        assert response.status_code == 200 and "over https" in response.text
        assert response.headers["set-cookie"] == "sid=1; Path=/; HttpOnly"  # Secure dropped for the local hop
        assert "/account" in https.requests and http.requests == []


def test_mapped_upstream_connections_are_reused_by_keep_alive_clients(launch: Launch, certs: Certs) -> None:
    with serve(page("over https"), context=certs.context("site.test")) as https:
        proxy = launch(mode="rewrite", connect_to=[f"site.test:443:127.0.0.1:{https.port}"])
        with proxy.client() as client:  # one client connection, many requests
            statuses = [client.get(f"http://site.test/{n}").status_code for n in range(12)]
    assert statuses == [200] * 12


def test_rewrite_mode_falls_back_to_http_when_tls_fails(launch: Launch, certs: Certs, tmp_path: Path) -> None:
    with serve(page("x"), context=certs.context("other.test")) as https, serve(page("plain")) as http:
        db = tmp_path / "log.sqlite3"
        proxy = launch(
            mode="rewrite",
            db=db,
            connect_to=[f"site.test:443:127.0.0.1:{https.port}", f"site.test:80:127.0.0.1:{http.port}"],
        )
        with proxy.client() as client:
            response = client.get("http://site.test/")
        assert response.status_code == 200 and "plain" in response.text
        assert proxy.stop() == 0
    assert report(db)["site.test"]["reason"] == "bad-certificate"


def test_rewrite_mode_checks_https_before_trusting_a_ruleset(
    launch: Launch, certs: Certs, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text(
        "name: R\ntargets: [ruled.test]\nrules:\n  - from: '^http:'\n    to: 'https:'\n"
    )
    db = tmp_path / "log.sqlite3"
    with (
        serve(page("x"), context=certs.context("ruled.test", expired=True)) as https,
        serve(page("plain")) as http,
    ):
        connect_to = [f"ruled.test:443:127.0.0.1:{https.port}", f"ruled.test:80:127.0.0.1:{http.port}"]
        proxy = launch(mode="rewrite", db=db, rules=rules, connect_to=connect_to)
        with proxy.client() as client:
            response = client.get("http://ruled.test/a")
        assert response.status_code == 200 and "<h1>plain</h1>" in response.text  # not an error page
        assert proxy.stop() == 0
    row = report(db)["ruled.test"]
    assert row["reason"] == "bad-certificate" and "ruleset 'R' would upgrade" in str(row["detail"])


def test_strict_mode_warns_and_the_secret_link_opens_an_exception(launch: Launch, certs: Certs) -> None:
    with (
        serve(page("x"), context=certs.context("bad.test", expired=True)) as https,
        serve(page("plain")) as http,
    ):
        proxy = launch(
            mode="strict",
            connect_to=[f"bad.test:443:127.0.0.1:{https.port}", f"bad.test:80:127.0.0.1:{http.port}"],
        )
        with proxy.client() as client:
            warning = client.get("http://bad.test/page")
            assert warning.status_code == 403 and "does not offer a secure connection" in warning.text
            assert "certificate has expired" in warning.text
            link = re.search(r'href="([^"]+)"', warning.text)
            assert link is not None
            forged = link.group(1).replace("&amp;", "&").replace("token=", "token=0")
            assert client.get(forged).status_code == 403  # a page cannot forge the way around the warning
            assert http.requests == []
            opened = client.get(link.group(1).replace("&amp;", "&"))
            assert (opened.status_code, opened.headers["location"]) == (303, "http://bad.test/page")
            assert "<h1>plain</h1>" in client.get("http://bad.test/page").text
        assert http.requests == ["/page"]


def test_learned_results_and_the_log_survive_a_restart(launch: Launch, certs: Certs, tmp_path: Path) -> None:
    db = tmp_path / "log.sqlite3"
    with (
        serve(page("secure"), context=certs.context("site.test")) as https,
        serve(page("plain")) as http,
        closed_port() as refused,
    ):
        connect_to = [f"site.test:443:127.0.0.1:{https.port}", f"plain.test:80:127.0.0.1:{http.port}"]
        connect_to.append(f"plain.test:443:127.0.0.1:{refused}")  # never a real name lookup
        first = launch(db=db, connect_to=connect_to, extra=["port443_probe_timeout=500"])
        with first.client() as client:
            assert client.get("http://site.test/").status_code == 307
            assert client.get("http://plain.test/x").status_code == 200  # nothing on plain.test:443
        assert first.stop() == 0
        second = launch(db=db, connect_to=connect_to)
        with second.client() as client:
            assert client.get("http://site.test/again").status_code == 307
            assert client.get("http://plain.test/y").status_code == 200
        assert second.stop() == 0
    assert https.requests == ["/"]  # the second run knew the answer: no new probe
    rows = report(db)
    assert rows["plain.test"]["hits"] == 2


def test_a_broken_rules_edit_keeps_the_last_good_rules(launch: Launch, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    good = "name: Mine\ntargets: [mine.test]\nrules:\n  - from: '^http:'\n    to: 'https:'\n"
    (rules / "mine.yaml").write_text(good)
    (rules / "broken.yaml").write_text("name: Broken\ntargets: [Broken.test]\nrules: []\n")
    proxy = launch(rules=rules, connect_to=[], extra=["port443_probe=false"])
    proxy.wait_for_log("broken.yaml:2: targets[0]: targets must be lower-case")  # reported at start, skipped
    with proxy.client() as client:
        assert client.get("http://mine.test/").status_code == 307
        (rules / "mine.yaml").write_text(good.replace("targets: [mine.test]", "targets: [mine.test"))
        proxy.wait_for_log("rules reloaded")
        assert re.search(r"mine.yaml:\d+: invalid YAML", proxy.log)
        assert (
            client.get("http://mine.test/2").status_code == 307
        )  # the file's last good version still serves
        (rules / "mine.yaml").write_text(good.replace("mine.test", "other.test"))
        proxy.wait_for_log("rules reloaded", times=2)
        assert client.get("http://other.test/").status_code == 307
        assert client.get("http://mine.test/3").status_code == 502  # no longer covered, and nothing listens


def test_port443_run_serves_and_stops_cleanly_on_sigint(
    certs: Certs, tmp_path: Path, proxy_env: dict[str, str]
) -> None:
    db = tmp_path / "run.sqlite3"
    with serve(page("plain")) as http:
        argv = [
            sys.executable,
            "-m",
            "port443",
            "run",
            "--listen-port",
            "0",
            "--db",
            str(db),
            "--set",
            "scripts=tests/support/ready_addon.py",
        ]
        argv += [
            "--set",
            f"port443_connect_to=plain.test:80:127.0.0.1:{http.port}",
            "--set",
            "port443_probe=false",
        ]
        argv += ["--set", "port443_shipped_rules=false", "--set", f"confdir={tmp_path / 'conf'}"]
        proxy = start(argv, certs.ca_pem, env=proxy_env)
        with proxy.client() as client:
            assert client.get("http://plain.test/a").status_code == 200
        proxy.process.send_signal(signal.SIGINT)
        assert proxy.stop() == 0
    out = subprocess.run(
        [sys.executable, "-m", "port443", "report", "--json", "--db", str(db)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert [(r["host"], r["reason"]) for r in json.loads(out.stdout)] == [("plain.test", "not-probed")]


def test_run_refuses_a_lan_address_without_allow_lan() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "port443", "run", "--listen-host", "0.0.0.0"], capture_output=True, text=True
    )
    assert done.returncode == 2 and "--allow-lan" in done.stderr
