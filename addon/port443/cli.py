"""The `port443` command line: wires the modules together and prints; no logic of its own lives here.

Exit codes: 0 ok, 1 findings (invalid rules, broken tests, failed checks), 2 usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from port443 import __version__
from port443.errors import Port443Error, RulesetError

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return handler(args)
    except Port443Error as e:
        _error(str(e))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `port443 rewrite ... | head`
        sys.stderr.close()
        return 0


def _error(message: str) -> None:
    for line in message.splitlines() or [""]:
        print(f"port443: {line}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="port443", description="Upgrade plain-HTTP traffic to HTTPS.")
    parser.add_argument("--version", action="version", version=f"port443 {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND")

    from port443 import cli_rules

    rewrite = sub.add_parser(
        "rewrite", help="rewrite URLs with the rulesets", description=cli_rules.REWRITE_HELP
    )
    rewrite.add_argument(
        "urls", nargs="*", metavar="URL", help="URLs to rewrite (default: one per line on stdin)"
    )
    rewrite.add_argument("--json", action="store_true", help="one JSON object per URL")
    add_rule_options(rewrite)
    rewrite.set_defaults(handler=cli_rules.cmd_rewrite)

    rules = sub.add_parser("rules", help="inspect, test, validate and import rulesets")
    cli_rules.add_commands(rules.add_subparsers(metavar="COMMAND", required=True))

    from port443 import cli_check, cli_proxy

    cli_proxy.add_commands(sub)
    cli_check.add_commands(sub)
    return parser


def add_rule_options(parser: argparse.ArgumentParser) -> None:
    """The options every command that loads rules shares."""
    group = parser.add_argument_group("rules")
    group.add_argument(
        "--rules",
        action="append",
        type=Path,
        metavar="PATH",
        help="a ruleset file or folder; repeatable, earlier ones first (default: the shipped rules)",
    )
    group.add_argument(
        "--enable",
        action="append",
        default=[],
        metavar="NAME",
        help="turn a ruleset on by name, even if default_off or platform-limited (repeatable)",
    )
    group.add_argument(
        "--disable", action="append", default=[], metavar="NAME", help="turn a ruleset off by name"
    )
    group.add_argument(
        "--platform",
        action="append",
        default=[],
        metavar="NAME",
        help="enable rulesets limited to this platform, e.g. mixedcontent (repeatable)",
    )
    group.add_argument(
        "--no-cache", action="store_true", help="parse the YAML files, ignoring the compiled cache"
    )


@contextmanager
def progress_bar(description: str, *, stream: TextIO | None = None) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr for long work, shown only to a person at a terminal."""
    out = stream or sys.stderr
    if not out.isatty():
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(file=out), transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def print_json(value: object, stream: TextIO | None = None) -> None:
    """One compact JSON document per line, for scripts."""
    (stream or sys.stdout).write(json.dumps(value, ensure_ascii=False) + "\n")


def warn_rule_errors(errors: Sequence[RulesetError], *, limit: int = 20) -> None:
    """Bad rule files are skipped, never fatal; say which and why."""
    problems = [p for e in errors for p in e.problems]
    for problem in problems[:limit]:
        _error(f"warning: {problem}")
    if len(problems) > limit:
        _error(f"warning: ... and {len(problems) - limit} more problems (see `port443 rules validate`)")
