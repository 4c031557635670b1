"""Patterns spelled out as texts: a final lookahead rewritten into what RE2 runs."""

from __future__ import annotations

import pytest

from port443.engine import spelling


@pytest.mark.parametrize(
    ("source", "capture", "re2"),
    [
        (r"^http://a\.com/(?!b|cd)", False, r"^http://a\.com/(?:(?:\z|[^bc]|c(?:\z|[^d])))"),
        (r"^http://a\.com/(?!$|\?)", False, r"^http://a\.com/(?:(?:[^\?]))"),
        (r"^http://a\.com/(?=b)", True, r"(^http://a\.com/)(?:b)"),
        (r"^http://a\.com/(?!b)", True, r"(^http://a\.com/)(?:(?:\z|[^b]))"),
        (r"^http://a\.com/(?!/*(?:$|\?))", False, r"^http://a\.com/(?:\/*(?:[^\?\/]))"),  # past the slashes
        (r"^http://a\.com/(?!/*/x)", False, None),  # a spelling starts with the run's character
        (r"^http://a\.com/(?!(b))", True, None),  # its group could be named by the replacement
        (r"^http://a\.com/(?!b+)", False, None),  # not a finite set of texts
        (r"^http://a\.com/(?!.*b)", False, None),
        (r"^http://a\.com/(?!b)c", False, None),  # not at the end
        (r"^http://a(?!b)\.com/(?!c)", False, None),  # not the only one
        (r"^http://a\.com/(?!b)|c", False, None),  # under a top-level alternation
        (r"^http://(a)\1(?!b)", False, None),  # a backreference
        (r"^http://a\.com/(?!b)\)", False, None),  # the last `)` is a literal
    ],
)
def test_a_final_lookahead_is_rewritten_for_re2(source: str, capture: bool, re2: str | None) -> None:
    tail = spelling.translate_lookahead_tail(source, capture=capture)
    assert (tail.re2 if tail is not None else None) == re2
