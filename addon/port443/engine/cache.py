"""The compiled rules cache: a RuleIndex ready in a fraction of the time parsing 23k YAML files takes.

Each rules path (a user's file or folder, the shipped corpus) is compiled and cached on its own, so a new or
edited user path never recompiles the shipped corpus; the index is then joined from the parts in path order.
Within a path, like git's index, a file whose size and mtime are unchanged is trusted without being read;
any other file is hashed, and only files whose content changed are parsed again. Entries are marshal frames
written atomically (a damaged or foreign one is simply rebuilt), and the least recently used are pruned.
A path with no entry yet may have a seed beside it, compiled by the build (engine/seed.py): it stands in for
the entry once the files' digests confirm it, so a fresh install's first start parses nothing.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from port443 import __version__
from port443.engine import frames, seed
from port443.engine.compile import Found, Parsed, Progress, assemble, digest_file, parse_files
from port443.engine.index import Activation, RecordTable, RuleIndex, TargetMap
from port443.engine.ruleset import ruleset_files
from port443.errors import Problem, RulesetError

_FORMAT = 5  # 4: records carry the facts of their patterns; 5: one entry per rules path
# The bound of the cache directory: the entries of the paths just loaded are always kept, then the most
# recently used ones while there are at most _KEEP_SOURCES and they take at most _KEEP_BYTES (the shipped
# corpus takes about 20 MB, a release's worth; a user's rules folder usually far less).
_KEEP_SOURCES = 8
_KEEP_BYTES = 128 << 20
_STALE_TEMP = 3600.0  # seconds after which a temporary file is a leftover of a crashed write


@dataclass(frozen=True, slots=True)
class LoadedRules:
    """A ready index plus how it was obtained, for the user and the logs."""

    index: RuleIndex
    errors: tuple[RulesetError, ...]
    warnings: tuple[Problem, ...]
    """What is valid but risky (nested quantifiers), each as file:line: field: message; `rules validate` shows them."""
    files: int
    parsed: int
    """How many files had to be parsed from YAML (0 when the cache was fully valid)."""
    seconds: float


def default_cache_dir() -> Path:
    """The per-user cache directory (XDG on Linux)."""
    return Path(platformdirs.user_cache_dir("port443"))


def load_index(
    paths: Sequence[str | os.PathLike[str]],
    *,
    cache_dir: Path | None = None,
    activation: Activation | None = None,
) -> RuleIndex:
    """Load rules into an index, through the cache in `cache_dir` (None: no cache)."""
    return load_rules(paths, cache_dir=cache_dir, activation=activation).index


def load_rules(
    paths: Sequence[str | os.PathLike[str]],
    *,
    cache_dir: Path | None = None,
    activation: Activation | None = None,
    progress: Progress | None = None,
) -> LoadedRules:
    """Load every ruleset under `paths` (in order), reusing what the cache holds for unchanged files.

    Invalid files are skipped and reported in `errors`; they never stop the rest from loading.

    Raises:
        RulesetError: when one of `paths` does not exist.
    """
    started = time.perf_counter()
    sources = [_open_source(path, cache_dir) for path in paths]
    # The files to parse, of every stale path at once: one progress count, one pool of workers.
    todo = [(source, i) for source in sources for i in source.todo]
    for (source, i), parsed in zip(todo, parse_files([s.files[i] for s, i in todo], progress), strict=True):
        source.settle(i, parsed)
    parts = [source.finish() for source in sources]
    if cache_dir is not None:
        _prune(cache_dir, {source.base.name for source in sources if source.base is not None})
    index, errors, warnings = _join(parts, activation)
    files = sum(len(source.files) for source in sources)
    return LoadedRules(index, errors, warnings, files, len(todo), time.perf_counter() - started)


class _Source:
    """One rules path on its way through the cache: its valid entry, or what must be parsed to refresh it."""

    def __init__(
        self, files: list[str], base: Path | None, signature: bytes, part: dict[str, Any] | None
    ) -> None:
        self.files = files
        self.base = base
        self.signature = signature
        self.part = part
        self.stats: list[tuple[int, int]] = []
        self.results: list[Parsed | None] = []
        self.todo: list[int] = []
        self.old: dict[str, tuple[tuple[int, int], Parsed]] = {}
        self.unsaved: dict[str, Any] | None = None
        """A manifest taken from the seed, for an entry that must still be written."""

    def settle(self, i: int, parsed: Parsed) -> None:
        """Take file `i`'s fresh parse."""
        prior = self.old.get(self.files[i])
        if parsed[1] is None and prior is not None and prior[1][1] is not None:
            # A broken edit: report it, but keep serving the file's last good version.
            parsed = (parsed[0], prior[1][1], parsed[2], prior[1][3])
        self.results[i] = parsed

    def finish(self) -> dict[str, Any]:
        """The path's index part, assembled and cached when it was stale."""
        if self.part is None:
            parsed = [r for r in self.results if r is not None]
            self.unsaved, self.part = assemble(self.files, self.stats, parsed, self.signature)
        if self.unsaved is not None and self.base is not None:
            _write_cache(self.base.with_suffix(".files"), self.unsaved)
            _write_cache(self.base.with_suffix(".index"), self.part)
        self.unsaved = None
        return self.part


def _open_source(path: str | os.PathLike[str], cache_dir: Path | None) -> _Source:
    """Find one rules path's files and its cache entry; plan the refresh when the entry is stale."""
    files = ruleset_files([path])
    base = _cache_file(cache_dir, path) if cache_dir is not None else None
    signature = _signature(files)
    part = _read_cache(base.with_suffix(".index")) if base is not None else None
    if part is not None and part["signature"] == signature:
        _touch(base)
        return _Source(files, base, signature, part)
    source = _Source(files, base, signature, None)
    source.stats = [_stat(f) for f in files]
    # Only now is the per-file manifest needed: which files changed, and what they held.
    manifest = _read_cache(base.with_suffix(".files")) if base is not None else None
    if manifest is None and base is not None:  # no entry yet: the seed shipped beside a folder stands in
        planted = seed.read(path, _seed_key())
        if planted is not None and planted.fits(files):
            source.part, source.unsaved = planted.index_part(signature), planted.manifest(source.stats)
            return source
        manifest = planted.manifest() if planted is not None else None
    source.results, source.todo, source.old = _reuse(files, source.stats, manifest)
    return source


def write_seed(
    folder: str | os.PathLike[str], progress: Progress | None = None, *, out: Path | None = None
) -> Path:
    """Compile `folder` into the seed that ships beside it (the build runs this for the shipped corpus)."""
    return seed.write(folder, _seed_key(), progress, out=out)


def _seed_key() -> str:
    """What a seed must have been built by to be used: this cache format, port443 version and marshal format."""
    return f"{_FORMAT}/{__version__}/{marshal.version}"


def _join(
    parts: list[dict[str, Any]], activation: Activation | None
) -> tuple[RuleIndex, tuple[RulesetError, ...], tuple[Problem, ...]]:
    """One index over the paths' parts, in order: ids and targets as if all files had been indexed together."""
    blobs: list[bytes] = []
    names: list[str] = []
    states: dict[int, tuple[str, str]] = {}
    single = len(parts) == 1  # the usual case: its map as it is (a copy of 160k targets peaks 5 MiB higher)
    targets: TargetMap = parts[0]["targets"] if single else {}
    errors: list[RulesetError] = []
    warnings: list[Problem] = []
    for part in parts:
        offset = len(blobs)
        blobs.extend(part["blobs"])
        names.extend(part["names"])
        states.update((i + offset, state) for i, state in part["states"].items())
        if not single:
            _merge_targets(targets, part["targets"], offset)
        problems: dict[int, Found] = part["problems"]
        errors.extend(RulesetError([Problem(*q) for q in problems[i]]) for i in sorted(problems))
        found: dict[int, Found] = part["warnings"]
        warnings.extend(Problem(*q) for i in sorted(found) for q in found[i])
    index = RuleIndex(targets, RecordTable(blobs, names, states), activation)
    return index, tuple(errors), tuple(warnings)


def _merge_targets(into: TargetMap, part: TargetMap, offset: int) -> None:
    """Add a later path's target map: its ids move past the earlier paths' ones and follow them."""
    if not into and offset == 0:  # the first path: its ids are already right
        into.update(part)
        return
    # Inlined rather than a helper per key: the shipped corpus has about 160k targets.
    for key, ids in part.items():
        moved = ids + offset if isinstance(ids, int) else tuple(i + offset for i in ids)
        have = into.get(key)
        if have is None:
            into[key] = moved
        else:
            before = (have,) if isinstance(have, int) else have
            into[key] = (*before, *((moved,) if isinstance(moved, int) else moved))


def _signature(files: list[str]) -> bytes:
    """A digest of every file's path, size and mtime: equal signatures mean nothing needs reading."""
    h = hashlib.blake2b(digest_size=16)
    for path in files:
        size, mtime = _stat(path)
        h.update(f"{path}\0{size}\0{mtime}\n".encode())
    return h.digest()


def _stat(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def _reuse(
    files: list[str], stats: list[tuple[int, int]], manifest: dict[str, Any] | None
) -> tuple[list[Parsed | None], list[int], dict[str, tuple[tuple[int, int], Parsed]]]:
    """Reuse cached results for files whose stat or content is unchanged; list the others to parse.

    Returns the results so far (None for a file to parse), the indexes to parse, and the old results by path.
    """
    old: dict[str, tuple[tuple[int, int], Parsed]] = {}
    if manifest is not None:
        problems, warnings = manifest["problems"], manifest["warnings"]
        for i, (path, stat, digest, blob) in enumerate(
            zip(manifest["files"], manifest["stats"], manifest["digests"], manifest["records"], strict=True)
        ):
            record = None if blob is None else marshal.loads(blob)
            old[path] = (stat, (digest, record, problems.get(i, ()), warnings.get(i, ())))
    results: list[Parsed | None] = [None] * len(files)
    todo: list[int] = []
    for i, (path, stat) in enumerate(zip(files, stats, strict=True)):
        prior = old.get(path)
        if prior is not None and prior[0] == stat:
            results[i] = prior[1]
        elif prior is not None and digest_file(path) == prior[1][0]:
            results[i] = prior[1]  # touched, not changed (a fresh checkout, say)
        else:
            todo.append(i)
    return results, todo, old


def _cache_file(cache_dir: Path, path: str | os.PathLike[str]) -> Path:
    """One entry per rules path (as spelled and as resolved), port443 version and Python (marshal's format varies)."""
    key = "\0".join([__version__, sys.version, os.fspath(path), os.path.abspath(path)])
    return cache_dir / f"source-{hashlib.blake2b(key.encode(), digest_size=8).hexdigest()}"


def _touch(base: Path | None) -> None:
    """Mark an entry as just used, for pruning."""
    if base is not None:
        try:
            os.utime(base.with_suffix(".index"))
        except OSError:
            pass


def _prune(cache_dir: Path, keep: set[str]) -> None:
    """Remove the least recently used entries beyond the bound (_KEEP_SOURCES, _KEEP_BYTES); `keep` stays.

    Entries of older formats (`rules-*`, one per combination of paths) are pruned the same way.
    """
    entries: dict[str, list[tuple[Path, os.stat_result]]] = {}
    now = time.time()
    try:
        for entry in os.scandir(cache_dir):
            path, stat = Path(entry.path), entry.stat(follow_symlinks=False)
            if entry.name.startswith(".tmp-") and now - stat.st_mtime > _STALE_TEMP:
                path.unlink(missing_ok=True)
            elif entry.name.startswith(("source-", "rules-")) and path.suffix in (".index", ".files"):
                entries.setdefault(path.stem, []).append((path, stat))
    except OSError:
        return
    newest_first = sorted(entries, key=lambda stem: -max(s.st_mtime for _p, s in entries[stem]))
    kept, size = 0, 0
    for stem in sorted(newest_first, key=lambda stem: stem not in keep):  # stable: the kept ones first
        grows = sum(s.st_size for _p, s in entries[stem])
        if stem in keep or (kept < _KEEP_SOURCES and size + grows <= _KEEP_BYTES):
            kept, size = kept + 1, size + grows
            continue
        for path, _stat in entries[stem]:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass


def _read_cache(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as file:
            data = frames.load(file)
    except (OSError, ValueError):
        return None
    if data.get("format") != _FORMAT:
        return None
    return data


def _write_cache(path: Path, data: dict[str, Any]) -> None:
    """Write atomically; a cache that cannot be written only costs speed next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as tmp:
            frames.dump({"format": _FORMAT, **data}, tmp)
        os.replace(tmp.name, path)
    except OSError:
        pass
