"""`port443 rewrite` and `port443 rules ...`: the rule engine's commands (a stable contract for scripts)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from port443 import cli
from port443.cache import default_cache_dir, load_rules
from port443.index import Activation, RuleIndex
from port443.rewrite import Outcome, rewrite_url, secure_cookie
from port443.shipped import shipped_rules_path

REWRITE_HELP = """Rewrite each URL as the rulesets say. Plain output: the resulting URL per line (the input unchanged
when no rule applies). --json: {"url", "result", "ruleset", "outcome"} per line, result null when unchanged."""


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `rules` subcommands."""
    p = sub.add_parser(
        "securecookie", help="decide the Secure flag for cookies: DOMAIN<TAB>NAME per line on stdin"
    )
    p.add_argument("--json", action="store_true", help='{"domain", "name", "secure", "ruleset"} per line')
    cli.add_rule_options(p)
    p.set_defaults(handler=cmd_securecookie)

    p = sub.add_parser("lookup", help="which rulesets cover a host, active or not, and why")
    p.add_argument("host")
    p.add_argument("--json", action="store_true", help="a JSON list instead of a table")
    cli.add_rule_options(p)
    p.set_defaults(handler=cmd_lookup)

    p = sub.add_parser("validate", help="check ruleset files; lists every problem, exit 1 if any")
    p.add_argument(
        "paths", nargs="*", type=Path, metavar="PATH", help="files or folders (default: the shipped rules)"
    )
    p.add_argument("--json", action="store_true", help="problems as JSON objects, one per line")
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("test", help="offline ruleset tests and rule coverage; exit 1 on broken tests")
    p.add_argument(
        "paths", nargs="*", type=Path, metavar="PATH", help="files or folders (default: the shipped rules)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per ruleset with findings")
    p.add_argument(
        "--verbose", "-v", action="store_true", help="also list coverage gaps, not only broken tests"
    )
    live = p.add_argument_group("live testing (fetches every test URL over HTTP and HTTPS)")
    live.add_argument(
        "--live", action="store_true", help="compare each test URL with its rewrite, over the network"
    )
    live.add_argument("--concurrency", type=int, default=8, help="URLs tested at once (default: 8)")
    live.add_argument("--timeout", type=float, default=10.0, help="seconds per connection (default: 10)")
    live.add_argument("--resolve", action="append", default=[], metavar="HOST:PORT:ADDR", help="like curl's")
    live.add_argument(
        "--connect-to", action="append", default=[], metavar="HOST:PORT:ADDR:PORT2", help="like curl's"
    )
    live.add_argument(
        "--ca-bundle", type=Path, help="trust these CA certificates (PEM) instead of the system's"
    )
    p.set_defaults(handler=cmd_test)

    p = sub.add_parser("import", help="convert HTTPS Everywhere XML rulesets (folder or .tar.xz) into YAML")
    p.add_argument("source", type=Path, help="folder of .xml rulesets, or a .tar.xz/.tar.gz archive of them")
    p.add_argument("dest", type=Path, help="folder to write the .yaml rulesets into")
    p.set_defaults(handler=cmd_import)


def load_index_for(args: argparse.Namespace) -> RuleIndex:
    """Load the rules a command was pointed at, with the user's activation choices."""
    paths: list[Path] = args.rules or [shipped_rules_path()]
    overrides = {name: True for name in args.enable} | {name: False for name in args.disable}
    activation = Activation(frozenset(args.platform), overrides)
    with cli.progress_bar("Compiling rules") as progress:
        loaded = load_rules(
            paths,
            cache_dir=None if args.no_cache else default_cache_dir(),
            activation=activation,
            progress=progress,
        )
    cli.warn_rule_errors(loaded.errors)
    return loaded.index


def _input_lines(args: list[str]) -> Iterator[str]:
    if args:
        yield from args
        return
    for line in sys.stdin:
        yield line.rstrip("\r\n")


def cmd_rewrite(args: argparse.Namespace) -> int:
    """`port443 rewrite`."""
    index = load_index_for(args)
    out = sys.stdout
    for url in _input_lines(args.urls):
        result = rewrite_url(url, index)
        if args.json:
            record = {
                "url": url,
                "result": result.url,
                "ruleset": result.ruleset,
                "outcome": result.outcome.value,
            }
            if result.outcome is Outcome.EXCLUDED:
                record["ruleset"] = None
                record["excluded_by"] = result.ruleset
            cli.print_json(record, out)
        else:
            out.write((result.url or url) + "\n")
    return 0


def cmd_securecookie(args: argparse.Namespace) -> int:
    """`port443 rules securecookie`."""
    index = load_index_for(args)
    bad = 0
    for number, line in enumerate(_input_lines([]), 1):
        domain, tab, name = line.partition("\t")
        if not tab:
            cli._error(f"<stdin>:{number}: expected DOMAIN<TAB>NAME, got {line!r}")
            bad += 1
            continue
        decision = secure_cookie(domain, name, index)
        if args.json:
            cli.print_json(
                {"domain": domain, "name": name, "secure": decision.secure, "ruleset": decision.ruleset}
            )
        else:
            print(f"{domain}\t{name}\t{'secure' if decision.secure else 'leave'}")
    return 1 if bad else 0


def cmd_lookup(args: argparse.Namespace) -> int:
    """`port443 rules lookup HOST`."""
    from port443.explain import explain_host, print_lookup

    index = load_index_for(args)
    rows = explain_host(args.host, index)
    if args.json:
        cli.print_json(rows)
    else:
        print_lookup(args.host, rows)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """`port443 rules validate`."""
    paths = args.paths or [shipped_rules_path()]
    with cli.progress_bar("Validating") as progress:
        loaded = load_rules(paths, cache_dir=None, progress=progress)
    problems = [p for e in loaded.errors for p in e.problems]
    for p in problems:
        if args.json:
            cli.print_json({"file": p.source, "line": p.line, "field": p.field, "problem": p.message})
        else:
            print(p)
    bad = len(loaded.errors)
    print(
        f"{loaded.files} files: {loaded.files - bad} valid, {bad} invalid ({len(problems)} problems)",
        file=sys.stderr,
    )
    return 1 if bad else 0


def cmd_test(args: argparse.Namespace) -> int:
    """`port443 rules test`."""
    from port443.ruletest import print_report, test_rulesets

    paths = args.paths or [shipped_rules_path()]
    if args.live:
        return _live(args, paths)
    with cli.progress_bar("Testing rulesets") as progress:
        report = test_rulesets(paths, progress=progress)
    cli.warn_rule_errors(report.errors)
    if args.json:
        for result in report.results:
            if result.broken or (args.verbose and result.uncovered):
                cli.print_json(result.as_json())
    else:
        print_report(report, verbose=args.verbose)
    return 1 if report.broken or report.errors else 0


def cmd_import(args: argparse.Namespace) -> int:
    """`port443 rules import`."""
    from port443.importer import import_rules

    with cli.progress_bar("Importing") as progress:
        report = import_rules(args.source, args.dest, progress=progress)
    for problem in report.errors:
        cli._error(str(problem))
    print(report.summary(), file=sys.stderr)
    return 1 if report.errors else 0


def _live(args: argparse.Namespace, paths: list[Path]) -> int:
    """`port443 rules test --live`."""
    import asyncio

    from port443.check import CheckSettings
    from port443.cli_check import connect_to_mappings
    from port443.livetest import live_test
    from port443.probe import make_ssl_context
    from port443.ruleset import load_rulesets

    try:
        connect_to = connect_to_mappings(args.resolve, args.connect_to)
        if args.concurrency < 1 or args.timeout <= 0:
            raise ValueError("--concurrency and --timeout must be positive")
        context = make_ssl_context(cafile=str(args.ca_bundle) if args.ca_bundle else None)
    except (ValueError, OSError) as e:
        cli._error(str(e))
        return 2
    loaded = load_rulesets(paths)
    cli.warn_rule_errors(loaded.errors)
    settings = CheckSettings(context, connect_to, args.timeout)
    with cli.progress_bar("Testing rulesets live") as progress:
        results = asyncio.run(
            live_test(loaded.rulesets, settings, concurrency=args.concurrency, progress=progress)
        )
    broken = [r for r in results if not r.ok]
    if args.json:
        for r in results:
            cli.print_json(r.as_json())
    else:
        _print_live(results, broken)
    return 1 if broken or loaded.errors else 0


def _print_live(results: list[Any], broken: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if broken:
        table = Table(title="Broken rewrites", title_justify="left")
        for column in ("ruleset", "test URL", "rewritten to", "why"):
            table.add_column(column, overflow="fold")
        for r in broken:
            table.add_row(r.ruleset, r.url, r.rewritten or "", r.reason)
        console.print(table)
    rulesets = len({r.ruleset for r in results})
    console.print(
        f"{len(results)} test URLs of {rulesets} rulesets: {len(results) - len(broken)} fine, {len(broken)} broken"
    )
