"""Explain the ruleset lookup for a host: which rulesets, through which target, and why one is off."""

from __future__ import annotations

import os
from typing import Any

from port443.canon import canonicalize
from port443.index import RuleIndex


def normalize_host(host: str) -> str:
    """The host as the proxy would look it up (lower-case, punycode, no trailing dots), or as given if odd."""
    canon = canonicalize(f"http://{host}/")
    return canon.host if canon is not None and canon.host else host


def explain_host(host: str, index: RuleIndex) -> list[dict[str, Any]]:
    """One row per candidate ruleset, in the order the engine tries them."""
    looked_up = normalize_host(host)
    rows = []
    for key, i in index.candidate_keys(looked_up):
        name, default_off, platform, *_rest, source, _targets = index.records[i]
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
    if default_off and default_off != "user rule":
        return f"default_off: {default_off}"
    if platform:
        return f"platform {platform!r} not enabled (--platform {platform})"
    return "turned off by the user"


def print_lookup(host: str, rows: list[dict[str, Any]]) -> None:
    """A table for people."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    looked_up = normalize_host(host)
    if not rows:
        console.print(f"No ruleset covers [bold]{looked_up}[/bold].")
        return
    table = Table(title=f"Rulesets for {looked_up}", title_justify="left")
    for column in ("#", "ruleset", "state", "via target", "why", "file"):
        table.add_column(column, overflow="fold")
    for n, row in enumerate(rows, 1):
        state = "[green]active[/green]" if row["active"] else "[yellow]inactive[/yellow]"
        table.add_row(
            str(n), row["ruleset"], state, f"{row['target']} ({row['match']})", row["why"], row["source"]
        )
    console.print(table)


def short_path(path: str) -> str:
    """A path relative to the current directory when that is shorter, for tables."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return rel if len(rel) < len(path) else path
