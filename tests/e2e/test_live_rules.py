"""`port443 rules test --live` against real local HTTP and HTTPS servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.certs import Certs
from tests.support.servers import closed_port, page, serve

pytestmark = pytest.mark.e2e

RULESET = """\
name: Live
targets: [same.test, differs.test, down.test]
rules:
  - from: "^http:"
    to: "https:"
exclusions:
  - ^http://same\\.test/skip
tests:
  - http://same.test/a
  - http://same.test/skip
"""


def test_live_rules_compare_http_with_https(certs: Certs, tmp_path: Path) -> None:
    (tmp_path / "live.yaml").write_text(RULESET)
    with ExitStack() as stack:
        plain = stack.enter_context(serve(page("Same")))
        same = stack.enter_context(serve(page("Same"), context=certs.context("same.test")))
        differs = stack.enter_context(serve(page("Parked domain"), context=certs.context("differs.test")))
        down = stack.enter_context(closed_port())
        argv = [
            sys.executable,
            "-m",
            "port443",
            "rules",
            "test",
            "--live",
            "--json",
            "--ca-bundle",
            str(certs.ca_pem),
        ]
        argv += ["--timeout", "5", str(tmp_path)]
        for host, port in (("same.test", same.port), ("differs.test", differs.port), ("down.test", down)):
            argv += [
                "--connect-to",
                f"{host}:443:127.0.0.1:{port}",
                "--connect-to",
                f"{host}:80:127.0.0.1:{plain.port}",
            ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    results = {r["url"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert done.returncode == 1, done.stderr
    assert set(results) == {
        "http://same.test/a",
        "http://same.test/skip",
        "http://same.test/",
        "http://differs.test/",
        "http://down.test/",
    }
    assert results["http://same.test/a"]["ok"] and results["http://same.test/"]["ok"]
    assert results["http://same.test/skip"]["ok"] and results["http://same.test/skip"]["rewritten"] is None
    assert not results["http://differs.test/"]["ok"]
    assert results["http://differs.test/"]["reason"] == "title 'Same' over HTTP, 'Parked domain' over HTTPS"
    assert not results["http://down.test/"]["ok"] and "refused" in results["http://down.test/"]["reason"]


def test_live_rules_all_fine_exit_0(certs: Certs, tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(
        "name: Ok\ntargets: [same.test]\nrules:\n  - from: '^http:'\n    to: 'https:'\n"
    )
    with serve(page("Same")) as plain, serve(page("Same"), context=certs.context("same.test")) as secure:
        argv = [
            sys.executable,
            "-m",
            "port443",
            "rules",
            "test",
            "--live",
            "--ca-bundle",
            str(certs.ca_pem),
            str(tmp_path),
        ]
        argv += [
            "--connect-to",
            f"same.test:443:127.0.0.1:{secure.port}",
            "--connect-to",
            f"same.test:80:127.0.0.1:{plain.port}",
        ]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"}
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 test URLs of 1 rulesets: 1 fine, 0 broken" in done.stdout
