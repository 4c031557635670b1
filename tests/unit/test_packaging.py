"""The wheel keeps every subpackage: each folder of the package is listed in pyproject's `packages`.

setuptools' `packages.find` cannot also map `rules/` to `port443_rules`, so the list is explicit; this keeps
a new subsystem folder from being left out of the wheel.
"""

from __future__ import annotations

import tomllib

from tests.conftest import REPO


def test_every_subpackage_is_in_the_wheel() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    root = REPO / "addon"
    folders = {
        ".".join(init.parent.relative_to(root).parts) for init in (root / "port443").rglob("__init__.py")
    }
    assert folders <= listed, f"add to [tool.setuptools] packages: {sorted(folders - listed)}"
    assert "port443_rules" in listed
