"""One measurement of the engine benchmark, run in a fresh interpreter so its RSS and import time are clean.

`python -m bench.engine_measure KIND ...` prints one JSON line; `bench.engine` starts one process per
measurement. KIND is `load:ENGINE` (import and load, timed, RSS before and after), `urls:ENGINE` (URLs/s
over the oracle list) or `first:ENGINE` (the first pass over the large list of bench/engine_urls.py, then
warm passes over it), ENGINE one of `port443`, `baseline`, `baseline-requests`. Only the standard
library is imported before the "before" readings; each engine is imported inside its measurement.
Linux only (/proc/self/status).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import resource
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.baseline import import_baseline
from bench.engine_urls import HELD_OUT_SIZE, build_url_list
from tests.conformance.oracle import records

REPO = Path(__file__).resolve().parents[1]
Result = dict[str, Any]
Rewrite = Callable[..., Any]


def _vm_status() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in bytes."""
    values: dict[str, int] = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values


def _children_maxrss() -> int:
    """Peak RSS of the largest finished child process (e.g. parse workers), in bytes."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def _import_port443() -> tuple[Callable[..., Any], Rewrite]:
    """port443's `load_index` and `rewrite_url`, from the checkout's `addon/` when port443 is not installed."""
    if importlib.util.find_spec("port443") is None:
        sys.path.append(str(REPO / "addon"))
    from port443.engine.cache import load_index
    from port443.engine.rewrite import rewrite_url

    return load_index, rewrite_url


def _load_engine(engine: str, rules: Path | None, cache_dir: Path | None) -> tuple[Any, Rewrite]:
    """Import and load `engine`; returns its index (None for the baseline, which keeps its own) and rewriter."""
    if engine == "port443":
        load_index, rewrite = _import_port443()
        return load_index([rules], cache_dir=cache_dir), rewrite
    load, rewrite = import_baseline(via_requests=engine == "baseline-requests")
    load()  # the baseline keeps its rules in module state
    return None, rewrite


def measure_load(engine: str, rules: Path | None, cache_dir: Path | None) -> Result:
    """Import and load one engine, timing both and reading RSS before and after."""
    before = _vm_status()
    started = time.perf_counter()
    try:
        if engine == "port443":
            load_index, _ = _import_port443()
        else:
            load, _ = import_baseline()
    except ImportError as e:
        return {"error": f"not available: {type(e).__name__}: {e}"}
    imported = time.perf_counter()
    after_import = _vm_status()
    loaded = load_index([rules], cache_dir=cache_dir) if engine == "port443" else load()
    done = time.perf_counter()
    after = _vm_status()
    result: Result = {
        "import_s": imported - started,
        "load_s": done - imported,
        "rss_before": before["VmRSS"],
        "rss_after_import": after_import["VmRSS"],
        "rss_after": after["VmRSS"],
        "hwm_after": after["VmHWM"],
        "rss_delta": after["VmRSS"] - before["VmRSS"],
        "peak_delta": after["VmHWM"] - before["VmRSS"],
        "children_maxrss": _children_maxrss(),
    }
    if engine == "port443" and cache_dir is not None:
        result["cache_files"] = sum(1 for p in cache_dir.rglob("*") if p.is_file())
    elif engine != "port443":
        from https_everywhere import _rules

        result["targets"] = len(loaded)
        # Without the optional sre_yield, _reduce_rules() skips its rule simplification (it logs a warning).
        result["simplified"] = _rules.expand_pattern is not None
    return result


def _pass(rewrite: Rewrite, index: Any, urls: list[str]) -> int:
    """Rewrite every URL once, as `rewrite(url, index)`, or `rewrite(url)` when `index` is None.

    Returns how many raised: a URL an engine cannot take is its answer, not a crash of the benchmark. There
    are two loops, so neither engine pays for the other's calling convention.
    """
    errors = 0
    if index is None:
        for url in urls:
            try:
                rewrite(url)
            except Exception:
                errors += 1
    else:
        for url in urls:
            try:
                rewrite(url, index)
            except Exception:
                errors += 1
    return errors


def _answers(
    engine: str, rewrite: Rewrite, index: Any, urls: list[str]
) -> tuple[list[str | None], Counter[str]]:
    """One untimed pass (it warms the lazily compiled regexes): each URL's new URL or None, and what raised."""
    answers: list[str | None] = []
    errors: Counter[str] = Counter()
    for url in urls:
        try:
            answer = rewrite(url) if index is None else rewrite(url, index)
        except Exception as e:  # the engine's answer to this URL, counted per type
            errors[type(e).__name__] += 1
            answers.append(None)
            continue
        if engine == "port443":
            answer = answer.url  # Rewrite.url: the new URL, None unless upgraded
        if answer in (url, url + "/"):  # https_url_rewrite returns the input (maybe with "/") when unchanged
            answer = None
        answers.append(answer)
    return answers, errors


def _agreement(cases: list[Result], answers: list[str | None]) -> Result:
    """How many answers equal the oracle's `expect`, with the disagreements by case kind and a few samples."""
    agree = 0
    disagree: Counter[str] = Counter()
    samples: list[Result] = []
    for case, answer in zip(cases, answers, strict=True):
        if answer == case["expect"]:
            agree += 1
            continue
        disagree[case.get("kind") or "?"] += 1
        if len(samples) < 5:
            samples.append({"url": case["url"], "expect": case["expect"], "got": answer})
    return {
        "agreement": agree / len(cases) if cases else 0.0,
        "disagree_by_kind": dict(disagree.most_common()),
        "disagree_samples": samples,
    }


def measure_urls(engine: str, rules: Path | None, cache_dir: Path | None, args: argparse.Namespace) -> Result:
    """Load one engine, check one pass against the oracle, then time rounds of at least `--min-round` s."""
    try:
        index, rewrite = _load_engine(engine, rules, cache_dir)
    except ImportError as e:
        return {"error": f"not available: {type(e).__name__}: {e}"}
    cases = list(records(Path(args.oracle)))[: args.urls]
    urls = [case["url"] for case in cases]
    started = time.perf_counter()
    answers, errors = _answers(engine, rewrite, index, urls)
    first_pass_s = time.perf_counter() - started

    # Calibrate on a warm pass, then time the rounds.
    started = time.perf_counter()
    _pass(rewrite, index, urls)
    warm_pass_s = time.perf_counter() - started
    passes = max(1, math.ceil(args.min_round / max(warm_pass_s, 1e-6)))
    rates: list[float] = []
    for _round in range(args.rounds):
        started = time.perf_counter()
        for _ in range(passes):
            _pass(rewrite, index, urls)
        rates.append(passes * len(urls) / (time.perf_counter() - started))
    return {
        "urls": len(urls),
        "passes_per_round": passes,
        "rounds": args.rounds,
        "urls_per_s": statistics.median(rates),
        "urls_per_s_rounds": rates,
        "first_pass_urls_per_s": len(urls) / first_pass_s,
        "errors": dict(errors),
        **_agreement(cases, answers),
    }


def measure_first_pass(
    engine: str, rules: Path | None, cache_dir: Path | None, args: argparse.Namespace
) -> Result:
    """Load one engine, then time its first pass over the large list (lazy per-ruleset work included), then
    `--rounds` more passes, of which the best is the engine's warm rate over the same URLs."""
    try:
        index, rewrite = _load_engine(engine, rules, cache_dir)
    except ImportError as e:
        return {"error": f"not available: {type(e).__name__}: {e}"}
    urls = large_list(args)
    started = time.perf_counter()
    errors = _pass(rewrite, index, urls)
    first_pass_s = time.perf_counter() - started
    rates: list[float] = []
    for _round in range(args.rounds):
        started = time.perf_counter()
        _pass(rewrite, index, urls)
        rates.append(len(urls) / (time.perf_counter() - started))
    return {
        "urls": len(urls),
        "first_pass_s": first_pass_s,
        "first_pass_urls_per_s": len(urls) / first_pass_s,
        "best_pass_urls_per_s": max(rates),
        "pass_urls_per_s": rates,
        "errors": errors,
    }


def large_list(args: argparse.Namespace) -> list[str]:
    """The large URL list (bench/engine_urls.py) over the oracle's URLs, both cut in proportion to `--urls`."""
    public = [case["url"] for case in records(Path(args.oracle))]
    used = public[: args.urls]
    return build_url_list(used, HELD_OUT_SIZE * len(used) // max(len(public), 1))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one measurement and print it as one JSON line."""
    parser = argparse.ArgumentParser(prog="bench.engine_measure", description=__doc__)
    parser.add_argument("kind", help="load:ENGINE or urls:ENGINE")
    parser.add_argument("--rules", type=Path)
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--oracle", type=Path)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--urls", type=int, default=None)
    parser.add_argument("--min-round", type=float, default=1.0)
    args = parser.parse_args(argv)
    kind, _, engine = args.kind.partition(":")
    if kind == "load":
        result = measure_load(engine, args.rules, args.cache_dir)
    elif kind == "first":
        result = measure_first_pass(engine, args.rules, args.cache_dir, args)
    else:
        result = measure_urls(engine, args.rules, args.cache_dir, args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
