"""TLS passes through untouched, and `port443_connect_to` sends upstream connections to another address.

HTTPS stays end to end between the client and the site, so clients see the sites' own certificates and no
CA has to be installed. The connect-to mapping exists for testing a site before DNS points at it (and for
tests with fake names); TLS still verifies the name the client asked for.
"""

from __future__ import annotations

from typing import Any

from mitmproxy import ctx, exceptions, tls
from mitmproxy.net.tls import starts_like_tls_record
from mitmproxy.proxy.layer import NextLayer
from mitmproxy.proxy.layers import ClientTLSLayer, ServerTLSLayer, TCPLayer
from mitmproxy.proxy.server_hooks import ServerConnectionHookData

from port443.errors import ProbeError
from port443.net.connect import host_key, parse_connect_to


class TlsPassthrough:
    """Never intercept TLS; apply the connect-to mapping to upstream connections."""

    def __init__(self) -> None:
        self.connect_to: dict[tuple[str, int], tuple[str, int]] = {}
        self._mapped: dict[str, tuple[str, int]] = {}

    def configure(self, updated: set[str]) -> None:
        if "port443_connect_to" not in updated:
            return
        opts: Any = ctx.options
        try:
            self.connect_to = parse_connect_to(list(opts.port443_connect_to))
        except ProbeError as e:
            raise exceptions.OptionsError(f"port443_connect_to: {e}") from e

    def next_layer(self, nextlayer: NextLayer) -> None:
        """A connection that starts with a TLS record is passed through as raw bytes.

        Deciding here, before any TLS layer is stacked, is what `ignore_hosts` does and costs nothing per
        packet; `tls_clienthello` below is the fallback for stacks decided before the client spoke.
        """
        if nextlayer.context.client.transport_protocol != "tcp":
            return
        if nextlayer.layer is not None and not isinstance(nextlayer.layer, ServerTLSLayer | ClientTLSLayer):
            return
        if starts_like_tls_record(nextlayer.data_client()):
            nextlayer.layer = TCPLayer(nextlayer.context, ignore=True)

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        """HTTPS stays end to end between the client and the site."""
        data.ignore_connection = True

    def server_connect(self, data: ServerConnectionHookData) -> None:
        """Apply port443_connect_to to upstream connections; TLS still verifies the original name."""
        address = data.server.address
        if address is not None and self.connect_to:
            target = self.connect_to.get((host_key(str(address[0])), int(address[1])))
            if target is not None:
                self._mapped[data.server.id] = address
                data.server.address = target

    def server_connected(self, data: ServerConnectionHookData) -> None:
        """Give a mapped connection its name back, so mitmproxy reuses it for the next request to that name."""
        original = self._mapped.pop(data.server.id, None)
        if original is not None:
            # mitmproxy refuses address changes on open connections because they cannot move the socket; this
            # one only renames it back (peername keeps the real address). Without it, every request to a
            # mapped name opens a new connection, and the sixth waits forever on mitmproxy's per-address limit.
            object.__setattr__(data.server, "address", original)

    def server_connect_error(self, data: ServerConnectionHookData) -> None:
        self._mapped.pop(data.server.id, None)
