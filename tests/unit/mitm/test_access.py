"""AccessControl with mitmproxy's test helpers: the listen guard, the client gate, CONNECT ports, no self-connects."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from mitmproxy import connection, exceptions
from mitmproxy.addonmanager import Loader
from mitmproxy.addons.proxyauth import ProxyAuth
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.proxy.server_hooks import ServerConnectionHookData
from mitmproxy.test import taddons, tflow

from port443.mitm import access as access_module
from port443.mitm.access import AccessControl
from port443.mitm.options import add_options
from port443.proxy.own import Listeners

LAN = {"port443_allow_lan": True, "port443_allow_clients": ["192.168.1.0/24", "fd00::/64"]}


class Options:
    """HttpsUpgrade's options (port443_connect_to...) without loading any rules."""

    def load(self, loader: Loader) -> None:
        add_options(loader)


@pytest.fixture
def ctl() -> Iterator[tuple[AccessControl, Any]]:
    ac = AccessControl()
    with taddons.context(Options(), ProxyAuth(), ac) as tctx:
        yield ac, tctx


def client(address: str, mode: str = "regular") -> connection.Client:
    c = tflow.tclient_conn()
    c.peername = (address, 40000)
    c.proxy_mode = ProxyMode.parse(mode)
    c.error = None
    return c


def configure(tctx: Any, ac: AccessControl, **options: Any) -> None:
    tctx.configure(ac, **options)
    ac.check_listeners()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"mode": ["regular@0.0.0.0:8113"]},
            "regular@0.0.0.0:8113 listens on 0.0.0.0, beyond this machine: set port443_allow_lan",
        ),
        ({"listen_host": "", "mode": ["regular"]}, "regular listens on every address"),
        ({"listen_host": "192.168.1.1"}, "set port443_allow_lan"),
        (
            {"listen_host": "::", "port443_allow_lan": True},
            "name the clients that may use it with port443_allow_clients",
        ),
        (
            {"mode": ["transparent@:8080"], **LAN, "proxyauth": "user:pass"},
            "proxyauth cannot work in transparent",
        ),
        (
            {"mode": ["wireguard@51820"], "listen_host": "127.0.0.1", "proxyauth": "any"},
            "proxyauth cannot work",
        ),
    ],
)
def test_a_listener_beyond_loopback_needs_both_options(
    ctl: tuple[AccessControl, Any], options: dict[str, Any], message: str
) -> None:
    ac, tctx = ctl
    with pytest.raises(exceptions.OptionsError, match=message):
        configure(tctx, ac, **options)


@pytest.mark.parametrize(
    "options",
    [
        {"listen_host": "127.0.0.1"},
        {"listen_host": "127.0.0.1", "mode": ["regular@::1:8080", "transparent@localhost:8081"]},
        {"listen_host": "", **LAN},
        {"listen_host": "127.0.0.1", "mode": ["regular", "wireguard@:51820"]},  # WireGuard peers hold a key
        {"listen_host": "", **LAN, "proxyauth": "user:pass"},  # proxyauth works in regular mode
    ],
)
def test_allowed_configurations(ctl: tuple[AccessControl, Any], options: dict[str, Any]) -> None:
    ac, tctx = ctl
    configure(tctx, ac, **options)
    assert ac.lan_facing is (options["listen_host"] == "" or "wireguard@:51820" in options.get("mode", []))


def test_a_lan_facing_proxy_lowers_the_idle_timeout(ctl: tuple[AccessControl, Any]) -> None:
    ac, tctx = ctl
    configure(tctx, ac, listen_host="", **LAN, port443_idle_timeout=90)
    assert tctx.options.tcp_timeout == 90


def test_bad_values_are_refused_and_the_old_ones_stay(ctl: tuple[AccessControl, Any]) -> None:
    ac, tctx = ctl
    tctx.configure(ac, **LAN)
    before = ac.gate
    with pytest.raises(
        exceptions.OptionsError, match="port443_allow_clients 'lan': not an address or CIDR network"
    ):
        tctx.configure(ac, port443_allow_clients=["lan"])
    assert ac.gate == before and list(tctx.options.port443_allow_clients) == LAN["port443_allow_clients"]
    with pytest.raises(exceptions.OptionsError, match="port443_connect_ports"):
        tctx.configure(ac, port443_connect_ports=["smtp"])
    with pytest.raises(exceptions.OptionsError, match="port443_client_connections"):
        tctx.configure(ac, port443_client_connections=-1)


def test_a_change_while_running_is_checked_at_once(ctl: tuple[AccessControl, Any]) -> None:
    ac, tctx = ctl
    ac.running()
    with pytest.raises(exceptions.OptionsError, match="port443_allow_lan"):
        tctx.configure(ac, listen_host="0.0.0.0")
    assert tctx.options.listen_host == ""  # rolled back to what it was


def test_clients_outside_the_list_get_nothing_and_are_logged_once(
    ctl: tuple[AccessControl, Any], caplog: pytest.LogCaptureFixture
) -> None:
    ac, tctx = ctl
    configure(tctx, ac, listen_host="", **LAN)
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        stranger = client("203.0.113.9")
        ac.client_connected(stranger)
        assert stranger.error
    assert caplog.text.count("refused connections from 203.0.113.9") == 1
    for address in ("192.168.1.20", "::ffff:192.168.1.20", "fd00::20", "127.0.0.1"):
        friend = client(address)
        ac.client_connected(friend)
        assert friend.error is None, address
    peer = client("198.51.100.1", mode="wireguard")  # its key is its permission
    ac.client_connected(peer)
    assert peer.error is None


def test_connections_per_client_are_bounded(
    ctl: tuple[AccessControl, Any], caplog: pytest.LogCaptureFixture
) -> None:
    ac, tctx = ctl
    configure(tctx, ac, listen_host="", **LAN, port443_client_connections=2)
    first, second, third = client("192.168.1.5"), client("192.168.1.5"), client("192.168.1.5")
    for c in (first, second, third):
        ac.client_connected(c)
    assert (first.error, second.error) == (None, None) and third.error
    other = client("192.168.1.6")
    ac.client_connected(other)
    assert other.error is None
    ac.client_disconnected(third)  # refused ones were never counted
    ac.client_disconnected(first)
    again = client("192.168.1.5")
    ac.client_connected(again)
    assert again.error is None
    assert "holds 2 connections" in caplog.text


def connect_flow(host: str, port: int, peer: str = "192.168.1.5") -> Any:
    flow = tflow.tflow()
    flow.request.method = "CONNECT"
    flow.request.host, flow.request.port = host, port
    flow.client_conn.peername = (peer, 40000)
    return flow


def test_connect_only_to_allowed_ports(ctl: tuple[AccessControl, Any]) -> None:
    ac, tctx = ctl
    configure(tctx, ac, listen_host="", **LAN)
    smtp = connect_flow("mail.example", 25)
    assert ac.http_connect(smtp) is None
    assert smtp.response is not None and smtp.response.status_code == 403
    assert b"port443 tunnels only to port 443" in smtp.response.content
    tctx.configure(ac, port443_connect_ports=["443", "8443"])
    other = connect_flow("192.0.2.10", 8443)  # an address: no name to resolve
    assert ac.http_connect(other) is None and other.response is None


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "0.0.0.0"])
def test_a_lan_facing_proxy_never_tunnels_to_the_gateway_itself(
    ctl: tuple[AccessControl, Any], host: str
) -> None:
    ac, tctx = ctl
    configure(tctx, ac, listen_host="", **LAN)
    flow = connect_flow(host, 443)
    assert ac.http_connect(flow) is None
    assert flow.response is not None and flow.response.status_code == 403
    assert b"this gateway" in flow.response.content


def test_a_loopback_proxy_may_reach_loopback_services(ctl: tuple[AccessControl, Any]) -> None:
    ac, tctx = ctl
    configure(tctx, ac, listen_host="127.0.0.1")
    flow = connect_flow("127.0.0.1", 443, peer="127.0.0.1")
    assert ac.http_connect(flow) is None and flow.response is None


def server_data(host: str, port: int, peer: str = "192.168.1.5") -> ServerConnectionHookData:
    server = tflow.tserver_conn()
    server.address = (host, port)
    server.error = None
    return ServerConnectionHookData(server, client(peer))


def test_no_connection_to_the_proxy_itself_even_on_loopback(ctl: tuple[AccessControl, Any]) -> None:
    """A transparent proxy asked for its own address connects to itself, forever: kill that connection."""
    ac, tctx = ctl
    configure(tctx, ac, listen_host="127.0.0.1")
    ac.itself.listeners = Listeners((("0.0.0.0", 8080),))
    data = server_data("127.0.0.1", 8080)
    assert ac.server_connect(data) is None
    assert data.server.error and "the proxy itself" in data.server.error
    elsewhere = server_data("127.0.0.1", 8081)  # another loopback service: fine for a loopback-only proxy
    assert ac.server_connect(elsewhere) is None and elsewhere.server.error is None


def test_connect_to_mappings_are_the_users_own(ctl: tuple[AccessControl, Any]) -> None:
    ac, tctx = ctl
    configure(tctx, ac, listen_host="", **LAN, port443_connect_to=["site.test:443:127.0.0.1:8443"])
    data = server_data("site.test", 443)
    assert ac.server_connect(data) is None and data.server.error is None


async def test_names_that_resolve_to_the_gateway_are_refused(
    ctl: tuple[AccessControl, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    ac, tctx = ctl
    configure(tctx, ac, listen_host="", **LAN)
    import ipaddress

    lookups: list[str] = []

    async def fake(host: str, port: int) -> list[Any]:
        lookups.append(host)
        return [ipaddress.ip_address("127.0.0.1" if host == "rebind.example" else "192.0.2.10")]

    monkeypatch.setattr(access_module, "resolve_addresses", fake)
    bad, good = server_data("rebind.example", 80), server_data("example.com", 80)
    for data in (bad, good):
        pending = ac.server_connect(data)
        assert pending is not None
        await pending
    assert bad.server.error and "this gateway" in bad.server.error
    assert good.server.error is None
    tunnel = connect_flow("rebind.example", 443)
    pending = ac.http_connect(tunnel)
    assert pending is not None
    await pending
    assert tunnel.response is not None and tunnel.response.status_code == 403
    again = server_data("example.com", 80)
    pending = ac.server_connect(again)
    assert pending is not None
    await pending
    assert lookups.count("example.com") == 1 and again.server.error is None  # remembered for a while
