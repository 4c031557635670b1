"""Notice when ruleset files change, by size and mtime (cheap enough to poll every second for user rules)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from port443.engine.ruleset import ruleset_files
from port443.errors import RulesetError


class FileWatcher:
    """Polls a list of ruleset files and folders; `changed()` is true once per change."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = list(paths)
        self._last = self._snapshot()

    def _snapshot(self) -> frozenset[tuple[str, int, int]]:
        try:
            files = ruleset_files(self.paths)
        except RulesetError:
            return frozenset()
        out = set()
        for path in files:
            try:
                st = os.stat(path)
            except OSError:
                continue
            out.add((path, st.st_size, st.st_mtime_ns))
        return frozenset(out)

    def changed(self) -> bool:
        """Whether any file was added, removed or modified since the last call."""
        now = self._snapshot()
        if now == self._last:
            return False
        self._last = now
        return True
