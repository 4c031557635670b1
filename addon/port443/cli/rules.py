"""`port443 rewrite` and `port443 rules ...`: the rule engine's commands (a stable contract for scripts)."""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Iterator
from json.encoder import encode_basestring_ascii
from pathlib import Path

from port443.cli import common, render
from port443.engine.cache import load_rules
from port443.engine.rewrite import Outcome, Rewrite, rewrite_url, secure_cookie
from port443.engine.shipped import shipped_rules_path
from port443.errors import UsageError
from port443.proxy.inert import visible

REWRITE_HELP = """Rewrite each URL as the rulesets say. Plain output: the resulting URL per line (the input unchanged
when no rule applies). --json: {"url", "result", "ruleset", "outcome"} per line, result null when unchanged."""


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `rules` subcommands."""
    p = sub.add_parser(
        "securecookie", help="decide the Secure flag for cookies: DOMAIN<TAB>NAME per line on stdin"
    )
    p.add_argument("--json", action="store_true", help='{"domain", "name", "secure", "ruleset"} per line')
    common.add_rule_options(p)
    p.set_defaults(handler=cmd_securecookie)

    p = sub.add_parser("lookup", help="which rulesets cover a host, active or not, and why")
    p.add_argument("host")
    p.add_argument("--json", action="store_true", help="a JSON list instead of a table")
    common.add_rule_options(p)
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
    common.add_network_options(live, timeout=10.0)
    p.set_defaults(handler=cmd_test)

    p = sub.add_parser("import", help="convert HTTPS Everywhere XML rulesets (folder or .tar.xz) into YAML")
    p.add_argument("source", type=Path, help="folder of .xml rulesets, or a .tar.xz/.tar.gz archive of them")
    p.add_argument("dest", type=Path, help="folder to write the .yaml rulesets into")
    p.set_defaults(handler=cmd_import)


def _input_lines(args: list[str]) -> Iterator[str]:
    if args:
        yield from args
        return
    for line in sys.stdin:
        yield line.rstrip("\r\n")


def cmd_rewrite(args: argparse.Namespace) -> int:
    """`port443 rewrite`."""
    index = common.load_index_for(args)
    # What is loaded now (the index, the modules: some 180k objects) lives as long as the command, so the
    # collector need not walk it again every few thousand URLs; that took a tenth of the time.
    gc.freeze()
    write = sys.stdout.write  # a line per URL as it comes, as before: stdout buffers the writes
    line = _json_line if args.json else _plain_line
    names: dict[str | None, str] = {None: "null"}  # ruleset name -> its JSON, each encoded once
    for url in _input_lines(args.urls):
        write(line(url, rewrite_url(url, index), names))
    return 0


def _plain_line(url: str, result: Rewrite, names: dict[str | None, str]) -> str:
    return (result.url or url) + "\n"


# One --json line, spelled as `common.print_json` spells the same object (`json.dumps`, ensure_ascii, default
# separators; tests/unit/cli/test_rules.py compares them) but built from pre-encoded pieces, since encoding
# the dict costs half as much as rewriting the URL. encode_basestring_ascii is json's own string encoder.
# Outcomes are told apart by identity: an Enum member's hash and `.value` run Python code.
_UPGRADED, _NO_MATCH, _EXCLUDED = Outcome.UPGRADED, Outcome.NO_MATCH, Outcome.EXCLUDED


def _json_line(url: str, result: Rewrite, names: dict[str | None, str]) -> str:
    outcome, new, ruleset = result
    name = names.get(ruleset)
    if name is None:
        name = names[ruleset] = encode_basestring_ascii(str(ruleset))
    quoted = encode_basestring_ascii(url)
    if outcome is _UPGRADED and new is not None:
        return f'{{"url": {quoted}, "result": {encode_basestring_ascii(new)}, "ruleset": {name}, "outcome": "upgraded"}}\n'
    if outcome is _NO_MATCH:
        return f'{{"url": {quoted}, "result": null, "ruleset": null, "outcome": "no-match"}}\n'
    if outcome is _EXCLUDED:  # the ruleset did not rewrite the URL: it is named as the one that excluded it
        return f'{{"url": {quoted}, "result": null, "ruleset": null, "outcome": "excluded", "excluded_by": {name}}}\n'
    result_json = "null" if new is None else encode_basestring_ascii(new)
    return f'{{"url": {quoted}, "result": {result_json}, "ruleset": {name}, "outcome": "{outcome.value}"}}\n'


def cmd_securecookie(args: argparse.Namespace) -> int:
    """`port443 rules securecookie`."""
    index = common.load_index_for(args)
    bad = 0
    for number, line in enumerate(_input_lines([]), 1):
        domain, tab, name = line.partition("\t")
        if not tab:
            common.error(f"<stdin>:{number}: expected DOMAIN<TAB>NAME, got {line!r}")
            bad += 1
            continue
        decision = secure_cookie(domain, name, index)
        if args.json:
            common.print_json(
                {"domain": domain, "name": name, "secure": decision.secure, "ruleset": decision.ruleset}
            )
        else:
            print(f"{domain}\t{name}\t{'secure' if decision.secure else 'leave'}")
    return 1 if bad else 0


def cmd_lookup(args: argparse.Namespace) -> int:
    """`port443 rules lookup HOST`."""
    from port443.engine.lookup import explain_host

    index = common.load_index_for(args)
    rows = explain_host(args.host, index)
    if args.json:
        common.print_json(rows)
    else:
        render.print_lookup(args.host, rows)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """`port443 rules validate`."""
    paths = args.paths or [shipped_rules_path()]
    with common.progress_bar("Validating") as progress:
        loaded = load_rules(paths, cache_dir=None, progress=progress)
    problems = [p for e in loaded.errors for p in e.problems]
    for p in problems:
        if args.json:
            common.print_json({"file": p.source, "line": p.line, "field": p.field, "problem": p.message})
        else:
            print(visible(str(p)))  # values from rule files: no terminal control gets through
    for w in loaded.warnings:  # valid, but worth a look (a pattern that could backtrack badly, say)
        if args.json:
            common.print_json({"file": w.source, "line": w.line, "field": w.field, "warning": w.message})
        else:
            print(visible(f"warning: {w}"))
    bad = len(loaded.errors)
    print(
        f"{loaded.files} files: {loaded.files - bad} valid, {bad} invalid ({len(problems)} problems, "
        f"{len(loaded.warnings)} warnings)",
        file=sys.stderr,
    )
    return 1 if bad else 0


def cmd_test(args: argparse.Namespace) -> int:
    """`port443 rules test`."""
    from port443.engine.selftest import test_rulesets

    paths = args.paths or [shipped_rules_path()]
    if args.live:
        return _live(args, paths)
    with common.progress_bar("Testing rulesets") as progress:
        report = test_rulesets(paths, progress=progress)
    common.warn_rule_errors(report.errors)
    if args.json:
        for result in report.results:
            if result.broken or (args.verbose and result.uncovered):
                common.print_json(result.as_json())
    else:
        render.print_selftest(report, verbose=args.verbose)
    return 1 if report.broken or report.errors else 0


def cmd_import(args: argparse.Namespace) -> int:
    """`port443 rules import`."""
    from port443.engine.importer import import_rules

    with common.progress_bar("Importing") as progress:
        report = import_rules(args.source, args.dest, progress=progress)
    for problem in report.errors:
        common.error(visible(str(problem)))
    print(report.summary(), file=sys.stderr)
    return 1 if report.errors else 0


def _live(args: argparse.Namespace, paths: list[Path]) -> int:
    """`port443 rules test --live`."""
    import asyncio

    from port443.check.live import live_test
    from port443.check.site import CheckSettings
    from port443.engine.ruleset import load_rulesets

    if args.concurrency < 1:
        raise UsageError(f"--concurrency {args.concurrency}: must be at least 1")
    network = common.network_settings(args)
    loaded = load_rulesets(paths)
    common.warn_rule_errors(loaded.errors)
    settings = CheckSettings(network.context, network.connect_to, network.timeout)
    with common.progress_bar("Testing rulesets live") as progress:
        results = asyncio.run(
            live_test(loaded.rulesets, settings, concurrency=args.concurrency, progress=progress)
        )
    broken = [r for r in results if not r.ok]
    if args.json:
        for r in results:
            common.print_json(r.as_json())
    else:
        render.print_live(results, broken)
    return 1 if broken or loaded.errors else 0
