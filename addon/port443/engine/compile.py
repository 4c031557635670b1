"""Turning rule files into an index part: parsing them (on every core when there are many) and assembling.

Shared by the cache, which refreshes one rules path at a time, and by the seed the build ships, which is the
same part compiled ahead of time.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from port443.engine.index import Record, RecordTable, build_targets, record_of
from port443.engine.ruleset import MAX_FILE_SIZE, oversized, parse_ruleset_warnings
from port443.errors import Problem, RulesetError

PARALLEL_FROM = 2000  # below this many files to parse, worker start-up costs more than it saves
_CHUNK = 250

Progress = Callable[[int, int], None]
Found = tuple[
    tuple[str, int | None, str, str], ...
]  # Problems as plain tuples, to cross processes and marshal
# Per file: content digest, then the record, or the problems when the file is invalid; then the warnings.
Parsed = tuple[bytes, Record | None, Found, Found]


def parse_files(paths: list[str], progress: Progress | None) -> list[Parsed]:
    """Parse files, on every core when there are many (a cold build of the full corpus)."""
    done: list[Parsed] = []
    if len(paths) < PARALLEL_FROM or (os.cpu_count() or 1) < 2:
        for path in paths:
            done.append(parse_file(path))
            if progress is not None and len(done) % _CHUNK == 0:
                progress(len(done), len(paths))
    else:
        chunks = [paths[i : i + _CHUNK] for i in range(0, len(paths), _CHUNK)]
        # Deferred, as a start from the cache never parses (the pool's modules are a few MiB). spawn, not fork:
        # the caller may be a running proxy with threads, which fork does not copy safely.
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(mp_context=multiprocessing.get_context("spawn")) as pool:
            for chunk in pool.map(parse_chunk, chunks):
                done.extend(chunk)
                if progress is not None:
                    progress(len(done), len(paths))
    if progress is not None:
        progress(len(paths), len(paths))
    return done


def parse_chunk(paths: list[str]) -> list[Parsed]:
    """Worker entry point: parse a batch of files."""
    return [parse_file(p) for p in paths]


def parse_file(path: str) -> Parsed:
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


def _plain(problems: Sequence[Problem]) -> Found:
    return tuple((p.source, p.line, p.field, p.message) for p in problems)


def digest_file(path: str) -> bytes:
    try:
        return hashlib.blake2b(_read(path), digest_size=16).digest()
    except OSError:
        return b""


def assemble(
    files: list[str], stats: list[tuple[int, int]], parsed: list[Parsed], signature: bytes
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


def _pair(parsed: list[Parsed], blobs: list[bytes]) -> Iterator[tuple[Parsed, bytes | None]]:
    """Pair each file with its record's blob (None for invalid files)."""
    it = iter(blobs)
    for p in parsed:
        yield p, (next(it) if p[1] is not None else None)
