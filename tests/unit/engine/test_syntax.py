"""Static facts about JavaScript patterns: engine choice, anchoring, reach, nested quantifiers."""

from __future__ import annotations

import pytest

from port443.engine import syntax


@pytest.mark.parametrize(
    ("source", "spans"),
    [
        (r"^http://x\.test/(a+)+b", ["(a+)+"]),
        (r"(\w+\.?)*$", [r"(\w+\.?)*"]),  # an optional delimiter is no delimiter
        (r"(a*)*", ["(a*)*"]),  # a body that can match nothing
        (r"(a|b+)+c", ["(a|b+)+"]),
        (r"(b+ab+)+", ["(b+ab+)+"]),  # the end of one iteration can begin the next
        (r"^((a+)+)+", ["((a+)+)+"]),  # the outermost only
        (r"^http://((?:[\w-]+\.)+)example\.com/", []),  # each iteration ends at a dot: one way to split
        (r"(ab+)+", []),
        (r"(a+b)+", []),
        (r"^http://(www\.)?amazon\.in/+(.+/)?(b|dp|e|s)($|[?/])", []),  # polynomial, not nested
        (r"(a+){1}", []),  # repeated at most once
        (r"[(a+)+]", []),  # a character class
        (r"\(a+\)+", []),
    ],
)
def test_nested_quantifiers(source: str, spans: list[str]) -> None:
    found = syntax.nested_quantifiers(syntax.parse(source))
    assert [source[a:b] for a, b in found] == spans


@pytest.mark.parametrize(
    ("source", "backtracking", "anchored", "max_length"),
    [
        (r"^http://(www\.)?example\.com/", False, True, 23),
        (r"^http://a\.test/.*", False, True, None),
        (r"http://a\.test/", False, False, 14),
        (r"(?:^a)|(?:^b)", False, True, 1),
        (r"^a|b", False, False, 1),
        (r"^http://(?!www\.)(\w+)\.a\.com/", True, True, None),
        (r"(a)\1", True, False, None),
        (r"(?<n>a)\k<n>", True, False, None),
        (r"a{2,5}", False, False, 5),
        (r"", False, False, 0),
    ],
)
def test_facts(source: str, backtracking: bool, anchored: bool, max_length: int | None) -> None:
    tree = syntax.parse(source)
    assert syntax.needs_backtracking(tree) is backtracking
    assert syntax.anchored(tree) is anchored
    assert syntax.max_length(tree) == max_length


@pytest.mark.parametrize(
    ("source", "reach"),
    [
        (r"^http://a\.test/", (14, 0)),  # reads 14 characters, then stops
        (r"^http://a\.test/(.*)$", (14, 1)),  # after them, only `.` stays active
        (r"^http://(\w+)\.a\.test/", (7, 9)),  # \w and the 8 characters after it
        (r"^(?:a{3}|b)c+", (3, 1)),
        (r"^(a+)+", (0, 1)),
    ],
)
def test_reach(source: str, reach: tuple[int, int]) -> None:
    assert syntax.reach(syntax.parse(source)) == reach


@pytest.mark.parametrize(
    ("source", "product"),
    [("a", 1), ("a{5}", 5), ("(a{10}){20}", 200), ("((a{100}){100}){100}", 1_000_000), ("(a{3})*", 3)],
)
def test_repeat_product(source: str, product: int) -> None:
    assert syntax.repeat_product(syntax.parse(source)) == product


@pytest.mark.parametrize("source", ["(a", "a)", "[ab", "*a", "a\\", "(?i)a", "+"])
def test_unparsable(source: str) -> None:
    with pytest.raises(syntax.PatternSyntaxError):
        syntax.parse(source)


def test_the_analysis_reads_what_javascript_reads() -> None:
    # `{` is a literal unless it is a quantifier; classes hold escapes and ranges; named groups and escapes.
    tree = syntax.parse(r"^a{,2}[\w-.a-c\]]\x41\u0042\cJ(?<g>x)\k<g>{2}")
    assert syntax.needs_backtracking(tree)
    assert syntax.anchored(tree)
