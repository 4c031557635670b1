"""The seed: a first start takes the compiled part shipped beside a folder, but only for the files it was built from."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from port443.engine import frames, seed
from port443.engine.cache import load_rules, write_seed
from port443.engine.rewrite import rewrite_url
from port443.engine.shipped import shipped_rules_path

RULESET = "name: {name}\ntargets: [{host}]\nrules:\n  - from: '^http://{path}'\n    to: 'https://{path}'\n"


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    for n in range(5):
        host = f"h{n}.test"
        (folder / f"r{n}.yaml").write_text(RULESET.format(name=f"R{n}", host=host, path=host))
    (folder / "broken.yaml").write_text("name: Broken\ntargets: [b.test]\n")  # no rules: invalid
    write_seed(folder)
    return folder


def test_a_first_start_takes_the_seed_whole(rules: Path, tmp_path: Path) -> None:
    seeded = load_rules([rules], cache_dir=tmp_path / "cache")
    parsed = load_rules([rules], cache_dir=None)
    assert seeded.parsed == 0 and parsed.parsed == 6
    assert list(seeded.index.records) == list(parsed.index.records)  # sources made absolute again
    assert seeded.index.records[0][6] == str(rules / "r0.yaml")
    assert [str(e) for e in seeded.errors] == [str(e) for e in parsed.errors]
    assert str(rules / "broken.yaml") in str(seeded.errors[0])
    assert rewrite_url("http://h3.test/", seeded.index).url == "https://h3.test/"


def test_the_seed_fills_the_cache_so_the_next_start_needs_it_no_more(rules: Path, tmp_path: Path) -> None:
    load_rules([rules], cache_dir=tmp_path / "cache")
    seed.seed_path(rules).unlink()
    again = load_rules([rules], cache_dir=tmp_path / "cache")
    assert again.parsed == 0
    assert rewrite_url("http://h1.test/", again.index).url == "https://h1.test/"


_PARSER_MODULES = ("yaml", "concurrent.futures", "multiprocessing")
_LOAD_AND_LIST_MODULES = """
import sys
from pathlib import Path
from port443.engine.cache import load_rules
from port443.engine.rewrite import rewrite_url
loaded = load_rules([Path(sys.argv[1])], cache_dir=Path(sys.argv[2]))
assert rewrite_url("http://h1.test/", loaded.index).url == "https://h1.test/"
print(loaded.parsed, *sorted(m for m in sys.modules if m.partition(".")[0] in ("yaml", "concurrent", "multiprocessing")))
"""


def _parser_modules_loaded(rules: Path, cache: Path) -> tuple[int, set[str]]:
    """(files parsed, parser modules imported) of a new interpreter that loads `rules` and rewrites a URL."""
    out = subprocess.run(
        [sys.executable, "-c", _LOAD_AND_LIST_MODULES, str(rules), str(cache)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    return int(out[0]), {m for m in out[1:] if m in _PARSER_MODULES}


def test_a_start_that_parses_nothing_loads_no_parser(rules: Path, tmp_path: Path) -> None:
    """PyYAML and the process pool are several MiB a proxy keeps for good once imported."""
    assert _parser_modules_loaded(rules, tmp_path / "cache") == (0, set())  # from the seed
    assert _parser_modules_loaded(rules, tmp_path / "cache") == (0, set())  # from the cache it filled
    (rules / "r2.yaml").write_text(RULESET.format(name="R2", host="h2.test", path="h2.test/x"))
    parsed, modules = _parser_modules_loaded(rules, tmp_path / "cache")
    assert parsed == 1 and "yaml" in modules  # the control: parsing one changed file does load it


def test_files_that_differ_from_the_seed_are_parsed_and_no_others(rules: Path, tmp_path: Path) -> None:
    (rules / "r2.yaml").write_text(RULESET.format(name="R2", host="changed.test", path="changed.test"))
    (rules / "new.yaml").write_text(RULESET.format(name="New", host="new.test", path="new.test"))
    (rules / "r4.yaml").unlink()
    loaded = load_rules([rules], cache_dir=tmp_path / "cache")
    assert loaded.parsed == 2
    assert rewrite_url("http://changed.test/", loaded.index).ruleset == "R2"
    assert rewrite_url("http://h2.test/", loaded.index).url is None
    assert rewrite_url("http://new.test/", loaded.index).url == "https://new.test/"
    assert rewrite_url("http://h4.test/", loaded.index).url is None
    assert rewrite_url("http://h0.test/", loaded.index).url == "https://h0.test/"


def test_a_moved_folder_keeps_its_seed_with_its_paths(rules: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / "corpus"
    shutil.copytree(rules, moved)
    shutil.copy(seed.seed_path(rules), seed.seed_path(moved))
    loaded = load_rules([moved], cache_dir=tmp_path / "cache")
    assert loaded.parsed == 0
    assert {r[6] for r in loaded.index.records} == {str(moved / f"r{n}.yaml") for n in range(5)}


@pytest.mark.parametrize("damage", ["truncated", "foreign key", "not marshal"])
def test_a_damaged_or_foreign_seed_is_never_trusted(rules: Path, tmp_path: Path, damage: str) -> None:
    path = seed.seed_path(rules)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "foreign key":
        with open(path, "rb") as file:
            foreign = {**frames.load(file), "key": "0/0.0.0/0"}
        with open(path, "wb") as file:
            frames.dump(foreign, file)
    else:
        path.write_bytes(b"\x00garbage")
    loaded = load_rules([rules], cache_dir=tmp_path / "cache")
    assert loaded.parsed == 6
    assert rewrite_url("http://h3.test/", loaded.index).url == "https://h3.test/"


def test_without_a_cache_the_files_are_always_parsed(rules: Path) -> None:
    assert load_rules([rules], cache_dir=None).parsed == 6  # `rules validate` reads what is on disk


def test_an_installed_seed_is_readable_by_everyone(rules: Path) -> None:
    assert os.stat(seed.seed_path(rules)).st_mode & 0o444 == 0o444


@pytest.mark.slow
def test_the_shipped_seed_is_the_shipped_yaml_compiled(tmp_path: Path) -> None:
    """The build writes the seed from rules/; a stale one (rules edited since) would be caught here."""
    shipped = seed.seed_path(shipped_rules_path())
    if not shipped.exists():
        assert os.environ.get("CI") != "true", "the install did not build the shipped seed"
        pytest.skip("NOTICE: no shipped seed: reinstall (pip install -e .) to build it")
    fresh = write_seed(shipped_rules_path(), out=tmp_path / "fresh.compiled")
    with open(fresh, "rb") as new, open(shipped, "rb") as built:
        assert frames.load(new) == frames.load(built)
