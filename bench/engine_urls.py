"""The engine benchmark's large URL list: the public oracle URLs plus distinct variants, as many as held out.

The oracle's public sample (32,052 URLs) is about 30 % of the cases made; the held-out rest is about 74k
URLs over the same rulesets. This list stands in for it, deterministically: every public URL, then
variants of them, each keeping one URL's scheme and authority (so the same hosts, hence the same rulesets,
are looked up) and taking the path, query and fragment of another URL further down the list (so
exclusions and path-specific rules see other paths), without duplicates, in the oracle's order. Standard
library only: the measured processes import it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

HELD_OUT_SIZE = 74_000
"""About the held-out list's size: 70 % of the cases, where the public 32,052 are 30 %."""
_STRIDE = 7919  # a prime: the k-th variant of URL i takes the path of URL i + k * _STRIDE
_TRIES = 16
_SPLIT = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/?#]*)(.*)", re.DOTALL)


def _split(url: str) -> tuple[str, str] | None:
    """(scheme://authority, the rest), or None for a URL without an authority (mailto:, data:)."""
    m = _SPLIT.fullmatch(url)
    return None if m is None else (m.group(1), m.group(2))


def build_url_list(urls: Sequence[str], size: int = HELD_OUT_SIZE) -> list[str]:
    """`urls` (duplicates dropped), each followed by its variants, spread evenly so there are `size` in all.

    The oracle's order is kept (its cases are grouped by ruleset, as the held-out ones are): a variant comes
    right after the URL whose host it keeps. Every URL is distinct.
    """
    base = list(dict.fromkeys(urls))
    parts = [_split(u) for u in base]
    tails = [p[1] for p in parts if p is not None]
    n, extra = len(base), max(0, size - len(base))
    seen = set(base)
    out: list[str] = []
    owed = 0  # variants still to make: a URL without an authority passes its share on
    for i, (url, part) in enumerate(zip(base, parts, strict=True)):
        out.append(url)
        owed += (i + 1) * extra // n - i * extra // n  # `extra` spread evenly over the `n` URLs
        for k in range(1, _TRIES + 1):
            if owed <= 0 or part is None:
                break
            tail = tails[(i + k * _STRIDE) % len(tails)] or "/"
            variant = part[0] + (tail if tail[0] in "/?#" else "/" + tail)
            if variant not in seen:
                seen.add(variant)
                out.append(variant)
                owed -= 1
    return out[:size]
