"""JavaScript regex and replacement semantics carried over to Python `re`."""

from __future__ import annotations

import pytest

from port443.engine.jsregex import (
    TranslateError,
    compile_pattern,
    normalize_replacement,
    translate_pattern,
    translate_replacement,
)


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        (r"^http://a\.com/$", "http://a.com/\n", False),  # JS `$` is the very end
        (r"^http://a\.com/$", "http://a.com/", True),
        (r"a.b", "a\rb", False),  # JS `.` stops at \r, \u2028, \u2029
        (r"a.b", "a\u2028b", False),
        (r"a.b", "a-b", True),
        (r"^\d+$", "\u0661\u0662", False),  # Arabic-Indic digits are not \d in JS
        (r"^\w+$", "é", False),  # \w is ASCII in JS
        (r"\s", "\u00a0", True),  # ... but \s is Unicode
        (r"^\S$", "\u3000", False),
        (r"a{,2}", "a{,2}", True),  # `{,n}` is a literal in JS
        (r"a{,2}", "aa", False),
        (r"^a{2}$", "aa", True),
        (r"\e\/", "e/", True),  # identity escapes
        (r"[\w-.]+", "a-.b", True),  # `-` beside a class escape is literal
        (r"x[]", "x", False),  # empty class never matches
        (r"x[^]", "x\n", True),  # negated empty class matches anything
        (r"[[]", "[", True),
        (r"[a&&b]", "&", True),
        (r"(?<w>a)\k<w>", "aa", True),
        (r"\cJ", "\n", True),
        (r"\x41\u0042", "AB", True),
        (r"(?!www\.)", "abc", True),
    ],
)
def test_patterns_follow_javascript(pattern: str, text: str, matches: bool) -> None:
    assert bool(compile_pattern(pattern).search(text)) is matches


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("^http://(", "missing \\)"),
        ("[abc", "unterminated character class"),
        ("abc\\", "lone backslash"),
        ("(?<1x>a)", "invalid group name"),
        (r"[\S]", r"\\S inside a character class"),
    ],
)
def test_invalid_patterns_are_reported(pattern: str, message: str) -> None:
    with pytest.raises(TranslateError, match=message):
        compile_pattern(pattern)


def test_translation_is_idempotent_on_plain_patterns() -> None:
    assert translate_pattern(r"^http://(www\.)?example\.com/") == r"^http://(www\.)?example\.com/"


@pytest.mark.parametrize(
    ("to", "groups", "template"),
    [
        ("https://$1example.com/", 1, r"https://\g<1>example.com/"),
        ("https://$12.com/", 12, r"https://\g<12>.com/"),
        ("https://$012dialog.com/", 2, r"https://\g<1>2dialog.com/"),
        ("https://a.com/$$1", 1, "https://a.com/$1"),
        ("https://a.com/$&", 0, r"https://a.com/\g<0>"),
        ("https://a.com/\\x", 0, "https://a.com/\\\\x"),  # backslashes are literal in JS
    ],
)
def test_replacements_translate(to: str, groups: int, template: str) -> None:
    assert translate_replacement(to, groups) == template


@pytest.mark.parametrize(
    ("to", "groups", "message"),
    [
        ("https://$3/", 2, "does not have"),
        ("https://$0/", 1, "does not have"),
        ("https://$12dialog/", 2, "ambiguous"),
        ("https://$x/", 1, "stray"),
        ("https://$`/", 1, "not supported"),
    ],
)
def test_replacement_mistakes_are_refused(to: str, groups: int, message: str) -> None:
    with pytest.raises(TranslateError, match=message):
        translate_replacement(to, groups)


@pytest.mark.parametrize(
    ("to", "groups", "normal"),
    [
        ("https://demo.com/$1/", 0, "https://demo.com/$$1/"),  # literal in JS: no group 1
        ("https://www.uen.org/$2/", 1, "https://www.uen.org/$$2/"),
        ("https://$12dialog.com/", 2, "https://$012dialog.com/"),
        ("https://$1$2/", 2, "https://$1$2/"),
        ("https://a/$x", 1, "https://a/$$x"),
        ("https://a/$$", 1, "https://a/$$"),
    ],
)
def test_normalized_replacements_keep_their_javascript_meaning(to: str, groups: int, normal: str) -> None:
    assert normalize_replacement(to, groups) == normal
    translate_replacement(normal, groups)  # accepted now


def test_only_ascii_digits_are_group_references() -> None:
    assert normalize_replacement("https://a/$\u0663", 3) == "https://a/$$\u0663"
    with pytest.raises(TranslateError, match="stray"):
        translate_replacement("https://a/$\u0663", 3)


def test_normalize_leaves_javascript_specials_for_translation_to_refuse() -> None:
    assert normalize_replacement("https://a/$`", 0) == "https://a/$`"
