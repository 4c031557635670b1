"""The dashboard's charts as small inline SVG, rendered on the server: no script, no library, no network.

Two charts: upgrades and insecure hits per hour (stacked bars), and the sites with most insecure hits
(horizontal bars). Every text from traffic (host names) is cut and HTML-escaped; colours come from CSS
classes (the dashboard's stylesheet, or the report's inline one), so the SVG carries no style attribute a
strict Content-Security-Policy would block. Pure.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime

from port443.proxy.inert import visible
from port443.proxy.pages import shown
from port443.proxy.store import HourlyCount, InsecureSite

WIDTH, HEIGHT = 720, 190
_LEFT, _RIGHT, _TOP, _BOTTOM = 40, 8, 10, 24
_ROW = 24
"""Height of one bar of the top-sites chart."""
_LABEL = 24
"""Characters of a host name the top-sites chart shows (the full name is in its tooltip)."""


def _e(text: str, limit: int = 300) -> str:
    """Text from traffic as SVG text: bounded, controls visible, escaped."""
    return html.escape(visible(shown(text, limit)))


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50... that is at least `value` (the y axis' top)."""
    top = 1
    while True:
        for step in (1, 2, 5):
            if step * top >= value:
                return step * top
        top *= 10


def hourly_chart(hours: Sequence[HourlyCount]) -> str:
    """Stacked bars per hour: upgraded (class `up`) below, left on HTTP (class `insecure`) above."""
    label = "Upgraded and insecure requests per hour"
    head = f'<svg class="chart hourly" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg">'
    if not any(h.upgrades or h.insecure for h in hours):
        return head + _empty(WIDTH, HEIGHT, "No plain-HTTP traffic in these days yet") + "</svg>"
    top = nice_ceiling(max(h.upgrades + h.insecure for h in hours))
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    slot = plot_w / len(hours)
    parts = [head]
    for fraction in (0, 0.5, 1):  # grid lines with their values
        y = _TOP + plot_h * (1 - fraction)
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="axis" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_count(top * fraction)}</text>'
        )
    for i, h in enumerate(hours):
        x = _LEFT + i * slot
        when = datetime.fromtimestamp(h.hour, UTC)
        if when.hour == 0:  # a tick and the date at each day's start (when the label fits)
            parts.append(
                f'<line class="tick" x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" y2="{_TOP + plot_h + 4}"/>'
            )
            if x + 44 <= WIDTH:
                parts.append(f'<text class="axis" x="{x + 3:.1f}" y="{HEIGHT - 6}">{when:%a %d}</text>')
        if not (h.upgrades or h.insecure):
            continue
        up_h = plot_h * h.upgrades / top
        bad_h = plot_h * h.insecure / top
        base = _TOP + plot_h
        tip = f"{when:%Y-%m-%d %H}:00 UTC: {h.upgrades} upgraded, {h.insecure} left on HTTP"
        bar_w = max(slot - 1, 1)
        parts.append(f"<g><title>{tip}</title>")
        if h.upgrades:
            parts.append(
                f'<rect class="up" x="{x:.1f}" y="{base - up_h:.1f}" width="{bar_w:.1f}" height="{up_h:.1f}"/>'
            )
        if h.insecure:
            y = base - up_h - bad_h
            parts.append(
                f'<rect class="insecure" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{bad_h:.1f}"/>'
            )
        parts.append("</g>")
    parts.append(
        f'<line class="base" x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{_TOP + plot_h}" y2="{_TOP + plot_h}"/>'
    )
    return "".join(parts) + "</svg>"


def top_chart(sites: Sequence[InsecureSite], limit: int = 10) -> str:
    """Horizontal bars: the sites with most insecure hits, most first."""
    shown_sites = list(sites[:limit])
    height = max(len(shown_sites), 1) * _ROW + 8
    width = 360
    head = f'<svg class="chart top" viewBox="0 0 {width} {height}" role="img" aria-label="Sites with most insecure requests" xmlns="http://www.w3.org/2000/svg">'
    if not shown_sites:
        return head + _empty(width, height, "No insecure sites") + "</svg>"
    most = max(s.hits for s in shown_sites)
    label_w, value_w = 170, 40
    bar_room = width - label_w - value_w
    parts = [head]
    for i, site in enumerate(shown_sites):
        y = 4 + i * _ROW
        w = max(bar_room * site.hits / most, 2)
        name = site.host if len(site.host) <= _LABEL else site.host[: _LABEL - 1] + "…"
        parts.append(f"<g><title>{_e(site.host)}: {site.hits} requests over plain HTTP</title>")
        parts.append(
            f'<text class="label" x="{label_w - 8}" y="{y + 16}" text-anchor="end">{_e(name)}</text>'
        )
        parts.append(
            f'<rect class="insecure" x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{_ROW - 8}" rx="2"/>'
        )
        parts.append(f'<text class="value" x="{label_w + w + 6:.1f}" y="{y + 16}">{site.hits}</text></g>')
    return "".join(parts) + "</svg>"


def step_bar(counts: Sequence[int]) -> str:
    """One bar split by share: segment i has class `s<i>` (the counters' legend uses the same classes)."""
    total = sum(counts)
    parts = [
        '<svg class="stepbar" viewBox="0 0 1000 12" preserveAspectRatio="none" role="img" aria-label="upgrades by step" xmlns="http://www.w3.org/2000/svg">'
    ]
    if not total:
        parts.append('<rect class="none" x="0" y="0" width="1000" height="12"/>')
    x = 0.0
    for i, n in enumerate(counts):
        if n:
            w = 1000 * n / total
            parts.append(f'<rect class="s{i}" x="{x:.1f}" y="0" width="{w:.1f}" height="12"/>')
            x += w
    return "".join(parts) + "</svg>"


def _empty(width: int, height: int, message: str) -> str:
    return f'<text class="empty" x="{width / 2:.0f}" y="{height / 2 + 4:.0f}" text-anchor="middle">{message}</text>'


def _count(value: float) -> str:
    return f"{value:,.0f}" if value >= 1 or value == 0 else f"{value:.1f}"
