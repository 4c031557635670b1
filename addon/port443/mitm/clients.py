"""ClientPolicy: the per-device upgrade mode (`port443_client_modes`), put on each flow for HttpsUpgrade.

The mode is decided in `requestheaders`, which runs before any addon's `request` hook, and travels in
`flow.metadata[CLIENT_MODE]`; `client_mode(flow)` reads it (the global `port443_mode` when it is not set).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mitmproxy import ctx, exceptions, http
from mitmproxy.addonmanager import Loader

from port443.errors import Port443Error
from port443.proxy.clients import ClientModes, parse_client_modes

_MEMO = 4096
CLIENT_MODE = "port443.client_mode"
"""flow.metadata key: the mode for this request's client: redirect, rewrite, strict or off."""


def client_mode(flow: http.HTTPFlow) -> str:
    """The upgrade mode for the client of `flow`: its per-device mode, else the global port443_mode."""
    mode = flow.metadata.get(CLIENT_MODE)
    return mode if isinstance(mode, str) else str(ctx.options.port443_mode)


class ClientPolicy:
    """Reads `port443_client_modes` and tags each request with its client's mode."""

    def __init__(self) -> None:
        self.modes = ClientModes()
        self._by_address: dict[str, str] = {}  # a household has few addresses; parsing one costs microseconds

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "port443_client_modes",
            Sequence[str],
            [],
            "Per-device modes as CIDR=MODE, MODE one of redirect, rewrite, strict or off (never touched); the most specific network wins, and port443_mode applies to every other client.",
        )

    def configure(self, updated: set[str]) -> None:
        if "port443_client_modes" not in updated and "port443_mode" not in updated:
            return
        opts: Any = ctx.options
        try:
            self.modes = parse_client_modes(list(opts.port443_client_modes), default=str(opts.port443_mode))
        except Port443Error as e:
            raise exceptions.OptionsError(f"port443_client_modes: {e}") from e
        self._by_address = {}

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        """Tag the request with its client's mode (before any addon's `request` hook runs)."""
        peer = flow.client_conn.peername
        address = str(peer[0]) if peer else ""
        mode = self._by_address.get(address)
        if mode is None:
            if len(self._by_address) >= _MEMO:
                self._by_address.clear()  # bounded: a flood of addresses only costs the parsing again
            mode = self._by_address[address] = self.modes.mode_for(address or None)
        flow.metadata[CLIENT_MODE] = mode
