"""Inert text: every control, format and separator character made visible; CSV cells that are no formulas."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from port443.proxy.inert import csv_cell, visible

SHOWN_AS_ESCAPES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def test_every_control_format_and_separator_character_is_escaped() -> None:
    missed = [
        f"U+{code:04X}"
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in SHOWN_AS_ESCAPES and visible(chr(code)) == chr(code)
    ]
    assert missed == [], f"add to inert._CONTROL (Unicode {unicodedata.unidata_version})"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[2J\x1b]0;title\x07", "\\x1b[2J\\x1b]0;title\\x07"),  # clear screen, window title
        ("a\nb\rc\td", "a\\x0ab\\x0dc\\x09d"),  # no fake lines or columns
        ("\x7f\x9b2J", "\\x7f\\x9b2J"),  # DEL, and CSI as one C1 character
        ("invoice\u202egpj.exe", "invoice\\u202egpj.exe"),  # right-to-left override
        ("pay\u200bpal\ufeff", "pay\\u200bpal\\ufeff"),  # zero-width characters
        ("tag\U000e0041", "tag\\U000e0041"),
        ("/bad\udcff", "/bad\\udcff"),
        ("[red]x[/red] :smiley: é 中文 😀", "[red]x[/red] :smiley: é 中文 😀"),  # markup is rich's concern
    ],
)
def test_visible(text: str, shown: str) -> None:
    assert visible(text) == shown


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+2*cmd.test", "'=1+2*cmd.test"),
        ("+sum.test", "'+sum.test"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\\x09=1"),
        ("\r=1", "'\\x0d=1"),
        ("a.test", "a.test"),
        ("/path=1", "/path=1"),
        ("x\x1b[2J", "x\\x1b[2J"),
        (-5, -5),  # numbers stay numbers
        (3, 3),
    ],
)
def test_csv_cell(value: object, cell: object) -> None:
    assert csv_cell(value) == cell
