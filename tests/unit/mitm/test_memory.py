"""MemoryRelease's pure parts (statm, the release policy, the URL cache, glibc) and the addon with fakes.

The addon tests hand it a fake allocator, RSS and clock, so nothing here changes the test process's malloc.
"""

from __future__ import annotations

import asyncio
import logging
import os
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from mitmproxy.test import taddons

from port443.mitm import memory
from port443.mitm.memory import (
    LONG_URL,
    MMAP_THRESHOLD,
    MemoryRelease,
    ReleasePolicy,
    clear_url_cache,
    load_glibc,
    parse_statm,
    read_rss,
)
from tests.support.flows import http_flow

MIB = 1024 * 1024
GROWTH = memory.RELEASE_GROWTH
CACHED: Any = urllib.parse.urlsplit  # an lru_cache wrapper (Python 3.11 to 3.13), which typeshed does not say


def _glibc() -> bool:
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (AttributeError, ValueError, OSError):
        return False


@pytest.mark.parametrize(
    ("text", "rss"),
    [("12345 678 90 1 0 2 0\n", 678 * 4096), ("1 0 0 0 0 0 0", 0)],
)
def test_parse_statm(text: str, rss: int) -> None:
    assert parse_statm(text, 4096) == rss


@pytest.mark.parametrize("text", ["", "12345", "12345 -1 0", "VmRSS: 10 kB"])
def test_parse_statm_refuses_what_is_not_statm(text: str) -> None:
    with pytest.raises(ValueError, match="not a statm line"):
        parse_statm(text, 4096)


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="no /proc")
def test_read_rss_reads_this_process() -> None:
    rss = read_rss()
    assert rss is not None and 1 * MIB < rss < 64 * 1024 * MIB


def test_policy_releases_after_growth_with_traffic_once_quiet() -> None:
    policy = ReleasePolicy()
    policy.reset(100 * MIB)
    assert not policy.due(100 * MIB + GROWTH - 1, 0.0, traffic=True, quiet=True)
    assert not policy.due(100 * MIB + GROWTH, 1.0, traffic=True, quiet=False)
    assert policy.due(100 * MIB + GROWTH, 2.0, traffic=True, quiet=True)
    policy.reset(110 * MIB)  # what stayed after the release is the new level
    assert not policy.due(110 * MIB + GROWTH - 1, 3.0, traffic=True, quiet=True)


def test_policy_lets_growth_without_traffic_become_the_level() -> None:
    """Rules loading at start grows RSS with no request: that is the proxy's own, not a burst's."""
    policy = ReleasePolicy()
    policy.reset(50 * MIB)
    assert not policy.due(120 * MIB, 0.0, traffic=False, quiet=True)
    assert policy.baseline == 120 * MIB
    assert not policy.due(120 * MIB + GROWTH - 1, 1.0, traffic=True, quiet=True)


def test_policy_follows_rss_down() -> None:
    policy = ReleasePolicy()
    assert not policy.due(200 * MIB, 0.0, traffic=True, quiet=True)  # the first reading sets the level
    assert not policy.due(90 * MIB, 1.0, traffic=True, quiet=True)
    assert policy.due(90 * MIB + GROWTH, 2.0, traffic=True, quiet=True)


def test_policy_does_not_wait_for_quiet_forever() -> None:
    policy = ReleasePolicy(force_after=30.0)
    policy.reset(100 * MIB)
    grown = 100 * MIB + GROWTH
    assert not policy.due(grown, 10.0, traffic=True, quiet=False)
    assert not policy.due(grown, 39.9, traffic=True, quiet=False)
    assert policy.due(grown, 40.0, traffic=True, quiet=False)


def test_policy_restarts_the_wait_when_growth_goes() -> None:
    policy = ReleasePolicy(force_after=30.0)
    policy.reset(100 * MIB)
    assert not policy.due(100 * MIB + GROWTH, 0.0, traffic=True, quiet=False)
    assert not policy.due(100 * MIB, 20.0, traffic=True, quiet=False)  # freed on its own
    assert not policy.due(100 * MIB + GROWTH, 35.0, traffic=True, quiet=False)
    assert policy.due(100 * MIB + GROWTH, 65.0, traffic=True, quiet=False)


@pytest.mark.skipif(not hasattr(urllib.parse.urlsplit, "cache_info"), reason="urlsplit has no cache here")
def test_clear_url_cache_drops_cached_urls() -> None:
    urllib.parse.urlsplit("http://cache.test/" + "x" * LONG_URL)
    assert CACHED.cache_info().currsize > 0
    clear_url_cache()
    assert CACHED.cache_info().currsize == 0


@pytest.mark.skipif(not _glibc(), reason="glibc only")
def test_load_glibc_finds_malloc_trim() -> None:
    glibc = load_glibc()
    assert glibc is not None
    assert isinstance(glibc.trim(), bool)  # harmless: it only gives free pages back


def test_load_glibc_is_none_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    def musl(name: str) -> str:
        raise ValueError(name)

    monkeypatch.setattr(os, "confstr", musl)
    assert load_glibc() is None


@dataclass
class Machine:
    """What the addon reads: RSS (settable) and a clock."""

    rss: int | None = 100 * MIB
    now: float = 0.0


@dataclass
class FakeAllocator:
    """Records what it was asked; a trim brings `machine`'s RSS down to `trimmed_to`."""

    machine: Machine | None = None
    trimmed_to: int = 100 * MIB
    pinned: list[int] = field(default_factory=list)
    trims: int = 0
    refuse: bool = False

    def pin_mmap_threshold(self, size: int) -> bool:
        self.pinned.append(size)
        return not self.refuse

    def trim(self) -> bool:
        self.trims += 1
        if self.machine is not None:
            self.machine.rss = self.trimmed_to
        return True


@pytest.fixture
def machine() -> Machine:
    return Machine()


@pytest.fixture
def allocator(machine: Machine) -> FakeAllocator:
    return FakeAllocator(machine)


@pytest.fixture
def addon(machine: Machine, allocator: FakeAllocator) -> Iterator[MemoryRelease]:
    release = MemoryRelease(allocator=lambda: allocator, rss=lambda: machine.rss, clock=lambda: machine.now)
    with taddons.context(release):
        release.start(True)
        yield release


def burst(addon: MemoryRelease, machine: Machine, grown: int) -> None:
    for _ in range(3):
        addon.requestheaders(http_flow("http://burst.test/a"))
    machine.rss = (machine.rss or 0) + grown
    machine.now += 1
    assert addon.tick() is None  # requests came in this tick: not quiet yet


def test_start_pins_the_mmap_threshold(addon: MemoryRelease, allocator: FakeAllocator) -> None:
    assert allocator.pinned == [MMAP_THRESHOLD]


def test_a_burst_is_released_on_the_first_quiet_tick(
    addon: MemoryRelease, machine: Machine, allocator: FakeAllocator, caplog: pytest.LogCaptureFixture
) -> None:
    burst(addon, machine, GROWTH + 50 * MIB)
    machine.now += 1
    caplog.set_level(logging.INFO)
    done = addon.tick()
    assert done is not None and done.before == 100 * MIB + GROWTH + 50 * MIB
    assert allocator.trims == 1 and done.trim_seconds is not None
    assert done.after == 100 * MIB
    assert "memory given back: RSS 182 -> 100 MiB (garbage collection" in caplog.text
    assert "malloc_trim" in caplog.text
    machine.now += 1
    assert addon.tick() is None  # nothing grew since


def test_small_growth_is_left_alone(addon: MemoryRelease, machine: Machine, allocator: FakeAllocator) -> None:
    burst(addon, machine, GROWTH - 1)
    machine.now += 1
    assert addon.tick() is None and allocator.trims == 0


def test_no_release_without_requests(addon: MemoryRelease, machine: Machine) -> None:
    machine.rss = 100 * MIB + 3 * GROWTH  # rules loading, say
    assert addon.tick() is None
    machine.now += 1
    assert addon.tick() is None


def test_without_glibc_garbage_is_still_collected(machine: Machine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    release = MemoryRelease(allocator=lambda: None, rss=lambda: machine.rss, clock=lambda: machine.now)
    release.start(True)
    assert "not glibc" in caplog.text
    burst(release, machine, 2 * GROWTH)
    done = release.tick()
    assert done is not None and done.trim_seconds is None
    assert "malloc_trim" not in caplog.text


def test_without_proc_only_the_cache_is_cleared(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    release = MemoryRelease(allocator=FakeAllocator, rss=lambda: None)
    release.start(True)
    assert "RSS is not watched" in caplog.text
    release.requestheaders(http_flow("http://burst.test/a"))
    assert release.tick() is None


def test_a_refused_pin_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    release = MemoryRelease(allocator=lambda: FakeAllocator(refuse=True), rss=lambda: None)
    release.start(True)
    assert "refused to pin" in caplog.text


@pytest.mark.skipif(not hasattr(urllib.parse.urlsplit, "cache_info"), reason="urlsplit has no cache here")
def test_a_long_url_clears_the_url_cache_at_once(addon: MemoryRelease) -> None:
    flow = http_flow("http://long.test/")
    flow.request.path = "/" + "x" * LONG_URL
    urllib.parse.urlsplit(flow.request.url)
    addon.requestheaders(http_flow("http://short.test/a"))
    assert CACHED.cache_info().currsize > 0  # a short URL leaves the cache alone
    addon.requestheaders(flow)
    assert CACHED.cache_info().currsize == 0 and addon.requests == 2


def test_switched_off_it_does_nothing(machine: Machine, allocator: FakeAllocator) -> None:
    release = MemoryRelease(allocator=lambda: allocator, rss=lambda: machine.rss, clock=lambda: machine.now)
    release.start(False)
    assert allocator.pinned == []
    release.requestheaders(http_flow("http://burst.test/a"))
    assert release.requests == 0


async def test_running_reads_the_option_and_done_stops_the_watcher(
    machine: Machine, allocator: FakeAllocator
) -> None:
    release = MemoryRelease(allocator=lambda: allocator, rss=lambda: machine.rss, clock=lambda: machine.now)
    with taddons.context(release) as tctx:
        tctx.configure(release, port443_release_memory=False)
        release.running()
        assert not release.enabled and release._watcher is None
        tctx.configure(release, port443_release_memory=True)
        release.running()
        watcher = release._watcher
        assert release.enabled and watcher is not None and allocator.pinned == [MMAP_THRESHOLD]
        release.done()
        with pytest.raises(asyncio.CancelledError):
            await watcher


def test_socket_read_buffers_stay_below_the_pinned_threshold() -> None:
    """asyncio reads each socket into a fresh buffer of this size: mmapped, every relayed packet would cost a
    map and an unmap (TLS tunnels took 1.6x bare mitmdump's CPU with the threshold at 128 KiB)."""
    from asyncio import selector_events

    read_size: int = selector_events._SelectorSocketTransport.max_size  # type: ignore[attr-defined]
    assert read_size + 4096 <= MMAP_THRESHOLD
