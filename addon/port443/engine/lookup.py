"""Explain the ruleset lookup for a host: which rulesets, through which target, and why one is off."""

from __future__ import annotations

from typing import Any

from port443.engine.canon import canonicalize
from port443.engine.index import RuleIndex
from port443.engine.ruleset import USER_RULE


def normalize_host(host: str) -> str:
    """The host as the proxy would look it up (lower-case, punycode, no trailing dots), or as given if odd."""
    canon = canonicalize(f"http://{host}/")
    return canon.host if canon is not None and canon.host else host


def explain_host(host: str, index: RuleIndex) -> list[dict[str, Any]]:
    """One row per candidate ruleset, in the order the engine tries them."""
    looked_up = normalize_host(host)
    rows = []
    for key, i in index.candidate_keys(looked_up):
        name, default_off, platform, _rules, _exclusions, _cookies, source, *_ = index.records[i]
        rows.append(
            {
                "host": looked_up,
                "ruleset": name,
                "active": bool(index.active[i]),
                "target": key,
                "match": _match_kind(key),
                "why": _why(bool(index.active[i]), default_off, platform),
                "source": source,
            }
        )
    return rows


def _match_kind(key: str) -> str:
    if key.startswith("*."):
        return "left wildcard"
    if key.endswith(".*"):
        return "right wildcard"
    return "exact"


def _why(active: bool, default_off: str, platform: str) -> str:
    if active:
        return "active" if not (default_off or platform) else "turned on by the user"
    if default_off and default_off != USER_RULE:
        return f"default_off: {default_off}"
    if platform:
        return f"platform {platform!r} not enabled (--platform {platform})"
    return "turned off by the user"
