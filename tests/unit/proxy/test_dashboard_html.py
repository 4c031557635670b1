"""The dashboard's HTML with hostile hosts, paths and details: text stays text, the page offers what the viewer
may do, and the report file needs nothing from the network."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from port443.proxy import dashboard_html
from port443.proxy.dashboard_html import (
    View,
    asset,
    render_fragment,
    render_login,
    render_page,
    render_report,
)
from port443.proxy.decide import Learned, Policy, Reason
from port443.proxy.inert import visible
from port443.proxy.overview import Exemption, Overview, RulesInfo, fill_hours
from port443.proxy.store import Choice, ClientUse, HourlyCount, InsecureSite
from tests.support.markup import HOSTILE, assert_inert, parse

NOW = 1_800_000_000.0


def hostile_overview() -> Overview:
    sites = [InsecureSite(h, h, h, 5 + n, NOW - 100, NOW, h, 2) for n, h in enumerate(HOSTILE)]
    return Overview(
        generated=NOW,
        upgrades={"probe": 4, "ruleset": 2, HOSTILE[0]: 1},
        sites=sites,
        site_devices={h: [HOSTILE[1], "10.0.0.2"] for h in HOSTILE},
        learned=[Learned(h, n % 2 == 0, Reason.UNKNOWN, h, NOW + 60, h) for n, h in enumerate(HOSTILE)],
        devices=[ClientUse(h, 3, 1, 2, 1, NOW - 50, NOW) for h in HOSTILE],
        device_sites={h: [HOSTILE[2]] for h in HOSTILE},
        hourly=fill_hours([HourlyCount(float(NOW // 3600 * 3600), 4, 2)], NOW),
        policies=[Choice(h, Policy.NEVER, NOW) for h in HOSTILE],
        exemptions=[Exemption(h, h, NOW + 600) for h in HOSTILE],
        rules=RulesInfo(12, tuple(HOSTILE), True, 2, tuple(HOSTILE)),
        mode=HOSTILE[0],
    )


def test_nothing_from_traffic_becomes_markup_in_the_page() -> None:
    page = render_page(hostile_overview(), View(csrf="t" * 64))
    parsed = assert_inert(page, scripts=1)
    assert ("script", "src", "/static/dashboard.js") in parsed.attributes
    text = "".join(parsed.text)
    for hostile in HOSTILE[:4]:
        assert hostile in text  # shown to the person as the text it is
    assert "&amp;<b>bold</b>" in text
    assert "\\x1b[2J\\u202eevil" in text


@pytest.mark.parametrize("view", [View(csrf="t" * 64), View(notice="read-only")])
def test_hostile_attribute_values_stay_in_their_attribute(view: View) -> None:
    parsed = parse(render_page(hostile_overview(), view))
    hosts = [v for tag, name, v in parsed.attributes if name == "data-host"]
    assert {visible(h) for h in HOSTILE} <= set(
        hosts
    )  # each whole, in its own attribute, nothing spilled out
    assert all(name in _KNOWN for _, name, _ in parsed.attributes), {
        n for _, n, _ in parsed.attributes
    } - _KNOWN


_KNOWN = {
    "lang", "charset", "name", "content", "rel", "href", "src", "defer", "class", "id", "role", "hidden",
    "data-live", "data-csrf", "data-part", "data-table", "data-kind", "data-host", "data-device", "data-v",
    "data-step", "data-counter", "data-action", "type", "placeholder", "aria-label", "viewbox", "xmlns",
    "x", "y", "x1", "x2", "y1", "y2", "width", "height", "rx", "text-anchor", "preserveaspectratio", "method",
    "action", "value", "formaction", "title",
}  # fmt: skip


def test_actions_carry_the_token_and_read_only_viewers_get_none() -> None:
    o = hostile_overview()
    acting = parse(render_page(o, View(csrf="t" * 64)))
    tokens = [v for tag, name, v in acting.attributes if tag == "input" and v == "t" * 64]
    assert len(tokens) >= len(HOSTILE)
    actions = {v for _, name, v in acting.attributes if name == "data-action"}
    assert actions == {"never", "always", "forget", "clear", "revoke"}
    reading = render_page(o, View(notice="Read-only from this device"))
    assert 'class="acts"' not in reading and "Read-only from this device" in reading
    assert 'data-csrf=""' in reading


def test_the_parts_are_what_the_page_refreshes() -> None:
    fragment = render_fragment(hostile_overview(), View())
    parts = set(re.findall(r'data-part="([a-z]+)"', fragment))
    assert parts == {
        "counters",
        "hourly",
        "top",
        "insecure",
        "devices",
        "choices",
        "rules",
        "learned",
        "generated",
    }
    assert_inert(fragment)


def test_long_tables_are_cut_and_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard_html, "MAX_ROWS", 2)
    page = render_page(hostile_overview(), View())
    assert "Showing the first 2 of 6" in page
    assert page.count("<tr data-host=") == 2 + 2 + 2 + 2  # insecure, choices, exceptions, learned


def test_the_report_is_one_file_that_asks_the_network_for_nothing() -> None:
    report = render_report(hostile_overview())
    parsed = assert_inert(report, scripts=1)
    css, js = asset("dashboard.css"), asset("dashboard.js")
    csp = next(
        v for tag, name, v in parsed.attributes if tag == "meta" and name == "content" and "default-src" in v
    )
    for text in (css, js):
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp  # the inline style and script run, nothing else may
    assert "default-src 'none'" in csp and "connect-src" not in csp
    assert not [v for _, name, v in parsed.attributes if name in ("src", "href", "action", "formaction")]
    assert "</script" not in js.lower() and "</style" not in css.lower()
    assert 'class="acts"' not in report and "data-live" not in report


def test_the_sign_in_page_escapes_its_message() -> None:
    page = render_login("c" * 64, HOSTILE[1])
    parsed = assert_inert(page)
    assert ("input", "value", "c" * 64) in parsed.attributes
    assert ("form", "action", "/login") in parsed.attributes


def test_only_the_shipped_assets_are_served() -> None:
    assert "port443Dashboard" in asset("dashboard.js")
    with pytest.raises(KeyError):
        asset("../store.py")
