"""The ruleset model and its YAML form: parsing, validation with file:line locations, and loading from disk.

`parse_ruleset` is pure (text in, model out); only the `load_*` functions read files. Validation collects
every problem of a file before raising, and never lets one bad file stop the others from loading.

A file costs bounded time and memory, whoever wrote it: at most MAX_FILE_SIZE (2 MiB, four times the
largest shipped file, Bitly_branded_short_domains.yaml at 495 KiB; parsing 2 MiB takes about 0.2 s), no YAML
anchors or aliases (a 450-byte alias bomb expands to gigabytes, and the format has no use for them), at most
MAX_REGEXES regexes and MAX_COMPILE_COST of compiling per ruleset (see `pattern.compile_cost`: the shipped
maximum is JS.org's 17,898), and problems quote at most ~100 characters of a value. Patterns that can
backtrack catastrophically (nested quantifiers) are accepted, since the engine bounds them, but warned about.
Longer than most modules because the model and its validation are one contract: every field's check sits next
to the field. Reading the YAML itself, and placing problems on their lines, is `yaml_in`.
"""

from __future__ import annotations

import os
import re
import reprlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from port443.engine import jsregex, pattern, pattern_base, syntax
from port443.errors import Problem, RulesetError

#: The `default_off` value that HTTPS Everywhere treats as "on": rules a user wrote for themselves.
USER_RULE = "user rule"
RULESET_SUFFIXES = (".yaml", ".yml")
MAX_FILE_SIZE = 2 << 20
"""Bytes (characters, for text) a ruleset file may have."""
MAX_REGEXES = 1000
"""Regexes one ruleset may have (`from`s, exclusions, securecookie hosts and names); the corpus has 430 at most."""
MAX_COMPILE_COST = pattern_base.LOOKUP_COMPILE_COST
"""Estimated microseconds compiling one ruleset's regexes may take (it happens on first use, in the proxy)."""

_KEYS = (
    "name",
    "targets",
    "rules",
    "exclusions",
    "securecookies",
    "tests",
    "default_off",
    "platform",
    "notes",
)
_REQUIRED = ("name", "targets", "rules")
_LABEL = r"(?:[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


@dataclass(frozen=True, slots=True)
class Rule:
    """Rewrite URLs that `from_` (a JavaScript regex) matches to `to` (with `$1`-style references)."""

    from_: str
    to: str

    @property
    def trivial(self) -> bool:
        """The plain scheme upgrade, which needs no regex at all."""
        return self.from_ == "^http:" and self.to == "https:"


@dataclass(frozen=True, slots=True)
class SecureCookie:
    """Cookies whose domain matches `host` and whose name matches `name` (both regexes) get the Secure flag."""

    host: str
    name: str


@dataclass(frozen=True, slots=True)
class Ruleset:
    """One ruleset file: the hosts it covers, how it rewrites them, and what it leaves alone."""

    name: str
    targets: tuple[str, ...]
    rules: tuple[Rule, ...]
    exclusions: tuple[str, ...] = ()
    securecookies: tuple[SecureCookie, ...] = ()
    tests: tuple[str, ...] = ()
    default_off: str | None = None
    platform: str | None = None
    notes: str | None = None
    source: str = field(default="", compare=False)


def parse_ruleset(text: str, source: str = "<string>") -> Ruleset:
    """Parse and validate one ruleset from YAML text.

    Raises:
        RulesetError: listing every problem found, each with its line in `source`.
    """
    return parse_ruleset_warnings(text, source)[0]


def parse_ruleset_warnings(text: str, source: str = "<string>") -> tuple[Ruleset, list[Problem]]:
    """Parse and validate one ruleset, also returning what is valid but risky (nested quantifiers).

    Raises:
        RulesetError: listing every problem found, each with its line in `source`.
    """
    if len(text) > MAX_FILE_SIZE:
        raise RulesetError([oversized(source, len(text), "characters")])
    # Deferred: a start from the compiled cache or the shipped seed parses no YAML, so it does not load PyYAML.
    from port443.engine import yaml_in

    data = yaml_in.load(text, source)
    problems: _Problems = []
    warnings: _Problems = []
    ruleset = _build(data, source, problems, warnings)
    if problems or ruleset is None:
        raise RulesetError(yaml_in.locate(text, source, problems))
    return ruleset, yaml_in.locate(text, source, warnings) if warnings else []


def oversized(source: str, size: int, unit: str = "bytes") -> Problem:
    """The problem of a file above MAX_FILE_SIZE."""
    return Problem(
        source,
        None,
        "",
        f"the file has {size:,} {unit}; a ruleset file may have at most {MAX_FILE_SIZE:,} (2 MiB): "
        "split it into several rulesets",
    )


def load_ruleset(path: str | os.PathLike[str]) -> Ruleset:
    """Read and parse one ruleset file.

    Raises:
        RulesetError: when the file cannot be read, is too big, or is invalid.
    """
    source = os.fspath(path)
    return parse_ruleset(read_ruleset_text(source), source)


def read_ruleset_text(path: str) -> str:
    """The text of a ruleset file, read no further than MAX_FILE_SIZE.

    Raises:
        RulesetError: when the file cannot be read, is not UTF-8 or is too big.
    """
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_SIZE + 1)
            if len(data) > MAX_FILE_SIZE:
                raise RulesetError([oversized(path, os.fstat(f.fileno()).st_size)])
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RulesetError([Problem(path, None, "", f"cannot read ({e})")]) from e


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What loading many files gave: the good rulesets in order, and one error per bad file."""

    rulesets: tuple[Ruleset, ...]
    errors: tuple[RulesetError, ...]


def ruleset_files(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Expand files and directories into ruleset files, in load order.

    Within a directory, files are taken in code-point order of their relative path, the order HTTPS Everywhere
    used within a target; the given paths keep their own order (user rules before shipped ones).

    Raises:
        RulesetError: for a path that does not exist.
    """
    found: list[str] = []
    for raw in paths:
        path = os.fspath(raw)
        if os.path.isdir(path):
            found.extend(os.path.join(path, rel) for rel in sorted(_walk(path)))
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise RulesetError([Problem(path, None, "", "no such file or directory")])
    return found


def _walk(directory: str) -> Iterator[str]:
    """Relative paths ('/'-separated) of the ruleset files below `directory`, hidden ones skipped."""
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith((".", "__"))]
        rel = os.path.relpath(root, directory)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        for name in files:
            if name.endswith(RULESET_SUFFIXES) and not name.startswith("."):
                yield prefix + name


def load_rulesets(paths: Iterable[str | os.PathLike[str]]) -> LoadResult:
    """Load every ruleset under `paths`; a bad file is reported and skipped, never fatal for the rest."""
    rulesets: list[Ruleset] = []
    errors: list[RulesetError] = []
    for path in ruleset_files(paths):
        try:
            rulesets.append(load_ruleset(path))
        except RulesetError as e:
            errors.append(e)
    return LoadResult(tuple(rulesets), tuple(errors))


# --- validation -------------------------------------------------------------------------------------------

_Problems = list[tuple[tuple[str | int, ...], str]]
_SHOW = reprlib.Repr(maxstring=100, maxother=100, maxlist=4, maxdict=4, maxlevel=2)


def _show(value: Any) -> str:
    """A value for a message: its repr, at most about 100 characters (a value may be megabytes long)."""
    return _SHOW.repr(value)


def _clip(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Checks:
    """What validating one file collects: problems (the file is refused) and warnings (it is risky)."""

    def __init__(self, problems: _Problems, warnings: _Problems) -> None:
        self.problems = problems
        self.warnings = warnings
        self.regexes: list[tuple[str, pattern.Facts]] = []
        """Every valid regex but the exclusions, which compile as one join, and their facts."""
        self.exclusions: list[tuple[str, pattern.Facts]] = []


def _build(data: Any, source: str, problems: _Problems, warnings: _Problems | None = None) -> Ruleset | None:
    """Check `data` field by field, appending (path, message) problems; return the model if it is valid."""
    if not isinstance(data, dict):
        problems.append(((), f"a ruleset must be a mapping of keys, not {_kind(data)}"))
        return None
    checks = _Checks(problems, [] if warnings is None else warnings)
    for key in data:
        if key not in _KEYS:
            problems.append(
                ((_clip(str(key)),), f"unknown key {_show(key)} (known keys: {', '.join(_KEYS)})")
            )
    for key in _REQUIRED:
        if key not in data:
            problems.append(((), f"missing required key {key!r}"))
    count = sum(len(v) * (2 if k == "securecookies" else 1) for k, v in data.items() if isinstance(v, list))
    if count > MAX_REGEXES + len(data.get("targets") or ()) + len(data.get("tests") or ()):
        # Before compiling any of them: 100,000 rules would take seconds just to validate.
        problems.append(
            (("rules",), f"the ruleset has more than {MAX_REGEXES:,} regexes: split it into several rulesets")
        )
        return None
    name = _text(data, "name", problems, required=True)
    targets = tuple(_items(data, "targets", checks, _check_target, required=True))
    rules = tuple(_items(data, "rules", checks, _check_rule, required=True))
    exclusions = tuple(_items(data, "exclusions", checks, _check_exclusion))
    cookies = tuple(_items(data, "securecookies", checks, _check_cookie))
    tests = tuple(_items(data, "tests", checks, _check_test))
    default_off = _text(data, "default_off", problems)
    platform = _text(data, "platform", problems)
    notes = _text(data, "notes", problems, allow_empty=True)
    _check_size(checks)
    if problems or name is None:
        return None
    return Ruleset(name, targets, rules, exclusions, cookies, tests, default_off, platform, notes, source)


def _check_size(checks: _Checks) -> None:
    """Bound what compiling the ruleset on first use costs: it happens in the proxy, while clients wait."""
    count = len(checks.regexes) + len(checks.exclusions)
    if count > MAX_REGEXES:
        checks.problems.append(
            (
                ("rules",),
                f"the ruleset has {count:,} regexes; at most {MAX_REGEXES:,}: split it into several rulesets",
            )
        )
        return
    cost = pattern.compile_cost([s for s, _ in checks.regexes], [f for _, f in checks.regexes])
    cost += pattern.compile_cost(
        [s for s, _ in checks.exclusions], [f for _, f in checks.exclusions], joined=True
    )
    if len(checks.exclusions) > 1 and cost <= MAX_COMPILE_COST:
        try:  # each exclusion is fine alone; the index compiles them joined
            pattern.compile_any([s for s, _ in checks.exclusions], [f for _, f in checks.exclusions])
        except jsregex.TranslateError as e:
            checks.problems.append((("exclusions",), f"the exclusions together are {_clip(str(e), 200)}"))
    if cost > MAX_COMPILE_COST:
        checks.problems.append(
            (
                ("rules",),
                f"the ruleset's regexes would take about {cost / 1000:.0f} ms to compile, at most "
                f"{MAX_COMPILE_COST / 1000:.0f} ms (about 1 µs per character, 8 for lookaheads): "
                "split it into several rulesets",
            )
        )


_KINDS = {
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "text",
    list: "a list",
    dict: "a mapping",
}


def _kind(value: Any) -> str:
    return "nothing" if value is None else _KINDS.get(type(value), f"a {type(value).__name__}")


def _text(
    data: dict[str, Any], key: str, problems: _Problems, *, required: bool = False, allow_empty: bool = False
) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append(
            ((key,), f"must be text, not {_kind(value)} {_show(value)}" + ("" if required else "; quote it"))
        )
        return None
    if not value.strip() and not allow_empty:
        problems.append(((key,), "must not be empty"))
        return None
    return value


def _items(
    data: dict[str, Any], key: str, checks: _Checks, check: Any, *, required: bool = False
) -> Iterator[Any]:
    """Yield checked items of the list `data[key]`; `check(item, path, checks)` returns the model value."""
    problems = checks.problems
    value = data.get(key)
    if value is None:
        if required and key in data:
            problems.append(((key,), "must be a non-empty list"))
        return
    if not isinstance(value, list) or (required and not value):
        problems.append(
            ((key,), f"must be a non-empty list, not {_kind(value)}" if value else "must not be empty")
        )
        return
    for i, item in enumerate(value):
        checked = check(item, (key, i), checks)
        if checked is not None:
            yield checked


def _check_target(item: Any, path: tuple[str | int, ...], checks: _Checks) -> str | None:
    if not isinstance(item, str):
        checks.problems.append((path, f"a target is a host name, not {_kind(item)} {_show(item)}"))
        return None
    problem = target_problem(item)
    if problem:
        checks.problems.append((path, f"{problem}: {_show(item)}"))
        return None
    return item


def target_problem(target: str) -> str | None:
    """Say what is wrong with a target host pattern, or None if it is fine.

    Lookups are exact string matches on lower-case host names, so anything else could never match.
    """
    if target != target.lower():
        return "targets must be lower-case (host names are compared in lower case)"
    if target.endswith("."):
        return "a target must not end with a dot"
    if ":" in target or "/" in target:
        return "a target is a host name only, without scheme, port or path"
    if not target.isascii():
        return "an internationalised name must be written in its ASCII (xn--) form"
    stars = target.count("*")
    if stars > 1:
        return "only one wildcard is allowed"
    host = target
    if stars == 1:
        if target.startswith("*."):
            host = target[2:]
            if "." not in host:
                return "a left wildcard needs at least two more labels (*.example.com, not *.com)"
        elif target.endswith(".*"):
            host = target[:-2]
        else:
            return "the wildcard must be the whole first label (*.example.com) or the whole last one (www.example.*)"
    if not _HOST.fullmatch(host):
        return "not a valid host name"
    return None


def _regex(
    item: Any, path: tuple[str | int, ...], checks: _Checks, *, joined: bool = False
) -> pattern_base.Pattern | None:
    """Compile a regex with the engine the proxy will run it with, and warn about catastrophic backtracking."""
    if not isinstance(item, str) or not item:
        checks.problems.append((path, f"must be a regular expression, not {_kind(item)} {_show(item)}"))
        return None
    try:
        compiled = pattern.compile_js(item, capture=not joined)
        spans = syntax.nested_quantifiers(pattern.tree_of(item))
    except jsregex.TranslateError as e:
        reason = str(e)
        try:  # a syntax error reads best in the words of Python's `re`; a limit of the engines, in theirs
            jsregex.compile_pattern(item)
        except jsregex.TranslateError as syntax_error:
            reason = str(syntax_error)
        checks.problems.append((path, f"invalid regex {_show(item)} ({_clip(reason, 200)})"))
        return None
    except syntax.PatternSyntaxError:
        spans = []  # the engines accept what the analysis does not understand: nothing to warn about
    facts = pattern.facts_of(item)
    (checks.exclusions if joined else checks.regexes).append((item, facts))
    for start, end in spans:
        engine = "under a time budget" if facts.backtracking else "in linear time"
        checks.warnings.append(
            (
                path,
                f"nested quantifiers {_show(item[start:end])} can backtrack catastrophically (exponential "
                f"time in a backtracking engine like HTTPS Everywhere's); port443 runs this pattern {engine}, "
                "but rewrite it without a repetition inside a repetition",
            )
        )
    return compiled


def _check_rule(item: Any, path: tuple[str | int, ...], checks: _Checks) -> Rule | None:
    problems = checks.problems
    if not isinstance(item, dict):
        problems.append((path, f"a rule is a mapping with 'from' and 'to', not {_kind(item)}"))
        return None
    before = len(problems)
    for key in item:
        if key not in ("from", "to"):
            problems.append(
                ((*path, _clip(str(key))), f"unknown key {_show(key)} (a rule has 'from' and 'to')")
            )
    for key in ("from", "to"):
        if key not in item:
            problems.append((path, f"missing {key!r}"))
    source, to = item.get("from"), item.get("to")
    if source == "^http:" and to == "https:":
        return Rule(source, to) if len(problems) == before else None
    compiled = _regex(source, (*path, "from"), checks) if "from" in item else None
    if "to" in item:
        if not isinstance(to, str):
            problems.append(((*path, "to"), f"must be text, not {_kind(to)}"))
        elif not to.startswith("https:"):
            problems.append(
                ((*path, "to"), f"must start with 'https:' (port443 never downgrades): {_show(to)}")
            )
        elif compiled is not None:
            try:
                jsregex.translate_replacement(to, compiled.groups)
            except jsregex.TranslateError as e:
                problems.append(((*path, "to"), f"{e}: {_show(to)}"))
    if len(problems) > before:
        return None
    return Rule(str(source), str(to))


def _check_exclusion(item: Any, path: tuple[str | int, ...], checks: _Checks) -> str | None:
    return item if _regex(item, path, checks, joined=True) is not None else None


def _check_cookie(item: Any, path: tuple[str | int, ...], checks: _Checks) -> SecureCookie | None:
    problems = checks.problems
    if not isinstance(item, dict):
        problems.append((path, f"a securecookie is a mapping with 'host' and 'name', not {_kind(item)}"))
        return None
    before = len(problems)
    for key in item:
        if key not in ("host", "name"):
            problems.append(
                ((*path, _clip(str(key))), f"unknown key {_show(key)} (a securecookie has 'host' and 'name')")
            )
    for key in ("host", "name"):
        if key not in item:
            problems.append((path, f"missing {key!r}"))
        else:
            _regex(item[key], (*path, key), checks)
    return SecureCookie(item["host"], item["name"]) if len(problems) == before else None


def _check_test(item: Any, path: tuple[str | int, ...], checks: _Checks) -> str | None:
    if not isinstance(item, str) or not item.startswith(("http://", "https://")):
        checks.problems.append((path, f"a test is an http:// URL, not {_show(item)}"))
        return None
    return item
