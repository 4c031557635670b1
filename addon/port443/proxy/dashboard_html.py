"""The dashboard's HTML: the page, its live parts, the login page and the self-contained report file.

Everything that came from traffic or files (hosts, paths, reasons, details, device addresses, rule
problems) goes through `_e`: cut to a bound, control characters made visible, HTML-escaped (attributes
too). The page links its stylesheet and script from the proxy itself (a strict Content-Security-Policy
allows nothing else); the report inlines them, allowed by their hashes, so it opens with no network.
Pure: the addon sends what these return.
"""

from __future__ import annotations

import base64
import hashlib
import html
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources

from port443.proxy.charts import hourly_chart, step_bar, top_chart
from port443.proxy.inert import visible
from port443.proxy.overview import PER_ROW, STEP_NAMES, STEPS, Overview
from port443.proxy.pages import shown

MAX_ROWS = 1000
"""Rows a table of the page shows at most (most hits or requests first); the API and the CLI give all."""
ASSETS = ("dashboard.css", "dashboard.js")
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""The live dashboard's Content-Security-Policy: its own script and stylesheet, nothing inline, no frames."""


@dataclass(frozen=True, slots=True)
class View:
    """Who is looking, and so what the page offers."""

    csrf: str = ""
    """The token the action forms carry; empty when this viewer may not act."""
    notice: str = ""
    """Why this viewer cannot act (shown as a banner), when that is so."""
    live: bool = True
    """Poll the proxy for updates (the report file does not)."""
    signed_in: bool = False
    """A password session: offer to sign out."""

    @property
    def can_act(self) -> bool:
        """The page shows action buttons."""
        return bool(self.csrf)


@cache
def asset(name: str) -> str:
    """One of the page's static files (package data), read once."""
    if name not in ASSETS:
        raise KeyError(name)
    return resources.files("port443.proxy").joinpath(name).read_text(encoding="utf-8")


def _e(text: object, limit: int = 300) -> str:
    """Text from traffic or files, fit for HTML content and quoted attributes."""
    return html.escape(visible(shown(str(text), limit)), quote=True)


def _when(seconds: float) -> str:
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%d %H:%M}"


def _at(seconds: float) -> str:
    """A table cell with a time, sortable by its number."""
    return f'<td class="when" data-v="{seconds:.0f}">{_when(seconds)}</td>'


def _chips(items: list[str], more: bool) -> str:
    """Names or addresses as chips that wrap whole, with `…` when the list was cut."""
    chips = "".join(f'<span class="chip">{_e(item, 255)}</span>' for item in items)
    return (
        f'<span class="chips-row">{chips}{"<span class=chip>…</span>" if more else ""}</span>'
        if items
        else ""
    )


def _num(value: int) -> str:
    return f"{value:,}"


# --- the page -----------------------------------------------------------------------------------------


def render_page(o: Overview, view: View) -> str:
    """The live dashboard at `/`: the parts, a search box per table, and the script that refreshes them."""
    head = (
        '<link rel="stylesheet" href="/static/dashboard.css">'
        '<script src="/static/dashboard.js" defer></script>'
    )
    return _document(o, view, head, live=view.live)


def render_report(o: Overview) -> str:
    """`port443 report --html`: the same overview in one file, styles and script inline, no network."""
    css, js = asset("dashboard.css"), asset("dashboard.js")
    csp = (
        f"default-src 'none'; style-src '{_sha256(css)}'; script-src '{_sha256(js)}'; "
        "img-src data:; form-action 'none'; base-uri 'none'"
    )
    head = (
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        f"<style>{css}</style><script>{js}</script>"
    )
    return _document(o, View(live=False), head, live=False)


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def _document(o: Overview, view: View, head: str, *, live: bool) -> str:
    mode = f'<span class="pill">{_e(o.mode)} mode</span>' if o.mode else ""
    state = '<span class="pill live" id="live">live</span>' if live else '<span class="pill">report</span>'
    out = (
        '<form method="post" action="/logout" class="logout">'
        f'<input type="hidden" name="csrf" value="{_e(view.csrf)}"><button>Sign out</button></form>'
        if view.signed_in
        else ""
    )
    notice = f'<p class="notice" role="status">{_e(view.notice, 1000)}</p>' if view.notice else ""
    body_data = f' data-live="1" data-csrf="{_e(view.csrf)}"' if live else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin"><title>port443 dashboard</title>{head}</head>
<body{body_data}>
<header class="top"><div class="brand"><span class="logo">443</span><div><h1>port443</h1>
<p class="sub">HTTPS upgrade proxy</p></div></div><div class="state">{mode}{state}{out}</div></header>
{notice}<div class="toast" id="toast" role="status" hidden></div>
<main>
{render_parts(o, view)}
</main>
<footer>{_footer(o, live)}</footer>
</body></html>
"""


def _footer(o: Overview, live: bool) -> str:
    made = f'<span data-part="generated">{_when(o.generated)} UTC</span>'
    api = (
        ' · JSON: <a href="/api/summary">summary</a>, <a href="/api/insecure">insecure</a>, '
        '<a href="/api/learned">learned</a>, <a href="/api/devices">devices</a>, <a href="/api/policy">policy</a>'
        if live
        else ""
    )
    return f"As of {made}; times in UTC{api}"


def render_parts(o: Overview, view: View) -> str:
    """Every part of the page that changes; `/parts` serves this alone and the script swaps them in."""
    return "\n".join(
        [
            _section("Overview", _counters(o), part="counters", cls="wide"),
            _section("Last 7 days", hourly_chart(o.hourly) + _legend(), part="hourly", cls="chart-card"),
            _section(
                "Most insecure requests",
                top_chart(o.sites)
                + '<p class="legend">requests over plain HTTP, every device, since first seen</p>',
                part="top",
                cls="chart-card",
            ),
            _section(
                "Sites still on plain HTTP",
                _insecure_table(o, view),
                part="insecure",
                cls="wide",
                search="insecure",
                note=f"{_num(len(o.sites))} site{'' if len(o.sites) == 1 else 's'}",
            ),
            _section("Devices", _devices_table(o), part="devices", cls="wide", search="devices"),
            _section("Your choices", _choices(o, view), part="choices", cls="half"),
            _section("Rules in force", _rules(o), part="rules", cls="half"),
            _section(
                "What port443 learned", _learned_table(o, view), part="learned", cls="wide", search="learned"
            ),
        ]
    )


def render_fragment(o: Overview, view: View) -> str:
    """What `/parts` serves: every part, and the time they were read."""
    return f'{render_parts(o, view)}<span data-part="generated">{_when(o.generated)} UTC</span>\n'


def _section(title: str, body: str, *, part: str, cls: str, search: str = "", note: str = "") -> str:
    box = (
        f'<input type="search" class="search" data-table="{search}" placeholder="Search" aria-label="Search {title}">'
        if search
        else ""
    )
    extra = f'<span class="note">{_e(note)}</span>' if note else ""
    return (
        f'<section class="card {cls}" id="{part}"><header><h2>{title}</h2>{extra}{box}</header>'
        f'<div data-part="{part}">{body}</div></section>'
    )


def _legend() -> str:
    return (
        '<p class="legend"><span class="swatch up"></span>upgraded to HTTPS '
        '<span class="swatch insecure"></span>left on plain HTTP</p>'
    )


def _counters(o: Overview) -> str:
    cards = [
        ("good", "Upgraded to HTTPS", o.upgraded, "requests"),
        ("bad", "Left on plain HTTP", o.insecure_hits, "requests"),
        ("bad", "Sites still insecure", len(o.sites), "sites"),
        ("", "Devices", len(o.devices), f"{_num(o.requests)} requests decided"),
    ]
    tiles = "".join(
        f'<div class="counter {tone}" data-counter="{_e(label)}"><span class="label">{label}</span>'
        f'<span class="value">{_num(value)}</span><span class="unit">{_e(unit)}</span></div>'
        for tone, label, value, unit in cards
    )
    steps = [(s, o.upgrades.get(s, 0)) for s in STEPS] + [
        (s, n) for s, n in o.upgrades.items() if s not in STEPS
    ]
    bar = step_bar([n for _, n in steps])
    chips = "".join(
        f'<li data-step="{_e(s)}"><span class="swatch s{i}"></span>{_e(STEP_NAMES.get(s, s))} '
        f'<b class="n">{_num(n)}</b></li>'
        for i, (s, n) in enumerate(steps)
    )
    return (
        f'<div class="counters">{tiles}</div><div class="steps"><h3>Upgraded by step</h3>'
        f'{bar}<ul class="chips">{chips}</ul></div>'
    )


def _table(name: str, columns: list[tuple[str, str]], rows: list[str], empty: str, total: int) -> str:
    """A sortable table: `columns` are (title, kind) with kind "text", "num" or "" (not sortable)."""
    if not rows:
        return f'<p class="empty">{empty}</p>'
    heads = "".join(
        f'<th data-kind="{kind}"><button type="button" class="sort">{title}</button></th>'
        if kind
        else f"<th>{title}</th>"
        for title, kind in columns
    )
    more = (
        f'<p class="note">Showing the first {_num(MAX_ROWS)} of {_num(total)}; '
        "<code>port443 report</code> lists them all.</p>"
        if total > MAX_ROWS
        else ""
    )
    return (
        f'<div class="scroll"><table class="data" data-table="{name}"><thead><tr>{heads}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>{more}"
    )


def _actions(view: View, host: str, buttons: list[tuple[str, str, str]]) -> str:
    """A form of action buttons for `host`: (endpoint, field value, label) each; nothing when read-only."""
    if not view.can_act:
        return ""
    inner = "".join(
        f'<button formaction="{endpoint}" name="policy" value="{value}" data-action="{value}">{label}</button>'
        for endpoint, value, label in buttons
    )
    return (
        f'<form method="post" action="/api/policy" class="acts">'
        f'<input type="hidden" name="csrf" value="{_e(view.csrf)}">'
        f'<input type="hidden" name="host" value="{_e(host, 255)}">{inner}</form>'
    )


def _insecure_table(o: Overview, view: View) -> str:
    rows = []
    for s in o.sites[:MAX_ROWS]:
        devices = o.site_devices.get(s.host, [])
        chosen = o.policy_of(s.host)
        badge = f' <span class="badge {chosen}">{chosen}</span>' if chosen else ""
        acts = _actions(
            view,
            s.host,
            [
                ("/api/policy", "never", "Never upgrade"),
                ("/api/policy", "always", "Always HTTPS"),
                ("/api/forget", "forget", "Forget"),
            ],
        )
        detail = f'<span class="detail">{_e(s.detail)}</span>' if s.detail else ""
        rows.append(
            f'<tr data-host="{_e(s.host, 255)}"><td class="host">{_e(s.host)}{badge}'
            f'<span class="path">{_e(s.example_path)}</span></td>'
            f'<td><span class="reason">{_e(s.reason)}</span>{detail}</td>'
            f'<td class="num" data-v="{s.hits}">{_num(s.hits)}</td>'
            f'<td class="devices" data-v="{s.clients}"><b>{s.clients}</b>{_chips(devices[:PER_ROW], s.clients > len(devices))}</td>'
            f'{_at(s.first_seen)}{_at(s.last_seen)}<td class="acts-cell">{acts}</td></tr>'
        )
    columns = [
        ("Site", "text"),
        ("Why", "text"),
        ("Hits", "num"),
        ("Devices", "num"),
        ("First seen", "num"),
        ("Last seen", "num"),
        ("", ""),
    ]
    return _table("insecure", columns, rows, "No site has been reached over plain HTTP.", len(o.sites))


def _devices_table(o: Overview) -> str:
    rows = []
    for d in o.devices[:MAX_ROWS]:
        sites = o.device_sites.get(d.address, [])
        rows.append(
            f'<tr data-device="{_e(d.address, 64)}"><td class="host">{_e(d.address)}</td>'
            f'<td class="num" data-v="{d.requests}">{_num(d.requests)}</td>'
            f'<td class="num" data-v="{d.upgraded}">{_num(d.upgraded)}</td>'
            f'<td class="num" data-v="{d.insecure}">{_num(d.insecure)}</td>'
            f'<td class="devices" data-v="{d.insecure_hosts}"><b>{d.insecure_hosts}</b>'
            f"{_chips(sites, d.insecure_hosts > len(sites))}</td>"
            f"{_at(d.first_seen)}{_at(d.last_seen)}</tr>"
        )
    columns = [
        ("Device", "text"),
        ("Requests", "num"),
        ("Upgraded", "num"),
        ("Insecure", "num"),
        ("Insecure sites used", "num"),
        ("First seen", "num"),
        ("Last seen", "num"),
    ]
    return _table("devices", columns, rows, "No device has used the proxy yet.", len(o.devices))


def _choices(o: Overview, view: View) -> str:
    rows = [
        f'<tr data-host="{_e(c.host, 255)}"><td class="host">{_e(c.host)}</td>'
        f'<td><span class="badge {c.policy.value}">{"never upgrade" if c.policy.value == "never" else "always HTTPS"}</span></td>'
        f"{_at(c.set_at)}"
        f'<td class="acts-cell">{_actions(view, c.host, [("/api/policy", "clear", "Clear")])}</td></tr>'
        for c in o.policies[:MAX_ROWS]
    ]
    policies = _table(
        "choices",
        [("Site (and subdomains)", "text"), ("Choice", "text"), ("Since", "num"), ("", "")],
        rows,
        "No choices yet: use <b>Never upgrade</b> or <b>Always HTTPS</b> on a site.",
        len(o.policies),
    )
    held = [
        f'<tr data-host="{_e(x.host, 255)}"><td class="host">{_e(x.host)}</td><td>{_e(x.client)}</td>'
        f"{_at(x.until)}"
        f'<td class="acts-cell">{_actions(view, x.host, [("/api/revoke", "revoke", "Remove")])}</td></tr>'
        for x in o.exemptions[:MAX_ROWS]
    ]
    exceptions = _table(
        "exceptions",
        [("Site", "text"), ("Device", "text"), ("Until", "num"), ("", "")],
        held,
        "No strict-mode exceptions are open.",
        len(o.exemptions),
    )
    return f"{policies}<h3>Strict-mode exceptions</h3>{exceptions}"


def _learned_table(o: Overview, view: View) -> str:
    rows = []
    for x in o.learned[:MAX_ROWS]:
        works = (
            '<span class="badge good">works</span>' if x.secure else '<span class="badge bad">fails</span>'
        )
        detail = f'<span class="detail">{_e(x.detail)}</span>' if x.detail else ""
        # A site whose HTTPS works may still break a device: "never"; one that fails may be fine later: "always".
        choice = (
            ("/api/policy", "never", "Never upgrade")
            if x.secure
            else ("/api/policy", "always", "Always HTTPS")
        )
        acts = _actions(view, x.host, [choice, ("/api/forget", "forget", "Forget")])
        rows.append(
            f'<tr data-host="{_e(x.host, 255)}"><td class="host">{_e(x.host)}</td>'
            f'<td class="muted">{_e(x.path or "(every path)")}</td><td>{works}</td>'
            f'<td><span class="reason{" ok" if x.secure else ""}">{_e(x.reason)}</span>{detail}</td>'
            f'{_at(x.expires)}<td class="acts-cell">{acts}</td></tr>'
        )
    columns = [
        ("Site", "text"),
        ("Path", "text"),
        ("HTTPS", "text"),
        ("Why", "text"),
        ("Until", "num"),
        ("", ""),
    ]
    return _table(
        "learned",
        columns,
        rows,
        "Nothing learned yet: probes teach port443 as sites are visited.",
        len(o.learned),
    )


def _rules(o: Overview) -> str:
    rules = o.rules
    if rules is None:
        return '<p class="empty">Written from the store alone: no running proxy to ask about its rules.</p>'
    sources = ["<li>the shipped HTTPS Everywhere rulesets</li>"] if rules.shipped else []
    sources += [f"<li><code>{_e(f, 1000)}</code></li>" for f in rules.files]
    listed = f"<ul>{''.join(sources)}</ul>" if sources else '<p class="empty">No rule files are loaded.</p>'
    count = f"<b>{_num(rules.rulesets)}</b> ruleset{'' if rules.rulesets == 1 else 's'}"
    lines = [f"<p>{count} in force, from:</p>{listed}"]
    if rules.failed:
        problems = "".join(f"<li><code>{_e(p, 1000)}</code></li>" for p in rules.problems[:50])
        lines.append(
            f'<p class="bad-text"><b>{rules.failed}</b> file(s) failed to load (skipped, or their last good '
            f'version kept):</p><ul class="problems">{problems}</ul>'
        )
    else:
        lines.append('<p class="good-text">Every rule file loaded.</p>')
    return "".join(lines)


# --- signing in ---------------------------------------------------------------------------------------


def render_login(csrf: str, message: str = "") -> str:
    """The page a device beyond this machine sees until it signs in with the dashboard password."""
    said = f'<p class="notice">{_e(message, 500)}</p>' if message else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin"><title>port443: sign in</title>
<link rel="stylesheet" href="/static/dashboard.css"></head>
<body class="login"><form method="post" action="/login" class="card signin">
<div class="brand"><span class="logo">443</span><div><h1>port443</h1><p class="sub">HTTPS upgrade proxy</p></div></div>
{said}<label>Dashboard password <input type="password" name="password" autocomplete="current-password" required autofocus></label>
<input type="hidden" name="csrf" value="{_e(csrf)}"><button>Sign in</button>
<p class="note">The password was set on the proxy's machine with <code>port443 dashboard password</code>.</p>
</form></body></html>
"""
