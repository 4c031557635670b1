"""Every rich table and page that the CLI prints for people, in one place; scripts get JSON elsewhere.

Each printer takes plain data (rows, reports) and owns only presentation, so the commands stay wiring and
the same data can go to JSON unchanged.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from port443.engine.lookup import normalize_host
from port443.engine.selftest import TestReport
from port443.proxy.report import as_dicts
from port443.proxy.store import InsecureSite


def print_lookup(host: str, rows: list[dict[str, Any]]) -> None:
    """A table for people."""
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


def print_selftest(report: TestReport, *, verbose: bool) -> None:
    """A table of the rulesets with findings, then a summary line."""
    console = Console()
    rows = [r for r in report.results if r.broken or (verbose and r.uncovered)]
    if rows:
        table = Table(show_lines=False)
        for column in ("ruleset", "file", "finding"):
            table.add_column(column, overflow="fold")
        for r in rows:
            for finding in r.broken:
                table.add_row(r.name, r.source, f"[red]broken[/red] {finding}")
            for finding in r.uncovered if verbose else []:
                table.add_row(r.name, r.source, f"[yellow]uncovered[/yellow] {finding}")
        console.print(table)
    tests = sum(r.tests for r in report.results)
    covered = sum(1 for r in report.results if not r.uncovered)
    console.print(
        f"{len(report.results)} rulesets, {tests} test URLs: {report.broken} broken; "
        f"{covered} rulesets fully covered, {report.uncovered} rules/exclusions short of tests"
        + ("" if verbose else " (-v lists them)")
    )


def print_insecure(sites: list[InsecureSite], upgrades: dict[str, int]) -> None:
    """A table sorted by hits, and what was upgraded by which step."""
    console = Console()
    if sites:
        table = Table(title="Sites still on plain HTTP", title_justify="left")
        for column, justify in (
            ("host", "left"),
            ("reason", "left"),
            ("hits", "right"),
            ("last seen (UTC)", "left"),
            ("example", "left"),
        ):
            table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
        for row in as_dicts(sites):
            reason = f"{row['reason']}: {row['detail']}" if row["detail"] else str(row["reason"])
            table.add_row(
                str(row["host"]),
                reason,
                str(row["hits"]),
                str(row["last_seen"]).replace("T", " ")[:19],
                str(row["example_path"]),
            )
        console.print(table)
    else:
        console.print("No insecure sites recorded.")
    if upgrades:
        total = sum(upgrades.values())
        parts = ", ".join(f"{step} {count}" for step, count in upgrades.items())
        console.print(f"Upgraded requests: {total} ({parts})")


def print_live(results: list[Any], broken: list[Any]) -> None:

    console = Console()
    if broken:
        table = Table(title="Broken rewrites", title_justify="left")
        for column in ("ruleset", "test URL", "rewritten to", "why"):
            table.add_column(column, overflow="fold")
        for r in broken:
            table.add_row(r.ruleset, r.url, r.rewritten or "", r.reason)
        console.print(table)
    rulesets = len({r.ruleset for r in results})
    console.print(
        f"{len(results)} test URLs of {rulesets} rulesets: {len(results) - len(broken)} fine, {len(broken)} broken"
    )


_GRADE_STYLE = {
    "A+": "bold green",
    "A": "green",
    "B": "yellow",
    "C": "dark_orange",
    "D": "red",
    "F": "bold red",
}


def print_checks(reports: list[dict[str, Any]]) -> None:
    """One table row per site, then its reasons."""
    table = Table(title="HTTPS check", title_justify="left", show_lines=True, expand=True)
    table.add_column("site", no_wrap=True)
    table.add_column("grade", no_wrap=True, justify="center")
    for column, ratio in (("HTTPS", 2), ("HTTP → HTTPS", 1), ("HSTS", 2), ("findings", 4)):
        table.add_column(column, overflow="fold", ratio=ratio)
    for r in reports:
        g = r["grade"]
        findings = [f"• {reason}" for reason in r["reasons"]]
        findings += [f"• mixed: {m['tag']} {m['url']}" for m in r["mixed_content"][:5]]
        findings.append(f"port443: {_port443_cell(r)}")
        table.add_row(
            r["host"],
            f"[{_GRADE_STYLE[g]}]{g}[/]",
            _https_cell(r) + "\n" + _cert_cell(r),
            _redirect_cell(r),
            _hsts_cell(r),
            "\n".join(findings),
        )
    Console().print(table)
    passed = sum(1 for r in reports if r["passed"])
    Console().print(f"{passed} of {len(reports)} site(s) pass.", highlight=False)


def _https_cell(r: dict[str, Any]) -> str:
    https = r["https"]
    return https["tls_version"] or "—" if https["reachable"] else f"[red]no[/]: {https['error']}"


def _cert_cell(r: dict[str, Any]) -> str:
    cert = r["https"]["certificate"]
    if cert is None:
        return "—"
    if not cert["valid"]:
        return f"[red]invalid[/]: {cert['error']}"
    return f"{cert['issuer']}\n{cert['days_left']} days left"


def _redirect_cell(r: dict[str, Any]) -> str:
    http = r["http"]
    if not http["reachable"]:
        return "port 80 closed" if http["error"] else "—"
    if http["downgrade"]:
        return "[red]back to http[/]"
    if not http["redirects_to_https"]:
        return "[red]no[/]"
    codes = " → ".join(str(h["status"]) for h in http["hops"][:-1])
    return f"yes ({codes})" + ("" if http["same_host"] else ", other host")


def _hsts_cell(r: dict[str, Any]) -> str:
    hsts = r["hsts"]
    if not hsts["present"]:
        return "none"
    flags = [f"max-age={hsts['max_age']}"] + [
        f for f, on in (("includeSubDomains", hsts["include_subdomains"]), ("preload", hsts["preload"])) if on
    ]
    state = "preloaded" if hsts["preloaded"] else ("eligible" if hsts["eligible"] else "not eligible")
    return " ".join(flags) + f"\n{state}"


def _port443_cell(r: dict[str, Any]) -> str:
    p = r["port443"]
    if p is None:
        return "—"
    return ("upgrade" if p["upgrade"] else "HTTP") + f" ({p['step']})"
