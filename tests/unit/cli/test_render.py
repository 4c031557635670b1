"""The tables people read: ruleset lookups and the insecure-site report, rendered by rich."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from port443.cli.render import print_insecure, print_lookup
from port443.engine.index import RuleIndex
from port443.engine.lookup import explain_host
from port443.proxy.store import InsecureStore
from tests.support.samples import LOOKUP_RULESETS, fill_store


@pytest.fixture
def index() -> RuleIndex:
    return RuleIndex.build(LOOKUP_RULESETS)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[InsecureStore]:
    s = fill_store(InsecureStore(tmp_path / "insecure.sqlite3"))
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
