"""Write a `Ruleset` as the YAML text of one ruleset file: stable key order, quoting only where YAML needs it.

Hand-written rather than `yaml.dump`, so that lists are indented, notes are literal blocks and regexes stay
readable (no doubled backslashes); `parse_ruleset(format_ruleset(r)) == r` holds for every ruleset. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import yaml

from port443.engine.ruleset import Ruleset

_STR_TAG = "tag:yaml.org,2002:str"
# Characters outside those YAML may print as they are, so they are escaped in a double-quoted scalar: controls,
# the YAML 1.1 line breaks NEL, LS and PS (which PyYAML would fold) and the byte-order mark.
_UNSAFE_CHAR = re.compile(
    "[^\\x20-\\x7e\\xa0-\\u2027\\u202a-\\ud7ff\\ue000-\\ufefe\\uff00-\\ufffd\\U00010000-\\U0010ffff]"
)
# A plain (unquoted) scalar must not start with an indicator, nor contain ": " or " #", nor end in ":".
_PLAIN_START = frozenset("-?:,[]{}#&*!|>'\"%@` \t")
_PLAIN_BREAKERS = re.compile(r": | #|:$")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\0": "\\0", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
_DOUBLE_QUOTED_ESCAPE = re.compile(r'[\\"]|' + _UNSAFE_CHAR.pattern)
# PyYAML's own decision of what a plain scalar means; typed here because types-PyYAML leaves it untyped.
_resolve: Callable[[type[yaml.Node], str, tuple[bool, bool]], str] = yaml.resolver.Resolver().resolve


def format_ruleset(ruleset: Ruleset) -> str:
    """Return the YAML text for `ruleset`, keys in the documented order, empty optional fields left out."""
    lines = [f"name: {_scalar(ruleset.name)}"]
    for key, value in (("default_off", ruleset.default_off), ("platform", ruleset.platform)):
        if value is not None:
            lines.append(f"{key}: {_scalar(value)}")
    if ruleset.notes is not None:
        lines.append(f"notes: {_block(ruleset.notes)}")
    lines += _sequence("targets", ruleset.targets)
    lines.append("rules:")
    for rule in ruleset.rules:
        lines += [f"  - from: {_scalar(rule.from_)}", f"    to: {_scalar(rule.to)}"]
    lines += _sequence("exclusions", ruleset.exclusions)
    if ruleset.securecookies:
        lines.append("securecookies:")
        for cookie in ruleset.securecookies:
            lines += [f"  - host: {_scalar(cookie.host)}", f"    name: {_scalar(cookie.name)}"]
    lines += _sequence("tests", ruleset.tests)
    return "\n".join(lines) + "\n"


def _sequence(key: str, items: Iterable[str]) -> list[str]:
    lines = [f"  - {_scalar(item)}" for item in items]
    return [f"{key}:", *lines] if lines else []


def _scalar(value: str) -> str:
    """Spell one string so that YAML reads it back unchanged and as a string (never a bool, number or null)."""
    if _UNSAFE_CHAR.search(value):
        return _double_quoted(value)
    if _is_plain(value):
        return value
    if "\\" not in value and '"' not in value:
        return f'"{value}"'
    return "'" + value.replace("'", "''") + "'"  # single quotes keep a regex's backslashes as they are


def _is_plain(value: str) -> bool:
    if not value or value[0] in _PLAIN_START or value[-1] in " \t" or value.startswith(("---", "...")):
        return False
    if _PLAIN_BREAKERS.search(value):
        return False
    # `yes`, `1e3`, `~`, `2021-06-09`, `<<` and friends would come back as something other than text.
    return _resolve(yaml.ScalarNode, value, (True, False)) == _STR_TAG


def _double_quoted(value: str) -> str:
    def escape(m: re.Match[str]) -> str:
        c = m.group()
        if c in _ESCAPES:
            return _ESCAPES[c]
        code = ord(c)
        return (
            f"\\x{code:02x}" if code < 0x100 else (f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        )

    return '"' + _DOUBLE_QUOTED_ESCAPE.sub(escape, value) + '"'


def _block(text: str) -> str:
    """Spell multi-line text as a literal block (`|`), which keeps every line as written; else as a scalar."""
    body = text.rstrip("\n")
    if "\n" not in text or not _literal_ok(body):
        return _scalar(text)
    trailing = len(text) - len(body)
    chomping = "-" if trailing == 0 else ("" if trailing == 1 else "+")
    # YAML takes the first line's indentation as the block's, unless an indentation indicator says otherwise.
    indentation = "2" if body.lstrip("\n")[0] in " \t" else ""
    lines = [f"  {line}" if line else "" for line in body.split("\n")]
    return "\n".join([f"|{indentation}{chomping}", *lines, *[""] * (trailing - 1)])


def _literal_ok(body: str) -> bool:
    # Trailing white space is invisible and easily lost to an editor, so such text is quoted instead.
    if not body.strip("\n") or " \n" in body or "\t\n" in body or body[-1] in " \t":
        return False
    return not _UNSAFE_CHAR.search(body.replace("\t", "").replace("\n", ""))
