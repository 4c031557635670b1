"""The reference engine's public answers, shipped in tests/data/oracle/ (provenance in its README).

Read by the conformance tests, by canonicalisation's fast-path test and by `bench.engine`, so that none of
them depends on anything outside the clone. A missing file is an error, never a skip: the data is part of
the repository.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ORACLE = Path(__file__).resolve().parents[1] / "data" / "oracle"
REWRITES = ORACLE / "rewrite-public.jsonl.gz"
HOSTS = ORACLE / "hosts-public.jsonl.gz"
COOKIES = ORACLE / "cookies-public.jsonl.gz"


def records(path: Path) -> Iterator[dict[str, Any]]:
    """Every case of one oracle file, in file order."""
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def urls() -> list[str]:
    """The input URL of every rewrite case."""
    return [case["url"] for case in records(REWRITES)]
