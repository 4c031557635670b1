"""What the command modules share: error output, progress bars, JSON lines, and the rule and network options.

Sibling command modules use these and never each other, so the CLI has no import cycles; `main` maps
UsageError to exit code 2 and every other Port443Error to 1.
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from port443.engine.cache import default_cache_dir, load_rules
from port443.engine.index import Activation, RuleIndex
from port443.engine.shipped import shipped_rules_path
from port443.errors import ProbeError, RulesetError, UsageError
from port443.proxy.decide import Learned
from port443.proxy.inert import visible

Mappings = dict[tuple[str, int], tuple[str, int]]


def error(message: str) -> None:
    """Print `port443: message` on stderr, one prefixed line per line of the message."""
    for line in message.splitlines() or [""]:
        print(f"port443: {visible(line)}", file=sys.stderr)  # values from files and traffic stay text


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
    # ASCII escapes keep the JSON exact and keep control and bidi characters from reaching a terminal raw.
    (stream or sys.stdout).write(json.dumps(value, ensure_ascii=True) + "\n")


def warn_rule_errors(errors: Sequence[RulesetError], *, limit: int = 20) -> None:
    """Bad rule files are skipped, never fatal; say which and why."""
    problems = [p for e in errors for p in e.problems]
    for problem in problems[:limit]:
        error(f"warning: {problem}")
    if len(problems) > limit:
        error(f"warning: ... and {len(problems) - limit} more problems (see `port443 rules validate`)")


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


def load_index_for(args: argparse.Namespace) -> RuleIndex:
    """Load the rules a command was pointed at (add_rule_options), with the user's activation choices."""
    paths: list[Path] = args.rules or [shipped_rules_path()]
    overrides = {name: True for name in args.enable} | {name: False for name in args.disable}
    activation = Activation(frozenset(args.platform), overrides)
    with progress_bar("Compiling rules") as progress:
        loaded = load_rules(
            paths,
            cache_dir=None if args.no_cache else default_cache_dir(),
            activation=activation,
            progress=progress,
        )
    warn_rule_errors(loaded.errors)
    return loaded.index


def add_network_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, timeout: float, resolve: bool = True
) -> None:
    """--timeout, --resolve, --connect-to and --ca-bundle, the same for every command that reaches sites."""
    parser.add_argument(
        "--timeout", type=float, default=timeout, help=f"seconds per connection (default: {timeout:g})"
    )
    if resolve:
        parser.add_argument(
            "--resolve",
            action="append",
            default=[],
            metavar="HOST:PORT:ADDR",
            help="like curl's: connect to ADDR for HOST:PORT",
        )
    parser.add_argument(
        "--connect-to",
        action="append",
        default=[],
        metavar="HOST:PORT:ADDR:PORT2",
        help="like curl's --connect-to; TLS still verifies HOST",
    )
    parser.add_argument(
        "--ca-bundle", type=Path, help="trust these CA certificates (PEM) instead of the system's"
    )


@dataclass(frozen=True, slots=True)
class NetworkSettings:
    """What add_network_options gave, checked: a TLS context, the address mappings and the timeout."""

    context: ssl.SSLContext
    connect_to: Mappings
    timeout: float


def network_settings(args: argparse.Namespace) -> NetworkSettings:
    """Check and build the network options.

    Raises:
        UsageError: naming the option and the value that cannot be used.
    """
    from port443.net.connect import make_ssl_context, parse_connect_to, parse_resolve

    if args.timeout <= 0:
        raise UsageError(f"--timeout {args.timeout:g}: must be positive")
    try:
        specs = list(args.connect_to) + [parse_resolve(s) for s in getattr(args, "resolve", [])]
        connect_to = parse_connect_to(specs)
    except ProbeError as e:
        raise UsageError(str(e)) from e
    bundle: Path | None = args.ca_bundle
    try:
        context = make_ssl_context(cafile=str(bundle) if bundle is not None else None)
    except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
        raise UsageError(f"--ca-bundle {bundle}: cannot be read as PEM certificates ({e})") from e
    return NetworkSettings(context, connect_to, args.timeout)


def read_learned(db: Path | None) -> list[Learned]:
    """What the proxy learned, from its store (`db`, default the proxy's); nothing when there is no store yet."""
    from port443.proxy.store import InsecureStore, default_db_path

    path = db or default_db_path()
    if not path.exists():
        return []
    store = InsecureStore(path)
    try:
        return store.learned()
    finally:
        store.close()


def learned_json(entry: Learned) -> dict[str, object]:
    """One learned entry for scripts: expiry in ISO 8601 UTC, reason from the one vocabulary."""
    return {
        "host": entry.host,
        "path": entry.path or None,
        "secure": entry.secure,
        "reason": str(entry.reason),
        "detail": entry.detail,
        "expires": datetime.fromtimestamp(entry.expires, UTC).isoformat(timespec="seconds"),
    }
