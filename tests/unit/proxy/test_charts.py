"""The inline SVG charts: bars where there was traffic, text from traffic escaped, no style attributes."""

from __future__ import annotations

import pytest

from port443.proxy.charts import hourly_chart, nice_ceiling, step_bar, top_chart
from port443.proxy.store import HourlyCount, InsecureSite
from tests.support.markup import HOSTILE, assert_inert, parse

DAY0 = 1_800_000_000 // 86400 * 86400  # midnight UTC


def site(host: str, hits: int) -> InsecureSite:
    return InsecureSite(host, "refused", "", hits, 0, 0, "/")


@pytest.mark.parametrize(
    ("value", "top"), [(0, 1), (1, 1), (3, 5), (7, 10), (11, 20), (450, 500), (501, 1000)]
)
def test_nice_ceiling(value: int, top: int) -> None:
    assert nice_ceiling(value) == top


def test_hourly_bars_for_hours_with_traffic_and_a_date_per_day() -> None:
    hours = [HourlyCount(float(DAY0 + h * 3600), h % 3, 1 if h == 5 else 0) for h in range(48)]
    svg = hourly_chart(hours)
    parsed = parse(svg)
    ups = [a for a in parsed.attributes if a[:2] == ("rect", "class") and a[2] == "up"]
    insecure = [a for a in parsed.attributes if a[:2] == ("rect", "class") and a[2] == "insecure"]
    assert len(ups) == 32 and len(insecure) == 1
    assert "2027-01-15 05:00 UTC: 2 upgraded, 1 left on HTTP" in "".join(parsed.text)
    assert not any(name == "style" for _, name, _ in parsed.attributes)  # a strict CSP allows no inline style


def test_empty_charts_say_so() -> None:
    assert "No plain-HTTP traffic" in hourly_chart([HourlyCount(float(DAY0), 0, 0)])
    assert "No insecure sites" in top_chart([])


def test_top_sites_escape_and_cut_hostile_names() -> None:
    sites = [site(text, 10 - n) for n, text in enumerate(HOSTILE)] + [site("x" * 5000, 1)]
    svg = top_chart(sites, limit=10)
    parsed = assert_inert(svg)
    text = "".join(parsed.text)
    assert '<script>alert("h")</script>' in text  # shown as text, cut in the label, whole in the tooltip
    assert "\\x1b[2J\\u202eevil" in text
    assert len(svg) < 10_000  # a 5000-character name costs its bounded label and tooltip
    assert parsed.tags.count("rect") == len(HOSTILE) + 1


def test_step_bar_shares() -> None:
    parsed = parse(step_bar([3, 0, 1]))
    widths = [float(v) for tag, name, v in parsed.attributes if tag == "rect" and name == "width"]
    assert widths == [750.0, 250.0]
    assert "none" in step_bar([0, 0])
