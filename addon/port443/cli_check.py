"""`port443 check`: the site HTTPS checker's command line, its table for people and its JSON for scripts."""

from __future__ import annotations

import argparse
import asyncio
from contextlib import nullcontext
from functools import cache
from pathlib import Path
from typing import Any

from port443 import cli

CHECK_HELP = """Check whether sites support HTTPS properly: certificate, TLS version, HTTP to HTTPS redirects, HSTS and
preload eligibility, mixed content, HTTP/HTTPS parity, and what port443 itself would do. Exit 0 when every
site passes (grade A+ to B), 1 when any fails, 2 on usage errors."""


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `check`."""
    p = sub.add_parser("check", help="check whether sites support HTTPS properly", description=CHECK_HELP)
    p.add_argument("sites", nargs="*", metavar="HOST_OR_URL")
    p.add_argument("-f", "--file", type=Path, help="read more sites from FILE, one per line (# comments)")
    p.add_argument("--json", action="store_true", help="a JSON list of reports")
    p.add_argument(
        "--resolve",
        action="append",
        default=[],
        metavar="HOST:PORT:ADDR",
        help="like curl's: connect to ADDR for HOST:PORT",
    )
    p.add_argument(
        "--connect-to",
        action="append",
        default=[],
        metavar="HOST:PORT:ADDR:PORT2",
        help="like curl's --connect-to",
    )
    p.add_argument("--ca-bundle", type=Path, help="trust these CA certificates (PEM) instead of the system's")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per connection (default: 10)")
    p.add_argument("--concurrency", type=int, default=8, help="sites checked at once (default: 8)")
    p.add_argument(
        "--suggest-rule",
        action="store_true",
        help="print a YAML ruleset for the hosts whose HTTPS fully works",
    )
    p.set_defaults(handler=cmd_check)


def connect_to_mappings(resolve: list[str], connect_to: list[str]) -> dict[tuple[str, int], tuple[str, int]]:
    """Merge curl-style `--resolve HOST:PORT:ADDR` and `--connect-to HOST:PORT:ADDR:PORT2` options.

    Raises:
        ValueError: naming the malformed option.
    """
    from port443.errors import ProbeError
    from port443.probe import parse_connect_to

    specs = list(connect_to)
    for spec in resolve:
        host, sep, rest = spec.partition(":")
        port, sep2, addr = rest.partition(":")
        if not (sep and sep2 and host and port and addr):
            raise ValueError(f"--resolve {spec!r}: expected HOST:PORT:ADDR")
        specs.append(
            f"{host}:{port}:{addr if ':' not in addr or addr.startswith('[') else f'[{addr}]'}:{port}"
        )
    try:
        return parse_connect_to(specs)
    except ProbeError as e:
        raise ValueError(str(e)) from e


def _targets(args: argparse.Namespace) -> list[str]:
    targets = list(args.sites)
    if args.file is not None:
        for line in args.file.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                targets.append(line)
    return targets


def cmd_check(args: argparse.Namespace) -> int:
    """`port443 check`."""
    from port443.check import CheckSettings, check_sites, site_host
    from port443.errors import Port443Error
    from port443.probe import make_ssl_context

    try:
        targets = _targets(args)
        for target in targets:
            site_host(target)
        connect_to = connect_to_mappings(args.resolve, args.connect_to)
        if args.concurrency < 1 or args.timeout <= 0:
            raise ValueError("--concurrency and --timeout must be positive")
        context = make_ssl_context(cafile=str(args.ca_bundle) if args.ca_bundle else None)
    except (ValueError, OSError, Port443Error) as e:
        cli._error(str(e))
        return 2
    if not targets:
        cli._error("no sites given (HOST_OR_URL arguments or -f FILE)")
        return 2
    settings = CheckSettings(context, connect_to, args.timeout, _decider(), _preload())
    with cli.progress_bar("Checking sites") if len(targets) > 3 else nullcontext() as progress:
        reports = asyncio.run(check_sites(targets, settings, concurrency=args.concurrency, progress=progress))
    if args.suggest_rule:
        print(suggest_rules(reports), end="")
    elif args.json:
        cli.print_json(reports)
    else:
        print_reports(reports)
    return 0 if all(r["passed"] for r in reports) else 1


def _decider() -> Any:
    """The proxy's own decision logic over the shipped rules, to say what port443 would do with each site."""
    from port443.cache import default_cache_dir, load_rules
    from port443.decide import Decider
    from port443.shipped import shipped_rules_path

    async def never(host: str) -> Any:  # the checker's own HTTPS results stand in for the probe
        raise AssertionError("not called")

    loaded = load_rules([shipped_rules_path()], cache_dir=default_cache_dir())
    return Decider(loaded.index, preload=_preload(), prober=never)


@cache
def _preload() -> Any:
    """The HSTS preload list, read once per run."""
    from port443.hsts import PreloadList

    return PreloadList()


def suggest_rules(reports: list[dict[str, Any]]) -> str:
    """YAML rulesets (one per registrable domain) for the hosts whose HTTPS fully works."""
    from port443.check import base_domain
    from port443.emit import format_ruleset
    from port443.ruleset import Rule, Ruleset

    groups: dict[str, list[str]] = {}
    for r in reports:
        if (
            r["https"]["reachable"]
            and r["https"]["certificate"]
            and r["https"]["certificate"]["valid"]
            and not r["http"]["downgrade"]
        ):
            groups.setdefault(base_domain(r["host"]) or r["host"], []).append(r["host"])
    out = []
    for name, hosts in groups.items():
        ruleset = Ruleset(
            name, tuple(hosts), (Rule("^http:", "https:"),), tests=tuple(f"http://{h}/" for h in hosts)
        )
        out.append(f"# {name}.yaml\n{format_ruleset(ruleset)}")
    if not out:
        return "# no host has fully working HTTPS: no ruleset to suggest\n"
    return "---\n".join(out)


_GRADE_STYLE = {
    "A+": "bold green",
    "A": "green",
    "B": "yellow",
    "C": "dark_orange",
    "D": "red",
    "F": "bold red",
}


def print_reports(reports: list[dict[str, Any]]) -> None:
    """One table row per site, then its reasons."""
    from rich.console import Console
    from rich.table import Table

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
