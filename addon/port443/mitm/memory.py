"""MemoryRelease: gives memory back after bursts of huge requests; it never changes or answers a request.

mitmproxy's HTTP/1 layer buffers a whole request head before any hook runs (`_http1.py` read_headers:
"FIXME: protect against header size DoS"; no hook sees the bytes sooner), so a 1 MiB URL costs several
1 MiB copies however early HttpsUpgrade answers 414. `python -m bench.memory_burst` (3 bursts of 100 unique
1 MiB URLs, `port443 run` with the shipped rules): RSS 118 MiB before, 532 MiB after, held for good (bare
mitmdump: 73 -> 487). Three things held it, each released here:

1. urllib.parse.urlsplit's LRU cache (128 entries since Python 3.11, bpo-44002), which mitmproxy fills
   with every absolute-form request target: up to 128 URLs plus their paths, 256 MiB of live strings.
   Cleared whenever a path is over LONG_URL, so what it keeps stays near 2 MiB.
2. Finished flows in reference cycles (16 of them, about 50 MiB, in one run), which only a full collection
   frees, and an idle proxy allocates nothing that would start one. `gc.collect()`: 3 to 16 ms measured,
   mostly freeing those flows (HttpsUpgrade froze the rules corpus; bare mitmdump's walk alone is 55 ms).
3. glibc's heap. Once an mmapped chunk is freed the mmap threshold climbs (up to 32 MiB), so later 1 MiB
   buffers come from the heap and fragment it. M_MMAP_THRESHOLD is pinned at 512 KiB, so big buffers are
   unmapped on free (peak after the third burst 161 instead of 287 MiB, for about 0.3 ms more per 1 MiB
   allocation), and `malloc_trim(0)` returns the rest: 5 to 7 ms for 110 to 170 MiB on a heap that was not
   pinned, 0.2 to 0.7 ms on a pinned one. Not lower: asyncio reads every socket into a fresh 256 KiB buffer,
   and mapping and unmapping one per read made relaying TLS tunnels cost 1.6x bare mitmdump's CPU (pinned
   at glibc's 128 KiB start value; bench.proxy's tunnel scenario, 75 against 48 us a request).

All three together: back at 118 MiB about a second after the last burst (same run). A release (1 to 3)
runs from a 1 s timer, never per request: once RSS grew by RELEASE_GROWTH with requests since the last
release, on the first tick that saw no new request (or after FORCE_AFTER of constant traffic). Other C
libraries (musl, macOS) keep their heap: 3 is then skipped, with a debug log; without /proc only 1 runs.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import os
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mitmproxy import ctx, http
from mitmproxy.addonmanager import Loader
from mitmproxy.utils import asyncio_utils

logger = logging.getLogger(__name__)

LONG_URL = 8 * 1024
"""Request paths longer than this clear urlsplit's cache (8 KiB: what nginx and the rule engine take)."""
MMAP_THRESHOLD = 512 * 1024
"""Allocations from this size on are mmapped, for good (mallopt(3)): above asyncio's 256 KiB read buffers."""
M_MMAP_THRESHOLD = -3
"""The parameter number of M_MMAP_THRESHOLD in glibc's malloc.h."""
RELEASE_GROWTH = 32 * 1024 * 1024
"""Bytes of RSS growth since the last release that make the next one worth its few milliseconds."""
FORCE_AFTER = 30.0
"""Seconds a due release waits for a quiet tick before it runs anyway (a gateway is never quite idle)."""
TICK = 1.0
"""Seconds between two looks at RSS."""
_HELP = (
    "Give memory back after bursts of large requests: drop huge URLs from urllib's parse cache, and once "
    "RSS grew by 32 MiB and the proxy is quiet, collect garbage and, with glibc, trim the C heap (whose mmap "
    "threshold is pinned at 512 KiB at start). Read at start."
)


class Allocator(Protocol):
    """The C allocator's knobs that matter here."""

    def pin_mmap_threshold(self, size: int) -> bool:
        """Serve allocations of `size` bytes and more with mmap, for good; False if refused."""
        ...

    def trim(self) -> bool:
        """Give free heap memory back to the system; True if some was."""
        ...


class Glibc:
    """glibc's mallopt(3) and malloc_trim(3), through ctypes."""

    def __init__(self, libc: Any) -> None:
        self._mallopt = libc.mallopt
        self._mallopt.argtypes, self._mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
        self._trim = libc.malloc_trim
        self._trim.argtypes, self._trim.restype = (ctypes.c_size_t,), ctypes.c_int

    def pin_mmap_threshold(self, size: int) -> bool:
        return bool(self._mallopt(M_MMAP_THRESHOLD, size))

    def trim(self) -> bool:
        return bool(self._trim(0))


def load_glibc() -> Glibc | None:
    """The running process's glibc, or None under another C library (musl, macOS, Windows)."""
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION")  # only glibc answers this one
    except (AttributeError, ValueError, OSError):
        return None
    if not version or not version.startswith("glibc"):
        return None
    try:
        return Glibc(ctypes.CDLL(None))  # the symbols already loaded into this process
    except (OSError, AttributeError):
        return None


def parse_statm(text: str, page_size: int) -> int:
    """Resident bytes from the text of /proc/<pid>/statm (its second field counts pages).

    Raises:
        ValueError: not statm's format.
    """
    fields = text.split()
    if len(fields) < 2 or not (fields[0].isdigit() and fields[1].isdigit()):
        raise ValueError(f"not a statm line: {text[:80]!r}")
    return int(fields[1]) * page_size


def read_rss() -> int | None:
    """This process's resident set size in bytes, or None where /proc does not tell it."""
    try:
        return parse_statm(Path("/proc/self/statm").read_text(), os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return None


def clear_url_cache() -> None:
    """Empty urllib.parse.urlsplit's LRU cache (Python 3.11 to 3.13; a no-op where it has none)."""
    clear: Callable[[], None] | None = getattr(urllib.parse.urlsplit, "cache_clear", None)
    if clear is not None:
        clear()


@dataclass
class ReleasePolicy:
    """When a release is due: RSS grew by `growth` since the last one, requests came, and now it is quiet."""

    growth: int = RELEASE_GROWTH
    force_after: float = FORCE_AFTER
    baseline: int | None = None
    """RSS after the last release, the lowest seen since, or the latest while no request came."""
    due_since: float | None = None

    def due(self, rss: int, now: float, *, traffic: bool, quiet: bool) -> bool:
        """Whether to release now.

        `traffic`: requests came since the last release (growth without them is the proxy's own, such as
        rules loading at start); `quiet`: no request came since the previous tick.
        """
        if self.baseline is None or rss < self.baseline or not traffic:
            self.baseline = rss
        if rss - self.baseline < self.growth or not traffic:
            self.due_since = None
            return False
        if self.due_since is None:
            self.due_since = now
        return quiet or now - self.due_since >= self.force_after

    def reset(self, rss: int) -> None:
        """Growth counts from `rss`: at start, and after a release (what stayed is in use)."""
        self.baseline, self.due_since = rss, None


@dataclass(frozen=True, slots=True)
class Release:
    """What one release did: RSS in bytes before and after, and how long its two steps held the loop."""

    before: int
    after: int
    gc_seconds: float
    trim_seconds: float | None
    """None without glibc."""


def _mib(size: int) -> str:
    return f"{size / 2**20:.0f}"


class MemoryRelease:
    """Gives memory back after bursts of huge requests: URL cache, garbage cycles, glibc's heap."""

    def __init__(
        self,
        *,
        allocator: Callable[[], Allocator | None] = load_glibc,
        rss: Callable[[], int | None] = read_rss,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load_allocator, self._rss, self._clock = allocator, rss, clock
        self.allocator: Allocator | None = None
        self.policy = ReleasePolicy()
        self.enabled = False
        self.requests = 0
        self._requests_at_tick = 0
        self._requests_at_release = 0
        self._long_url_seen = False
        self._watcher: asyncio.Task[None] | None = None

    def load(self, loader: Loader) -> None:
        loader.add_option("port443_release_memory", bool, True, _HELP)

    def running(self) -> None:
        self.start(bool(ctx.options.port443_release_memory))
        if self.enabled:
            self._watcher = asyncio_utils.create_task(
                self._watch(), name="port443 memory release", keep_ref=True
            )

    def start(self, enabled: bool) -> None:
        """Pin glibc's mmap threshold (the one change that cannot wait for a burst); the watcher is separate."""
        self.enabled = enabled
        if not enabled:
            logger.debug(
                "port443: port443_release_memory is off: memory is left to Python and the C allocator"
            )
            return
        self.allocator = self._load_allocator()
        if self.allocator is None:
            logger.debug(
                "port443: not glibc: the C heap is left to its allocator (caches and garbage are still released)"
            )
        elif not self.allocator.pin_mmap_threshold(MMAP_THRESHOLD):
            logger.debug(
                "port443: glibc refused to pin M_MMAP_THRESHOLD; malloc_trim still runs after bursts"
            )
        rss = self._rss()
        if rss is None:
            logger.debug("port443: no /proc/self/statm: RSS is not watched, only the URL cache is cleared")
        else:  # from before the first request: a burst may start before the first tick
            self.policy.reset(rss)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        # No "already answered" guard: this only counts traffic and forgets what mitmproxy cached of it.
        if not self.enabled:
            return
        self.requests += 1
        if len(flow.request.data.path) > LONG_URL:  # bytes, so no copy of a huge path is made
            self._long_url_seen = True
            clear_url_cache()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            self.tick()

    def tick(self) -> Release | None:
        """One look: clear the URL cache again if a long URL came, and release memory when it is due."""
        if self._long_url_seen:  # hooks after ours may have parsed that URL once more
            self._long_url_seen = False
            clear_url_cache()
        rss = self._rss()
        quiet = self.requests == self._requests_at_tick
        self._requests_at_tick = self.requests
        traffic = self.requests != self._requests_at_release
        if rss is None or not self.policy.due(rss, self._clock(), traffic=traffic, quiet=quiet):
            return None
        return self.release(rss)

    def release(self, before: int) -> Release:
        """Clear the URL cache, collect garbage, trim the C heap; logged, since it follows a burst."""
        self._requests_at_release = self.requests
        clear_url_cache()
        started = time.perf_counter()
        gc.collect()
        collected = time.perf_counter()
        trim_seconds = None
        if self.allocator is not None:
            self.allocator.trim()
            trim_seconds = time.perf_counter() - collected
        after = self._rss() or before
        self.policy.reset(after)
        done = Release(before, after, collected - started, trim_seconds)
        trim = "" if trim_seconds is None else f", malloc_trim {trim_seconds * 1000:.1f} ms"
        logger.info(
            f"port443: memory given back: RSS {_mib(before)} -> {_mib(after)} MiB "
            f"(garbage collection {done.gc_seconds * 1000:.1f} ms{trim})"
        )
        return done

    def done(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
