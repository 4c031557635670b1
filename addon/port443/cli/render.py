"""Every rich table and page that the CLI prints for people, in one place; scripts get JSON elsewhere.

Each printer takes plain data (rows, reports) and owns only presentation, so the commands stay wiring and
the same data can go to JSON unchanged. What came from traffic, sites or rule files (hosts, paths, reasons,
details, certificate names, ruleset names) is put into rich `Text` through `_text`: never parsed as markup
or emoji codes, and with control characters shown as escapes (proxy/inert.py).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from port443.engine.lookup import normalize_host
from port443.engine.selftest import TestReport
from port443.proxy.inert import visible
from port443.proxy.report import as_dicts, clients_as_dicts
from port443.proxy.store import ClientUse, InsecureSite


def _text(value: object, style: str = "") -> Text:
    """`value` as inert text: no markup, no emoji codes, no control characters."""
    return Text(visible(str(value)), style=style)


def _console() -> Console:
    return Console(emoji=False)


def print_lookup(host: str, rows: list[dict[str, Any]]) -> None:
    """A table for people."""
    console = _console()
    looked_up = normalize_host(host)
    if not rows:
        console.print(Text.assemble("No ruleset covers ", _text(looked_up, "bold"), "."))
        return
    table = Table(title=Text.assemble("Rulesets for ", _text(looked_up)), title_justify="left")
    for column in ("#", "ruleset", "state", "via target", "why", "file"):
        table.add_column(column, overflow="fold")
    for n, row in enumerate(rows, 1):
        state = Text("active", "green") if row["active"] else Text("inactive", "yellow")
        table.add_row(
            str(n),
            _text(row["ruleset"]),
            state,
            _text(f"{row['target']} ({row['match']})"),
            _text(row["why"]),
            _text(row["source"]),
        )
    console.print(table)


def print_selftest(report: TestReport, *, verbose: bool) -> None:
    """A table of the rulesets with findings, then a summary line."""
    console = _console()
    rows = [r for r in report.results if r.broken or (verbose and r.uncovered)]
    if rows:
        table = Table(show_lines=False)
        for column in ("ruleset", "file", "finding"):
            table.add_column(column, overflow="fold")
        for r in rows:
            for finding in r.broken:
                table.add_row(
                    _text(r.name), _text(r.source), Text.assemble(("broken", "red"), " ", _text(finding))
                )
            for finding in r.uncovered if verbose else []:
                cell = Text.assemble(("uncovered", "yellow"), " ", _text(finding))
                table.add_row(_text(r.name), _text(r.source), cell)
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
    console = _console()
    if sites:
        table = Table(title="Sites still on plain HTTP", title_justify="left")
        for column, justify in (
            ("host", "left"),
            ("reason", "left"),
            ("hits", "right"),
            ("clients", "right"),
            ("last seen (UTC)", "left"),
            ("example", "left"),
        ):
            table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
        for row in as_dicts(sites):
            reason = f"{row['reason']}: {row['detail']}" if row["detail"] else str(row["reason"])
            table.add_row(
                _text(row["host"]),
                _text(reason),
                str(row["hits"]),
                str(row["clients"] or ""),
                str(row["last_seen"]).replace("T", " ")[:19],
                _text(row["example_path"]),
            )
        console.print(table)
    else:
        console.print("No insecure sites recorded.")
    if upgrades:
        total = sum(upgrades.values())
        parts = ", ".join(f"{step} {count}" for step, count in upgrades.items())
        console.print(_text(f"Upgraded requests: {total} ({parts})"))


def print_clients(clients: list[ClientUse]) -> None:
    """One row per client address: how many requests, upgraded and insecure, and insecure sites used."""
    console = _console()
    if not clients:
        console.print("No clients recorded.")
        return
    table = Table(title="Clients", title_justify="left")
    table.add_column("client", overflow="fold")
    for column in ("requests", "upgraded", "insecure", "insecure sites"):
        table.add_column(column, justify="right")
    table.add_column("last seen (UTC)")
    for row in clients_as_dicts(clients):
        table.add_row(
            _text(row["client"]),
            str(row["requests"]),
            str(row["upgraded"]),
            str(row["insecure"]),
            str(row["insecure_hosts"]),
            str(row["last_seen"]).replace("T", " ")[:19],
        )
    console.print(table)


def print_learned(rows: list[dict[str, object]]) -> None:
    """What the proxy learned (rows as `common.learned_json` makes them): one row per host or path."""
    console = _console()
    if not rows:
        console.print("Nothing learned yet.")
        return
    table = Table(title="What the proxy learned", title_justify="left")
    for column in ("host", "path", "HTTPS", "reason", "until (UTC)"):
        table.add_column(column, overflow="fold")
    for row in rows:
        reason = f"{row['reason']}: {row['detail']}" if row["detail"] else str(row["reason"])
        table.add_row(
            _text(row["host"]),
            _text(row["path"] or "(every path)"),
            Text("works", "green") if row["secure"] else Text("fails", "red"),
            _text(reason),
            str(row["expires"]).replace("T", " ")[:19],
        )
    console.print(table)


def print_policies(rows: list[dict[str, object]]) -> None:
    """The per-site choices (rows of `port443 policies --json`): host, choice, since when."""
    console = _console()
    if not rows:
        console.print("No per-site choices (`port443 never HOST` or `port443 always HOST` make one).")
        return
    table = Table(title="Your choices (each covers its subdomains)", title_justify="left")
    for column in ("host", "choice", "since (UTC)"):
        table.add_column(column, overflow="fold")
    for row in rows:
        never = row["policy"] == "never"
        table.add_row(
            _text(row["host"]),
            Text("never upgrade", "yellow") if never else Text("always HTTPS", "green"),
            str(row["set_at"]).replace("T", " ")[:19],
        )
    console.print(table)


def print_live(results: list[Any], broken: list[Any]) -> None:
    """The broken rewrites of `rules test --live`, then a summary line."""
    console = _console()
    if broken:
        table = Table(title="Broken rewrites", title_justify="left")
        for column in ("ruleset", "test URL", "rewritten to", "why"):
            table.add_column(column, overflow="fold")
        for r in broken:
            table.add_row(_text(r.ruleset), _text(r.url), _text(r.rewritten or ""), _text(r.reason))
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
            _text(r["host"]),
            _text(g, _GRADE_STYLE.get(g, "")),
            Text("\n").join([_https_cell(r), _cert_cell(r)]),
            _redirect_cell(r),
            _hsts_cell(r),
            Text("\n").join(_text(line) for line in findings),
        )
    console = _console()
    console.print(table)
    passed = sum(1 for r in reports if r["passed"])
    console.print(f"{passed} of {len(reports)} site(s) pass.", highlight=False)


def _failed(what: str, why: object = None) -> Text:
    """`what` in red, then `: why` as inert text."""
    failed = Text(what, "red")
    return failed if why is None else Text.assemble(failed, ": ", _text(why))


def _https_cell(r: dict[str, Any]) -> Text:
    https = r["https"]
    return _text(https["tls_version"] or "—") if https["reachable"] else _failed("no", https["error"])


def _cert_cell(r: dict[str, Any]) -> Text:
    cert = r["https"]["certificate"]
    if cert is None:
        return Text("—")
    if not cert["valid"]:
        return _failed("invalid", cert["error"])
    return Text.assemble(_text(cert["issuer"]), f"\n{cert['days_left']} days left")


def _redirect_cell(r: dict[str, Any]) -> Text:
    http = r["http"]
    if not http["reachable"]:
        return Text("port 80 closed" if http["error"] else "—")
    if http["downgrade"]:
        return _failed("back to http")
    if not http["redirects_to_https"]:
        return _failed("no")
    codes = " → ".join(str(h["status"]) for h in http["hops"][:-1])
    return _text(f"yes ({codes})" + ("" if http["same_host"] else ", other host"))


def _hsts_cell(r: dict[str, Any]) -> Text:
    hsts = r["hsts"]
    if not hsts["present"]:
        return Text("none")
    flags = [f"max-age={hsts['max_age']}"] + [
        f for f, on in (("includeSubDomains", hsts["include_subdomains"]), ("preload", hsts["preload"])) if on
    ]
    state = "preloaded" if hsts["preloaded"] else ("eligible" if hsts["eligible"] else "not eligible")
    return Text("\n").join([_text(" ".join(flags)), Text(state)])


def _port443_cell(r: dict[str, Any]) -> str:
    p = r["port443"]
    if p is None:
        return "—"
    return ("upgrade" if p["upgrade"] else "HTTP") + f" ({p['step']})"
