"""YAML emission: the documented layout, quoting only where YAML needs it, and an exact round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from port443.engine.importer import parse_xml
from port443.engine.ruleset import Rule, Ruleset, SecureCookie, load_ruleset, parse_ruleset, ruleset_files
from port443.engine.shipped import shipped_rules_path
from port443.engine.yaml_out import format_ruleset
from tests.unit.engine.test_importer import DATA, read_corpus_sample

TRIVIAL = Rule("^http:", "https:")

COMPLETE = Ruleset(
    name="Example.com",
    targets=("example.com", "*.example.com"),
    rules=(TRIVIAL, Rule(r"^http://(www\.)?example\.com/", "https://$1example.com/")),
    exclusions=(r"^http://example\.com/legacy/",),
    securecookies=(SecureCookie(r"^\.example\.com$", ".+"),),
    tests=("http://example.com/page",),
    default_off="failed ruleset test",
    platform="mixedcontent",
    notes="Fully covered hosts in *example.com:\n\n    - www\n",
)

COMPLETE_YAML = """\
name: Example.com
default_off: failed ruleset test
platform: mixedcontent
notes: |
  Fully covered hosts in *example.com:

      - www
targets:
  - example.com
  - "*.example.com"
rules:
  - from: "^http:"
    to: "https:"
  - from: ^http://(www\\.)?example\\.com/
    to: https://$1example.com/
exclusions:
  - ^http://example\\.com/legacy/
securecookies:
  - host: ^\\.example\\.com$
    name: .+
tests:
  - http://example.com/page
"""


def test_complete_layout() -> None:
    assert format_ruleset(COMPLETE) == COMPLETE_YAML
    assert parse_ruleset(COMPLETE_YAML) == COMPLETE


def test_empty_optional_fields_are_left_out() -> None:
    ruleset = Ruleset("Minimal", ("example.com",), (TRIVIAL,))
    expected = 'name: Minimal\ntargets:\n  - example.com\nrules:\n  - from: "^http:"\n    to: "https:"\n'
    assert format_ruleset(ruleset) == expected


@pytest.mark.parametrize(
    ("value", "spelling"),
    [
        ("Plain name (partial)", "Plain name (partial)"),
        ("Télé", "Télé"),
        (r"^\.example\.com$", r"^\.example\.com$"),
        ("a:b#c", "a:b#c"),
        ("^http:", '"^http:"'),
        ("*.example.com", '"*.example.com"'),
        ("a: b", '"a: b"'),
        ("a #b", '"a #b"'),
        ("trailing ", '"trailing "'),
        (" leading", '" leading"'),
        ("[a-z]+", '"[a-z]+"'),
        (r"[\w-]+\.", r"'[\w-]+\.'"),
        (r"'it''s' \d", r"'''it''''s'' \d'"),
        ("yes", '"yes"'),
        ("Off", '"Off"'),
        ("null", '"null"'),
        ("~", '"~"'),
        ("404", '"404"'),
        ("1.5", '"1.5"'),
        ("0x1f", '"0x1f"'),
        ("1:20", '"1:20"'),
        ("2021-06-09", '"2021-06-09"'),
        ("<<", '"<<"'),
        ("=", '"="'),
        ("---", '"---"'),
        ("- item", '"- item"'),
        ("&anchor", '"&anchor"'),
        ("!tag", '"!tag"'),
        ("%x", '"%x"'),
        ("@x", '"@x"'),
        ("`x", '"`x"'),
        ("|x", '"|x"'),
        ("tab\there", '"tab\\there"'),
        ('back\\slash "quoted"\ttab', '"back\\\\slash \\"quoted\\"\\ttab"'),
        ("line\u2028separator", '"line\\u2028separator"'),
        ("next\x85line", '"next\\x85line"'),
        ("bom\ufeff", '"bom\\ufeff"'),
        ("emoji \U0001f600", "emoji \U0001f600"),
    ],
)
def test_scalar_spelling(value: str, spelling: str) -> None:
    text = format_ruleset(Ruleset(value, ("example.com",), (TRIVIAL,)))
    assert text.splitlines()[0] == f"name: {spelling}"
    assert parse_ruleset(text).name == value
    assert yaml.safe_load(text)["name"] == value  # the pure-Python loader agrees with libyaml


@pytest.mark.parametrize(
    ("notes", "spelling"),
    [
        ("", 'notes: ""'),
        ("one line", "notes: one line"),
        ("a\nb\n", "notes: |\n  a\n  b"),
        ("a\nb", "notes: |-\n  a\n  b"),
        ("a\nb\n\n", "notes: |+\n  a\n  b\n"),
        ("a\n\n    b\n", "notes: |\n  a\n\n      b"),
        ("    indented\nfirst\n", "notes: |2\n      indented\n  first"),
        ("\tb\n", "notes: |2\n  \tb"),
        ("\n\nleading blank lines\n", "notes: |\n\n\n  leading blank lines"),
        ("# not a comment\n---\n...\n- item: x\n", "notes: |\n  # not a comment\n  ---\n  ...\n  - item: x"),
        ("trailing space \nhere\n", 'notes: "trailing space \\nhere\\n"'),
        ("windows\r\nline\n", 'notes: "windows\\r\\nline\\n"'),
        ("\n", 'notes: "\\n"'),
    ],
)
def test_notes_spelling(notes: str, spelling: str) -> None:
    ruleset = Ruleset("x", ("example.com",), (TRIVIAL,), notes=notes)
    text = format_ruleset(ruleset)
    assert text.split("\ntargets:")[0] == f"name: x\n{spelling}"
    assert parse_ruleset(text) == ruleset
    assert yaml.safe_load(text)["notes"] == notes


@pytest.mark.parametrize("path", sorted(DATA.glob("*.yaml")), ids=lambda p: p.name)
def test_emitting_a_loaded_file_gives_it_back(path: Path) -> None:
    assert format_ruleset(load_ruleset(path)) == path.read_text(encoding="utf-8")


def test_corpus_sample_round_trips() -> None:
    """Real rulesets, with the corpus's oddities: format then parse gives the same ruleset."""
    sample = read_corpus_sample()
    assert len(sample) >= 40
    for name, data in sample.items():
        ruleset = parse_xml(data, name).ruleset
        assert parse_ruleset(format_ruleset(ruleset), name) == ruleset, name


@pytest.mark.slow
def test_every_shipped_file_is_what_emitting_it_gives() -> None:
    """The whole shipped corpus (23,764 files): parse then format gives each file back byte for byte."""
    files = ruleset_files([shipped_rules_path()])
    assert len(files) == 23_764
    differ = []
    for path in files:
        text = Path(path).read_text(encoding="utf-8")
        if format_ruleset(parse_ruleset(text, path)) != text:
            differ.append(path)
    assert not differ, f"{len(differ)} files differ, such as {differ[:5]}"
