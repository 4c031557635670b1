"""The dashboard's replies: the security headers every answer carries, inert JSON, and bounded POST bodies.

Every answer the dashboard gives goes through `respond`, so none leaves without its Content-Security-Policy,
frame and sniffing protections and `no-store`. Used only by mitm/dashboard.py.
"""

from __future__ import annotations

import json

from mitmproxy import http

from port443.proxy import dashboard_html as pages

MAX_BODY = 16 * 1024
"""Bytes an action or sign-in request may carry."""
HEADERS = {
    "Content-Security-Policy": pages.PAGE_CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_JSON_INERT = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def fields(request: http.Request) -> dict[str, str]:
    """A POST's fields, from a form or a JSON object (first value of each; nothing else is read)."""
    kind = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    content = request.raw_content or b""
    if len(content) > MAX_BODY:
        return {}
    if kind == "application/json":
        try:
            value = json.loads(content)
        except (ValueError, UnicodeDecodeError):
            return {}
        return (
            {str(k): str(v) for k, v in value.items() if isinstance(v, str)}
            if isinstance(value, dict)
            else {}
        )
    if kind == "application/x-www-form-urlencoded":
        return {str(k): str(v) for k, v in request.urlencoded_form.items(multi=False)}
    return {}


def wants_json(flow: http.HTTPFlow) -> bool:
    """The page's script (it sends the token as a header) or an API client asking for JSON."""
    request = flow.request
    return "application/json" in request.headers.get("Accept", "") or "X-CSRF-Token" in request.headers


def answer(flow: http.HTTPFlow, status: int, body: dict[str, object]) -> http.Response:
    """JSON for the page's script and API clients; a plain form post goes back to the page."""
    if wants_json(flow):
        return json_reply(status, body)
    if status == 200:
        return see_other("/")
    return text(status, f"port443: {body.get('message', 'refused')}\n")


def respond(
    status: int, body: str | bytes, content_type: str, extra: dict[str, str] | None = None
) -> http.Response:
    """An answer with the security headers, its type and `extra` headers."""
    return http.Response.make(status, body, {**HEADERS, "Content-Type": content_type, **(extra or {})})


def html(status: int, body: str) -> http.Response:
    """An HTML page."""
    return respond(status, body, "text/html; charset=utf-8")


def text(status: int, body: str) -> http.Response:
    """Plain text (refusals: they say why and nothing else)."""
    return respond(status, body, "text/plain; charset=utf-8")


def dumps(value: object) -> str:
    """JSON, one list item at a time (one C call over 10,000 rows would hold the GIL for its whole length).

    ensure_ascii: exact, and every control or bidi character from traffic travels as a \\u escape; so do
    < > &, so the JSON is inert even where something mistakes it for HTML.
    """
    if isinstance(value, list):
        return (
            "["
            + ",".join(json.dumps(item, ensure_ascii=True).translate(_JSON_INERT) for item in value)
            + "]\n"
        )
    return json.dumps(value, ensure_ascii=True).translate(_JSON_INERT) + "\n"


def json_reply(status: int, value: object) -> http.Response:
    """A JSON document (`dumps`)."""
    return respond(status, dumps(value), "application/json; charset=utf-8")


def see_other(location: str, cookie: str | None = None) -> http.Response:
    """A 303 to `location` (after a form post), setting `cookie` if given."""
    extra = {"Location": location} | ({"Set-Cookie": cookie} if cookie else {})
    return respond(303, b"", "text/plain; charset=utf-8", extra)
