"""The wheel carries the shipped corpus compiled (its seed), built from the very rules it packages.

Built from a copy of the checkout, as `pip wheel` builds it for a user, so that nothing of the checkout's own
editable install (its seed beside rules/) can stand in for what the build must produce.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from port443.engine import cache, frames
from tests.conftest import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
_LEFT_OUT = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.compiled", ".*cache"
)


def test_the_wheel_ships_the_seed_of_its_rules(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=_LEFT_OUT)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "out"), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "out").glob("port443-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        shipped = frames.load(io.BytesIO(archive.read("port443_rules/https-everywhere.compiled")))
    assert shipped["key"] == cache._seed_key()
    yaml = {n.removeprefix("port443_rules/https-everywhere/") for n in names if n.endswith(".yaml")}
    assert set(shipped["files"]) == yaml and len(yaml) > 20_000
    assert all(shipped["valid"])  # every shipped ruleset compiles
