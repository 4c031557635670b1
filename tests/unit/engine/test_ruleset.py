"""Parsing and validating YAML rulesets: every problem, located by file, line and field."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from port443.engine.index import Activation
from port443.engine.ruleset import (
    MAX_COMPILE_COST,
    MAX_FILE_SIZE,
    MAX_REGEXES,
    Rule,
    SecureCookie,
    load_ruleset,
    load_rulesets,
    parse_ruleset,
    parse_ruleset_warnings,
    ruleset_files,
)
from port443.errors import RulesetError

COMPLETE = """\
name: Example
default_off: failed ruleset test
platform: mixedcontent
notes: why some hosts are left out
targets:
  - example.com
  - "*.example.com"
  - www.example.*
rules:
  - from: ^http://(www\\.)?example\\.com/
    to: https://$1example.com/
  - from: "^http:"
    to: "https:"
exclusions:
  - ^http://example\\.com/legacy/
securecookies:
  - host: ^\\.example\\.com$
    name: .+
tests:
  - http://www.example.com/page
"""


def test_complete_ruleset_parses() -> None:
    r = parse_ruleset(COMPLETE, "example.yaml")
    assert r.name == "Example"
    assert r.targets == ("example.com", "*.example.com", "www.example.*")
    assert r.rules == (
        Rule(r"^http://(www\.)?example\.com/", "https://$1example.com/"),
        Rule("^http:", "https:"),
    )
    assert r.rules[1].trivial and not r.rules[0].trivial
    assert r.exclusions == (r"^http://example\.com/legacy/",)
    assert r.securecookies == (SecureCookie(r"^\.example\.com$", ".+"),)
    assert r.tests == ("http://www.example.com/page",)
    assert (r.default_off, r.platform, r.notes) == (
        "failed ruleset test",
        "mixedcontent",
        "why some hosts are left out",
    )
    assert r.source == "example.yaml"
    assert not Activation().is_active(r.name, r.default_off or "", r.platform or "")


@pytest.mark.parametrize(
    ("default_off", "platform", "active"),
    [(None, None, True), ("broken", None, False), ("user rule", None, True), (None, "mixedcontent", False)],
)
def test_default_activity(default_off: str | None, platform: str | None, active: bool) -> None:
    text = "name: x\ntargets: [a.com]\nrules: [{from: '^http:', to: 'https:'}]\n"
    text += f"default_off: {default_off}\n" if default_off else ""
    text += f"platform: {platform}\n" if platform else ""
    r = parse_ruleset(text)
    assert Activation().is_active(r.name, r.default_off or "", r.platform or "") is active


MINIMAL = "name: x\ntargets:\n  - a.com\nrules:\n  - from: ^http://a\\.com/\n    to: https://a.com/\n"


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        ("  - a.com\n", "  - A.com\n", r"f.yaml:3: targets\[0\]: targets must be lower-case"),
        (
            "  - a.com\n",
            "  - www.*.com\n",
            r"f.yaml:3: targets\[0\]: the wildcard must be the whole first label",
        ),
        (
            "  - a.com\n",
            "  - '*.com'\n",
            r"f.yaml:3: targets\[0\]: a left wildcard needs at least two more labels",
        ),
        ("  - a.com\n", "  - a.com.\n", r"f.yaml:3: targets\[0\]: a target must not end with a dot"),
        ("  - a.com\n", "  - a.com:8080\n", r"f.yaml:3: targets\[0\]: a target is a host name only"),
        (
            "^http://a\\.com/",
            "^http://(a\\.com/",
            r"f.yaml:5: rules\[0\]\.from: invalid regex '\^http://\(a\\\\.com/'",
        ),
        ("https://a.com/\n", "http://a.com/\n", r"f.yaml:6: rules\[0\]\.to: must start with 'https:'"),
        ("https://a.com/\n", "https://a.com/$3\n", r"f.yaml:6: rules\[0\]\.to: \$3 refers to a group"),
        ("name: x\n", "name: x\ncolour: red\n", r"f.yaml:2: colour: unknown key 'colour'"),
        ("name: x\n", "", r"f.yaml:1: missing required key 'name'"),
        ("name: x\n", "name: [a, b]\n", r"f.yaml:1: name: must be text, not a list \['a', 'b'\]"),
        (
            "name: x\n",
            "name: x\ndefault_off: {a: b}\n",
            r"f.yaml:2: default_off: must be text, not a mapping",
        ),
        ("name: x\n", "name: x\ndefault_off: ''\n", r"f.yaml:2: default_off: must not be empty"),
        ("name: x\n", "name: x\ntests: [ftp://a.com/]\n", r"f.yaml:2: tests\[0\]: a test is an http:// URL"),
        (
            "    to: https://a.com/\n",
            "    to: https://a.com/\n    with: 1\n",
            r"f.yaml:7: rules\[0\]\.with: unknown key",
        ),
        ("    to: https://a.com/\n", "", r"f.yaml:5: rules\[0\]: missing 'to'"),
        (
            "name: x\n",
            "name: x\nsecurecookies: [{host: '('}]\n",
            r"f.yaml:2: securecookies\[0\]: missing 'name'",
        ),
        ("name: x\n", "name: [x\n", r"f.yaml:\d+: invalid YAML"),
        ("  - from: ^http://a\\.com/\n", "  - from: ^http:\n", r"f.yaml:5: invalid YAML .*quote a value"),
    ],
)
def test_problems_name_file_line_and_field(replace: str, by: str, expected: str) -> None:
    assert replace in MINIMAL
    with pytest.raises(RulesetError, match=expected):
        parse_ruleset(MINIMAL.replace(replace, by, 1), "f.yaml")


@pytest.mark.parametrize("value", ["Off", "No", "yes", "1.10", "0x1F", "2021-06-09"])
def test_plain_scalars_stay_text(value: str) -> None:
    assert parse_ruleset(MINIMAL.replace("name: x", f"name: {value}")).name == value


def test_every_problem_of_a_file_is_reported_in_line_order() -> None:
    text = MINIMAL.replace("a.com\n", "A.com\n", 1).replace("https://a.com/", "http://a.com/") + "extra: 1\n"
    with pytest.raises(RulesetError) as info:
        parse_ruleset(text, "f.yaml")
    lines = [p.line or 0 for p in info.value.problems]
    assert len(info.value.problems) == 3
    assert lines == sorted(lines)
    assert (info.value.source, info.value.line, info.value.field) == ("f.yaml", 3, "targets[0]")


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text\n"])
def test_a_document_that_is_not_a_mapping_is_refused(text: str) -> None:
    with pytest.raises(RulesetError, match="must be a mapping"):
        parse_ruleset(text, "f.yaml")


def test_one_bad_file_never_stops_the_others(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(MINIMAL)
    (tmp_path / "b.yaml").write_text("name: [\n")
    (tmp_path / "c.yml").write_text(MINIMAL.replace("name: x", "name: c"))
    (tmp_path / "notes.txt").write_text("not a ruleset")
    result = load_rulesets([tmp_path])
    assert [r.name for r in result.rulesets] == ["x", "c"]
    assert [e.source for e in result.errors] == [str(tmp_path / "b.yaml")]


def test_files_load_in_code_point_order_and_paths_in_given_order(tmp_path: Path) -> None:
    for rel in ("b/Z.yaml", "b/a.yaml", "A.yaml", "b.yaml", ".hidden.yaml", "__pycache__/x.yaml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(MINIMAL)
    extra = tmp_path.parent / f"{tmp_path.name}-user.yaml"
    extra.write_text(MINIMAL)
    files = ruleset_files([extra, tmp_path])
    assert [
        Path(f).relative_to(tmp_path).as_posix() if tmp_path in Path(f).parents else "user" for f in files
    ] == [
        "user",
        "A.yaml",
        "b.yaml",
        "b/Z.yaml",
        "b/a.yaml",
    ]


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RulesetError, match="no such file or directory"):
        ruleset_files([tmp_path / "nope"])


def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_bytes(b"name: \xff\n")
    result = load_rulesets([tmp_path])
    assert "cannot read" in str(result.errors[0])


# --- files cost bounded time and memory, whoever wrote them ---------------------------------------------------

ALIAS_BOMB = (
    "name: Bomb\nnotes: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(
        f"n{i}: &n{i} [{', '.join([f'*{p}'] * 9)}]\n"
        for i, p in enumerate(["a", *[f"n{j}" for j in range(8)]])
    )
    + "targets: [*n8]\nrules:\n  - from: '^http:'\n    to: 'https:'\n"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ALIAS_BOMB, r"f.yaml:2: anchor &a: YAML anchors and aliases are not allowed"),
        (MINIMAL.replace("  - a.com\n", "  - &t a.com\n"), r"f.yaml:3: anchor &t: "),
        (MINIMAL + "tests:\n  - &u http://a.com/?a=1&b=2\n", r"f.yaml:8: anchor &u"),
        (MINIMAL + "notes: *nowhere\n", r"f.yaml:7: invalid YAML"),  # no anchor: an unknown alias
        ("name: x\ntargets: " + "[" * 5000 + "]" * 5000 + "\nrules: []\n", r"f.yaml:2: invalid YAML .*depth"),
    ],
)
def test_anchors_aliases_and_deep_nesting_are_refused(text: str, expected: str) -> None:
    assert len(ALIAS_BOMB) < 700  # it stands for 9**10 strings
    started = time.perf_counter()
    with pytest.raises(RulesetError, match=expected):
        parse_ruleset(text, "f.yaml")
    assert time.perf_counter() - started < 0.5


def test_an_ampersand_in_a_value_is_not_an_anchor() -> None:
    assert parse_ruleset(MINIMAL + "tests:\n  - http://a.com/?a=1&b=2\n").tests == ("http://a.com/?a=1&b=2",)


def test_oversized_files_are_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("w") as f:
        f.write(MINIMAL + "notes: |\n")
        line = "  " + "x" * 1000 + "\n"
        for _ in range(50_000):  # 50 MB
            f.write(line)
    started = time.perf_counter()
    with pytest.raises(RulesetError, match=r"huge.yaml: the file has 50,[\d,]+ bytes; .* at most 2,097,152"):
        load_ruleset(path)
    assert time.perf_counter() - started < 0.5
    with pytest.raises(RulesetError, match="characters; a ruleset file may have at most"):
        parse_ruleset("x" * (MAX_FILE_SIZE + 1), "f.yaml")


def test_the_largest_shipped_file_is_far_below_the_limit() -> None:
    from port443.engine.shipped import shipped_rules_path

    largest = max(p.stat().st_size for p in shipped_rules_path().glob("*.yaml"))
    assert largest * 4 <= MAX_FILE_SIZE


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("  - " + "A" * 5000 + "\n", r"targets\[0\]: targets must be lower-case .*: 'A{20,}\.\.\.A+'$"),
        ("  - [" + ", ".join(["x"] * 5000) + "]\n", r"targets\[0\]: a target is a host name, not a list \["),
        ("  - " + "a" * 300 + "/\n", r"a target is a host name only"),
    ],
)
def test_problems_show_at_most_about_100_characters_of_a_value(by: str, expected: str) -> None:
    with pytest.raises(RulesetError, match=expected) as info:
        parse_ruleset(MINIMAL.replace("  - a.com\n", by), "f.yaml")
    assert all(len(p.message) < 250 for p in info.value.problems)


def _rules(count: int, from_: str = r"^http://a\.com/{i}/") -> str:
    body = "".join(f"  - from: {from_.format(i=i)}\n    to: https://a.com/\n" for i in range(count))
    return f"name: x\ntargets: [a.com]\nrules:\n{body}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (_rules(MAX_REGEXES + 1), r"f.yaml:4: rules: the ruleset has more than 1,000 regexes: split it"),
        (_rules(30_000), r"more than 1,000 regexes"),  # 1.6 MB: refused before any regex compiles
        (
            _rules(40, r"^http://a\.com/(?!x)" + "b" * 300 + "{i}/"),
            r"f.yaml:4: rules: .* about \d+ ms to compile",
        ),
    ],
)
def test_rulesets_too_costly_to_compile_are_refused(text: str, expected: str) -> None:
    started = time.perf_counter()
    with pytest.raises(RulesetError, match=expected):
        parse_ruleset(text, "f.yaml")
    assert time.perf_counter() - started < 5


def test_a_ruleset_at_the_limits_compiles_within_the_lag_bound() -> None:
    from port443.engine.index import compile_record, record_cost, record_of

    rules = _rules(MAX_COMPILE_COST // 42, r"^http://a\.com/[a-z]+{i}/")  # each costs 16 + 23-26 units
    ruleset = parse_ruleset(rules + "exclusions:\n  - ^http://a\\.com/(?!x)y\n", "f.yaml")
    record = record_of(ruleset)
    assert record_cost(record) > 0.95 * MAX_COMPILE_COST
    started = time.perf_counter()
    compile_record(record)
    assert time.perf_counter() - started < 0.050


@pytest.mark.parametrize(
    ("from_", "fragment"),
    [(r"^http://x\.test/(a+)+b", "(a+)+"), (r"^http://x\.test/(?!z)(\w+\.?)*$", r"(\w+\.?)*")],
)
def test_nested_quantifiers_are_warned_about_with_file_line_field(from_: str, fragment: str) -> None:
    ruleset, warnings = parse_ruleset_warnings(MINIMAL.replace("^http://a\\.com/", from_), "user.yaml")
    assert ruleset.rules[0].from_ == from_
    assert [(w.source, w.line, w.field) for w in warnings] == [("user.yaml", 5, "rules[0].from")]
    assert f"nested quantifiers {fragment!r} can backtrack catastrophically" in warnings[0].message
    assert str(warnings[0]).startswith("user.yaml:5: rules[0].from: nested quantifiers")


def test_delimited_repetition_is_not_warned_about() -> None:
    text = MINIMAL.replace("^http://a\\.com/", r"^http://((?:[\w-]+\.)+)a\.com/").replace(
        "https://a.com/", "https://$1a.com/"
    )
    assert parse_ruleset_warnings(text)[1] == []


def test_inline_flags_are_not_javascript() -> None:
    with pytest.raises(RulesetError, match="is not JavaScript syntax"):
        parse_ruleset(MINIMAL.replace("^http://a\\.com/", "(?i)^http://a\\.com/"), "f.yaml")
