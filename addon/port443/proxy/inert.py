"""Text from traffic made inert for people: control characters shown as escapes, CSV cells that are no formulas.

Hosts, paths, reasons and details come from clients and from probed sites, so they may carry terminal escape
sequences, bidi overrides or spreadsheet formulas. Only presentation uses these; what is stored and JSON
stay exact. Rich markup is the CLI's concern (cli/render.py puts these strings into rich `Text`).
"""

from __future__ import annotations

import re

# Every code point of Unicode's categories Cc (C0, DEL, C1), Cf (format: bidi overrides and isolates,
# zero-width characters, the BOM, tag characters), Cs (lone surrogates, from undecodable bytes), Zl and Zp
# (line and paragraph separators), as of Unicode 15.1. Terminals act on C0 and C1; the others reorder or
# hide text ("Trojan Source", CVE-2021-42574) or split lines. The unit test checks the list against
# `unicodedata`, so a newer Unicode cannot add one unnoticed.
_CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f]"
)

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a CSV cell as a formula (OWASP's "CSV injection" list)."""


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def visible(text: str) -> str:
    """`text` with every control, format and separator character replaced by a visible escape (`\\x1b`)."""
    return _CONTROL.sub(_escape, text)


def csv_cell(value: object) -> object:
    """A CSV value a spreadsheet shows as text: controls made visible, a leading formula character quoted.

    Numbers stay numbers; a string starting with `= + - @`, a tab or CR gets a leading `'`.
    """
    if not isinstance(value, str):
        return value
    if value.startswith(_FORMULA_START):
        value = "'" + value
    return visible(value)


def loggable(text: str, limit: int = 300) -> str:
    """Text from traffic, fit for a log line: control characters shown, not obeyed, and its length bounded."""
    return visible(text if len(text) <= limit else text[:limit] + "…")
