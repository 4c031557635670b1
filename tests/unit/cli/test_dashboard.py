"""`port443 never|always|clear`, `policies` and `dashboard password`: what they write, and their exit codes."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest

from port443.cli.main import main
from port443.proxy.decide import Policy
from port443.proxy.passwords import default_password_path, parse_hash, verify_password
from port443.proxy.store import InsecureStore


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    path = tmp_path / "db.sqlite3"
    InsecureStore(path).close()
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str, stdin: str = "") -> tuple[int, str, str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def choices(db: Path) -> dict[str, Policy]:
    store = InsecureStore(db)
    try:
        return {c.host: c.policy for c in store.policies()}
    finally:
        store.close()


def test_never_always_and_clear(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    code, out, _ = run(capsys, "never", "TV.test", "printer.lan.", "--db", str(db))
    assert code == 0 and "tv.test (and its subdomains): never upgraded" in out
    assert choices(db) == {"tv.test": Policy.NEVER, "printer.lan": Policy.NEVER}
    code, out, _ = run(capsys, "always", "tv.test", "--db", str(db))
    assert code == 0 and choices(db)["tv.test"] is Policy.ALWAYS
    code, out, _ = run(capsys, "clear", "tv.test", "other.test", "--db", str(db))
    assert code == 0 and "tv.test: choice cleared" in out and "other.test: had no choice" in out
    assert choices(db) == {"printer.lan": Policy.NEVER}


def test_a_bad_name_writes_nothing_and_exits_2(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    code, _, err = run(capsys, "never", "good.test", "http://bad/", "--db", str(db))
    assert code == 2 and "not a host name" in err
    assert choices(db) == {}


def test_no_store_yet(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "never", "a.test", "--db", str(tmp_path / "none.sqlite3"))
    assert code == 2 and "no store yet" in err


def test_policies_as_a_table_and_as_json(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    assert run(capsys, "policies", "--db", str(db))[1].startswith("No per-site choices")
    run(capsys, "never", "tv.test", "--db", str(db))
    run(capsys, "always", "\u202ebox.test", "--db", str(db))  # refused: a bidi override is no name
    code, out, _ = run(capsys, "policies", "--db", str(db))
    assert code == 0 and "tv.test" in out and "never upgrade" in out
    code, out, _ = run(capsys, "policies", "--json", "--db", str(db))
    (row,) = json.loads(out)
    assert (row["host"], row["policy"]) == ("tv.test", "never")


def test_the_password_is_stored_hashed_0600(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    code, out, _ = run(capsys, "dashboard", "password", "--stdin", stdin="household secret\n")
    path = default_password_path()
    assert code == 0 and "dashboard password set" in out
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert verify_password("household secret", parse_hash(path.read_text()))
    code, _, err = run(capsys, "dashboard", "password", "--stdin", stdin="short\n")
    assert code == 2 and "at least 8" in err
    assert verify_password("household secret", parse_hash(path.read_text()))  # unchanged
    code, out, _ = run(capsys, "dashboard", "password", "--remove")
    assert code == 0 and "removed" in out and not path.exists()
    assert "no password was set" in run(capsys, "dashboard", "password", "--remove")[1]


def test_the_password_is_asked_twice(
    capsys: pytest.CaptureFixture[str], db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter(["household secret", "household secrte"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    code, _, err = run(capsys, "dashboard", "password")
    assert code == 2 and "differ" in err and not default_password_path().exists()
