"""`port443 check`: the site HTTPS checker's command line, its table for people and its JSON for scripts."""

from __future__ import annotations

import argparse
import asyncio
from contextlib import nullcontext
from functools import cache
from pathlib import Path
from typing import Any

from port443.cli import common, render
from port443.errors import UsageError

CHECK_HELP = """Check whether sites support HTTPS properly: certificate, TLS version, HTTP to HTTPS redirects, HSTS and
preload eligibility, mixed content, HTTP/HTTPS parity, and what port443 itself would do. Exit 0 when every
site passes (grade A+ to B), 1 when any fails, 2 on usage errors."""


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `check`."""
    p = sub.add_parser("check", help="check whether sites support HTTPS properly", description=CHECK_HELP)
    p.add_argument("sites", nargs="*", metavar="HOST_OR_URL")
    p.add_argument("-f", "--file", type=Path, help="read more sites from FILE, one per line (# comments)")
    p.add_argument("--json", action="store_true", help="a JSON list of reports")
    common.add_network_options(p, timeout=10.0)
    p.add_argument("--concurrency", type=int, default=8, help="sites checked at once (default: 8)")
    p.add_argument(
        "--suggest-rule",
        action="store_true",
        help="print a YAML ruleset for the hosts whose HTTPS fully works",
    )
    p.set_defaults(handler=cmd_check)


def _targets(args: argparse.Namespace) -> list[str]:
    """The sites from the arguments and from -f FILE, each checked to name a host.

    Raises:
        UsageError: a file that cannot be read, or a site with no host in it.
    """
    targets = list(args.sites)
    if args.file is not None:
        try:
            text = args.file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"-f {args.file}: cannot be read ({e})") from e
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                targets.append(line)
    from port443.check.site import site_host

    for target in targets:
        try:
            site_host(target)
        except ValueError as e:
            raise UsageError(str(e)) from e
    return targets


def cmd_check(args: argparse.Namespace) -> int:
    """`port443 check`."""
    from port443.check.site import CheckSettings, check_sites

    targets = _targets(args)
    if not targets:
        raise UsageError("no sites given (HOST_OR_URL arguments or -f FILE)")
    if args.concurrency < 1:
        raise UsageError(f"--concurrency {args.concurrency}: must be at least 1")
    network = common.network_settings(args)
    settings = CheckSettings(network.context, network.connect_to, network.timeout, _decider(), _preload())
    with common.progress_bar("Checking sites") if len(targets) > 3 else nullcontext() as progress:
        reports = asyncio.run(check_sites(targets, settings, concurrency=args.concurrency, progress=progress))
    if args.suggest_rule:
        passed = sum(1 for r in reports if r["passed"])
        common.error(
            f"{passed} of {len(reports)} site(s) pass; the YAML below replaces the table (--json or no flag shows it)"
        )
        print(suggest_rules(reports), end="")
    elif args.json:
        common.print_json(reports)
    else:
        render.print_checks(reports)
    return 0 if all(r["passed"] for r in reports) else 1


def _decider() -> Any:
    """The proxy's own decision logic over the shipped rules, to say what port443 would do with each site."""
    from port443.engine.cache import default_cache_dir, load_rules
    from port443.engine.shipped import shipped_rules_path
    from port443.proxy.decide import Decider

    loaded = load_rules([shipped_rules_path()], cache_dir=default_cache_dir())
    return Decider(loaded.index, preload=_preload())  # the checker's own HTTPS results stand in for a probe


@cache
def _preload() -> Any:
    """The HSTS preload list, read once per run."""
    from port443.proxy.hsts import PreloadList

    return PreloadList()


def suggest_rules(reports: list[dict[str, Any]]) -> str:
    """YAML rulesets (one per registrable domain) for the hosts that pass with no downgrade at any hop."""
    from port443.check.site import base_domain
    from port443.engine.ruleset import Rule, Ruleset
    from port443.engine.yaml_out import format_ruleset

    groups: dict[str, list[str]] = {}
    for r in reports:
        if (
            r["passed"]
            and r["https"]["reachable"]
            and r["https"]["certificate"]
            and r["https"]["certificate"]["valid"]
            and not r["http"]["downgrade"]
            and not r["https"].get("downgrade")
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
