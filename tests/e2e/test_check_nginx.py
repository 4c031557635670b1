"""`port443 check` against a real nginx: one site per way of getting HTTPS wrong, and one that gets it right.

Each site is a name under .test served by tests/e2e/nginx.py on 127.80.43.1; the checker reaches it with
`--resolve` and trusts the test CA with `--ca-bundle`. These tests pin down the `--json` report's contract.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import REPO
from tests.support.nginx import ADDRESS, UNUSED_ADDRESS, Cert, Nginx, Page, Redirect, Site, run_nginx

pytestmark = [pytest.mark.e2e, pytest.mark.nginx]

GOOD_HSTS = ("Strict-Transport-Security", "max-age=63072000; includeSubDomains; preload")
WEAK_HSTS = ("Strict-Transport-Security", "max-age=300")
MIXED_PAGE = """<!doctype html><title>Mixed</title>
<link rel=stylesheet href="http://cdn.test/s.css">
<script src="http://cdn.test/a.js"></script>
<img src="http://cdn.test/i.png" alt="">
<iframe src="http://x.test/"></iframe>
<form action="http://mixed.test/login" method="post"><input name="u"></form>
<a href="http://elsewhere.test/">a link is not mixed content</a>
"""


def page(title: str) -> str:
    return f"<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>\n"


def to_https(host: str, *headers: tuple[str, str]) -> Redirect:
    return Redirect(f"https://{host}$request_uri", headers=headers)


SITES = [
    Site("good.test", to_https("good.test"), Page(page("Good"), (GOOD_HSTS,))),
    Site("expired.test", to_https("expired.test"), Page(page("Expired"), (GOOD_HSTS,)), Cert.EXPIRED),
    Site("wronghost.test", to_https("wronghost.test"), Page(page("Wrong"), (GOOD_HSTS,)), Cert.WRONG_NAME),
    Site("selfsigned.test", to_https("selfsigned.test"), Page(page("Self"), (GOOD_HSTS,)), Cert.UNTRUSTED),
    Site("no443.test", Page(page("Plain only"))),
    Site("noredirect.test", Page(page("Same")), Page(page("Same"), (GOOD_HSTS,))),
    Site(
        "backtohttp.test",
        Redirect("https://backtohttp.test/"),
        Redirect("http://backtohttp.test/x"),
    ),
    Site("weakhsts.test", to_https("weakhsts.test"), Page(page("Weak"), (WEAK_HSTS,))),
    Site("mixed.test", to_https("mixed.test"), Page(MIXED_PAGE, (GOOD_HSTS,))),
    Site("mismatch.test", Page(page("Old site")), Page(page("New site"), (GOOD_HSTS,))),
]
HOSTS = [site.name for site in SITES]

# host -> (grade, passed)
VERDICTS = {
    "good.test": ("A+", True),
    "expired.test": ("F", False),
    "wronghost.test": ("F", False),
    "selfsigned.test": ("F", False),
    "no443.test": ("F", False),
    "noredirect.test": ("C", False),
    "backtohttp.test": ("D", False),
    "weakhsts.test": ("A", True),
    "mixed.test": ("C", False),
    "mismatch.test": ("C", False),  # no redirect already caps the grade at C
}

Check = Callable[..., subprocess.CompletedProcess[str]]
Result = dict[str, Any]


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    with run_nginx(tmp_path_factory.mktemp("nginx"), SITES) as server:
        yield server


@pytest.fixture(scope="module")
def check(nginx: Nginx, tmp_path_factory: pytest.TempPathFactory) -> Check:
    """Run `python -m port443 check` with --resolve for every host given and the test CA."""
    home = tmp_path_factory.mktemp("check-home")
    env = {"XDG_CACHE_HOME": str(home / "cache"), "XDG_DATA_HOME": str(home / "data"), "COLUMNS": "80"}

    def _check(
        *hosts: str, json_output: bool = True, extra: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "port443", "check", "--ca-bundle", str(nginx.ca_pem)]
        argv += ["--json"] if json_output else []
        for host in hosts:
            https_address = UNUSED_ADDRESS if host == "no443.test" else ADDRESS
            argv += ["--resolve", f"{host}:80:{ADDRESS}", "--resolve", f"{host}:443:{https_address}"]
        argv += [*extra, *hosts]
        return subprocess.run(
            argv,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            env={**_environ(), **env},
        )

    return _check


def _environ() -> dict[str, str]:
    """This environment without proxy, CA-file and pytest variables.

    Module-scoped fixtures run before the function-scoped `clean_environ`, so clean it here too.
    """
    drop = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR")
    return {k: v for k, v in os.environ.items() if k.upper() not in drop and not k.startswith("PYTEST_")}


def parse(done: subprocess.CompletedProcess[str]) -> list[Result]:
    """The JSON list on stdout; on anything else, fail with what the checker said."""
    try:
        results = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON on stdout (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    assert isinstance(results, list)
    return results


def pick(report: Result, *keys: str) -> Result:
    """Only these fields, so one assert shows every difference at once."""
    return {key: report[key] for key in keys}


@pytest.fixture(scope="module")
def all_at_once(check: Check) -> tuple[int, list[Result]]:
    done = check(*HOSTS)
    return done.returncode, parse(done)


@pytest.fixture(scope="module")
def results(all_at_once: tuple[int, list[Result]]) -> dict[str, Result]:
    return {result["host"]: result for result in all_at_once[1]}


def curl() -> str:
    """curl checks the harness independently of the checker's Python TLS stack (scripts/test-deps installs it)."""
    path = shutil.which("curl")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("curl is missing; `make test` installs it when run as root (scripts/test-deps)")
        pytest.skip("NOTICE: curl is not installed: the nginx harness was not checked on its own")
    return path


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://good.test/", "Location: https://good.test/"),
        ("http://good.test/a?b", "Location: https://good.test/a?b"),
        ("https://good.test/", "Strict-Transport-Security: max-age=63072000; includeSubDomains; preload"),
        ("https://good.test/", "<title>Good</title>"),
        ("https://expired.test/", "expired"),
        ("https://wronghost.test/", "wronghost.test"),
        ("https://selfsigned.test/", "self-signed certificate in certificate chain"),
        ("http://no443.test/", "<title>Plain only</title>"),
        ("https://no443.test/", "curl: (7) Failed to connect"),  # refused: nothing on 127.80.43.2
        ("http://noredirect.test/", "HTTP/1.1 200 OK"),
        ("https://backtohttp.test/", "Location: http://backtohttp.test/x"),
        ("https://weakhsts.test/", "Strict-Transport-Security: max-age=300"),
        ("https://mixed.test/", '<script src="http://cdn.test/a.js">'),
        ("http://mismatch.test/", "<title>Old site</title>"),
        ("https://mismatch.test/", "<title>New site</title>"),
        ("http://unknown.test/", "Empty reply from server"),
    ],
)
def test_the_harness_serves_each_case(nginx: Nginx, url: str, expected: str) -> None:
    """The server side alone, with curl: a failure here is the harness's, not the checker's."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/")[0]
    port = 443 if scheme == "https" else 80
    address = UNUSED_ADDRESS if (host, port) == ("no443.test", 443) else ADDRESS
    argv = [curl(), "-sS", "-i", "--cacert", str(nginx.ca_pem), "--resolve", f"{host}:{port}:{address}", url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert expected in done.stdout + done.stderr


@pytest.mark.parametrize("host", HOSTS)
def test_each_site_checked_alone(check: Check, host: str) -> None:
    done = check(host)
    [result] = parse(done)
    grade, passed = VERDICTS[host]
    assert (result["host"], result["grade"], result["passed"]) == (host, grade, passed), result["reasons"]
    assert done.returncode == (0 if passed else 1), done.stderr
    if not passed:
        assert result["reasons"], "a failing site must say why"


def test_all_sites_in_one_call_come_back_in_order(all_at_once: tuple[int, list[Result]]) -> None:
    code, results = all_at_once
    assert [r["host"] for r in results] == HOSTS
    assert {r["host"]: (r["grade"], r["passed"]) for r in results} == VERDICTS
    assert code == 1  # some fail


def test_good_site_gets_everything_right(results: dict[str, Result]) -> None:
    good = results["good.test"]
    https = good["https"]
    assert pick(https, "reachable", "error", "tls_version") == {
        "reachable": True,
        "error": None,
        "tls_version": "TLSv1.3",
    }
    cert = https["certificate"]
    assert pick(cert, "valid", "error", "hostname_match", "self_signed") == {
        "valid": True,
        "error": None,
        "hostname_match": True,
        "self_signed": False,
    }
    not_before = datetime.datetime.fromisoformat(cert["not_before"])
    not_after = datetime.datetime.fromisoformat(cert["not_after"])
    assert not_before < datetime.datetime.now(datetime.UTC) < not_after
    assert cert["days_left"] > 0
    assert cert["issuer"] and cert["subject"]
    http = good["http"]
    assert pick(http, "reachable", "error", "redirects_to_https", "same_host", "downgrade") == {
        "reachable": True,
        "error": None,
        "redirects_to_https": True,
        "same_host": True,
        "downgrade": False,
    }
    assert http["hops"] == [
        {"url": "http://good.test/", "status": 301, "location": "https://good.test/"},
        {"url": "https://good.test/", "status": 200, "location": None},
    ]
    assert good["mixed_content"] == []
    assert good["port443"]["upgrade"] is True


def test_good_site_hsts_is_preload_eligible(results: dict[str, Result]) -> None:
    # good.test is its own base domain, and no .test name is on Chromium's list.
    assert results["good.test"]["hsts"] == {
        "present": True,
        "header": "max-age=63072000; includeSubDomains; preload",
        "max_age": 63072000,
        "include_subdomains": True,
        "preload": True,
        "preloaded": False,
        "eligible": True,
        "eligibility_problems": [],
    }


@pytest.mark.parametrize(
    ("host", "hostname_match", "error_mentions"),
    [
        ("expired.test", None, "expired"),
        ("wronghost.test", False, "wronghost.test"),
        ("selfsigned.test", None, "self-signed"),
    ],
)
def test_bad_certificates_fail(
    results: dict[str, Result], host: str, hostname_match: bool | None, error_mentions: str
) -> None:
    result = results[host]
    cert = result["https"]["certificate"]
    assert cert["valid"] is False
    assert cert["error"] and error_mentions in cert["error"].lower(), cert["error"]
    if hostname_match is not None:
        assert cert["hostname_match"] is hostname_match
    assert result["port443"]["upgrade"] is False


def test_no_https_server_is_refused(results: dict[str, Result]) -> None:
    result = results["no443.test"]
    assert result["https"]["reachable"] is False
    assert "refused" in result["https"]["error"].lower()
    assert result["http"]["reachable"] is True
    assert result["http"]["redirects_to_https"] is False
    assert result["port443"]["upgrade"] is False


def test_plain_http_that_does_not_redirect(results: dict[str, Result]) -> None:
    result = results["noredirect.test"]
    assert result["http"]["redirects_to_https"] is False
    assert result["http"]["hops"] == [{"url": "http://noredirect.test/", "status": 200, "location": None}]
    assert result["https"]["certificate"]["valid"] is True
    assert result["hsts"]["max_age"] == 63072000
    assert result["parity"]["same"] is True


def test_https_that_sends_back_to_http_is_a_downgrade(results: dict[str, Result]) -> None:
    result = results["backtohttp.test"]
    assert result["http"]["downgrade"] is True
    assert result["http"]["hops"][:2] == [
        {"url": "http://backtohttp.test/", "status": 301, "location": "https://backtohttp.test/"},
        {"url": "https://backtohttp.test/", "status": 301, "location": "http://backtohttp.test/x"},
    ]
    assert result["port443"]["upgrade"] is False


def test_short_hsts_passes_but_cannot_be_preloaded(results: dict[str, Result]) -> None:
    hsts = results["weakhsts.test"]["hsts"]
    assert pick(hsts, "present", "header", "max_age", "include_subdomains", "preload", "eligible") == {
        "present": True,
        "header": "max-age=300",
        "max_age": 300,
        "include_subdomains": False,
        "preload": False,
        "eligible": False,
    }
    assert any("max-age" in problem for problem in hsts["eligibility_problems"]), hsts["eligibility_problems"]


def test_mixed_content_lists_subresources_and_forms_but_not_links(results: dict[str, Result]) -> None:
    found = results["mixed.test"]["mixed_content"]
    assert len(found) == 5, found
    assert {(m["tag"], m["attribute"], m["url"], m["active"]) for m in found} == {
        ("script", "src", "http://cdn.test/a.js", True),
        ("img", "src", "http://cdn.test/i.png", False),
        ("link", "href", "http://cdn.test/s.css", True),
        ("iframe", "src", "http://x.test/", True),
        ("form", "action", "http://mixed.test/login", True),
    }


def test_different_content_over_http_and_https(results: dict[str, Result]) -> None:
    parity = results["mismatch.test"]["parity"]
    assert parity == {
        "http_status": 200,
        "https_status": 200,
        "http_title": "Old site",
        "https_title": "New site",
        "same": False,
    }
    assert results["mismatch.test"]["http"]["redirects_to_https"] is False


def test_exit_code_2_on_a_usage_error(check: Check) -> None:
    done = check("good.test", extra=("--resolve", "nonsense"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "resolve" in done.stderr


def test_table_shows_each_host_and_its_grade(check: Check) -> None:
    done = check(*HOSTS, json_output=False)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    for host, (grade, _passed) in VERDICTS.items():
        row = next((line for line in lines if host in line), None)
        assert row is not None, f"{host} missing from the table:\n{done.stdout}"
        assert re.search(rf"(?<!\S){re.escape(grade)}(?!\S)", row), f"{host} should show {grade}: {row!r}"
