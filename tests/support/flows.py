"""mitmproxy flows for addon unit tests (mitmproxy's own test helpers, no sockets)."""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.test import tflow


def http_flow(url: str) -> http.HTTPFlow:
    """A client-to-proxy flow for `url`, not yet answered."""
    flow = tflow.tflow()
    flow.request.url = url
    return flow
