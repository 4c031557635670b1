"""bench.proxy's helper addon, loaded by every proxy of a run: HOST:PORT resolves to a loopback address.

Option `bench_map` (HOST:PORT:ADDR:PORT2, like curl's --connect-to) is applied at the socket call, as DNS
would be. Not `port443_connect_to` nor an address set in `server_connect`: mitmproxy's HTTP layer then never
reuses the upstream connection (its address no longer matches the request's), so each request opens a new
one, and the sixth on one client connection waits forever on ConnectionHandler.max_conns (5 per address).
The listening port is printed by tests/support/ready_addon.py, loaded beside this one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from mitmproxy import ctx
from mitmproxy.addonmanager import Loader

_open_connection = asyncio.open_connection
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def parse_map(spec: str) -> tuple[tuple[str, int], tuple[str, int]]:
    """`HOST:PORT:ADDR:PORT2` as ((host, port), (addr, port2)); the host is lower-cased, as DNS names are."""
    host, port, addr, port2 = spec.rsplit(":", 3)
    return (host.lower(), int(port)), (addr, int(port2))


class BenchMap:
    """Sends upstream connections for mapped HOST:PORT pairs to their loopback address."""

    def __init__(self) -> None:
        self.targets: dict[tuple[str, int], tuple[str, int]] = {}

    def load(self, loader: Loader) -> None:
        loader.add_option("bench_map", Sequence[str], [], "HOST:PORT:ADDR:PORT2, like curl --connect-to.")
        # mitmproxy.proxy.server looks up asyncio.open_connection at each upstream connection.
        asyncio.open_connection = self.open_connection

    def configure(self, updated: set[str]) -> None:
        if "bench_map" in updated:
            specs: Sequence[str] = ctx.options.bench_map
            self.targets = dict(parse_map(spec) for spec in specs)

    def done(self) -> None:
        asyncio.open_connection = _open_connection

    async def open_connection(self, host: Any = None, port: Any = None, **kwargs: Any) -> Streams:
        """asyncio.open_connection, with a mapped (host, port) replaced by its loopback address."""
        target = self.targets.get((str(host).lower(), port))
        if target is not None:
            host, port = target
        return await _open_connection(host, port, **kwargs)


addons = [BenchMap()]
