"""`port443 learned` and `port443 forget`: what the proxy learned about sites, and a way to make it ask again.

Both work on the proxy's store (the one `port443 run` writes), so they answer and act for the running
proxy too: it reads changes to the store within a flush interval.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from port443.cli import common, render
from port443.errors import UsageError

_DB_HELP = "the proxy's store (default: the proxy's own, in the user's data directory)"


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `learned` and `forget`."""
    p = sub.add_parser("learned", help="what the proxy learned: hosts (and paths) whose HTTPS works or fails")
    p.add_argument("--json", action="store_true", help="a JSON list of objects")
    p.add_argument("--db", type=Path, help=_DB_HELP)
    p.set_defaults(handler=cmd_learned)

    p = sub.add_parser("forget", help="forget what was learned about hosts, so the proxy probes them again")
    p.add_argument("hosts", nargs="+", metavar="HOST")
    p.add_argument("--db", type=Path, help=_DB_HELP)
    p.set_defaults(handler=cmd_forget)


def cmd_learned(args: argparse.Namespace) -> int:
    """`port443 learned`."""
    entries = common.read_learned(args.db)
    if args.json:
        common.print_json([common.learned_json(x) for x in entries])
    else:
        render.print_learned([common.learned_json(x) for x in entries])
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    """`port443 forget HOST...`."""
    from port443.proxy.store import InsecureStore, default_db_path

    db: Path = args.db or default_db_path()
    if not db.exists():
        raise UsageError(f"{db}: no store yet (run the proxy first, or pass --db)")
    store = InsecureStore(db)
    try:
        for host in args.hosts:
            name = host.strip().lower().rstrip(".")
            print(f"{name}: {store.forget(name)} entries forgotten")
    finally:
        store.close()
    return 0
