"""The seed: a rules folder's index part compiled ahead of time, shipped beside the folder.

Without it, the first start of a fresh install parses the 23k YAML files of the shipped corpus (5 s on two
idle cores, 30 s on one busy one) before it can serve. The build compiles `rules/https-everywhere` into
`https-everywhere.compiled` beside it; a start that finds no cache entry for the folder checks the seed against
the files' contents (one digest per file, a fraction of a second) and takes its part whole. When some files
differ (an edited checkout), the seed stands in for the cache's manifest, so only those files are parsed.

Paths inside are relative to the folder, so a seed is valid wherever the package is installed; they are made
absolute again when it is read. A seed of another port443 version or cache format is ignored, never trusted.
"""

from __future__ import annotations

import marshal
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from port443.engine import frames
from port443.engine.compile import Found, Progress, assemble, digest_file, parse_files
from port443.engine.ruleset import ruleset_files

SUFFIX = ".compiled"
_NO_STAT = (-1, -1)  # a seed's files were never stat'ed here: the cache compares their digests instead


def seed_path(folder: str | os.PathLike[str]) -> Path:
    """Where a folder's seed lives: beside it, named after it."""
    path = Path(folder)
    return path.with_name(path.name + SUFFIX)


def write(
    folder: str | os.PathLike[str], key: str, progress: Progress | None = None, *, out: Path | None = None
) -> Path:
    """Compile every ruleset under `folder` into its seed (or `out`), marked with `key` (the cache's format)."""
    root = _root(folder)
    files = ruleset_files([folder])
    parsed = parse_files(files, progress)
    manifest, part = assemble(files, [_NO_STAT] * len(files), parsed, b"")
    part = _rebase_part(part, root, "")
    data = {
        "key": key,
        "files": [f[len(root) :] for f in files],
        "digests": manifest["digests"],
        "valid": [blob is not None for blob in manifest["records"]],
        "part": {k: v for k, v in part.items() if k != "signature"},
    }
    out = out or seed_path(folder)
    with tempfile.NamedTemporaryFile(dir=out.parent, prefix=".tmp-", delete=False) as tmp:
        frames.dump(data, tmp)
    os.chmod(tmp.name, 0o644)  # read by every user of an installed package, not only by who built it
    os.replace(tmp.name, out)
    return out


@dataclass(frozen=True, slots=True)
class Seed:
    """A folder's seed, read and rebased onto where the folder is now."""

    files: list[str]
    digests: list[bytes]
    valid: list[bool]
    part: dict[str, Any]

    def fits(self, files: list[str]) -> bool:
        """Whether the folder holds exactly the seed's files, each with the content the seed was built from."""
        return files == self.files and all(
            digest_file(f) == d for f, d in zip(files, self.digests, strict=True)
        )

    def index_part(self, signature: bytes) -> dict[str, Any]:
        """The seed's part as the cache keeps it, signed for the files as they are."""
        return {**self.part, "signature": signature}

    def manifest(self, stats: list[tuple[int, int]] | None = None) -> dict[str, Any]:
        """The cache's per-file manifest; without `stats`, one that makes the cache check every file's digest."""
        blobs = iter(self.part["blobs"])
        return {
            "files": self.files,
            "stats": stats or [_NO_STAT] * len(self.files),
            "digests": self.digests,
            "records": [next(blobs) if ok else None for ok in self.valid],
            "problems": self.part["problems"],
            "warnings": self.part["warnings"],
        }


def read(folder: str | os.PathLike[str], key: str) -> Seed | None:
    """The folder's seed, or None when there is none, or it is damaged, foreign or of another `key`."""
    try:
        with open(seed_path(folder), "rb") as file:
            data = frames.load(file)
    except (OSError, ValueError):
        return None
    if data.get("key") != key:
        return None
    root = _root(folder)
    try:
        return Seed(
            [root + rel for rel in data["files"]],
            data["digests"],
            data["valid"],
            _rebase_part(data["part"], "", root),
        )
    except (KeyError, TypeError, ValueError, IndexError, EOFError):
        return None


def _root(folder: str | os.PathLike[str]) -> str:
    """The prefix `ruleset_files` puts before a file's path relative to `folder`."""
    return os.path.join(os.fspath(folder), "")


def _rebase_part(part: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """The part with every file path under `old` moved under `new`: the records' sources and the problems'."""
    blobs = []
    for blob in part["blobs"]:
        record = marshal.loads(blob)
        blobs.append(marshal.dumps((*record[:6], _moved(record[6], old, new), *record[7:])))
    return {
        **part,
        "blobs": blobs,
        "problems": _rebase_found(part["problems"], old, new),
        "warnings": _rebase_found(part["warnings"], old, new),
    }


def _rebase_found(found: dict[int, Found], old: str, new: str) -> dict[int, Found]:
    return {i: tuple((_moved(q[0], old, new), q[1], q[2], q[3]) for q in qs) for i, qs in found.items()}


def _moved(path: str, old: str, new: str) -> str:
    return new + path[len(old) :] if path.startswith(old) else path
