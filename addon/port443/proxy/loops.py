"""Tell a redirect loop from a repeat: per client, which http URLs were just redirected, and how often.

A client asking again for an http URL it was just sent to HTTPS from is only a suspicion: people reload,
pages share an image, devices poll. So a repeat asks the caller to confirm (fetch the https URL and see
whether it sends clients back to HTTP); only a confirmed loop is a fact the caller may store and apply to
every device. A burst of repeats (a browser following a real loop makes about twenty requests in a second)
is acted on without confirmation, but only for that client and URL, for a while. Pure and bounded: time
comes from the caller, and every table is capped.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum


class Suspicion(Enum):
    """What a request for an http URL looks like to the loop guard."""

    NONE = "none"
    """Not a repeat of a recent redirect (or one already shown not to loop): upgrade as usual."""
    REPEAT = "repeat"
    """The client came back within the window: confirm before believing it."""
    BURST = "burst"
    """The client keeps coming back, as a browser in a loop does: leave it on HTTP, for this client only."""


@dataclass(slots=True)
class _Track:
    last: float
    """When this client was last redirected from this URL."""
    burst_start: float
    repeats: int


class LoopGuard:
    """The state machine behind `Suspicion`; one per proxy."""

    def __init__(
        self,
        *,
        window: float = 10.0,
        burst: int = 8,
        burst_window: float = 2.0,
        hold: float = 300.0,
        cleared_for: float = 600.0,
        max_entries: int = 100_000,
    ) -> None:
        self.window = window
        self.burst = burst
        self.burst_window = burst_window
        self.hold = hold
        self.cleared_for = cleared_for
        self.max_entries = max_entries
        self._tracks: OrderedDict[tuple[str, str], _Track] = OrderedDict()
        self._held: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._cleared: OrderedDict[str, float] = OrderedDict()

    def check(self, client: str, url: str, now: float) -> Suspicion:
        """Classify a request for `url` from `client` that the proxy would redirect to HTTPS."""
        key = (client, url)
        held = self._held.get(key)
        if held is not None:
            if held > now:
                return Suspicion.BURST
            del self._held[key]
        track = self._tracks.get(key)
        if track is None or now - track.last >= self.window:
            return Suspicion.NONE
        if now - track.burst_start > self.burst_window:
            track.burst_start, track.repeats = now, 0
        track.repeats += 1
        if track.repeats >= self.burst:
            _put(self._held, key, now + self.hold, self.max_entries)
            del self._tracks[key]
            return Suspicion.BURST
        cleared = self._cleared.get(url)
        if cleared is not None and cleared > now:
            return Suspicion.NONE
        return Suspicion.REPEAT

    def redirected(self, client: str, url: str, now: float) -> None:
        """The proxy just sent `client` from `url` to HTTPS."""
        key = (client, url)
        track = self._tracks.pop(key, None)
        if track is None:
            track = _Track(now, now, 0)
        track.last = now
        _put(self._tracks, key, track, self.max_entries)

    def cleared(self, url: str, now: float) -> None:
        """A confirmation found no loop for `url`: repeats of it need no new confirmation for a while."""
        _put(self._cleared, url, now + self.cleared_for, self.max_entries)

    def release(self, url: str) -> None:
        """Forget every client's hold on `url` (the site was forgotten, or changed)."""
        for key in [k for k in self._held if k[1] == url]:
            del self._held[key]


def _put[K, V](table: OrderedDict[K, V], key: K, value: V, cap: int) -> None:
    """Insert at the end (newest) and drop the oldest entries past the cap."""
    table.pop(key, None)
    table[key] = value
    while len(table) > cap:
        table.popitem(last=False)
