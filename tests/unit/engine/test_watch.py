"""FileWatcher: a change to the watched ruleset files is reported once, and nothing else is."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from port443.engine.watch import FileWatcher

RULESET = "name: {name}\ntargets: [{name}.test]\nrules:\n  - from: '^http:'\n    to: 'https:'\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    (rules / "sub").mkdir(parents=True)
    (rules / "a.yaml").write_text(RULESET.format(name="a"))
    (rules / "sub" / "b.yml").write_text(RULESET.format(name="b"))
    return rules


def set_mtime(path: Path, ns: int) -> None:
    os.utime(path, ns=(ns, ns))


def test_no_change(folder: Path) -> None:
    watcher = FileWatcher([str(folder)])
    assert watcher.changed() is False
    assert watcher.changed() is False


@pytest.mark.parametrize(
    "change",
    [
        "edit",
        "edit-same-size",
        "touch",
        "add",
        "add-in-subfolder",
        "delete",
        "delete-folder",
    ],
)
def test_a_change_is_reported_once(folder: Path, change: str) -> None:
    target = folder / "a.yaml"
    set_mtime(target, 1_000_000_000_000_000_000)
    watcher = FileWatcher([str(folder)])
    if change == "edit":
        target.write_text(RULESET.format(name="a-longer"))
    elif change == "edit-same-size":
        target.write_text(RULESET.format(name="z"))
        set_mtime(target, 1_000_000_000_000_000_000)  # same size and mtime as before: not noticed
        assert watcher.changed() is False
        set_mtime(target, 1_000_000_000_000_000_001)
    elif change == "touch":
        set_mtime(target, 1_000_000_000_000_000_001)
    elif change == "add":
        (folder / "c.yaml").write_text(RULESET.format(name="c"))
    elif change == "add-in-subfolder":
        (folder / "sub" / "deeper").mkdir()
        (folder / "sub" / "deeper" / "d.yaml").write_text(RULESET.format(name="d"))
    elif change == "delete":
        target.unlink()
    elif change == "delete-folder":
        shutil.rmtree(folder)
    assert watcher.changed() is True
    assert watcher.changed() is False


@pytest.mark.parametrize(
    "name", ["notes.txt", ".hidden.yaml", "README.md", ".git/x.yaml", "__pycache__/y.yaml"]
)
def test_files_that_are_not_rulesets_are_ignored(folder: Path, name: str) -> None:
    watcher = FileWatcher([str(folder)])
    (folder / name).parent.mkdir(exist_ok=True)
    (folder / name).write_text("whatever")
    assert watcher.changed() is False


def test_a_single_file(folder: Path) -> None:
    target = folder / "a.yaml"
    watcher = FileWatcher([str(target)])
    (folder / "other.yaml").write_text(RULESET.format(name="other"))  # not watched
    assert watcher.changed() is False
    target.write_text(RULESET.format(name="changed"))
    assert watcher.changed() is True
    assert watcher.changed() is False


def test_a_path_that_appears_later(tmp_path: Path) -> None:
    missing = tmp_path / "later"
    watcher = FileWatcher([str(missing)])
    assert watcher.changed() is False
    missing.mkdir()
    assert watcher.changed() is False  # an empty folder holds no rulesets
    (missing / "x.yaml").write_text(RULESET.format(name="x"))
    assert watcher.changed() is True
    assert watcher.changed() is False


def test_several_paths(folder: Path, tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text(RULESET.format(name="extra"))
    watcher = FileWatcher([str(extra), str(folder)])
    assert watcher.paths == [str(extra), str(folder)]
    extra.unlink()
    assert watcher.changed() is True
    assert watcher.changed() is False


def test_no_paths() -> None:
    watcher = FileWatcher([])
    assert watcher.changed() is False
