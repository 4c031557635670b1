"""The command line contract: output formats and exit codes that scripts rely on."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from port443.cli.main import main

RULESET = """\
name: Example
targets: [example.test, "*.example.test"]
rules:
  - from: "^http:"
    to: "https:"
exclusions:
  - ^http://example\\.test/old/
securecookies:
  - host: example\\.test$
    name: ^sid$
tests:
  - http://www.example.test/
"""


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "example.yaml").write_text(RULESET)
    (folder / "off.yaml").write_text(
        "name: Off\ndefault_off: broken\ntargets: [off.test]\nrules: [{from: '^http:', to: 'https:'}]\n"
    )
    return folder


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("COLUMNS", "200")  # rich tables fold to the terminal width


def run(capsys: pytest.CaptureFixture[str], *argv: str, stdin: str = "") -> tuple[int, str, str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_rewrite_plain(capsys: pytest.CaptureFixture[str], rules: Path) -> None:
    code, out, _ = run(
        capsys, "rewrite", "--rules", str(rules), "http://example.test/a", "http://other.test/"
    )
    assert (code, out) == (0, "https://example.test/a\nhttp://other.test/\n")


def test_rewrite_json_from_stdin_keeps_order(capsys: pytest.CaptureFixture[str], rules: Path) -> None:
    urls = "http://www.example.test/x\nhttp://example.test/old/y\nnot a url\nhttp://off.test/\n"
    code, out, _ = run(capsys, "rewrite", "--json", "--rules", str(rules), stdin=urls)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [(r["url"], r["result"], r["ruleset"]) for r in rows] == [
        ("http://www.example.test/x", "https://www.example.test/x", "Example"),
        ("http://example.test/old/y", None, None),
        ("not a url", None, None),
        ("http://off.test/", None, None),
    ]
    assert rows[1]["outcome"] == "excluded" and rows[1]["excluded_by"] == "Example"


def test_enable_turns_a_default_off_ruleset_on(capsys: pytest.CaptureFixture[str], rules: Path) -> None:
    _, out, _ = run(capsys, "rewrite", "--rules", str(rules), "--enable", "Off", "http://off.test/")
    assert out == "https://off.test/\n"


def test_securecookie(capsys: pytest.CaptureFixture[str], rules: Path) -> None:
    stdin = ".example.test\tsid\nexample.test\tother\nbroken line\n"
    code, out, err = run(capsys, "rules", "securecookie", "--json", "--rules", str(rules), stdin=stdin)
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["domain"], r["name"], r["secure"]) for r in rows] == [
        (".example.test", "sid", True),
        ("example.test", "other", False),
    ]
    assert code == 1 and "<stdin>:3: expected DOMAIN<TAB>NAME" in err


def test_lookup_json_lists_inactive_rulesets_and_why(capsys: pytest.CaptureFixture[str], rules: Path) -> None:
    code, out, _ = run(capsys, "rules", "lookup", "--json", "--rules", str(rules), "OFF.test.")
    (row,) = json.loads(out)
    assert code == 0
    assert (row["host"], row["ruleset"], row["active"], row["why"]) == (
        "off.test",
        "Off",
        False,
        "default_off: broken",
    )


def test_lookup_table(capsys: pytest.CaptureFixture[str], rules: Path) -> None:
    code, out, _ = run(capsys, "rules", "lookup", "--rules", str(rules), "a.b.example.test")
    assert code == 0 and "Example" in out and "*.example.test (left wildcard)" in out


def test_validate_lists_every_problem_and_exits_1(capsys: pytest.CaptureFixture[str], rules: Path) -> None:
    (rules / "bad.yaml").write_text(
        "name: Bad\ntargets: [Bad.test]\nrules:\n  - from: '('\n    to: http://x/\n"
    )
    code, out, err = run(capsys, "rules", "validate", str(rules))
    assert code == 1
    assert out.splitlines() == [
        f"{rules / 'bad.yaml'}:2: targets[0]: targets must be lower-case (host names are compared in lower case): 'Bad.test'",
        f"{rules / 'bad.yaml'}:4: rules[0].from: invalid regex '(' (missing ), unterminated subpattern at position 0)",
        f"{rules / 'bad.yaml'}:5: rules[0].to: must start with 'https:' (port443 never downgrades): 'http://x/'",
    ]
    assert "3 files: 2 valid, 1 invalid (3 problems, 0 warnings)" in err


def test_validate_warns_about_patterns_that_can_backtrack(
    capsys: pytest.CaptureFixture[str], rules: Path
) -> None:
    (rules / "slow.yaml").write_text(
        "name: Slow\ntargets: [x.test]\nrules:\n  - from: '^http://x\\.test/(a+)+b'\n    to: https://x.test/\n"
    )
    code, out, err = run(capsys, "rules", "validate", str(rules))
    assert code == 0  # a warning, not a finding: the proxy's engines keep it bounded anyway
    (warning,) = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert f"{rules / 'slow.yaml'}:4: rules[0].from:" in warning
    assert "1 warnings)" in err


def test_validate_good_rules_exits_0(capsys: pytest.CaptureFixture[str], rules: Path) -> None:
    assert run(capsys, "rules", "validate", str(rules))[0] == 0


def test_rules_test_passes_and_fails_on_broken_tests(capsys: pytest.CaptureFixture[str], rules: Path) -> None:
    code, out, _ = run(capsys, "rules", "test", str(rules))
    assert code == 0 and "0 broken" in out
    (rules / "example.yaml").write_text(RULESET + "  - http://elsewhere.test/\n")
    code, out, _ = run(capsys, "rules", "test", "--json", str(rules))
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert row["broken"] == [
        "test 'http://elsewhere.test/': host 'elsewhere.test' is not covered by the ruleset's targets"
    ]


def test_bad_rules_path_is_an_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "rewrite", "--rules", str(tmp_path / "missing"), "http://a.test/")
    assert code == 1 and err.startswith("port443: ") and "no such file or directory" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["rewrite", "--bogus"])
    assert info.value.code == 2
    assert main([]) == 2


@pytest.mark.parametrize(
    ("url", "upgrade", "step", "reason"),
    [
        ("http://www.example.test/a", True, "ruleset", "ruleset"),
        ("http://example.test/old/x", False, "excluded-by-rule", "excluded-by-rule"),
        ("http://10.1.2.3/", False, "exempt", "exempt: local or non-public address"),
        ("http://printer/", False, "exempt", "exempt: single-label name"),
        ("http://unknown.test/", False, "probe", "unknown"),  # no traffic without --probe
    ],
)
def test_explain(
    capsys: pytest.CaptureFixture[str], rules: Path, url: str, upgrade: bool, step: str, reason: str
) -> None:
    code, out, _ = run(capsys, "explain", "--json", "--rules", str(rules), url)
    row = json.loads(out)
    said = row["reason"] + (f": {row['detail']}" if row["reason"] == "exempt" else "")
    assert code == 0 and (row["upgrade"], row["step"], said) == (upgrade, step, reason)


def test_report_without_a_store_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "report", "--db", str(tmp_path / "none.sqlite3"))
    assert code == 1 and "no insecure-site store yet" in err
