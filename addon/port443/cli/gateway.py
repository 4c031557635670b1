"""The household gateway's own commands: `port443 gateway firewall` and `port443 wireguard-config`.

The nftables text and the WireGuard keys live in proxy/firewall.py and proxy/wireguard.py; this module
only wires them to flags and output. (`port443 run --transparent/--wireguard` is in cli/proxy.py.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from port443.cli import common
from port443.errors import UsageError
from port443.proxy import firewall, wireguard

DEFAULT_PORT = 8080


# --- port443 gateway firewall ----------------------------------------------------------------------------

FIREWALL_HELP = """Print (default), apply or remove port443's nftables table: TCP port 80 arriving on the LAN
interface (IPv4 and IPv6) is redirected to the transparent proxy, and connections to the proxy port that
were not redirected are dropped. The table is port443's own (inet port443); nothing else is touched."""

WIREGUARD_HELP = """Print the WireGuard configuration of a device (created on first use, with its own key),
for `port443 run --wireguard`. Import it in the WireGuard app (--qr shows a QR code for phones) or with
wg-quick. Restart port443 after adding a device so it accepts the new key."""


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `gateway firewall` and `wireguard-config`."""
    group = sub.add_parser("gateway", help="set up a household gateway (firewall rules)")
    gsub = group.add_subparsers(metavar="COMMAND", required=True)
    p = gsub.add_parser(
        "firewall", help="print, apply or remove the nftables rules", description=FIREWALL_HELP
    )
    p.add_argument(
        "--lan",
        action="append",
        required=True,
        metavar="IFACE",
        help="the interface the household's devices are on (repeatable)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"the transparent proxy's port (default: {DEFAULT_PORT})",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument("--apply", action="store_true", help="load the rules (needs root)")
    what.add_argument("--remove", action="store_true", help="remove port443's table (needs root)")
    p.set_defaults(handler=cmd_firewall)

    p = sub.add_parser(
        "wireguard-config", help="a device's WireGuard configuration", description=WIREGUARD_HELP
    )
    p.add_argument(
        "--endpoint",
        metavar="HOST[:PORT]",
        help="how devices reach this machine, e.g. home.example.net:51820 (default: this machine's address)",
    )
    p.add_argument(
        "--device",
        default=wireguard.DEFAULT_DEVICE,
        metavar="NAME",
        help="a name per phone or laptop, each with its own key (default: default)",
    )
    p.add_argument(
        "--qr",
        action="store_true",
        help="also show the configuration as a QR code (WireGuard app: scan from QR code)",
    )
    p.add_argument("--keys", type=Path, help=argparse.SUPPRESS)  # tests: a keys file elsewhere
    p.set_defaults(handler=cmd_wireguard_config)


def cmd_firewall(args: argparse.Namespace) -> int:
    """`port443 gateway firewall`."""
    script = firewall.ruleset(args.lan, args.port)
    if args.apply:
        firewall.run_nft(script)
        common.error(
            f"nftables table inet {firewall.TABLE} applied: port 80 from {', '.join(args.lan)} -> :{args.port}"
        )
    elif args.remove:
        firewall.run_nft(firewall.removal())
        common.error(f"nftables table inet {firewall.TABLE} removed")
    else:
        sys.stdout.write(script)
    return 0


def cmd_wireguard_config(args: argparse.Namespace) -> int:
    """`port443 wireguard-config`."""
    path: Path = args.keys or wireguard.default_keys_path()
    keys = wireguard.load_or_create(path)
    if args.device not in keys.devices and args.device != wireguard.DEFAULT_DEVICE:
        wireguard.add_device(keys, args.device)
        wireguard.write_keys(path, keys)
        common.error(f"new device {args.device!r}: restart port443 so that it accepts this key")
    if args.endpoint:
        endpoint = wireguard.parse_endpoint(args.endpoint)
    else:
        guessed = wireguard.guess_endpoint_host()
        if guessed is None:
            raise UsageError("cannot tell this machine's address: pass --endpoint HOST[:PORT]")
        endpoint = (guessed, wireguard.DEFAULT_PORT)
        common.error(
            f"endpoint {guessed}:{wireguard.DEFAULT_PORT} is a guess; devices away from home need --endpoint with your public name"
        )
    config = wireguard.client_config(keys, args.device, endpoint)
    sys.stdout.write(config)
    if args.qr:
        import segno

        segno.make(config, error="l").terminal(out=sys.stdout, compact=True)
    return 0
