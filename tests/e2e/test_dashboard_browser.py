"""Headless Chromium on the dashboard of a real proxy after real traffic: it shows what happened, its buttons
change what the proxy does at once, it updates while open; and the report file opens with no network."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import Browser
from tests.support.certs import Certs
from tests.support.household import TV, Sites, browse, sites, upgraded
from tests.support.proxy import Launch

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture
def household(certs: Certs) -> Iterator[Sites]:
    with sites(certs) as running:
        yield running


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    # No proxy for the browser: it opens the proxy's own address, as a person does. A closed port as its
    # proxy keeps anything else it might try from leaving the machine.
    started = Browser(tmp_path / "chromium", "--proxy-server=127.0.0.1:9", "--window-size=1280,900")
    yield started
    started.close()


def row(table: str, host: str) -> str:
    return f'#{table} tr[data-host="{host}"]'


def test_the_dashboard_shows_the_traffic_and_its_buttons_act(
    launch: Launch, household: Sites, tmp_path: Path, browser: Browser
) -> None:
    proxy = launch(connect_to=household.connect_to, db=tmp_path / "log.sqlite3")
    browse(proxy)
    page = browser.open(proxy.url + "/")
    assert page.text(row("insecure", "plain.test") + " td:nth-child(3)") == "3"  # hits
    assert page.text(row("insecure", "plain.test") + " td.devices b") == "2"  # devices
    assert page.text(row("insecure", "plain.test") + " .reason") == "refused"
    assert page.text('li[data-step="probe"] .n') == "2" and page.text('li[data-step="learned"] .n') == "1"
    assert page.text('[data-counter="Upgraded to HTTPS"] .value') == "3"

    page.click(row("learned", "secure.test") + ' button[data-action="never"]')
    page.wait_for(f"document.querySelector('{row('choices', 'secure.test')}') !== null")
    assert "never upgraded from now on" in page.text("#toast")
    assert not upgraded(proxy, "http://secure.test/")  # the very next request stays on HTTP

    probes = household.secure.requests.count("/")
    page.click(row("learned", "again.test") + ' button[data-action="forget"]')
    page.wait_for(f"document.querySelector('{row('learned', 'again.test')}') === null")
    assert upgraded(proxy, "http://again.test/")
    assert household.secure.requests.count("/") == probes + 1  # probed again

    with proxy.client(bind=TV) as tv:
        tv.get("http://plain.test/c")
    hits = row("insecure", "plain.test") + " td:nth-child(3)"
    page.wait_for(f"document.querySelector('{hits}').textContent === '4'")  # the page polls: no reload
    page.screenshot(tmp_path / "dashboard.png")
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000


def test_search_and_sort(launch: Launch, household: Sites, tmp_path: Path, browser: Browser) -> None:
    proxy = launch(connect_to=household.connect_to, db=tmp_path / "log.sqlite3")
    browse(proxy)
    page = browser.open(proxy.url + "/")
    visible = (
        "[...document.querySelectorAll('#learned tbody tr')].filter(r => !r.hidden).map(r => r.dataset.host)"
    )
    page.click("#learned input.search")
    browser.call("Input.insertText", {"text": "again"}, page.session)
    assert page.evaluate(visible) == ["again.test"]
    browser.call("Input.insertText", {"text": "x"}, page.session)
    assert page.evaluate(visible) == []
    page.evaluate("(() => { const box = document.querySelector('#learned input.search'); box.value = '';"
                  " box.dispatchEvent(new Event('input', {bubbles: true})); })()")  # fmt: skip
    page.click("#learned th:nth-child(1) button.sort")
    assert page.evaluate(visible) == ["again.test", "plain.test", "secure.test"]
    page.click("#learned th:nth-child(1) button.sort")
    assert page.evaluate(visible) == ["secure.test", "plain.test", "again.test"]


def test_the_report_file_opens_with_its_charts_and_no_network(
    launch: Launch, household: Sites, tmp_path: Path, browser: Browser, proxy_env: dict[str, str]
) -> None:
    db = tmp_path / "log.sqlite3"
    proxy = launch(connect_to=household.connect_to, db=db)
    browse(proxy)
    assert proxy.stop() == 0
    report = tmp_path / "report.html"
    command = [sys.executable, "-m", "port443", "report", "--html", str(report), "--db", str(db)]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    page = browser.open(report.as_uri())
    assert page.evaluate("document.querySelectorAll('svg.chart.hourly rect.up').length") >= 1
    assert page.evaluate("document.querySelectorAll('svg.chart.top rect.insecure').length") == 1
    assert page.text(row("insecure", "plain.test") + " td:nth-child(3)") == "3"
    assert page.evaluate("getComputedStyle(document.querySelector('.card')).borderTopLeftRadius") == "10px"
    page.click("#devices th:nth-child(2) button.sort")  # its inline script runs, allowed by its hash
    assert page.evaluate("document.querySelector('#devices th:nth-child(2)').getAttribute('aria-sort')")
    assert page.evaluate("document.querySelectorAll('form').length") == 0
    assert page.requested() == [report.as_uri()]  # the file itself, and nothing else
