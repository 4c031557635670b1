"""RewriteFallback: rewrite mode's after-the-fact learning, from what the HTTPS upstream actually did.

Only the site's own failure counts, and for what failed: no connection or no TLS marks the host; a client
that gave up marks nothing; a page whose HTTPS redirects to its own http URL marks that path. It also keeps
the site working over the client's plain-HTTP hop (proxy/fixups). It runs after HttpsUpgrade decided and
before InsecureLog writes the outcome.
"""

from __future__ import annotations

import errno
import logging
from urllib.parse import urlsplit

from mitmproxy import ctx, flow, http

from port443.proxy.decide import Decider, Decision, Reason, Step
from port443.proxy.fixups import adapt_response
from port443.proxy.inert import loggable

logger = logging.getLogger(__name__)

_CLIENT_GAVE_UP = ("Client disconnected.", flow.Error.KILLED_MESSAGE)


class RewriteFallback:
    """Learns from rewrite mode's HTTPS upstream: failures, and pages that send clients back to HTTP."""

    def error(self, flow: http.HTTPFlow) -> None:
        """Rewrite mode: when the site's HTTPS itself failed, remember it so the next requests go over HTTP.

        A client that gave up (a timeout on a slow page) says nothing about the site; neither does a failure
        after the TLS connection was up. Either is left alone.
        """
        original = flow.metadata.get("port443.original_url")
        decider = _decider()
        if original is None or decider is None or flow.error is None or flow.response is not None:
            return
        message = str(flow.error.msg)
        if message in _CLIENT_GAVE_UP or flow.server_conn.timestamp_tls_setup is not None:
            return
        host = flow.request.pretty_host.lower().rstrip(".")
        reason = _failure_reason(message)
        decider.learn_insecure(host, reason, message)
        flow.metadata["port443.decision"] = Decision.stay(Step.LEARNED, reason, message)
        logger.warning(
            f"port443: HTTPS to {loggable(host)} failed ({loggable(message)}): its next requests go over HTTP"
        )

    def response(self, flow: http.HTTPFlow) -> None:
        """Rewrite mode: keep the site working over the client's plain-HTTP connection."""
        original = flow.metadata.get("port443.original_url")
        if original is None or flow.response is None:
            return
        headers = flow.response.headers
        if "Set-Cookie" not in headers and "Location" not in headers:
            return  # nothing to adapt (most responses)
        host = flow.request.pretty_host.lower().rstrip(".")
        back = adapt_response(headers, host)
        decider = _decider()
        if back is not None and decider is not None and _same_page(back, str(original)):
            # Only a page that sends clients back to its own http URL loops; an open redirect elsewhere does not.
            path = urlsplit(str(original)).path or "/"
            detail = f"HTTPS {path} redirects to {back}"
            decider.learn_insecure(host, Reason.REDIRECT_LOOP, detail, path=path)


def _decider() -> Decider | None:
    upgrade = ctx.master.addons.get("httpsupgrade")
    decider = getattr(upgrade, "decider", None)
    return decider if isinstance(decider, Decider) else None


def _failure_reason(message: str) -> Reason:
    """mitmproxy reports a failed upstream connection as text only; read the reason back from it."""
    lowered = message.lower()
    if "certificate" in lowered:
        return Reason.BAD_CERT
    if "refused" in lowered or f"[errno {errno.ECONNREFUSED}]" in lowered:
        return Reason.REFUSED
    if "timed out" in lowered or "timeout" in lowered:
        return Reason.TIMEOUT
    if "connect call failed" in lowered:
        return Reason.UNREACHABLE
    return Reason.TLS_ERROR


def _same_page(location: str, original: str) -> bool:
    a, b = urlsplit(location), urlsplit(original)
    return (a.hostname or "").lower() == (b.hostname or "").lower() and (a.path or "/") == (b.path or "/")
