"""`port443 never|always|clear HOST`, `port443 policies` and `port443 dashboard password`: the dashboard's
actions and its password from the command line.

The choices go to the proxy's store, which a running proxy follows (it reads them again within a flush
interval); `forget` lives in cli/learned.py. The password is hashed (scrypt) into port443's data
directory, mode 0600; a running proxy reads it again on its next dashboard request.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from port443.cli import common, render
from port443.errors import UsageError

if TYPE_CHECKING:
    from port443.proxy.store import InsecureStore

_DB_HELP = "the proxy's store (default: the proxy's own, in the user's data directory)"
_ACTIONS = {
    "never": "never upgrade these sites (and their subdomains), whatever rules and probes say",
    "always": "always send these sites (and their subdomains) to HTTPS; only a confirmed redirect loop holds",
    "clear": "clear the never/always choice for these sites: the usual steps decide again",
}


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `never`, `always`, `clear`, `policies` and `dashboard`."""
    for name, help_text in _ACTIONS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("hosts", nargs="+", metavar="HOST")
        p.add_argument("--db", type=Path, help=_DB_HELP)
        p.set_defaults(handler=cmd_policy, action=name)

    p = sub.add_parser("policies", help="the per-site choices in force (never / always HTTPS)")
    p.add_argument("--json", action="store_true", help="a JSON list of objects")
    p.add_argument("--db", type=Path, help=_DB_HELP)
    p.set_defaults(handler=cmd_policies)

    group = sub.add_parser(
        "dashboard", help="the dashboard's password (needed by devices beyond this machine)"
    )
    commands = group.add_subparsers(metavar="COMMAND", required=True)
    p = commands.add_parser(
        "password",
        help="set (or --remove) the dashboard password",
        description="Set the password devices beyond this machine need to change things on the dashboard. "
        "Until one is set, they see it read-only. Only a scrypt hash is stored, in port443's data directory.",
    )
    p.add_argument(
        "--remove", action="store_true", help="remove the password (devices beyond this machine: read-only)"
    )
    p.add_argument("--stdin", action="store_true", help="read the password from the first line of stdin")
    p.set_defaults(handler=cmd_password)


def _open_store(db: Path | None) -> InsecureStore:
    from port443.proxy.store import InsecureStore, default_db_path

    path: Path = db or default_db_path()
    if not path.exists():
        raise UsageError(f"{path}: no store yet (run the proxy first, or pass --db)")
    return InsecureStore(path)


def cmd_policy(args: argparse.Namespace) -> int:
    """`port443 never|always|clear HOST...`."""
    from port443.proxy.policy import Action, parse_host

    action = Action(args.action)
    hosts = [parse_host(h) for h in args.hosts]  # every name checked before anything is written
    store = _open_store(args.db)
    try:
        for host in hosts:
            changed = store.set_policy(host, action.policy)
            if action is Action.CLEAR:
                print(f"{host}: {'choice cleared' if changed else 'had no choice'}")
            else:
                said = "never upgraded" if action is Action.NEVER else "always sent to HTTPS"
                print(f"{host} (and its subdomains): {said}" + ("" if changed else " (already so)"))
    finally:
        store.close()
    return 0


def cmd_policies(args: argparse.Namespace) -> int:
    """`port443 policies`."""
    from port443.proxy.overview import iso

    store = _open_store(args.db)
    try:
        rows: list[dict[str, object]] = [
            {"host": c.host, "policy": c.policy.value, "set_at": iso(c.set_at)} for c in store.policies()
        ]
    finally:
        store.close()
    if args.json:
        common.print_json(rows)
    else:
        render.print_policies(rows)
    return 0


def cmd_password(args: argparse.Namespace) -> int:
    """`port443 dashboard password`."""
    from port443.proxy.passwords import check_password, default_password_path, remove_password, write_password

    path = default_password_path()
    if args.remove:
        gone = remove_password(path)
        print(
            f"{path}: {'removed' if gone else 'no password was set'}; devices beyond this machine see the dashboard read-only"
        )
        return 0
    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("New dashboard password: ")
        check_password(password)
        if getpass.getpass("The same again: ") != password:
            raise UsageError("the two passwords differ; nothing was changed")
    write_password(path, password)
    print(f"{path}: dashboard password set (scrypt hash, mode 0600); signed-in devices must sign in again")
    return 0
