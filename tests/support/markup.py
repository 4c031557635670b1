"""Reads the dashboard's HTML and SVG back as a browser would, to prove that nothing from traffic became markup."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

HOSTILE = [
    '<script>alert("h")</script>',
    '"><img src=x onerror=alert(1)>',
    "' onmouseover='alert(2)",
    "</textarea></title></svg><iframe src=javascript:alert(3)>",
    "\x1b[2J\u202eevil",
    "&amp;<b>bold</b>",
]
"""Strings from traffic (hosts, paths, reasons, details, addresses, rule problems) that must stay text."""


@dataclass
class Parsed:
    """Every tag and attribute of a document, and its text."""

    tags: list[str] = field(default_factory=list)
    attributes: list[tuple[str, str, str]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parsed = Parsed()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parsed.tags.append(tag)
        self.parsed.attributes += [(tag, name, value or "") for name, value in attrs]

    def handle_data(self, data: str) -> None:
        self.parsed.text.append(data)


def parse(document: str) -> Parsed:
    """The tags, attributes and text of `document`."""
    reader = _Reader()
    reader.feed(document)
    reader.close()
    return reader.parsed


def assert_inert(document: str, *, scripts: int = 0) -> Parsed:
    """No element, event handler or script URL came from traffic; at most `scripts` script elements."""
    parsed = parse(document)
    assert "iframe" not in parsed.tags and "img" not in parsed.tags and "textarea" not in parsed.tags
    assert parsed.tags.count("script") <= scripts
    for tag, name, value in parsed.attributes:
        assert not name.startswith("on"), (tag, name, value)
        if name in ("href", "src", "action", "formaction"):
            assert value.startswith("/"), (tag, name, value)  # only the proxy's own paths
    text = "".join(parsed.text)
    assert "\x1b" not in text and "\u202e" not in text  # controls and bidi overrides shown as escapes
    return parsed
