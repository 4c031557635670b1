"""AccessControl: who may use a proxy that listens beyond loopback, and where it may connect for them.

- Listening beyond loopback (any mode's address, `listen_host`, `--set mode=...@host:port`) needs
  `port443_allow_lan` and `port443_allow_clients`; a start without them fails before anything listens.
- Clients outside `port443_allow_clients` get their connection closed (logged once per address);
  loopback clients and WireGuard peers (they hold a key) are always let in.
- CONNECT goes only to `port443_connect_ports` (443 by default).
- Nothing is proxied to the proxy's own listening sockets (a transparent proxy would otherwise connect to
  itself, thousands of times a second), and, once it listens beyond loopback, to any of the gateway's own
  addresses (its loopback-only services stay loopback-only). `port443_connect_to` mappings are the user's
  own and are exempt.
- A LAN-facing proxy bounds the connections one client holds, and how long an idle one stays open.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Sequence
from typing import Any

from mitmproxy import connection, ctx, exceptions, http
from mitmproxy.addonmanager import Loader
from mitmproxy.proxy import mode_specs
from mitmproxy.proxy.server_hooks import ServerConnectionHookData

from port443.errors import Port443Error
from port443.mitm.own import ProxyItself, resolve_addresses
from port443.net.connect import host_key, parse_connect_to
from port443.proxy.access import (
    DEFAULT_CONNECT_PORTS,
    DEFAULT_MAX_CONNECTIONS,
    ClientGate,
    ConnectionCounter,
    SayOnce,
    parse_networks,
    parse_ports,
)
from port443.proxy.clients import Address, parse_address
from port443.proxy.own import is_local_address, is_local_name, literal_address

logger = logging.getLogger(__name__)

DEFAULT_IDLE_TIMEOUT = 120
_VERDICT_TTL = 30.0
_VERDICTS = 1024
# Clients that authenticate themselves (WireGuard keys) or are this machine's own programs (local mode).
_TRUSTED_MODES = (mode_specs.WireGuardMode, mode_specs.LocalMode)
# Modes without a listening socket: nothing to expose (a TUN device's clients still meet the allow-list).
_NO_SOCKET = (mode_specs.LocalMode, mode_specs.TunMode)
# Modes in which a client does not know it talks to a proxy, so it cannot answer a 407.
_TRANSPARENT_MODES = (mode_specs.TransparentMode, mode_specs.WireGuardMode, *_NO_SOCKET)
_ACCESS_OPTIONS = {"mode", "listen_host", "proxyauth", "port443_allow_lan", "port443_allow_clients"}
ITSELF = "the destination is the proxy itself (did a device use the transparent port as its proxy?)"
GATEWAY = "the destination is this gateway (port443 never proxies to its own addresses)"


def listening(modes: Sequence[str], listen_host: str) -> list[tuple[mode_specs.ProxyMode, str]]:
    """Every configured mode with the host it listens on (mitmproxy's rules: the spec's, else listen_host)."""
    out = []
    for spec in modes:
        mode = mode_specs.ProxyMode.parse(spec)
        out.append((mode, mode.listen_host(listen_host)))
    return out


def _is_loopback_host(host: str) -> bool:
    if is_local_name(host):
        return True
    address = parse_address(host)
    return address is not None and address.is_loopback


class AccessControl:
    """Client allow-list, CONNECT ports, no connections to the gateway itself, bounded connections per client."""

    def __init__(self) -> None:
        self.gate = ClientGate()
        self.connect_ports = parse_ports(DEFAULT_CONNECT_PORTS)
        self.connect_to: dict[tuple[str, int], tuple[str, int]] = {}
        self.counter = ConnectionCounter()
        self.itself = ProxyItself()
        self.lan_facing = False
        self._counted: set[str] = set()
        self._say = SayOnce()
        self._verdicts: OrderedDict[tuple[str, int], tuple[str | None, float]] = OrderedDict()
        self._running = False
        self._check_pending = False

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "port443_allow_lan",
            bool,
            False,
            "Allow listening beyond loopback (a household gateway). port443_allow_clients must then name the clients that may use the proxy.",
        )
        loader.add_option(
            "port443_allow_clients",
            Sequence[str],
            [],
            "Networks (CIDR) or addresses of the clients that may use a proxy listening beyond loopback; connections from anyone else are closed. Loopback clients and WireGuard peers (they hold a key) are always let in.",
        )
        loader.add_option(
            "port443_connect_ports",
            Sequence[str],
            list(DEFAULT_CONNECT_PORTS),
            "Ports that CONNECT may open tunnels to: ports or ranges such as 8000-8100.",
        )
        loader.add_option(
            "port443_client_connections",
            int,
            DEFAULT_MAX_CONNECTIONS,
            "On a proxy listening beyond loopback: connections one client address may hold open at once (0: no limit).",
        )
        loader.add_option(
            "port443_idle_timeout",
            int,
            DEFAULT_IDLE_TIMEOUT,
            "On a proxy listening beyond loopback: seconds a client connection may stay idle before it is closed (lowers mitmproxy's tcp_timeout to this).",
        )

    def configure(self, updated: set[str]) -> None:
        opts: Any = ctx.options
        try:
            if "port443_allow_clients" in updated or "port443_allow_lan" in updated:
                networks = parse_networks(list(opts.port443_allow_clients), what="port443_allow_clients")
                self.gate = ClientGate(networks, bool(opts.port443_allow_lan))
            if "port443_connect_ports" in updated:
                self.connect_ports = parse_ports(list(opts.port443_connect_ports))
            if "port443_connect_to" in updated:
                self.connect_to = parse_connect_to(list(opts.port443_connect_to))
        except Port443Error as e:
            raise exceptions.OptionsError(str(e)) from e
        if "port443_client_connections" in updated:
            if opts.port443_client_connections < 0:
                raise exceptions.OptionsError("port443_client_connections: must be 0 (no limit) or more")
            self.counter.limit = int(opts.port443_client_connections)
        if "port443_idle_timeout" in updated and opts.port443_idle_timeout < 1:
            raise exceptions.OptionsError("port443_idle_timeout: must be at least 1 second")
        if updated & _ACCESS_OPTIONS:
            if self._running:
                self.check_listeners()  # a change while running is refused and rolled back
            elif not self._check_pending:
                # At start, options arrive one `--set` at a time: judge them once they are all in, which
                # is before mitmproxy opens its servers (its start-up error check then exits).
                self._check_pending = True
                ctx.master.event_loop.call_soon(self._startup_check)

    def _startup_check(self) -> None:
        if not self._check_pending:
            return  # port443's runner checked already, and reported it itself
        self._check_pending = False
        try:
            self.check_listeners()
        except exceptions.OptionsError as e:
            ctx.options.update(server=False)  # open no listener; mitmproxy's start-up check then exits
            logger.error(f"port443: {e}")

    def check_listeners(self) -> None:
        """Refuse a configuration that listens beyond loopback without naming who may connect.

        Also sets `lan_facing`, and lowers tcp_timeout to port443_idle_timeout on a LAN-facing proxy.

        Raises:
            OptionsError: saying which option to add.
        """
        self._check_pending = False
        opts: Any = ctx.options
        try:
            modes = listening(list(opts.mode), str(opts.listen_host))
        except ValueError as e:
            raise exceptions.OptionsError(f"mode: {e}") from e
        exposed = [(m, h) for m, h in modes if not isinstance(m, _NO_SOCKET) and not _is_loopback_host(h)]
        open_to_lan = [(m, h) for m, h in exposed if not isinstance(m, _TRUSTED_MODES)]
        if open_to_lan:
            mode, host = open_to_lan[0]
            where = f"{mode.full_spec} listens on {host or 'every address'}"
            if not opts.port443_allow_lan:
                raise exceptions.OptionsError(
                    f"{where}, beyond this machine: set port443_allow_lan (port443 run --allow-lan) and name the "
                    "clients with port443_allow_clients (--allow-clients 192.168.1.0/24) to mean it"
                )
            if not self.gate.networks:
                raise exceptions.OptionsError(
                    f"{where}: name the clients that may use it with port443_allow_clients "
                    "(port443 run --allow-clients CIDR, e.g. --allow-clients 192.168.1.0/24); everyone else gets nothing"
                )
        proxyauth = opts.proxyauth if "proxyauth" in opts else None  # the ProxyAuth addon may be absent
        if proxyauth and any(isinstance(m, _TRANSPARENT_MODES) for m, _ in modes):
            raise exceptions.OptionsError(
                "proxyauth cannot work in transparent or WireGuard mode: devices there do not know they use a "
                "proxy, so every site would answer 401. Restrict who may connect with port443_allow_clients instead."
            )
        self.lan_facing = bool(exposed)
        self._verdicts.clear()
        if open_to_lan and opts.tcp_timeout > opts.port443_idle_timeout:
            opts.update(tcp_timeout=int(opts.port443_idle_timeout))

    def running(self) -> None:
        self._running = True
        self.itself.follow()

    # --- clients ------------------------------------------------------------------------------------

    def client_connected(self, client: connection.Client) -> None:
        """Close connections from clients that are not allowed, or that hold too many already."""
        if isinstance(client.proxy_mode, _TRUSTED_MODES) or client.peername is None:
            return
        address = str(client.peername[0])
        if not self.gate.allows(address):
            client.error = "port443: client not allowed"
            if self._say.first(("client", address)):
                logger.warning(
                    f"port443: refused connections from {address}: not in port443_allow_clients (--allow-clients)"
                )
            return
        if not self.lan_facing:
            return
        if not self.counter.open(address):
            client.error = "port443: too many connections from this client"
            if self._say.first(("limit", address)):
                logger.warning(
                    f"port443: {address} holds {self.counter.limit} connections (port443_client_connections); "
                    "closing further ones until some end"
                )
            return
        self._counted.add(client.id)

    def client_disconnected(self, client: connection.Client) -> None:
        """A counted connection ended: the client may open another."""
        if client.id in self._counted:
            self._counted.discard(client.id)
            if client.peername is not None:
                self.counter.close(str(client.peername[0]))

    # --- destinations -------------------------------------------------------------------------------

    def http_connect(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        """CONNECT only to the allowed ports, and never to the gateway itself."""
        if flow.response or flow.error:
            return None
        host, port = flow.request.host, flow.request.port
        if port not in self.connect_ports:
            self._forbid(
                flow, f"port443 tunnels only to port {_ports(self.connect_ports)} (port443_connect_ports)"
            )
            return None
        refusal = self._refusal(host, port)
        if isinstance(refusal, str):
            self._forbid(flow, refusal)
        elif refusal is not None:
            return self._connect_after_resolving(flow, refusal)
        return None

    async def _connect_after_resolving(self, flow: http.HTTPFlow, pending: Awaitable[str | None]) -> None:
        refusal = await pending
        if refusal is not None:
            self._forbid(flow, refusal)

    def _forbid(self, flow: http.HTTPFlow, why: str) -> None:
        flow.response = http.Response.make(403, f"{why}\n", {"Content-Type": "text/plain; charset=utf-8"})
        self._log_refusal(flow.client_conn.peername, f"{flow.request.host}:{flow.request.port}", why)

    def server_connect(self, data: ServerConnectionHookData) -> Awaitable[None] | None:
        """Kill an upstream connection to the proxy itself, or (LAN-facing) to any of the gateway's addresses."""
        address = data.server.address
        if address is None or data.server.error:
            return None
        refusal = self._refusal(str(address[0]), int(address[1]))
        if isinstance(refusal, str):
            self._kill(data, refusal)
        elif refusal is not None:
            return self._server_after_resolving(data, refusal)
        return None

    async def _server_after_resolving(
        self, data: ServerConnectionHookData, pending: Awaitable[str | None]
    ) -> None:
        refusal = await pending
        if refusal is not None:
            self._kill(data, refusal)

    def _kill(self, data: ServerConnectionHookData, why: str) -> None:
        data.server.error = f"port443: {why}"
        address = data.server.address
        self._log_refusal(data.client.peername, f"{address[0]}:{address[1]}" if address else "?", why)

    def _refusal(self, host: str, port: int) -> str | None | Awaitable[str | None]:
        """Why `host:port` must not be reached: text now, None when fine, or an awaitable when a name needs resolving."""
        if self.connect_to and (host_key(host), port) in self.connect_to:
            return None  # the user's own mapping (port443_connect_to)
        address = literal_address(host)
        if address is not None:
            return self._refusal_for(address, port)
        if is_local_name(host):
            return ITSELF if port in self.itself.listeners.ports else (GATEWAY if self.lan_facing else None)
        if not self.lan_facing and port not in self.itself.listeners.ports:
            return None  # a loopback-only proxy only guards against itself
        return self._refusal_after_resolving(host, port)

    def _refusal_for(self, address: Address, port: int) -> str | None:
        if self.itself.listeners.is_proxy(address, port):
            return ITSELF
        if self.lan_facing and is_local_address(address):
            return GATEWAY
        return None

    async def _refusal_after_resolving(self, host: str, port: int) -> str | None:
        # mitmproxy resolves the name again when it connects; a name that changes its answer in between (DNS
        # rebinding) is the remaining gap, which transparent mode does not have (it connects to addresses).
        # Verdicts are remembered briefly, so a busy name costs one lookup here per _VERDICT_TTL.
        key = (host.lower(), port)
        known = self._verdicts.get(key)
        now = time.monotonic()
        if known is not None and known[1] > now:
            return known[0]
        refusal = None
        for address in await resolve_addresses(host, port):
            refusal = self._refusal_for(address, port)
            if refusal is not None:
                break
        self._verdicts[key] = (refusal, now + _VERDICT_TTL)
        self._verdicts.move_to_end(key)
        while len(self._verdicts) > _VERDICTS:
            self._verdicts.popitem(last=False)
        return refusal

    def _log_refusal(self, peer: Any, destination: str, why: str) -> None:
        client = str(peer[0]) if peer else "?"
        if self._say.first(("dest", client, destination)):
            shown = "".join(
                c if c.isprintable() else "?" for c in destination[:300]
            )  # from traffic: text only
            logger.warning(f"port443: refused {client} -> {shown}: {why}")


def _ports(ports: frozenset[int]) -> str:
    shown = sorted(ports)
    return ", ".join(map(str, shown[:5])) + (" ..." if len(shown) > 5 else "")
