"""Requests addressed to the proxy itself: recognised once here, answered by OwnPages (PAC file, dashboard).

A request whose destination is one of the proxy's own listening sockets (a browser fetching
`http://gateway:8080/proxy.pac`, or a request a device sent straight to the proxy) must never be forwarded:
that would connect the proxy to itself. `ProxyItself` tells such destinations apart (AccessControl uses it
for its self-connect guard); `OwnPages` answers them from tables of paths (GET/HEAD and POST), which the
Dashboard addon fills with its own entries. Everything else on the proxy's own address gets a 404.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from mitmproxy import ctx, http

from port443.proxy.own import Listeners, is_local_address, is_local_name, listeners_of, literal_address
from port443.proxy.pac import CONTENT_TYPE, PATHS, pac_file, proxy_address

logger = logging.getLogger(__name__)

TO_PROXY = "port443.to_proxy"
"""flow.metadata key: True on a request that was addressed to the proxy itself."""

_RESOLVE_TIMEOUT = 2.0
_NAME_TTL = 30.0
_NAME_CACHE = 1024

Page = Callable[[http.HTTPFlow], http.Response | Awaitable[http.Response]]
"""Answers one request to the proxy itself: at once, or after awaiting (work off the event loop)."""


class ProxyItself:
    """Whether a destination is one of the proxy's own sockets; follows the listeners as they change."""

    def __init__(self) -> None:
        self.listeners = Listeners()
        self._names: OrderedDict[tuple[str, int], tuple[bool, float]] = OrderedDict()

    def follow(self) -> None:
        """Read the listeners now, and again whenever mitmproxy starts or stops a server."""
        proxyserver: Any = ctx.master.addons.get("proxyserver")
        if proxyserver is None:
            return
        self.refresh()
        proxyserver.servers.changed.connect(self.refresh)

    def refresh(self) -> None:
        """Read the proxy's listening sockets (mitmproxy resolves port 0 and wildcard hosts for us)."""
        proxyserver: Any = ctx.master.addons.get("proxyserver")
        if proxyserver is not None:
            self.listeners = listeners_of(proxyserver.listen_addrs())

    def check(self, host: str, port: int) -> bool | None:
        """True/False when known at once; None when `host` is a name that must be resolved (see `resolve`)."""
        if port not in self.listeners.ports:
            return False
        if is_local_name(host):
            return True
        address = literal_address(host)
        if address is not None:
            return is_local_address(address)
        cached = self._names.get((host, port))
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        return None

    async def resolve(self, host: str, port: int) -> bool:
        """Resolve `host` and tell whether any of its addresses is this machine's (remembered for a while)."""
        local = any(is_local_address(a) for a in await resolve_addresses(host, port))
        self._names[(host, port)] = (local, time.monotonic() + _NAME_TTL)
        self._names.move_to_end((host, port))
        while len(self._names) > _NAME_CACHE:
            self._names.popitem(last=False)
        return local


async def resolve_addresses(host: str, port: int) -> list[Any]:
    """The addresses `host` resolves to (empty when it does not), within a short timeout."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=_RESOLVE_TIMEOUT
        )
    except (OSError, TimeoutError, UnicodeError):
        return []
    found = []
    for info in infos:
        address = literal_address(str(info[4][0]))
        if address is not None:
            found.append(address)
    return found


class OwnPages:
    """Answers requests addressed to the proxy itself from its tables of paths (the PAC file...), else 404."""

    def __init__(self) -> None:
        self.itself = ProxyItself()
        self.pages: dict[str, Page] = {path: pac_page for path in PATHS}
        """GET and HEAD, by path (no query)."""
        self.posts: dict[str, Page] = {}
        """POST, by path (the dashboard's sign-in and actions)."""

    def running(self) -> None:
        self.itself.follow()

    def request(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        """Synchronous unless the request names the proxy's port under a host name that must be resolved."""
        if flow.response or flow.error or not flow.live:
            return None
        verdict = self.itself.check(flow.request.host, flow.request.port)
        if verdict is None:
            return self._after_resolving(flow)
        if verdict:
            return self.answer(flow)
        return None

    async def _after_resolving(self, flow: http.HTTPFlow) -> None:
        if await self.itself.resolve(flow.request.host, flow.request.port):
            pending = self.answer(flow)
            if pending is not None:
                await pending

    def answer(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        """Serve the page for the request's method and path; never forward a request to the proxy itself."""
        flow.metadata[TO_PROXY] = True
        path = flow.request.path.split("?", 1)[0]
        method = flow.request.method
        table = self.posts if method == "POST" else self.pages if method in ("GET", "HEAD") else {}
        page = table.get(path)
        if page is None:
            flow.response = self._missing(path)
        else:
            try:
                result = page(flow)
            except Exception:  # a bug shows with its traceback; the client gets a 500, never a forward
                logger.exception(f"port443: {method} {path[:100]!r} for the proxy itself failed")
                result = _failed()
            if not isinstance(result, http.Response):
                return self._finish(flow, path, result)
            flow.response = result
        logger.debug(f"port443: {method} {path[:100]!r} for the proxy itself: {flow.response.status_code}")
        return None

    async def _finish(self, flow: http.HTTPFlow, path: str, pending: Awaitable[http.Response]) -> None:
        try:
            flow.response = await pending
        except Exception:
            logger.exception(f"port443: {flow.request.method} {path[:100]!r} for the proxy itself failed")
            flow.response = _failed()

    def _missing(self, path: str) -> http.Response:
        """404 for a path nobody serves, 405 for a path served with other methods."""
        allowed = [m for m, table in (("GET, HEAD", self.pages), ("POST", self.posts)) if path in table]
        if allowed:
            return http.Response.make(405, b"", {"Allow": ", ".join(allowed)})
        where = "its PAC file is at /proxy.pac" + (", its dashboard at /" if "/" in self.pages else "")
        return http.Response.make(
            404,
            f"port443: this is an HTTPS upgrade proxy; {where}\n",
            {"Content-Type": "text/plain; charset=utf-8"},
        )


def _failed() -> http.Response:
    return http.Response.make(500, "port443: internal error\n", {"Content-Type": "text/plain; charset=utf-8"})


def pac_page(flow: http.HTTPFlow) -> http.Response:
    """The PAC file, naming the proxy as the client reached it (the request's host, else the socket's address)."""
    target = proxy_address(flow.request.host, flow.request.port)
    sockname = flow.client_conn.sockname
    if target is None and sockname:
        target = proxy_address(str(sockname[0]), int(sockname[1]))
    if target is None:
        return http.Response.make(400, "port443: cannot tell this proxy's address from the request\n")
    return http.Response.make(
        200, pac_file(target), {"Content-Type": CONTENT_TYPE, "Cache-Control": "max-age=300"}
    )
