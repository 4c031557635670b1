"""`port443 rewrite`: its output, line for line, whatever the URL and the outcome."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from port443.cli.main import main
from port443.cli.rules import _json_line
from port443.engine.cache import load_index
from port443.engine.pattern_base import MAX_URL_LENGTH
from port443.engine.rewrite import Outcome, Rewrite, rewrite_url

RULESETS = {
    "plain.yaml": "name: Plain\ntargets: [plain.test, '*.plain.test']\nrules: [{from: '^http:', to: 'https:'}]\n"
    "exclusions: ['^http://plain\\.test/old/']\n",
    "quoted.yaml": "name: 'Qu\"ot\\ed é'\ntargets: [q.test]\nrules: [{from: '^http://q\\.test/', to: 'https://q.test/'}]\n",
    "slow.yaml": "name: Slow\ntargets: [y.test]\nrules: [{from: '^http://y\\.test/(?!z)(a|aa)+b', to: 'https://y.test/'}]\n",
}
URLS = [
    "http://www.plain.test/x",  # upgraded
    "http://plain.test/old/y",  # excluded
    "http://other.test/",  # no ruleset
    "not a url",
    'http://q.test/"quoted"\\back/é/\u2028',  # JSON escapes, a non-ASCII ruleset name
    "http://plain.test/" + "a" * MAX_URL_LENGTH,  # too long
    "http://y.test/" + "a" * 40,  # timed out
    "http://PLAIN.test:80/\x7f",
]


def reference(url: str, result: Rewrite) -> str:
    """The line as the command spelled it before it was built from pre-encoded pieces."""
    record: dict[str, object] = {
        "url": url,
        "result": result.url,
        "ruleset": result.ruleset,
        "outcome": result.outcome.value,
    }
    if result.outcome is Outcome.EXCLUDED:
        record["ruleset"] = None
        record["excluded_by"] = result.ruleset
    return json.dumps(record, ensure_ascii=True) + "\n"


@pytest.fixture
def rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    folder = tmp_path / "rules"
    folder.mkdir()
    for name, text in RULESETS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def run(capsys: pytest.CaptureFixture[str], *argv: str, stdin: str = "") -> tuple[int, str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(argv))
    return code, capsys.readouterr().out


def test_json_lines_are_exactly_json_dumps(capsys: pytest.CaptureFixture[str], rules: Path) -> None:
    code, out = run(capsys, "rewrite", "--json", "--rules", str(rules), stdin="".join(u + "\n" for u in URLS))
    assert code == 0 and out.isascii()
    lines = out.splitlines(keepends=True)
    outcomes = [json.loads(line)["outcome"] for line in lines]
    assert outcomes == [
        "upgraded",
        "excluded",
        "no-match",
        "no-match",
        "upgraded",
        "too-long",
        "timed-out",
        "upgraded",
    ]
    index = load_index([rules])
    rewrite_url("http://y.test/", index)  # compiled, as in the command's run before the timed-out URL
    assert lines == [reference(url, rewrite_url(url, index)) for url in URLS]


@pytest.mark.parametrize(
    "result",
    [
        Rewrite(Outcome.UPGRADED, "https://a.test/\udcff", 'A "b" \\ é'),
        Rewrite(Outcome.EXCLUDED, None, "\x00\x1f"),
        Rewrite(Outcome.NO_MATCH, None, None),
        Rewrite(Outcome.TOO_LONG, None, None),
        Rewrite(Outcome.TIMED_OUT, None, "Slow"),
    ],
)
@pytest.mark.parametrize("url", ["http://a.test/", "http://a.test/\udcff\ud800", '"\\\t\u2029\U0001f600'])
def test_every_outcome_is_spelled_as_json_dumps_would(url: str, result: Rewrite) -> None:
    """Lone surrogates too: arguments that are not UTF-8 reach the command as them."""
    assert _json_line(url, result, {None: "null"}) == reference(url, result)


def test_plain_lines_keep_the_url_when_nothing_applies(
    capsys: pytest.CaptureFixture[str], rules: Path
) -> None:
    code, out = run(
        capsys, "rewrite", "--rules", str(rules), "http://plain.test/a", "x", "http://plain.test/old/"
    )
    assert (code, out) == (0, "https://plain.test/a\nx\nhttp://plain.test/old/\n")


def test_lines_keep_their_order_and_crlf_is_stripped(capsys: pytest.CaptureFixture[str], rules: Path) -> None:
    urls = [f"http://{n}.plain.test/" for n in range(3000)]
    _, out = run(capsys, "rewrite", "--rules", str(rules), stdin="\r\n".join(urls) + "\r\n")
    assert out.splitlines() == ["https" + u[4:] for u in urls]
