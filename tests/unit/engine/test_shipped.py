"""The shipped HTTPS Everywhere corpus is found on disk, complete with its licence."""

from __future__ import annotations

from pathlib import Path

from port443.engine.shipped import CORPUS_DIR, shipped_rules_path
from tests.conftest import REPO


def test_shipped_rules_path_is_the_corpus_folder() -> None:
    path = shipped_rules_path()
    assert isinstance(path, Path)
    assert path.is_dir()
    assert path.name == CORPUS_DIR
    assert (
        path.resolve() == (REPO / "rules" / CORPUS_DIR).resolve()
    )  # editable install: the checkout's rules/


def test_the_corpus_is_complete() -> None:
    path = shipped_rules_path()
    rulesets = [entry for entry in path.iterdir() if entry.suffix == ".yaml" and entry.is_file()]
    assert len(rulesets) > 20_000
    licence = path / "LICENSE"
    assert licence.is_file()
    assert "GNU General Public License, version 2 or (at your option) any later version" in licence.read_text(
        encoding="utf-8"
    )
