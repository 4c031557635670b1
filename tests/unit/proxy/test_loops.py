"""The loop guard's state machine: repeats are suspicions, bursts hold one client, clearances stick."""

from __future__ import annotations

import pytest

from port443.proxy.loops import LoopGuard, Suspicion

URL = "http://site.test/status"


@pytest.fixture
def guard() -> LoopGuard:
    return LoopGuard(window=10, burst=5, burst_window=2, hold=60, cleared_for=100)


def test_a_first_request_is_no_suspicion(guard: LoopGuard) -> None:
    assert guard.check("10.0.0.2", URL, 0) is Suspicion.NONE


def test_a_repeat_within_the_window_is_a_suspicion_and_outside_it_is_not(guard: LoopGuard) -> None:
    guard.redirected("10.0.0.2", URL, 0)
    assert guard.check("10.0.0.2", URL, 9.9) is Suspicion.REPEAT
    assert guard.check("10.0.0.2", URL, 10) is Suspicion.NONE


def test_suspicion_belongs_to_the_client_and_the_url(guard: LoopGuard) -> None:
    guard.redirected("10.0.0.2", URL, 0)
    assert guard.check("10.0.0.3", URL, 1) is Suspicion.NONE  # another device is never suspected
    assert guard.check("10.0.0.2", URL + "?x", 1) is Suspicion.NONE


def test_a_cleared_url_raises_no_new_suspicion_until_the_clearance_ends(guard: LoopGuard) -> None:
    guard.redirected("10.0.0.2", URL, 0)
    guard.cleared(URL, 0)
    for t in (3, 6, 9):  # a device polling every three seconds
        assert guard.check("10.0.0.2", URL, t) is Suspicion.NONE
        guard.redirected("10.0.0.2", URL, t)
    guard.redirected("10.0.0.2", URL, 100)
    assert guard.check("10.0.0.2", URL, 101) is Suspicion.REPEAT


def test_a_burst_holds_that_client_only_for_the_hold_time(guard: LoopGuard) -> None:
    now = 0.0
    guard.redirected("10.0.0.2", URL, now)
    seen = []
    for _ in range(5):  # a browser following a loop: back within a tenth of a second, again and again
        now += 0.1
        seen.append(guard.check("10.0.0.2", URL, now))
        guard.redirected("10.0.0.2", URL, now)
    assert seen == [Suspicion.REPEAT] * 4 + [Suspicion.BURST]
    assert guard.check("10.0.0.2", URL, now + 59) is Suspicion.BURST
    assert guard.check("10.0.0.3", URL, now + 1) is Suspicion.NONE
    assert guard.check("10.0.0.2", URL, now + 61) is Suspicion.NONE  # the hold ended: upgrade again


def test_a_burst_counts_even_when_cleared(guard: LoopGuard) -> None:
    guard.cleared(URL, 0)  # the proxy's own look found no loop (a cookie-dependent one, say)
    guard.redirected("10.0.0.2", URL, 0)
    results = []
    for n in range(1, 6):
        results.append(guard.check("10.0.0.2", URL, n * 0.2))
        guard.redirected("10.0.0.2", URL, n * 0.2)
    assert results == [Suspicion.NONE] * 4 + [Suspicion.BURST]


def test_slow_repeats_never_make_a_burst(guard: LoopGuard) -> None:
    guard.redirected("10.0.0.2", URL, 0)
    for n in range(1, 30):  # reloads a second apart: at most two in any burst window
        assert guard.check("10.0.0.2", URL, n * 1.5) is Suspicion.REPEAT
        guard.redirected("10.0.0.2", URL, n * 1.5)


def test_memory_is_bounded() -> None:
    guard = LoopGuard(max_entries=100)
    for n in range(1000):
        guard.redirected(f"10.0.{n // 250}.{n % 250}", f"http://h{n}.test/", n)
        guard.cleared(f"http://h{n}.test/", n)
    assert len(guard._tracks) == 100 and len(guard._cleared) == 100
    assert guard.check("10.0.3.249", "http://h999.test/", 999.5) is Suspicion.NONE  # newest kept, cleared
