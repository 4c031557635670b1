"""The compiled rules cache: reused when nothing changed, partly rebuilt when files change, never trusted blindly."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from port443.engine.cache import load_rules
from port443.engine.rewrite import rewrite_url

RULESET = "name: {name}\ntargets: [{host}]\nrules:\n  - from: '^http:'\n    to: 'https:'\n"


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    for n in range(5):
        (folder / f"r{n}.yaml").write_text(RULESET.format(name=f"R{n}", host=f"h{n}.test"))
    return folder


def test_second_load_comes_from_the_cache(rules: Path, tmp_path: Path) -> None:
    first = load_rules([rules], cache_dir=tmp_path / "cache")
    second = load_rules([rules], cache_dir=tmp_path / "cache")
    assert (first.parsed, second.parsed) == (5, 0)
    assert rewrite_url("http://h3.test/", second.index).url == "https://h3.test/"
    assert second.index.records == first.index.records


def test_only_changed_files_are_parsed_again(rules: Path, tmp_path: Path) -> None:
    load_rules([rules], cache_dir=tmp_path / "cache")
    (rules / "r2.yaml").write_text(RULESET.format(name="R2", host="changed.test"))
    os.utime(rules / "r4.yaml", ns=(1, 1))  # touched but unchanged: hashed, not parsed
    again = load_rules([rules], cache_dir=tmp_path / "cache")
    assert again.parsed == 1
    assert rewrite_url("http://changed.test/", again.index).ruleset == "R2"
    assert rewrite_url("http://h2.test/", again.index).url is None


def test_added_and_removed_files_are_noticed(rules: Path, tmp_path: Path) -> None:
    load_rules([rules], cache_dir=tmp_path / "cache")
    (rules / "r0.yaml").unlink()
    (rules / "new.yaml").write_text(RULESET.format(name="New", host="new.test"))
    again = load_rules([rules], cache_dir=tmp_path / "cache")
    assert again.parsed == 1
    assert again.index.records.names == ["New", "R1", "R2", "R3", "R4"]


def test_errors_are_reported_from_the_cache_too(rules: Path, tmp_path: Path) -> None:
    (rules / "bad.yaml").write_text("name: bad\ntargets: [Bad.test]\nrules: []\n")
    for _ in range(2):
        loaded = load_rules([rules], cache_dir=tmp_path / "cache")
        assert len(loaded.index) == 5
        assert [str(p) for p in loaded.errors[0].problems] == [
            f"{rules / 'bad.yaml'}:2: targets[0]: targets must be lower-case (host names are compared in lower case): 'Bad.test'",
            f"{rules / 'bad.yaml'}:3: rules: must not be empty",
        ]


def test_a_damaged_cache_is_rebuilt(rules: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_rules([rules], cache_dir=cache)
    for blob in cache.iterdir():
        blob.write_bytes(b"\x00garbage")
    loaded = load_rules([rules], cache_dir=cache)
    assert (loaded.parsed, len(loaded.index)) == (5, 5)


def test_an_unwritable_cache_only_costs_speed(rules: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    loaded = load_rules([rules], cache_dir=blocker / "cache")
    assert len(loaded.index) == 5


def test_no_cache_dir_means_no_cache(rules: Path, tmp_path: Path) -> None:
    assert load_rules([rules]).parsed == 5
    assert load_rules([rules]).parsed == 5


def test_a_broken_edit_keeps_the_last_good_version_and_is_reported(rules: Path, tmp_path: Path) -> None:
    load_rules([rules], cache_dir=tmp_path / "cache")
    (rules / "r1.yaml").write_text("name: R1\ntargets: [h1.test\n")
    for _ in range(2):  # and again from the cache
        loaded = load_rules([rules], cache_dir=tmp_path / "cache")
        assert rewrite_url("http://h1.test/", loaded.index).url == "https://h1.test/"
        assert [e.source for e in loaded.errors] == [str(rules / "r1.yaml")]
    assert load_rules([rules]).index.records.names == [
        "R0",
        "R2",
        "R3",
        "R4",
    ]  # without a cache: only what is valid


def test_warnings_are_kept_with_the_cache(rules: Path, tmp_path: Path) -> None:
    nested = (
        "name: N\ntargets: [n.test]\nrules:\n  - from: ^http://n\\.test/(a+)+b\n    to: https://n.test/\n"
    )
    (rules / "nested.yaml").write_text(nested)
    for _ in range(2):  # parsed, then from the cache
        loaded = load_rules([rules], cache_dir=tmp_path / "cache")
        assert [(Path(w.source).name, w.line, w.field) for w in loaded.warnings] == [
            ("nested.yaml", 4, "rules[0].from")
        ]
        assert not loaded.errors


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name: B\nnotes: &a [x, x]\ntargets: [*a]\n", r"nasty.yaml:2: anchor &a: YAML anchors and aliases"),
        ("x" * (3 << 20), r"nasty.yaml: the file has 3,145,728 bytes; a ruleset file may have at most"),
    ],
)
def test_a_nasty_edit_is_reported_by_file_and_keeps_the_last_good_version(
    rules: Path, tmp_path: Path, text: str, problem: str
) -> None:
    (rules / "nasty.yaml").write_text(RULESET.format(name="Nasty", host="nasty.test"))
    load_rules([rules], cache_dir=tmp_path / "cache")
    (rules / "nasty.yaml").write_text(text)
    again = load_rules([rules], cache_dir=tmp_path / "cache")
    assert len(again.errors) == 1
    assert re.search(problem, str(again.errors[0])), str(again.errors[0])
    assert rewrite_url("http://nasty.test/", again.index).url == "https://nasty.test/"
