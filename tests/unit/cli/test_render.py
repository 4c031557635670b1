"""The tables people read, rendered by rich; and whatever came from traffic, sites or rule files stays text.

Markup (`[/]` once crashed `report`), links, emoji codes and terminal control characters in hosts, paths,
reasons, certificate names or ruleset names must come out as they were, visibly, in every printer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from port443.check.live import LiveResult
from port443.cli.render import (
    print_checks,
    print_clients,
    print_insecure,
    print_learned,
    print_live,
    print_lookup,
    print_selftest,
)
from port443.engine import selftest
from port443.engine.index import RuleIndex
from port443.engine.lookup import explain_host
from port443.proxy.store import ClientUse, InsecureSite, InsecureStore
from tests.support.samples import LOOKUP_RULESETS, fill_store

# Markup, a hyperlink, an emoji code, and controls: clear screen, window title, C1 CSI, a bidi override.
HOSTILE = "[/][red]red[/red][link=http://evil.test/]click[/link]:smiley:\x1b[2J\x1b]0;t\x07\x9b1m\u202e"
SHOWN = "[/][red]red[/red][link=http://evil.test/]click[/link]:smiley:\\x1b[2J\\x1b]0;t\\x07\\x9b1m\\u202e"
LIVE_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def index() -> RuleIndex:
    return RuleIndex.build(LOOKUP_RULESETS)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[InsecureStore]:
    s = fill_store(InsecureStore(tmp_path / "insecure.sqlite3", max_age=math.inf))  # rows from 1970
    yield s
    s.close()


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich folds tables to the terminal width


def test_print_lookup(
    index: RuleIndex, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    print_lookup("WWW.example.test", explain_host("WWW.example.test", index))
    out = capsys.readouterr().out
    assert out.splitlines()[0].strip() == "Rulesets for www.example.test"
    assert "www.example.* (right wildcard)" in out
    assert "rules/Mixed.yaml" in out
    print_lookup("Nothing.Example", [])
    assert capsys.readouterr().out == "No ruleset covers nothing.example.\n"


def test_print_insecure(store: InsecureStore, capsys: pytest.CaptureFixture[str]) -> None:
    print_insecure(store.insecure_sites(), store.upgrade_counts())
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].strip() == "Sites still on plain HTTP"
    busy = next(line for line in lines if "busy.test" in line)
    for cell in ("refused: connection refused on port 443", " 2 ", "1970-01-02 00:01:01", "/a"):
        assert cell in busy
    quiet = next(line for line in lines if "quiet.test" in line)
    assert "no-tls " in quiet and "no-tls:" not in quiet
    assert lines.index(busy) < lines.index(quiet)  # most hits first
    assert lines[-1] == "Upgraded requests: 3 (ruleset 2, probe 1)"


def test_print_table_empty(capsys: pytest.CaptureFixture[str]) -> None:
    print_insecure([], {})
    assert capsys.readouterr().out == "No insecure sites recorded.\n"


@pytest.fixture
def very_wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "3000")  # every cell on one line, so the payload can be found whole


def inert(out: str) -> str:
    """The output, once it is known to carry no live control character and no emoji made from a code."""
    assert LIVE_CONTROL.search(out) is None, repr(out)
    assert "\N{GRINNING FACE}" not in out and "\N{SMILING FACE WITH OPEN MOUTH}" not in out  # no emoji codes
    return out


@pytest.mark.usefixtures("very_wide")
def test_print_insecure_is_inert(capsys: pytest.CaptureFixture[str]) -> None:
    site = InsecureSite(
        "h.test" + HOSTILE, "redirects-to-http", "301 to " + HOSTILE, 1, 0, 0, "/" + HOSTILE, 1
    )
    print_insecure([site], {"ruleset" + HOSTILE: 1})
    out = inert(capsys.readouterr().out)
    assert out.count(SHOWN) == 4  # host, detail, example path, and the upgrade summary


def test_links_and_styles_stay_text_on_a_colour_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich now writes its own styles as escape sequences
    print_insecure(
        [InsecureSite("h.test", "refused", "", 1, 0, 0, "/[link=http://evil.test/]x[/link][red]y", 0)], {}
    )
    out = capsys.readouterr().out
    assert "\x1b]8;" not in out  # no OSC 8 hyperlink
    assert "/[link=http://evil.test/]x[/link][red]y" in out


@pytest.mark.usefixtures("very_wide")
def test_print_lookup_is_inert(capsys: pytest.CaptureFixture[str]) -> None:
    row = {
        "ruleset": "R" + HOSTILE,
        "active": True,
        "target": "t" + HOSTILE,
        "match": "exact",
        "why": "w" + HOSTILE,
        "source": "rules/x" + HOSTILE + ".yaml",
    }
    print_lookup("[b]x.test", [row])
    out = inert(capsys.readouterr().out)
    assert out.count(SHOWN) == 4 and "[b]x.test" in out
    print_lookup("[/]\x1b[2J.test", [])
    assert inert(capsys.readouterr().out).startswith("No ruleset covers [/]\\x1b[2J.test.")


@pytest.mark.usefixtures("very_wide")
def test_print_selftest_is_inert(capsys: pytest.CaptureFixture[str]) -> None:
    result = selftest.RulesetTestResult(
        "R" + HOSTILE, "f" + HOSTILE, 1, ["http://a.test/" + HOSTILE], ["u" + HOSTILE]
    )
    print_selftest(selftest.TestReport((result,), ()), verbose=True)
    out = inert(capsys.readouterr().out)
    assert out.count(SHOWN) >= 4 and "broken http://a.test/" + SHOWN in out


@pytest.mark.usefixtures("very_wide")
def test_print_live_is_inert(capsys: pytest.CaptureFixture[str]) -> None:
    bad = LiveResult(
        "R" + HOSTILE, "f.yaml", "http://a.test/" + HOSTILE, "https://a.test/" + HOSTILE, False, HOSTILE
    )
    print_live([bad], [bad])
    out = inert(capsys.readouterr().out)
    assert out.count(SHOWN) == 4


def check_report(text: str) -> dict[str, Any]:
    """A `port443 check` report whose every site-controlled string carries `text`."""
    return {
        "host": "a.test" + text,
        "grade": "F",
        "passed": False,
        "reasons": ["certificate: " + text],
        "https": {
            "reachable": True,
            "tls_version": "TLSv1.3",
            "error": None,
            "certificate": {"valid": False, "error": text},
        },
        "http": {"reachable": True, "error": None, "downgrade": True},
        "hsts": {"present": False},
        "mixed_content": [{"tag": "script", "url": "http://a.test/" + text}],
        "port443": {"upgrade": False, "step": "probe"},
    }


def test_print_checks_is_inert(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "3000")
    print_checks([check_report(HOSTILE)])
    out = inert(capsys.readouterr().out)
    assert out.count(SHOWN) == 4  # host, reason, certificate error, mixed-content URL
    assert "invalid: " + SHOWN in out and "back to http" in out


def test_print_clients(capsys: pytest.CaptureFixture[str]) -> None:
    print_clients(
        [ClientUse("10.0.0.7", 12, 9, 3, 2, 0, 86400), ClientUse("[red]" + HOSTILE, 1, 0, 1, 1, 0, 0)]
    )
    out = inert(capsys.readouterr().out)
    lines = out.splitlines()
    assert lines[0].strip() == "Clients"
    row = next(line for line in lines if "10.0.0.7" in line)
    assert [cell.strip() for cell in row.strip("│ ").split("│")] == [
        "10.0.0.7",
        "12",
        "9",
        "3",
        "2",
        "1970-01-02 00:00:00",
    ]
    assert "[red]" + SHOWN in out
    print_clients([])
    assert capsys.readouterr().out == "No clients recorded.\n"


@pytest.mark.usefixtures("very_wide")
def test_print_learned_is_inert(capsys: pytest.CaptureFixture[str]) -> None:
    rows: list[dict[str, object]] = [
        {
            "host": "a.test",
            "path": None,
            "secure": True,
            "reason": "ok",
            "detail": "",
            "expires": "1970-01-02T00:00:00+00:00",
        },
        {
            "host": "b.test" + HOSTILE,
            "path": "/" + HOSTILE,
            "secure": False,
            "reason": "redirects-to-http",
            "detail": "301 to " + HOSTILE,
            "expires": "1970-01-02T00:00:00+00:00",
        },
    ]
    print_learned(rows)
    out = inert(capsys.readouterr().out)
    assert out.count(SHOWN) == 3 and "(every path)" in out and "1970-01-02 00:00:00" in out
    print_learned([])
    assert capsys.readouterr().out == "Nothing learned yet.\n"
