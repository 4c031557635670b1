"""A small household for the dashboard's end-to-end tests: three sites, two devices, a known mix of traffic.

- plain.test: plain HTTP only (port 443 refuses): stays insecure, learned as refused;
- secure.test and again.test: HTTPS works (a trustme certificate): probed, then upgraded.
The devices are httpx clients bound to 127.0.0.2 and 127.0.0.3, so the proxy sees two addresses.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import httpx

from tests.support.certs import Certs
from tests.support.proxy import Proxy
from tests.support.servers import Server, closed_port, page, serve

PHONE, TV = "127.0.0.2", "127.0.0.3"


@dataclass
class Sites:
    """The upstreams, and the `port443_connect_to` entries that reach them."""

    secure: Server
    """HTTPS of secure.test and again.test (a probe is a HEAD / here)."""
    plain: Server
    """Plain HTTP of all three."""
    connect_to: list[str]


@contextmanager
def sites(certs: Certs) -> Iterator[Sites]:
    """Serve the three sites on loopback until the block ends."""
    with ExitStack() as stack:
        secure = stack.enter_context(
            serve(page("over https"), context=certs.context("secure.test", "again.test"))
        )
        plain = stack.enter_context(serve(page("over http")))
        refused = stack.enter_context(closed_port())
        connect_to = [
            f"plain.test:80:127.0.0.1:{plain.port}",
            f"plain.test:443:127.0.0.1:{refused}",
            *(f"{h}:443:127.0.0.1:{secure.port}" for h in ("secure.test", "again.test")),
            *(f"{h}:80:127.0.0.1:{plain.port}" for h in ("secure.test", "again.test")),
        ]
        yield Sites(secure, plain, connect_to)


def browse(proxy: Proxy) -> None:
    """The known mix: plain.test 3 hits from 2 devices; upgrades: 2 by probe, 1 by what was learned."""
    with proxy.client(bind=PHONE) as phone, proxy.client(bind=TV) as tv:
        for device, url, status in (
            (phone, "http://plain.test/a?secret=1", 200),
            (phone, "http://plain.test/b", 200),
            (phone, "http://secure.test/", 307),
            (phone, "http://secure.test/x", 307),
            (tv, "http://plain.test/a", 200),
            (tv, "http://again.test/", 307),
        ):
            assert device.get(url).status_code == status, url


def upgraded(proxy: Proxy, url: str, *, bind: str = PHONE) -> bool:
    """Whether the proxy sends `url` to HTTPS now."""
    with proxy.client(bind=bind) as device:
        answer = device.get(url)
    return answer.status_code == 307 and answer.headers["Location"].startswith("https://")


def direct(*, bind: str | None = None) -> httpx.Client:
    """A client that talks to the proxy's own address itself (as a browser opening the dashboard does)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=bind), timeout=15)
