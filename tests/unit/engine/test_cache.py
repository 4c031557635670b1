"""The compiled rules cache: reused when nothing changed, partly rebuilt when files change, never trusted blindly."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from port443.engine import cache
from port443.engine.cache import load_rules
from port443.engine.index import build_targets
from port443.engine.rewrite import rewrite_url

RULESET = "name: {name}\ntargets: [{host}]\nrules:\n  - from: '^http:'\n    to: 'https:'\n"


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    for n in range(5):
        (folder / f"r{n}.yaml").write_text(RULESET.format(name=f"R{n}", host=f"h{n}.test"))
    return folder


def write_rules(folder: Path, hosts: dict[str, str]) -> Path:
    """A rules folder with one trivial ruleset per name -> host."""
    folder.mkdir()
    for name, host in hosts.items():
        (folder / f"{name.lower()}.yaml").write_text(RULESET.format(name=name, host=host))
    return folder


@pytest.fixture
def user(tmp_path: Path) -> Path:
    """A user's folder sharing a host with `rules`, so the order between paths shows."""
    return write_rules(tmp_path / "user", {"Mine": "h1.test", "Other": "u.test"})


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


def test_a_new_path_parses_only_itself(rules: Path, user: Path, tmp_path: Path) -> None:
    load_rules([rules], cache_dir=tmp_path / "cache")
    both = load_rules([user, rules], cache_dir=tmp_path / "cache")
    assert (both.parsed, both.files) == (2, 7)
    assert both.index.records.names == ["Mine", "Other", "R0", "R1", "R2", "R3", "R4"]
    assert load_rules([rules, user], cache_dir=tmp_path / "cache").parsed == 0  # any order, any combination


@pytest.mark.parametrize("order", ["user first", "shipped first"])
def test_the_joined_index_is_the_index_of_all_files(
    rules: Path, user: Path, tmp_path: Path, order: str
) -> None:
    paths = [user, rules] if order == "user first" else [rules, user]
    for path in paths:
        load_rules([path], cache_dir=tmp_path / "cache")
    joined = load_rules(paths, cache_dir=tmp_path / "cache")
    uncached = load_rules(paths)
    assert joined.parsed == 0
    assert joined.index.records == uncached.index.records
    assert joined.index.targets == uncached.index.targets == build_targets(list(uncached.index.records))
    expected = "Mine" if order == "user first" else "R1"
    assert rewrite_url("http://h1.test/", joined.index).ruleset == expected


def test_an_edit_in_one_path_parses_only_that_file(rules: Path, user: Path, tmp_path: Path) -> None:
    load_rules([user, rules], cache_dir=tmp_path / "cache")
    (user / "other.yaml").write_text(RULESET.format(name="Other", host="edited.test"))
    again = load_rules([user, rules], cache_dir=tmp_path / "cache")
    assert again.parsed == 1
    assert rewrite_url("http://edited.test/", again.index).ruleset == "Other"
    assert rewrite_url("http://h3.test/", again.index).ruleset == "R3"


def test_errors_keep_the_order_of_the_paths(rules: Path, user: Path, tmp_path: Path) -> None:
    (rules / "bad.yaml").write_text("name: bad\ntargets: []\n")
    (user / "bad.yaml").write_text("name: bad\ntargets: []\n")
    load_rules([rules], cache_dir=tmp_path / "cache")
    loaded = load_rules([user, rules], cache_dir=tmp_path / "cache")
    assert [e.source for e in loaded.errors] == [str(user / "bad.yaml"), str(rules / "bad.yaml")]


def entries(folder: Path) -> set[str]:
    """The cache entries in a folder, without their suffixes."""
    return {p.stem for p in folder.iterdir()}


def test_the_least_recently_used_paths_are_pruned(
    rules: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "cache"
    paths = [write_rules(tmp_path / f"p{n}", {f"P{n}": f"p{n}.test"}) for n in range(4)]
    stems = []
    for n, path in enumerate(paths):
        load_rules([path], cache_dir=folder)
        stems.append(cache._cache_file(folder, path).name)
        for suffix in (".index", ".files"):  # p0 used four hours ago, p3 one hour ago
            os.utime((folder / stems[-1]).with_suffix(suffix), (time.time() - 3600 * (4 - n),) * 2)
    monkeypatch.setattr(cache, "_KEEP_SOURCES", 3)
    assert load_rules([paths[0]], cache_dir=folder).parsed == 0  # used again: now the newest
    assert entries(folder) == {stems[0], stems[2], stems[3]}
    load_rules([rules, paths[1]], cache_dir=folder)  # what is loaded stays, then the newest
    assert entries(folder) == {stems[0], stems[1], cache._cache_file(folder, rules).name}


def test_the_cache_size_is_bounded(
    rules: Path, user: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "cache"
    load_rules([rules], cache_dir=folder)
    monkeypatch.setattr(cache, "_KEEP_BYTES", 1)
    load_rules([user], cache_dir=folder)  # what is in use is kept, however large
    assert entries(folder) == {cache._cache_file(folder, user).name}


def test_leftovers_are_pruned(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    old, fresh = folder / ".tmp-crashed", folder / ".tmp-writing"
    for leftover in (
        old,
        fresh,
        folder / "rules-0123456789abcdef.index",
        folder / "rules-0123456789abcdef.files",
    ):
        leftover.write_bytes(b"x")
    for leftover in (old, *folder.glob("rules-*")):
        os.utime(leftover, (time.time() - 7200,) * 2)
    for n in range(cache._KEEP_SOURCES):  # the older format's entries go as the bound is reached
        load_rules([write_rules(tmp_path / f"p{n}", {f"P{n}": f"p{n}.test"})], cache_dir=folder)
    assert not old.exists() and fresh.exists()
    assert len(entries(folder) - {fresh.stem}) == cache._KEEP_SOURCES
    assert not any(name.startswith("rules-") for name in entries(folder))
