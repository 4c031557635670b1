"""Patterns answered by string operations: what a pattern's source says at a glance."""

from __future__ import annotations

import pytest

from port443.engine.string_pattern import Shape, shape_of


@pytest.mark.parametrize(
    ("source", "shape"),
    [
        (r"^http://a\.com/", Shape(True, "http://a.com/", True, False)),
        (r"^http://a\.com/$", Shape(True, "http://a.com/", True, True)),
        (r"\.pdf", Shape(False, ".pdf", True, False)),
        (r"^http://a\.com/x?", Shape(True, "http://a.com/", False, False)),  # `?` takes the last atom
        (r"^http://a\.com/\??", Shape(True, "http://a.com/", False, False)),
        (r"^http://(www\.)?a\.com/", Shape(True, "http://", False, False)),
        (r"^http://a\.com/|^http://b\.com/", Shape(False, "", False, False)),  # two prefixes: none
        (r"^http://a(?:b|c)\.com/", Shape(True, "http://a", False, False)),  # `|` inside a group is fine
        (r"^http://a\.com/[|]", Shape(True, "http://a.com/", False, False)),
        (r"^http://a\.com/\d", Shape(True, "http://a.com/", False, False)),
        (r"^http://a\.com/{x}", Shape(True, "http://a.com", False, False)),  # `{` may be a quantifier
        (r"^http://a\.com/\/\-_", Shape(True, "http://a.com//-_", True, False)),
        (r"a.b", Shape(False, "", False, False)),
    ],
)
def test_the_shape_of_a_pattern(source: str, shape: Shape) -> None:
    assert shape_of(source) == shape
