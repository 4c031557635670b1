"""The compiled rules cache: a RuleIndex ready in a fraction of the time parsing 23k YAML files takes.

Each rules path (a user's file or folder, the shipped corpus) is compiled and cached on its own, so a new or
edited user path never recompiles the shipped corpus; the index is then joined from the parts in path order.
Within a path, like git's index, a file whose size and mtime are unchanged is trusted without being read;
any other file is hashed, and only files whose content changed are parsed again. Entries are marshal blobs
written atomically (a damaged or foreign one is simply rebuilt), and the least recently used are pruned.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from port443 import __version__
from port443.engine.index import (
    Activation,
    Record,
    RecordTable,
    RuleIndex,
    TargetMap,
    build_targets,
    record_of,
)
from port443.engine.ruleset import MAX_FILE_SIZE, oversized, parse_ruleset_warnings, ruleset_files
from port443.errors import Problem, RulesetError

_FORMAT = 5  # 4: records carry the facts of their patterns; 5: one entry per rules path
# The bound of the cache directory: the entries of the paths just loaded are always kept, then the most
# recently used ones while there are at most _KEEP_SOURCES and they take at most _KEEP_BYTES (the shipped
# corpus takes about 20 MB, a release's worth; a user's rules folder usually far less).
_KEEP_SOURCES = 8
_KEEP_BYTES = 128 << 20
_STALE_TEMP = 3600.0  # seconds after which a temporary file is a leftover of a crashed write
_PARALLEL_FROM = 2000  # below this many files to parse, worker start-up costs more than it saves
_CHUNK = 250

Progress = Callable[[int, int], None]
_Found = tuple[
    tuple[str, int | None, str, str], ...
]  # Problems as plain tuples, to cross processes and marshal
# Per file: content digest, then the record, or the problems when the file is invalid; then the warnings.
_Parsed = tuple[bytes, Record | None, _Found, _Found]


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
    for (source, i), parsed in zip(todo, _parse_files([s.files[i] for s, i in todo], progress), strict=True):
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
        self.results: list[_Parsed | None] = []
        self.todo: list[int] = []
        self.old: dict[str, tuple[tuple[int, int], _Parsed]] = {}

    def settle(self, i: int, parsed: _Parsed) -> None:
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
            manifest, self.part = _assemble(self.files, self.stats, parsed, self.signature)
            if self.base is not None:
                _write_cache(self.base.with_suffix(".files"), manifest)
                _write_cache(self.base.with_suffix(".index"), self.part)
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
    # Only now is the per-file manifest needed: which files changed, and what they held.
    manifest = _read_cache(base.with_suffix(".files")) if base is not None else None
    source.stats = [_stat(f) for f in files]
    source.results, source.todo, source.old = _reuse(files, source.stats, manifest)
    return source


def _join(
    parts: list[dict[str, Any]], activation: Activation | None
) -> tuple[RuleIndex, tuple[RulesetError, ...], tuple[Problem, ...]]:
    """One index over the paths' parts, in order: ids and targets as if all files had been indexed together."""
    blobs: list[bytes] = []
    names: list[str] = []
    states: dict[int, tuple[str, str]] = {}
    targets: TargetMap = {}
    errors: list[RulesetError] = []
    warnings: list[Problem] = []
    for part in parts:
        offset = len(blobs)
        blobs.extend(part["blobs"])
        names.extend(part["names"])
        states.update((i + offset, state) for i, state in part["states"].items())
        _merge_targets(targets, part["targets"], offset)
        problems: dict[int, _Found] = part["problems"]
        errors.extend(RulesetError([Problem(*q) for q in problems[i]]) for i in sorted(problems))
        found: dict[int, _Found] = part["warnings"]
        warnings.extend(Problem(*q) for i in sorted(found) for q in found[i])
    index = RuleIndex(targets, RecordTable(blobs, names, states), activation)
    return index, tuple(errors), tuple(warnings)


def _merge_targets(into: TargetMap, part: TargetMap, offset: int) -> None:
    """Add a later path's target map: its ids move past the earlier paths' ones and follow them."""
    if not into and offset == 0:  # the first path (often the only one): its ids are already right
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


def _assemble(
    files: list[str], stats: list[tuple[int, int]], parsed: list[_Parsed], signature: bytes
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cache's two parts: the per-file manifest (for refreshing) and the index (for loading fast)."""
    records = [p[1] for p in parsed if p[1] is not None]
    table = RecordTable.from_records(records)
    problems = {i: p[2] for i, p in enumerate(parsed) if p[2]}
    warnings = {i: p[3] for i, p in enumerate(parsed) if p[3]}
    manifest = {
        "files": files,
        "stats": stats,
        "digests": [p[0] for p in parsed],
        "records": [None if p[1] is None else blob for p, blob in _pair(parsed, table.blobs)],
        "problems": problems,
        "warnings": warnings,
    }
    index = {
        "signature": signature,
        "problems": problems,
        "warnings": warnings,
        "blobs": table.blobs,
        "names": table.names,
        "states": table.states,
        "targets": build_targets(records),
    }
    return manifest, index


def _pair(parsed: list[_Parsed], blobs: list[bytes]) -> Iterator[tuple[_Parsed, bytes | None]]:
    """Pair each file with its record's blob (None for invalid files)."""
    it = iter(blobs)
    for p in parsed:
        yield p, (next(it) if p[1] is not None else None)


def _stat(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def _reuse(
    files: list[str], stats: list[tuple[int, int]], manifest: dict[str, Any] | None
) -> tuple[list[_Parsed | None], list[int], dict[str, tuple[tuple[int, int], _Parsed]]]:
    """Reuse cached results for files whose stat or content is unchanged; list the others to parse.

    Returns the results so far (None for a file to parse), the indexes to parse, and the old results by path.
    """
    old: dict[str, tuple[tuple[int, int], _Parsed]] = {}
    if manifest is not None:
        problems, warnings = manifest["problems"], manifest["warnings"]
        for i, (path, stat, digest, blob) in enumerate(
            zip(manifest["files"], manifest["stats"], manifest["digests"], manifest["records"], strict=True)
        ):
            record = None if blob is None else marshal.loads(blob)
            old[path] = (stat, (digest, record, problems.get(i, ()), warnings.get(i, ())))
    results: list[_Parsed | None] = [None] * len(files)
    todo: list[int] = []
    for i, (path, stat) in enumerate(zip(files, stats, strict=True)):
        prior = old.get(path)
        if prior is not None and prior[0] == stat:
            results[i] = prior[1]
        elif prior is not None and _digest_file(path) == prior[1][0]:
            results[i] = prior[1]  # touched, not changed (a fresh checkout, say)
        else:
            todo.append(i)
    return results, todo, old


def _parse_files(paths: list[str], progress: Progress | None) -> list[_Parsed]:
    """Parse files, on every core when there are many (a cold build of the full corpus)."""
    done: list[_Parsed] = []
    if len(paths) < _PARALLEL_FROM or (os.cpu_count() or 1) < 2:
        for path in paths:
            done.append(parse_file(path))
            if progress is not None and len(done) % _CHUNK == 0:
                progress(len(done), len(paths))
    else:
        chunks = [paths[i : i + _CHUNK] for i in range(0, len(paths), _CHUNK)]
        # spawn, not fork: the caller may be a running proxy with threads, which fork does not copy safely.
        import multiprocessing

        with ProcessPoolExecutor(mp_context=multiprocessing.get_context("spawn")) as pool:
            for chunk in pool.map(parse_chunk, chunks):
                done.extend(chunk)
                if progress is not None:
                    progress(len(done), len(paths))
    if progress is not None:
        progress(len(paths), len(paths))
    return done


def parse_chunk(paths: list[str]) -> list[_Parsed]:
    """Worker entry point: parse a batch of files."""
    return [parse_file(p) for p in paths]


def parse_file(path: str) -> _Parsed:
    """Digest and parse one file; problems are returned as plain tuples so they cross processes and marshal."""
    try:
        data = _read(path)
    except OSError as e:
        return b"", None, ((path, None, "", f"cannot read ({e})"),), ()
    digest = hashlib.blake2b(data, digest_size=16).digest()
    if len(data) > MAX_FILE_SIZE:  # refused unread beyond the limit
        return digest, None, _plain([oversized(path, os.stat(path).st_size)]), ()
    try:
        ruleset, warnings = parse_ruleset_warnings(data.decode("utf-8"), path)
    except UnicodeDecodeError as e:
        return digest, None, ((path, None, "", f"not UTF-8 ({e})"),), ()
    except RulesetError as e:
        return digest, None, _plain(e.problems), ()
    return digest, record_of(ruleset), (), _plain(warnings)


def _read(path: str) -> bytes:
    """A rule file's bytes, no more than one past the size limit (a huge file is neither read nor hashed)."""
    with open(path, "rb") as f:
        return f.read(MAX_FILE_SIZE + 1)


def _plain(problems: Sequence[Problem]) -> _Found:
    return tuple((p.source, p.line, p.field, p.message) for p in problems)


def _digest_file(path: str) -> bytes:
    try:
        return hashlib.blake2b(_read(path), digest_size=16).digest()
    except OSError:
        return b""


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
        data = marshal.loads(path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return None
    return data


def _write_cache(path: Path, data: dict[str, Any]) -> None:
    """Write atomically; a cache that cannot be written only costs speed next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as tmp:
            tmp.write(marshal.dumps({"format": _FORMAT, **data}))
        os.replace(tmp.name, path)
    except OSError:
        pass
