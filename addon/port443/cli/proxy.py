"""`port443 run`, `port443 report` and `port443 explain`: the proxy's commands."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
from pathlib import Path

from port443.cli import common, render

RUN_HELP = """Start the HTTPS upgrade proxy (mitmproxy with port443's addons). Point a browser or a device's HTTP
proxy setting at it. HTTPS is tunnelled untouched, so no certificate has to be installed."""


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `run`, `report` and `explain`."""
    p = sub.add_parser("run", help="start the proxy", description=RUN_HELP)
    p.add_argument("--listen-host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--listen-port", type=int, default=8080, help="port to listen on (default: 8080)")
    p.add_argument(
        "--allow-lan", action="store_true", help="allow a --listen-host other than loopback (gateway use)"
    )
    p.add_argument(
        "--mode",
        choices=("redirect", "rewrite", "strict"),
        default="redirect",
        help="how to upgrade (default: redirect)",
    )
    p.add_argument(
        "--rules",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="extra ruleset file or folder, before the shipped ones (repeatable)",
    )
    p.add_argument("--db", type=Path, help="insecure-site store (default: in the user's data directory)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        dest="setoptions",
        help="any mitmproxy or port443 option (repeatable)",
    )
    p.add_argument("--verbose", "-v", action="store_true", help="also print every flow")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("report", help="the insecure sites seen by the proxy, most hits first")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="a JSON list of objects")
    fmt.add_argument("--csv", action="store_true", help="CSV with a header row")
    p.add_argument("--db", type=Path, help="insecure-site store (default: in the user's data directory)")
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser("explain", help="what the proxy would do with a URL, and which step decides")
    p.add_argument("url")
    p.add_argument(
        "--probe", action="store_true", help="probe port 443 if no rule or list decides (sends traffic)"
    )
    p.add_argument("--json", action="store_true", help="JSON instead of text")
    common.add_network_options(p, timeout=3.0)
    p.add_argument("--probe-timeout", type=float, dest="timeout", help=argparse.SUPPRESS)  # its old name
    common.add_rule_options(p)
    p.set_defaults(handler=cmd_explain)


def cmd_run(args: argparse.Namespace) -> int:
    """`port443 run`."""
    if not _is_loopback(args.listen_host) and not args.allow_lan:
        common.error(
            f"--listen-host {args.listen_host} would expose the proxy beyond this machine; add --allow-lan to mean it"
        )
        return 2
    argv = ["--listen-host", args.listen_host, "--listen-port", str(args.listen_port)]
    argv += ["--set", f"port443_mode={args.mode}"]
    for path in args.rules:
        argv += ["--set", f"port443_rules={path}"]
    if args.db is not None:
        argv += ["--set", f"port443_db={args.db}"]
    if not args.verbose:
        argv += ["--set", "flow_detail=0"]
    for setting in args.setoptions:
        argv += ["--set", setting]
    from port443.mitm.runner import run_proxy  # the one import of mitmproxy's side, and only here

    print(
        f"port443: listening on http://{args.listen_host}:{args.listen_port} ({args.mode} mode)",
        file=sys.stderr,
    )
    return run_proxy(argv, quiet=not args.verbose)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_report(args: argparse.Namespace) -> int:
    """`port443 report`."""
    from port443.proxy.report import print_csv, print_json
    from port443.proxy.store import InsecureStore, default_db_path

    db = args.db or default_db_path()
    if not db.exists():
        common.error(f"{db}: no insecure-site store yet (run the proxy first, or pass --db)")
        return 1
    store = InsecureStore(db)
    try:
        sites, counts = store.insecure_sites(), store.upgrade_counts()
    finally:
        store.close()
    if args.json:
        print_json(sites)
    elif args.csv:
        print_csv(sites)
    else:
        render.print_insecure(sites, counts)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """`port443 explain URL`."""
    from port443.net.probe import probe
    from port443.proxy.decide import Decider, Decision, Reason
    from port443.proxy.hsts import PreloadList

    index = common.load_index_for(args)
    network = common.network_settings(args)

    async def prober(host: str) -> object:
        return await probe(
            host, timeout=network.timeout, context=network.context, connect_to=network.connect_to
        )

    decider = Decider(index, preload=PreloadList(), prober=prober if args.probe else None)  # type: ignore[arg-type]
    decision = asyncio.run(decider.decide(args.url))
    if not args.probe and decision.reason is Reason.NOT_PROBED:
        decision = Decision.stay(
            decision.step, Reason.UNKNOWN, "no rule or list decides; --probe would check port 443"
        )
    record = {
        "url": args.url,
        "upgrade": decision.upgrade,
        "result": decision.url,
        "step": decision.step.value,
        "reason": decision.reason,
        "detail": decision.detail,
        "ruleset": decision.ruleset,
    }
    if args.json:
        common.print_json(record)
    else:
        verdict = f"upgrade to {decision.url}" if decision.upgrade else "leave on plain HTTP"
        print(
            f"{args.url}\n  {verdict}\n  decided by: {decision.step.value}"
            + (f" ({decision.ruleset})" if decision.ruleset else "")
        )
        print(f"  reason: {decision.reason}" + (f": {decision.detail}" if decision.detail else ""))
    return 0
