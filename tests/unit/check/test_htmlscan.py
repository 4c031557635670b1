"""Titles and plain-HTTP subresources of HTML pages."""

from __future__ import annotations

from port443.check.htmlscan import MixedItem, scan

PAGE = """<!doctype html><html><head><title>
  My   site </title>
<link rel="stylesheet" href="http://cdn.test/s.css"><link rel="icon" href="HTTP://cdn.test/i.ico">
<link rel="canonical" href="http://mixed.test/"><script src="http://cdn.test/a.js"></script>
<script src="https://cdn.test/ok.js"></script><script src="/relative.js"></script></head>
<body><img src="http://cdn.test/i.png"><iframe src="http://x.test/"></iframe>
<form action="http://mixed.test/login"></form><a href="http://elsewhere.test/">a link is not a subresource</a>
<video poster="http://cdn.test/p.jpg"></video><title>second title</title></body></html>"""


def test_scan_finds_title_and_plain_http_subresources_in_order() -> None:
    title, mixed = scan(PAGE)
    assert title == "My site"
    assert mixed == [
        MixedItem("link", "href", "http://cdn.test/s.css", True),
        MixedItem("link", "href", "HTTP://cdn.test/i.ico", False),
        MixedItem("script", "src", "http://cdn.test/a.js", True),
        MixedItem("img", "src", "http://cdn.test/i.png", False),
        MixedItem("iframe", "src", "http://x.test/", True),
        MixedItem("form", "action", "http://mixed.test/login", True),
        MixedItem("video", "poster", "http://cdn.test/p.jpg", False),
    ]


def test_no_title_and_broken_html() -> None:
    assert scan("<p>no title <img src='http://a.test/x'") == (None, [])
    assert scan("")[0] is None
