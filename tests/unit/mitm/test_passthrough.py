"""TlsPassthrough with mitmproxy's test helpers: TLS is never intercepted, connect-to maps upstreams."""

from __future__ import annotations

from mitmproxy.proxy.server_hooks import ServerConnectionHookData
from mitmproxy.test import taddons, tflow

from port443.mitm.passthrough import TlsPassthrough
from port443.mitm.upgrade import HttpsUpgrade


def test_tls_is_never_intercepted_and_connect_to_maps_upstreams() -> None:
    up, tls = HttpsUpgrade(), TlsPassthrough()
    with taddons.context(up, tls) as tctx:
        tctx.configure(tls, port443_shipped_rules=False, port443_connect_to=["site.test:443:127.0.0.1:8443"])
        hello = type("Hello", (), {"ignore_connection": False})()
        tls.tls_clienthello(hello)
        assert hello.ignore_connection is True
        flow = tflow.tflow()
        flow.server_conn.address = ("site.test", 443)
        data = ServerConnectionHookData(flow.server_conn, flow.client_conn)
        tls.server_connect(data)
        assert data.server.address == ("127.0.0.1", 8443)
        tls.server_connected(data)  # connected: the name comes back, so the connection can be reused
        assert data.server.address == ("site.test", 443)
