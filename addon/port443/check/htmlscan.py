"""Read an HTML page for what `port443 check` needs: its title and its plain-HTTP subresources. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser

# Subresources a browser loads (or submits to) with the page. "Active" content can change the page itself, so
# browsers block it on HTTPS pages; passive content (images, media) is only shown with a warning.
_SUBRESOURCES: dict[tuple[str, str], bool] = {
    ("script", "src"): True,
    ("iframe", "src"): True,
    ("frame", "src"): True,
    ("object", "data"): True,
    ("embed", "src"): True,
    ("form", "action"): True,
    ("img", "src"): False,
    ("audio", "src"): False,
    ("video", "src"): False,
    ("video", "poster"): False,
    ("source", "src"): False,
    ("track", "src"): False,
    ("input", "src"): False,
}
_ACTIVE_LINK_RELS = {"stylesheet", "preload", "modulepreload", "import"}
_PASSIVE_LINK_RELS = {"icon", "shortcut", "apple-touch-icon"}


@dataclass(frozen=True, slots=True)
class MixedItem:
    """One `http://` subresource on an HTTPS page."""

    tag: str
    attribute: str
    url: str
    active: bool


class _Scanner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: str | None = None
        self._in_title = False
        self.mixed: list[MixedItem] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): (v or "") for k, v in attrs}
        if tag == "title" and self.title is None:
            self._in_title = True
            self.title = ""
        if tag == "link":
            rels = set(values.get("rel", "").lower().split())
            active = bool(rels & _ACTIVE_LINK_RELS)
            if active or rels & _PASSIVE_LINK_RELS:
                self._check(tag, "href", values.get("href", ""), active)
            return
        for (name, attribute), active in _SUBRESOURCES.items():
            if name == tag and attribute in values:
                self._check(tag, attribute, values[attribute], active)

    def _check(self, tag: str, attribute: str, url: str, active: bool) -> None:
        if url.strip().lower().startswith("http://"):
            self.mixed.append(MixedItem(tag, attribute, url.strip(), active))

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title and self.title is not None:
            self.title += data


def scan(html: str) -> tuple[str | None, list[MixedItem]]:
    """The page's title (whitespace collapsed) and its http:// subresources, in document order."""
    scanner = _Scanner()
    scanner.feed(html)
    scanner.close()
    title = " ".join(scanner.title.split()) if scanner.title is not None else None
    return title, scanner.mixed
