"""The compiled rules cache: a RuleIndex ready in a fraction of the time parsing 23k YAML files takes.

Keyed by the rule files' content. Like git's index, a file whose size and mtime are unchanged is trusted
without being read; any other file is hashed, and only files whose content changed are parsed again. The
cache is a marshal blob (fast to load) written atomically; a damaged or foreign cache is simply rebuilt.
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
from port443.engine.index import Activation, Record, RecordTable, RuleIndex, build_targets, record_of
from port443.engine.ruleset import MAX_FILE_SIZE, oversized, parse_ruleset_warnings, ruleset_files
from port443.errors import Problem, RulesetError

_FORMAT = 4  # 4: records carry the facts of their patterns
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
    files = ruleset_files(paths)
    base = _cache_file(cache_dir, paths) if cache_dir is not None else None
    signature = _signature(files)
    cached = _read_cache(base.with_suffix(".index")) if base is not None else None
    parsed_count = 0
    if cached is None or cached["signature"] != signature:
        # Only now is the per-file manifest needed: which files changed, and what they held.
        manifest = _read_cache(base.with_suffix(".files")) if base is not None else None
        stats = [_stat(f) for f in files]
        parsed, parsed_count = _refresh(files, stats, manifest, progress)
        manifest, cached = _assemble(files, stats, parsed, signature)
        if base is not None:
            _write_cache(base.with_suffix(".files"), manifest)
            _write_cache(base.with_suffix(".index"), cached)
    records = RecordTable(cached["blobs"], cached["names"], cached["states"])
    problems: dict[int, tuple[tuple[str, int | None, str, str], ...]] = cached["problems"]
    errors = tuple(RulesetError([Problem(*q) for q in problems[i]]) for i in sorted(problems))
    found: dict[int, _Found] = cached["warnings"]
    warnings = tuple(Problem(*q) for i in sorted(found) for q in found[i])
    index = RuleIndex(cached["targets"], records, activation)
    return LoadedRules(index, errors, warnings, len(files), parsed_count, time.perf_counter() - started)


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


def _refresh(
    files: list[str], stats: list[tuple[int, int]], manifest: dict[str, Any] | None, progress: Progress | None
) -> tuple[list[_Parsed], int]:
    """Reuse cached results for files whose stat or content is unchanged; parse the others."""
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
    for i, parsed in zip(todo, _parse_files([files[i] for i in todo], progress), strict=True):
        prior = old.get(files[i])
        if parsed[1] is None and prior is not None and prior[1][1] is not None:
            # A broken edit: report it, but keep serving the file's last good version.
            parsed = (parsed[0], prior[1][1], parsed[2], prior[1][3])
        results[i] = parsed
    return [r for r in results if r is not None], len(todo)


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


def _cache_file(cache_dir: Path, paths: Sequence[str | os.PathLike[str]]) -> Path:
    """One cache per list of rule paths, port443 version and Python version (marshal's format varies)."""
    key = "\0".join([__version__, sys.version, *(os.path.abspath(p) for p in paths)])
    return cache_dir / f"rules-{hashlib.blake2b(key.encode(), digest_size=8).hexdigest()}"


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
