"""Sample data that more than one test module reads: rulesets for lookups, and a filled insecure-site store."""

from __future__ import annotations

from port443.engine.ruleset import Rule, Ruleset
from port443.proxy.store import InsecureStore

DAY = 86400.0
TRIVIAL = (Rule("^http:", "https:"),)


def lookup_ruleset(
    name: str, *targets: str, default_off: str | None = None, platform: str | None = None
) -> Ruleset:
    return Ruleset(
        name, targets, TRIVIAL, default_off=default_off, platform=platform, source=f"rules/{name}.yaml"
    )


LOOKUP_RULESETS = [
    lookup_ruleset("Exact", "www.example.test"),
    lookup_ruleset("Left", "*.example.test"),
    lookup_ruleset("Right", "www.example.*"),
    lookup_ruleset("Off", "www.example.test", default_off="failed ruleset test"),
    lookup_ruleset("Mixed", "*.example.test", platform="mixedcontent"),
    lookup_ruleset("Tld", "*.test"),  # never a lookup key, as in HTTPS Everywhere
    lookup_ruleset("Deep", "*.b.example.test"),
    lookup_ruleset("Both", "www.example.test", "*.example.test"),
    lookup_ruleset("Mine", "www.example.test", default_off="user rule"),
    lookup_ruleset("Books", "xn--bcher-kva.test"),
]


def fill_store(s: InsecureStore) -> InsecureStore:
    """Two insecure hosts (one with two hits and a query string to drop) and three upgrades, flushed."""
    s.note_insecure("busy.test", "refused", "connection refused on port 443", "/a?secret=1", now=DAY)
    s.note_insecure("busy.test", "refused", "connection refused on port 443", "/b", now=DAY + 61.9)
    s.note_insecure("quiet.test", "no-tls", "", "/", now=2 * DAY)
    s.note_upgrade("ruleset")
    s.note_upgrade("ruleset")
    s.note_upgrade("probe")
    s.flush()
    return s
