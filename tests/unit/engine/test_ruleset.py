"""Parsing and validating YAML rulesets: every problem, located by file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from port443.engine.ruleset import Rule, SecureCookie, load_rulesets, parse_ruleset, ruleset_files
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
    assert not r.default_active


@pytest.mark.parametrize(
    ("default_off", "platform", "active"),
    [(None, None, True), ("broken", None, False), ("user rule", None, True), (None, "mixedcontent", False)],
)
def test_default_activity(default_off: str | None, platform: str | None, active: bool) -> None:
    text = "name: x\ntargets: [a.com]\nrules: [{from: '^http:', to: 'https:'}]\n"
    text += f"default_off: {default_off}\n" if default_off else ""
    text += f"platform: {platform}\n" if platform else ""
    assert parse_ruleset(text).default_active is active


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
