"""The `port443` command line: the parser and `main`, which maps errors to exit codes; no logic lives here.

Exit codes: 0 ok, 1 findings (invalid rules, broken tests, failed checks) or errors, 2 usage errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from port443 import __version__
from port443.cli import check, dashboard, gateway, learned, proxy, rules
from port443.cli.common import add_rule_options, error
from port443.errors import Port443Error, UsageError

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return handler(args)
    except UsageError as e:
        error(str(e))
        return 2
    except Port443Error as e:
        error(str(e))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `port443 rewrite ... | head`
        sys.stderr.close()
        return 0


def build_parser() -> argparse.ArgumentParser:
    """Every command and its options."""
    parser = argparse.ArgumentParser(prog="port443", description="Upgrade plain-HTTP traffic to HTTPS.")
    parser.add_argument("--version", action="version", version=f"port443 {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND")

    rewrite = sub.add_parser("rewrite", help="rewrite URLs with the rulesets", description=rules.REWRITE_HELP)
    rewrite.add_argument(
        "urls", nargs="*", metavar="URL", help="URLs to rewrite (default: one per line on stdin)"
    )
    rewrite.add_argument("--json", action="store_true", help="one JSON object per URL")
    add_rule_options(rewrite)
    rewrite.set_defaults(handler=rules.cmd_rewrite)

    group = sub.add_parser("rules", help="inspect, test, validate and import rulesets")
    rules.add_commands(group.add_subparsers(metavar="COMMAND", required=True))
    proxy.add_commands(sub)
    gateway.add_commands(sub)
    learned.add_commands(sub)
    dashboard.add_commands(sub)
    check.add_commands(sub)
    return parser
