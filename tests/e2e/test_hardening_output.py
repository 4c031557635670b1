"""What the proxy logged from hostile traffic comes out inert: `report` as table and CSV, `explain`, `rules validate`.

Markup, emoji codes, terminal escapes (C0 and C1) and spreadsheet formulas go through a real proxy in request
paths, Host headers and a probed site's Location header; the table and CSV must show them as text, JSON
exactly. (mitmproxy refuses non-ASCII request lines, so bidi overrides are left to the unit tests.)
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.certs import Certs
from tests.support.proxy import Launch
from tests.support.servers import closed_port, page, redirect_to, serve

pytestmark = pytest.mark.e2e

# What a terminal acts on or a reader is fooled by: C0 but newline, DEL, C1, bidi controls.
LIVE_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")

ESC_PATH = "/\x1b]0;owned\x07\x1b[2J\x1b[31mred"
PATHS = {  # one host per payload: the store keeps one example path per host
    "markup-close.test": "/[/]",
    "markup-style.test": "/[red]styled[/red][bold]x",
    "markup-link.test": "/[link=http://evil.test/]click[/link]",
    "emoji.test": "/:smiley:/:warning:",
    "esc.test": ESC_PATH,
}
FORMULA_HOSTS = ("=1+2*cmd.test", "-2+3.test", "+sum.test", "@a1.test")
LOCATION = "http://loc.test/\x1b]0;pwned\x07[red]moved[/red]\x9b2J"  # \x9b: CSI as one C1 byte


@dataclass(frozen=True)
class Logged:
    """A store filled by a real proxy with the payloads above."""

    db: Path
    rules: Path


def send_raw(port: int, target: str, host: str) -> bytes:
    """One HTTP/1.1 request to the proxy with exactly these bytes in the request line and Host header."""
    request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def logged(launch: Launch, certs: Certs, tmp_path: Path) -> Iterator[Logged]:
    db = tmp_path / "log.sqlite3"
    rules = tmp_path / "rules"
    rules.mkdir()
    with ExitStack() as stack:
        http = stack.enter_context(serve(page("plain")))
        refused = stack.enter_context(closed_port())
        https = stack.enter_context(serve(redirect_to(LOCATION), context=certs.context("loc.test")))
        hosts = [*PATHS, *FORMULA_HOSTS, "a1.test"]  # URL parsers read `@a1.test` as a1.test with userinfo
        connect_to = [f"{h}:443:127.0.0.1:{refused}" for h in hosts] + [
            f"{h}:80:127.0.0.1:{http.port}" for h in hosts
        ]
        connect_to += [f"loc.test:443:127.0.0.1:{https.port}", f"loc.test:80:127.0.0.1:{http.port}"]
        connect_to += [f"plain.test:80:127.0.0.1:{http.port}"]
        proxy = launch(connect_to=connect_to, db=db, extra=["port443_probe_timeout=2000"])
        for host, path in PATHS.items():
            assert send_raw(proxy.port, f"http://{host}{path}", host).startswith(b"HTTP/1.1 200")
        for host in FORMULA_HOSTS:
            # The request line names a valid host (mitmproxy checks it); the Host header carries the payload,
            # and it is what the proxy decides on and logs.
            assert send_raw(proxy.port, "http://plain.test/", host).startswith(b"HTTP/1.1 200")
        assert send_raw(proxy.port, "http://loc.test/", "loc.test").startswith(b"HTTP/1.1 200")
        assert proxy.stop() == 0  # SIGTERM: done() flushes the store
    yield Logged(db, rules)


def port443(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "400"}  # rich folds tables to the terminal width
    return subprocess.run(
        [sys.executable, "-m", "port443", *args], capture_output=True, text=True, env=env, check=False
    )


def test_report_json_is_exact(logged: Logged) -> None:
    out = port443("report", "--json", "--db", str(logged.db))
    assert out.returncode == 0, out.stderr
    assert LIVE_CONTROL.search(out.stdout) is None  # escaped as \u001b by JSON itself
    rows = {row["host"]: row for row in json.loads(out.stdout)}
    assert {host: rows[host]["example_path"] for host in PATHS} == PATHS
    assert set(FORMULA_HOSTS) <= set(rows)
    assert rows["loc.test"]["reason"] == "redirects-to-http"
    assert LOCATION in rows["loc.test"]["detail"]


def test_report_table_is_inert(logged: Logged) -> None:
    out = port443("report", "--db", str(logged.db))
    assert out.returncode == 0, out.stderr  # `[/]` once crashed it with rich's MarkupError
    text = out.stdout
    assert LIVE_CONTROL.search(text) is None
    for host, path in PATHS.items():
        if host != "esc.test":
            assert path in text, path  # markup and emoji codes shown as they were sent
    assert "\\x1b]0;owned\\x07\\x1b[2J\\x1b[31mred" in text
    assert "http://loc.test/\\x1b]0;pwned\\x07[red]moved[/red]\\x9b2J" in text
    for host in FORMULA_HOSTS:
        assert host in text


def test_report_csv_is_inert_and_no_cell_is_a_formula(logged: Logged) -> None:
    out = port443("report", "--csv", "--db", str(logged.db))
    assert out.returncode == 0, out.stderr
    assert LIVE_CONTROL.search(out.stdout.replace("\r\n", "\n")) is None
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    cells = [cell for row in rows for cell in row.values()]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    hosts = {row["host"] for row in rows}
    assert {f"'{host}" for host in FORMULA_HOSTS} <= hosts
    by_host = {row["host"]: row for row in rows}
    assert by_host["esc.test"]["example_path"] == "/\\x1b]0;owned\\x07\\x1b[2J\\x1b[31mred"
    assert by_host["markup-close.test"]["example_path"] == "/[/]"


def test_explain_prints_inert_text(logged: Logged) -> None:
    url = "http://explain.test/\x1b[2J[red]x[/red]\u202e"
    out = port443("explain", url, "--rules", str(logged.rules), "--db", str(logged.db))
    assert out.returncode == 0, out.stderr
    assert LIVE_CONTROL.search(out.stdout) is None
    assert "http://explain.test/\\x1b[2J[red]x[/red]\\u202e" in out.stdout


def test_rules_validate_prints_inert_problems(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "evil\x1b[2J.yaml").write_text('name: "Evil\\e]0;x\\a"\ntargets: [evil.test]\nrules: nope\n')
    out = port443("rules", "validate", str(rules))
    assert out.returncode == 1
    assert LIVE_CONTROL.search(out.stdout + out.stderr) is None
    assert "evil\\x1b[2J.yaml" in out.stdout


def test_report_by_client(logged: Logged) -> None:
    out = port443("report", "--by-client", "--json", "--db", str(logged.db))
    assert out.returncode == 0, out.stderr
    (client,) = json.loads(out.stdout)
    requests = len(PATHS) + len(FORMULA_HOSTS) + 1
    assert (client["client"], client["requests"], client["insecure"]) == ("127.0.0.1", requests, requests)
    assert client["insecure_hosts"] == requests
    table = port443("report", "--by-client", "--db", str(logged.db))
    assert table.returncode == 0 and "127.0.0.1" in table.stdout
