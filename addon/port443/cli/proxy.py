"""`port443 run`, `port443 report` and `port443 explain`: the proxy's commands."""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from port443.cli import common, render
from port443.cli.common import learned_json, read_learned
from port443.errors import UsageError
from port443.proxy import listen, wireguard
from port443.proxy.access import parse_networks
from port443.proxy.clients import parse_client_modes
from port443.proxy.decide import MODES
from port443.proxy.inert import visible

if TYPE_CHECKING:
    from port443.proxy.store import InsecureStore

LISTEN_PORT = 8080
RUN_HELP = """Start the HTTPS upgrade proxy (mitmproxy with port443's addons). Point a browser or a device's HTTP
proxy setting at it. HTTPS is tunnelled untouched, so no certificate has to be installed."""


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `run`, `report` and `explain`."""
    p = sub.add_parser("run", help="start the proxy", description=RUN_HELP)
    add_run_options(p)
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("report", help="the insecure sites seen by the proxy, most hits first")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="a JSON list of objects")
    fmt.add_argument("--csv", action="store_true", help="CSV with a header row (cells safe for spreadsheets)")
    fmt.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="the dashboard's overview as one self-contained HTML file (charts inline, opens with no network)",
    )
    p.add_argument(
        "--by-client",
        action="store_true",
        help="one row per client address: requests, upgraded, insecure, insecure sites used",
    )
    p.add_argument("--db", type=Path, help="insecure-site store (default: in the user's data directory)")
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser("explain", help="what the proxy would do with a URL, and which step decides")
    p.add_argument("url")
    p.add_argument(
        "--probe", action="store_true", help="probe port 443 if no rule or list decides (sends traffic)"
    )
    p.add_argument("--json", action="store_true", help="JSON instead of text")
    p.add_argument(
        "--db", type=Path, help="the proxy's store, for what it learned (default: the proxy's own)"
    )
    common.add_network_options(p, timeout=3.0)
    p.add_argument("--probe-timeout", type=float, dest="timeout", help=argparse.SUPPRESS)  # its old name
    common.add_rule_options(p)
    p.set_defaults(handler=cmd_explain)


def cmd_run(args: argparse.Namespace) -> int:
    """`port443 run`: the start line comes from the runner, once the listeners are really up."""
    argv, port_flags = run_command_line(args)
    from port443.mitm.runner import run_proxy  # the one import of mitmproxy's side, and only here

    return run_proxy(argv, quiet=not args.verbose, port_flags=port_flags)


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The flags of `port443 run`."""
    p.add_argument(
        "--listen-host",
        default="127.0.0.1",
        metavar="HOST",
        help='address to listen on; "" is every address, IPv4 and IPv6 (default: 127.0.0.1)',
    )
    p.add_argument(
        "--listen-port",
        type=int,
        default=LISTEN_PORT,
        metavar="PORT",
        help=f"port to listen on (default: {LISTEN_PORT})",
    )
    p.add_argument(
        "--transparent",
        action="store_true",
        help="transparent mode on the listen port, for port 80 redirected by the gateway's firewall (`port443 gateway firewall`)",
    )
    p.add_argument(
        "--allow-lan",
        action="store_true",
        help="allow listening beyond loopback (gateway use); needs --allow-clients",
    )
    p.add_argument(
        "--allow-clients",
        action="append",
        default=[],
        metavar="CIDR",
        help="clients that may use a proxy listening beyond loopback, e.g. 192.168.1.0/24 (repeatable); everyone else gets nothing",
    )
    p.add_argument("--mode", choices=MODES, default="redirect", help="how to upgrade (default: redirect)")
    p.add_argument(
        "--client-mode",
        action="append",
        default=[],
        metavar="CIDR=MODE",
        help="a device's own mode: redirect, rewrite, strict or off; the most specific match wins (repeatable)",
    )
    p.add_argument(
        "--wireguard",
        action="store_true",
        help="also run a WireGuard server (UDP, every address) for phones and laptops; `port443 wireguard-config` prints their configuration",
    )
    p.add_argument(
        "--wireguard-port",
        type=int,
        metavar="PORT",
        default=wireguard.DEFAULT_PORT,
        help=f"UDP port of the WireGuard server (default: {wireguard.DEFAULT_PORT})",
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
    p.add_argument(
        "--no-dashboard",
        action="store_true",
        help="do not serve the dashboard at the proxy's own address (http://127.0.0.1:8080/)",
    )
    p.add_argument("--verbose", "-v", action="store_true", help="also print every flow")


def run_command_line(args: argparse.Namespace) -> tuple[list[str], dict[int, str]]:
    """The mitmdump command line for `port443 run`, and which flag set each port (for "port in use").

    Raises:
        UsageError: a LAN listener without --allow-lan and --allow-clients, or a malformed value.
    """
    _take_listen_settings(args)
    for name, port in (("--listen-port", args.listen_port), ("--wireguard-port", args.wireguard_port)):
        if not 0 <= port < 65536:
            raise UsageError(f"{name} {port}: not a port")
    _check_exposure(args)
    parse_client_modes(args.client_mode, default=args.mode)  # malformed specs are usage errors, now
    user_modes = [s.partition("=")[2] for s in args.setoptions if s.startswith("mode=")]
    others = [s for s in args.setoptions if not s.startswith("mode=")]
    keys = str(wireguard.default_keys_path())
    modes = []
    if args.transparent:
        modes.append(listen.listen_spec("transparent", args.listen_host, args.listen_port))
    elif not user_modes:
        modes.append(listen.listen_spec("regular", args.listen_host, args.listen_port))
    modes += [listen.wireguard_spec(m, keys=keys, port=args.wireguard_port) for m in user_modes]
    if args.wireguard:
        modes.append(listen.listen_spec(listen.WIREGUARD, "", args.wireguard_port, data=keys))
    if any(listen.parse_mode(m).name == listen.WIREGUARD for m in modes):
        # Created here, mode 0600, before mitmproxy would write one with the default umask.
        wireguard.load_or_create(wireguard.default_keys_path())
    argv = ["--listen-host", args.listen_host, "--listen-port", str(args.listen_port)]
    sets = [f"mode={m}" for m in modes] + [f"port443_mode={args.mode}"]
    sets += [f"port443_rules={path}" for path in args.rules]
    sets += [f"port443_db={args.db}"] if args.db is not None else []
    sets += ["port443_allow_lan=true"] if args.allow_lan else []
    sets += [f"port443_allow_clients={c}" for c in args.allow_clients]
    sets += [f"port443_client_modes={c}" for c in args.client_mode]
    sets += ["port443_dashboard=false"] if args.no_dashboard else []
    sets += [] if args.verbose else ["flow_detail=0"]
    for setting in sets + others:
        argv += ["--set", setting]
    flags = {args.listen_port: "--listen-port", args.wireguard_port: "--wireguard-port"}
    return argv, flags


def _take_listen_settings(args: argparse.Namespace) -> None:
    """`--set listen_host=...`/`listen_port=...` mean what --listen-host/--listen-port mean (the last one wins)."""
    kept = []
    for setting in args.setoptions:
        name, _, value = setting.partition("=")
        if name == "listen_host":
            args.listen_host = value
        elif name == "listen_port":
            if not value.isdigit():
                raise UsageError(f"--set {setting}: not a port")
            args.listen_port = int(value)
        else:
            kept.append(setting)
    args.setoptions = kept


def _check_exposure(args: argparse.Namespace) -> None:
    parse_networks(args.allow_clients, what="--allow-clients")
    if listen.is_loopback(args.listen_host):
        return
    shown = (
        f'--listen-host "{args.listen_host}"' if not args.listen_host else f"--listen-host {args.listen_host}"
    )
    if not args.allow_lan:
        raise UsageError(
            f"{shown} would expose the proxy beyond this machine; add --allow-lan and name the devices that may "
            "use it with --allow-clients CIDR (e.g. --allow-clients 192.168.1.0/24) to mean it"
        )
    if not args.allow_clients:
        raise UsageError(
            f"{shown} --allow-lan: add --allow-clients CIDR, the devices that may use the proxy "
            "(e.g. --allow-clients 192.168.1.0/24, repeatable); everyone else gets nothing"
        )


def cmd_report(args: argparse.Namespace) -> int:
    """`port443 report`."""
    from port443.proxy import report
    from port443.proxy.store import InsecureStore, default_db_path

    db = args.db or default_db_path()
    if not db.exists():
        common.error(f"{db}: no insecure-site store yet (run the proxy first, or pass --db)")
        return 1
    store = InsecureStore(db)
    try:
        if args.html is not None:
            return _write_html(store, args.html)
        sites, counts = store.insecure_sites(), store.upgrade_counts()
        clients = store.clients() if args.by_client else []
    finally:
        store.close()
    if args.by_client:
        show = report.print_clients_json if args.json else report.print_clients_csv if args.csv else None
        (show or render.print_clients)(clients)
    elif args.json:
        report.print_json(sites)
    elif args.csv:
        report.print_csv(sites)
    else:
        render.print_insecure(sites, counts)
    return 0


def _write_html(store: InsecureStore, path: Path) -> int:
    """`report --html FILE`: the overview the dashboard shows, from the store alone, in one file."""
    from port443.errors import Port443Error
    from port443.proxy.dashboard_html import render_report
    from port443.proxy.overview import build_overview

    page = render_report(build_overview(store))
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as e:
        raise Port443Error(f"{path}: cannot write the report ({e.strerror})") from e
    print(f"port443: wrote {visible(str(path))}", file=sys.stderr)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """`port443 explain URL`."""
    from port443.net.probe import probe
    from port443.proxy.decide import Decider, Decision, Pending, Reason, Step
    from port443.proxy.hsts import PreloadList

    index = common.load_index_for(args)
    network = common.network_settings(args)

    async def prober(host: str) -> object:
        return await probe(
            host, timeout=network.timeout, context=network.context, connect_to=network.connect_to
        )

    learned = read_learned(args.db)
    decider = Decider(index, preload=PreloadList(), prober=prober if args.probe else None, learned=learned)  # type: ignore[arg-type]
    assessed = decider.assess(args.url)
    if isinstance(assessed, Pending) and not args.probe:
        if assessed.candidate is not None:
            why = f"HTTPS on {assessed.host} is confirmed by a probe before the first upgrade (--probe checks it now)"
            decision = replace(assessed.candidate, detail=why)
        else:
            decision = Decision.stay(
                Step.PROBE, Reason.UNKNOWN, "no rule or list decides; --probe would check port 443"
            )
    else:
        decision = asyncio.run(decider.decide(args.url))
    host = urlsplit(decision.url or "").hostname or urlsplit(args.url).hostname or ""
    known = [x for x in decider.entries() if x.host in (host, (urlsplit(args.url).hostname or "").lower())]
    record = {
        "url": args.url,
        "upgrade": decision.upgrade,
        "result": decision.url,
        "step": decision.step.value,
        "reason": decision.reason,
        "detail": decision.detail,
        "ruleset": decision.ruleset,
        "learned": [learned_json(x) for x in known],
    }
    if args.json:
        common.print_json(record)
    else:
        verdict = f"upgrade to {decision.url}" if decision.upgrade else "leave on plain HTTP"
        print(
            f"{visible(args.url)}\n  {visible(verdict)}\n  decided by: {decision.step.value}"
            + (f" ({visible(decision.ruleset)})" if decision.ruleset else "")
        )
        print(visible(f"  reason: {decision.reason}" + (f": {decision.detail}" if decision.detail else "")))
        for x in known:
            entry = learned_json(x)
            where = x.host + (x.path or "")
            print(
                visible(
                    f"  learned: {where} {'secure' if x.secure else 'insecure'} ({x.reason}) until {entry['expires']}"
                )
            )
    return 0
