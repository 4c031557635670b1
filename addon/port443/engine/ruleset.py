"""The ruleset model and its YAML form: parsing, validation with file:line locations, and loading from disk.

`parse_ruleset` is pure (text in, model out); only the `load_*` functions read files. Validation collects
every problem of a file before raising, and never lets one bad file stop the others from loading.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from port443.engine import jsregex
from port443.errors import Problem, RulesetError

try:  # the C loader is several times faster on the 23k-file corpus
    _Base: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Base = yaml.SafeLoader


class _Loader(_Base):  # type: ignore[misc]
    """Safe loading where every plain scalar is text, except an empty value (null).

    Every field of a ruleset is text, and YAML 1.1 would silently turn a ruleset named `Off` or `No` into a
    boolean, or `1.10` into a number.
    """

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag == "tag:yaml.org,2002:null"]
        for first, resolvers in _Base.yaml_implicit_resolvers.items()
    }


#: The `default_off` value that HTTPS Everywhere treats as "on": rules a user wrote for themselves.
USER_RULE = "user rule"
RULESET_SUFFIXES = (".yaml", ".yml")

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

    @property
    def default_active(self) -> bool:
        """Active unless switched off, or limited to a platform (HTTPS Everywhere's `rules.js` semantics)."""
        off = bool(self.default_off) and self.default_off != USER_RULE
        return not off and not self.platform


def parse_ruleset(text: str, source: str = "<string>") -> Ruleset:
    """Parse and validate one ruleset from YAML text.

    Raises:
        RulesetError: listing every problem found, each with its line in `source`.
    """
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(e, "problem", None) or str(e)
        if "mapping values are not allowed" in reason:
            reason += "; quote a value that contains ': ' or ends with ':', such as \"^http:\""
        raise RulesetError([Problem(source, line, "", f"invalid YAML ({reason})")]) from e
    problems: list[tuple[tuple[str | int, ...], str]] = []
    ruleset = _build(data, source, problems)
    if problems or ruleset is None:
        lines = _line_finder(text)
        found = [Problem(source, lines(path), _field_name(path), msg) for path, msg in problems]
        raise RulesetError(sorted(found, key=lambda p: p.line or 0))
    return ruleset


def load_ruleset(path: str | os.PathLike[str]) -> Ruleset:
    """Read and parse one ruleset file.

    Raises:
        RulesetError: when the file cannot be read or is invalid.
    """
    source = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RulesetError([Problem(source, None, "", f"cannot read ({e})")]) from e
    return parse_ruleset(text, source)


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


def _build(data: Any, source: str, problems: _Problems) -> Ruleset | None:
    """Check `data` field by field, appending (path, message) problems; return the model if it is valid."""
    if not isinstance(data, dict):
        problems.append(((), f"a ruleset must be a mapping of keys, not {_kind(data)}"))
        return None
    for key in data:
        if key not in _KEYS:
            problems.append(((str(key),), f"unknown key {key!r} (known keys: {', '.join(_KEYS)})"))
    for key in _REQUIRED:
        if key not in data:
            problems.append(((), f"missing required key {key!r}"))
    name = _text(data, "name", problems, required=True)
    targets = tuple(_items(data, "targets", problems, _check_target, required=True))
    rules = tuple(_items(data, "rules", problems, _check_rule, required=True))
    exclusions = tuple(_items(data, "exclusions", problems, _check_exclusion))
    cookies = tuple(_items(data, "securecookies", problems, _check_cookie))
    tests = tuple(_items(data, "tests", problems, _check_test))
    default_off = _text(data, "default_off", problems)
    platform = _text(data, "platform", problems)
    notes = _text(data, "notes", problems, allow_empty=True)
    if problems or name is None:
        return None
    return Ruleset(name, targets, rules, exclusions, cookies, tests, default_off, platform, notes, source)


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
            ((key,), f"must be text, not {_kind(value)} {value!r}" + ("" if required else "; quote it"))
        )
        return None
    if not value.strip() and not allow_empty:
        problems.append(((key,), "must not be empty"))
        return None
    return value


def _items(
    data: dict[str, Any], key: str, problems: _Problems, check: Any, *, required: bool = False
) -> Iterator[Any]:
    """Yield checked items of the list `data[key]`; `check(item, path, problems)` returns the model value."""
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
        checked = check(item, (key, i), problems)
        if checked is not None:
            yield checked


def _check_target(item: Any, path: tuple[str | int, ...], problems: _Problems) -> str | None:
    if not isinstance(item, str):
        problems.append((path, f"a target is a host name, not {_kind(item)} {item!r}"))
        return None
    problem = target_problem(item)
    if problem:
        problems.append((path, f"{problem}: {item!r}"))
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


def _regex(item: Any, path: tuple[str | int, ...], problems: _Problems) -> re.Pattern[str] | None:
    if not isinstance(item, str) or not item:
        problems.append((path, f"must be a regular expression, not {_kind(item)} {item!r}"))
        return None
    try:
        return jsregex.compile_pattern(item)
    except jsregex.TranslateError as e:
        problems.append((path, f"invalid regex {item!r} ({e})"))
        return None


def _check_rule(item: Any, path: tuple[str | int, ...], problems: _Problems) -> Rule | None:
    if not isinstance(item, dict):
        problems.append((path, f"a rule is a mapping with 'from' and 'to', not {_kind(item)}"))
        return None
    before = len(problems)
    for key in item:
        if key not in ("from", "to"):
            problems.append(((*path, str(key)), f"unknown key {key!r} (a rule has 'from' and 'to')"))
    for key in ("from", "to"):
        if key not in item:
            problems.append((path, f"missing {key!r}"))
    source, to = item.get("from"), item.get("to")
    if source == "^http:" and to == "https:":
        return Rule(source, to) if len(problems) == before else None
    pattern = _regex(source, (*path, "from"), problems) if "from" in item else None
    if "to" in item:
        if not isinstance(to, str):
            problems.append(((*path, "to"), f"must be text, not {_kind(to)}"))
        elif not to.startswith("https:"):
            problems.append(((*path, "to"), f"must start with 'https:' (port443 never downgrades): {to!r}"))
        elif pattern is not None:
            try:
                jsregex.translate_replacement(to, pattern.groups)
            except jsregex.TranslateError as e:
                problems.append(((*path, "to"), f"{e}: {to!r}"))
    if len(problems) > before:
        return None
    return Rule(str(source), str(to))


def _check_exclusion(item: Any, path: tuple[str | int, ...], problems: _Problems) -> str | None:
    return item if _regex(item, path, problems) is not None else None


def _check_cookie(item: Any, path: tuple[str | int, ...], problems: _Problems) -> SecureCookie | None:
    if not isinstance(item, dict):
        problems.append((path, f"a securecookie is a mapping with 'host' and 'name', not {_kind(item)}"))
        return None
    before = len(problems)
    for key in item:
        if key not in ("host", "name"):
            problems.append(
                ((*path, str(key)), f"unknown key {key!r} (a securecookie has 'host' and 'name')")
            )
    for key in ("host", "name"):
        if key not in item:
            problems.append((path, f"missing {key!r}"))
        else:
            _regex(item[key], (*path, key), problems)
    return SecureCookie(item["host"], item["name"]) if len(problems) == before else None


def _check_test(item: Any, path: tuple[str | int, ...], problems: _Problems) -> str | None:
    if not isinstance(item, str) or not item.startswith(("http://", "https://")):
        problems.append((path, f"a test is an http:// URL, not {item!r}"))
        return None
    return item


# --- locating problems --------------------------------------------------------------------------------------


def _field_name(path: Sequence[str | int]) -> str:
    """Render ('rules', 2, 'from') as 'rules[2].from'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _line_finder(text: str) -> Any:
    """Return path -> 1-based line, from PyYAML's node marks. Only used once a file is known to be bad."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:  # pragma: no cover - the text already parsed once
        root = None

    def line_of(path: Sequence[str | int]) -> int | None:
        node = root
        if node is None:
            return None
        best = node.start_mark.line + 1
        for part in path:
            node = _child(node, part)
            if node is None:
                break
            best = node.start_mark.line + 1
        return best

    return line_of


def _child(node: yaml.Node, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == part:
                # A bad key is reported where the key is; a bad value where the value starts.
                found: yaml.Node = (
                    value if value.start_mark.line == key.start_mark.line or value.value else key
                )
                return found
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        child: yaml.Node = node.value[part]
        return child
    return None
