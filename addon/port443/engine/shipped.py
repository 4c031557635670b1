"""Where the shipped rulesets are, whether port443 runs from a checkout or from an installed wheel."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: The folder (inside the shipped rules) holding the converted HTTPS Everywhere corpus.
CORPUS_DIR = "https-everywhere"


def shipped_rules_path() -> Path:
    """Return the directory of the rulesets port443 ships (the HTTPS Everywhere corpus, converted).

    `rules/` is installed as the data-only package `port443_rules`; an editable install maps it back to the
    checkout's `rules/`, so both cases resolve to a real directory on disk.
    """
    root = resources.files("port443_rules")
    return Path(str(root)) / CORPUS_DIR
