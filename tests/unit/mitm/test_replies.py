"""The dashboard's replies: headers on every answer, inert JSON, bounded bodies, JSON or a 303."""

from __future__ import annotations

import json

import pytest
from mitmproxy.test import tflow

from port443.mitm import replies


def test_every_answer_carries_the_security_headers() -> None:
    for answer in (
        replies.html(200, "x"),
        replies.text(403, "no"),
        replies.json_reply(200, {}),
        replies.see_other("/"),
    ):
        assert answer.headers["X-Frame-Options"] == "DENY" and answer.headers["Cache-Control"] == "no-store"
        assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
        assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_json_is_exact_and_inert() -> None:
    value = [{"host": "<script>&\u202e\x1b"}, {"n": 1}]
    text = replies.dumps(value)
    assert "<" not in text and ">" not in text and "&" not in text and "\u202e" not in text
    assert json.loads(text) == value


@pytest.mark.parametrize(
    ("kind", "body", "found"),
    [
        (
            "application/x-www-form-urlencoded",
            b"host=a.test&host=b.test&csrf=t",
            {"host": "a.test", "csrf": "t"},
        ),
        ("application/json; charset=utf-8", b'{"host": "a.test", "n": 3, "x": ["y"]}', {"host": "a.test"}),
        ("application/json", b"[1, 2]", {}),
        ("application/json", b"{not json", {}),
        ("text/plain", b"host=a.test", {}),
        ("application/x-www-form-urlencoded", b"host=" + b"a" * replies.MAX_BODY, {}),
    ],
)
def test_post_fields(kind: str, body: bytes, found: dict[str, str]) -> None:
    flow = tflow.tflow()
    flow.request.headers["Content-Type"] = kind
    flow.request.content = body
    assert replies.fields(flow.request) == found


def test_json_for_scripts_a_303_for_forms() -> None:
    flow = tflow.tflow()
    assert replies.answer(flow, 200, {"ok": True}).status_code == 303
    refused = replies.answer(flow, 403, {"ok": False, "message": "Read-only"})
    assert refused.status_code == 403 and refused.content == b"port443: Read-only\n"
    flow.request.headers["Accept"] = "application/json"
    said = replies.answer(flow, 200, {"ok": True})
    assert said.status_code == 200 and json.loads(said.content or b"") == {"ok": True}
