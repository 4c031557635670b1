"""`port443 run` and `port443 report`: the flags the dashboard adds (`--no-dashboard`, `report --html`)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from port443.cli.main import build_parser, main
from port443.cli.proxy import run_command_line
from port443.proxy.store import InsecureStore


def parsed(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", *argv])


def test_no_dashboard_sets_its_option() -> None:
    argv, _ = run_command_line(parsed("--no-dashboard"))
    assert "port443_dashboard=false" in argv
    argv, _ = run_command_line(parsed())
    assert not any(a.startswith("port443_dashboard") for a in argv)


def test_report_html_writes_one_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite3"
    store = InsecureStore(db)
    store.note_insecure("plain.test", "refused", "connection refused", "/", client="10.0.0.2")
    store.note_upgrade("probe", client="10.0.0.2")
    store.close()
    out = tmp_path / "report.html"
    assert main(["report", "--html", str(out), "--db", str(db)]) == 0
    page = out.read_text()
    assert "plain.test" in page and "<svg" in page and "Content-Security-Policy" in page
    assert f"wrote {out}" in capsys.readouterr().err
    assert main(["report", "--html", str(tmp_path / "missing" / "r.html"), "--db", str(db)]) == 1


def test_report_formats_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as done:
        main(["report", "--json", "--html", str(tmp_path / "r.html")])
    assert done.value.code == 2
