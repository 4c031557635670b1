"""The dashboard of a real proxy, after real traffic: its API agrees with `port443 report`, its refusals hold,
a device beyond this machine needs the password, and the CLI's changes reach the running proxy.

"Beyond this machine" on one machine: the proxy trusts only 127.0.0.1 (`port443_dashboard_trusted`), and
the other device is a client bound to 127.0.0.2, as the access control's own tests do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.certs import Certs
from tests.support.household import PHONE, Sites, browse, direct, sites, upgraded
from tests.support.proxy import Launch, Proxy

pytestmark = pytest.mark.e2e


@pytest.fixture
def household(certs: Certs) -> Iterator[Sites]:
    with sites(certs) as running:
        yield running


def cli(env: dict[str, str], *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`port443 ...` in its own process, with the proxy's data directory."""
    return subprocess.run(
        [sys.executable, "-m", "port443", *argv],
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, **env},
        check=True,
        timeout=60,
    )


def api(proxy: Proxy, path: str) -> object:
    with direct() as client:
        answer = client.get(proxy.url + path)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_api_gives_the_numbers_of_port443_report(
    launch: Launch, household: Sites, tmp_path: Path, proxy_env: dict[str, str]
) -> None:
    db = tmp_path / "log.sqlite3"
    proxy = launch(connect_to=household.connect_to, db=db)
    browse(proxy)
    summary = api(proxy, "/api/summary")
    insecure = api(proxy, "/api/insecure")
    devices = api(proxy, "/api/devices")
    reported = json.loads(cli(proxy_env, "report", "--json", "--db", str(db)).stdout)
    by_client = json.loads(cli(proxy_env, "report", "--json", "--by-client", "--db", str(db)).stdout)
    assert isinstance(summary, dict) and isinstance(insecure, list) and isinstance(devices, list)
    assert [{k: row[k] for k in reported[0]} for row in insecure] == reported  # every field, every row
    assert [{k: row[k] for k in by_client[0]} for row in devices] == by_client
    (plain,) = insecure
    assert (plain["host"], plain["hits"], plain["clients"], plain["reason"]) == (
        "plain.test",
        3,
        2,
        "refused",
    )
    assert sorted(plain["devices"]) == ["127.0.0.2", "127.0.0.3"] and plain["example_path"] == "/a"
    assert summary["upgraded_by_step"]["probe"] == 2 and summary["upgraded_by_step"]["learned"] == 1
    assert summary["insecure_hits"] == sum(r["hits"] for r in reported) == 3
    learned = api(proxy, "/api/learned")
    assert isinstance(learned, list) and {x["host"] for x in learned} == {
        "plain.test",
        "secure.test",
        "again.test",
    }


def test_cross_origin_and_foreign_host_requests_are_refused(
    launch: Launch, household: Sites, tmp_path: Path
) -> None:
    proxy = launch(connect_to=household.connect_to, db=tmp_path / "log.sqlite3")
    with direct() as client:
        token = client.get(proxy.url + "/api/session").json()["csrf"]
        form = {"host": "secure.test", "policy": "never", "csrf": token}
        # A page on another origin posting a form at the proxy: the browser sends that page's Origin.
        cross = client.post(proxy.url + "/api/policy", data=form, headers={"Origin": "http://evil.example"})
        assert cross.status_code == 403
        no_token = client.post(
            proxy.url + "/api/policy", data=form | {"csrf": ""}, headers={"Origin": proxy.url}
        )
        assert no_token.status_code == 403
    assert upgraded(proxy, "http://secure.test/")  # nothing changed
    # A rebound name: the request reaches the proxy's own address but names the attacker's host. (Sent
    # through the proxy to its own address, so no name is looked up: the tests never ask DNS.)
    with proxy.client() as through:
        rebound = through.get(proxy.url + "/api/summary", headers={"Host": "evil.example"})
    assert rebound.status_code == 403 and "answers only to the proxy's own addresses" in rebound.text
    assert "upgraded" not in rebound.text


def test_a_device_beyond_this_machine_needs_the_password(
    launch: Launch, household: Sites, tmp_path: Path, proxy_env: dict[str, str]
) -> None:
    proxy = launch(
        connect_to=household.connect_to,
        db=tmp_path / "log.sqlite3",
        extra=["port443_dashboard_trusted=127.0.0.1/32"],
    )
    browse(proxy)
    origin = {"Origin": proxy.url}
    with direct(bind=PHONE) as phone:
        page = phone.get(proxy.url + "/")
        assert (
            page.status_code == 200
            and "Read-only from this device" in page.text
            and "plain.test" in page.text
        )
        assert phone.get(proxy.url + "/api/session").json() == {
            "csrf": None,
            "can_act": False,
            "sign_in_required": False,
            "password_set": False,
        }
        refused = phone.post(
            proxy.url + "/api/policy", data={"host": "secure.test", "policy": "never"}, headers=origin
        )
        assert refused.status_code == 403
        cli(proxy_env, "dashboard", "password", "--stdin", stdin="household secret\n")
        assert 'action="/login"' in phone.get(proxy.url + "/").text  # the running proxy read the new file
        assert phone.get(proxy.url + "/api/insecure").status_code == 401
        login = phone.get(proxy.url + "/api/session").json()
        assert login["sign_in_required"] and login["csrf"] is None
        token = page_token(phone.get(proxy.url + "/").text)
        wrong = phone.post(proxy.url + "/login", data={"password": "guess", "csrf": token}, headers=origin)
        assert wrong.status_code == 403 and "port443_session" not in phone.cookies
        right = phone.post(
            proxy.url + "/login", data={"password": "household secret", "csrf": token}, headers=origin
        )
        assert right.status_code == 303 and "port443_session" in phone.cookies
        csrf = phone.get(proxy.url + "/api/session").json()["csrf"]
        acted = phone.post(
            proxy.url + "/api/policy",
            data={"host": "secure.test", "policy": "never", "csrf": csrf},
            headers=origin,
        )
        assert acted.status_code == 303  # a form post: back to the page
    assert not upgraded(proxy, "http://secure.test/")


def page_token(html: str) -> str:
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def test_the_cli_changes_the_running_proxy(
    launch: Launch, household: Sites, tmp_path: Path, proxy_env: dict[str, str]
) -> None:
    db = tmp_path / "log.sqlite3"
    proxy = launch(connect_to=household.connect_to, db=db)
    browse(proxy)
    cli(proxy_env, "never", "secure.test", "--db", str(db))
    proxy.wait_for_log("the store changed: 1 per-site choices in force")
    assert not upgraded(proxy, "http://secure.test/")
    assert api(proxy, "/api/policy") == {"policies": [_choice(api(proxy, "/api/policy"))], "exceptions": []}
    cli(proxy_env, "clear", "secure.test", "--db", str(db))
    proxy.wait_for_log("the store changed: 0 per-site choices in force")
    assert upgraded(proxy, "http://secure.test/")
    probes = household.secure.requests.count("/")
    cli(proxy_env, "forget", "again.test", "--db", str(db))
    proxy.wait_for_log("1 hosts forgotten")
    assert upgraded(proxy, "http://again.test/")  # from a device that was never sent there (no loop check)
    assert household.secure.requests.count("/") == probes + 1  # probed again


def _choice(document: object) -> dict[str, str]:
    assert isinstance(document, dict)
    (choice,) = document["policies"]
    assert (choice["host"], choice["policy"]) == ("secure.test", "never")
    return dict(choice)


def test_port443_run_names_its_dashboard(tmp_path: Path, proxy_env: dict[str, str]) -> None:
    for flags, served in (([], True), (["--no-dashboard"], False)):
        command = [
            sys.executable,
            "-m",
            "port443",
            "run",
            "--listen-port",
            "0",
            "--db",
            str(tmp_path / "db.sqlite3"),
        ]
        command += ["--set", "port443_shipped_rules=false", *flags]
        process = subprocess.Popen(
            command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True,
            env={**os.environ, **proxy_env},
        )  # fmt: skip
        assert process.stderr is not None
        try:
            line = next(line for line in process.stderr if "listening on" in line)
            port = int(line.split("http://127.0.0.1:", 1)[1].split()[0])
            url = f"http://127.0.0.1:{port}/"
            with direct() as client:
                answer = client.get(url)
        finally:
            process.terminate()
            process.wait(timeout=30)
            process.stderr.close()
        if served:
            assert line.rstrip().endswith(f"; dashboard: {url}") and answer.status_code == 200
            assert "Sites still on plain HTTP" in answer.text
        else:
            assert "dashboard" not in line and answer.status_code == 404
