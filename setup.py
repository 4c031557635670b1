"""The build step pyproject.toml cannot express: compiling the shipped corpus into its seed.

A fresh install then serves within a second instead of parsing 23k YAML files first (port443/engine/seed.py).
The seed is built from the very rules/ being packaged, so the two cannot drift; an editable install writes it
beside rules/https-everywhere in the checkout (it is ignored by git), a wheel carries it in port443_rules.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

_HERE = Path(__file__).resolve().parent
_CORPUS = "https-everywhere"


class BuildWithSeed(build_py):
    """build_py, then the shipped corpus's seed."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            folder = _HERE / "rules" / _CORPUS
        else:
            folder = Path(self.build_lib) / "port443_rules" / _CORPUS
        self.announce(f"compiling the shipped rules into a seed beside {folder}", level=2)
        source = str(_HERE / "addon")
        sys.path.insert(0, source)  # the package being built, not an installed one; its workers inherit it
        try:
            from port443.engine.cache import write_seed

            write_seed(os.fspath(folder))
        finally:
            sys.path.remove(source)


setup(cmdclass={"build_py": BuildWithSeed})
