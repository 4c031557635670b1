"""WireGuard mode as port443 runs it: one key per device, and no private key in the log.

mitmproxy's WireGuard server takes a list of peer keys but its mode reads only one client key from its
JSON configuration; `accept_every_device` makes it also accept the `devices` of port443's keys file
(proxy/wireguard.py), so each phone or laptop has its own key and tunnel address. mitmproxy also logs the
whole client configuration, private key included, when the server starts: `RedactPrivateKeys` hides it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import mitmproxy_rs
from mitmproxy.addonmanager import Loader
from mitmproxy.proxy import mode_servers

from port443.errors import Port443Error
from port443.proxy.wireguard import parse_keys

logger = logging.getLogger(__name__)

_PRIVATE_KEY = re.compile(r"(PrivateKey\s*=\s*)\S+")
_HIDDEN = r"\1(hidden: `port443 wireguard-config` prints a device's configuration)"
_SERVER_KEY = re.compile(r"^PublicKey\s*=\s*(\S+)", re.M)
_patched = False


class _Redact(logging.Filter):
    """Rewrites log records that carry a WireGuard private key."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "PrivateKey" not in message:
            return True
        server = _SERVER_KEY.search(message)
        if "[Interface]" in message and server is not None:
            # mitmproxy's client configuration, with a guessed endpoint: say where the real one comes from.
            record.msg = (
                f"port443: WireGuard server public key {server[1]}; "
                "`port443 wireguard-config --endpoint HOST` prints a device's configuration"
            )
        else:
            record.msg = _PRIVATE_KEY.sub(_HIDDEN, message)
        record.args = None
        return True


_FILTER = _Redact()


def accept_every_device() -> None:
    """Make mitmproxy's WireGuard server accept every device of a port443 keys file (once per process)."""
    global _patched
    if _patched:
        return
    _patched = True
    instance: Any = mode_servers.WireGuardServerInstance

    async def start_udp_based_server(self: Any, host: str, port: int) -> Any:
        peers = [self.pubkey]
        if self.mode.data:
            path = Path(self.mode.data).expanduser()
            try:
                extra = parse_keys(path.read_text(), source=str(path)).peer_public_keys()
            except (OSError, Port443Error) as e:
                logger.warning(f"port443: {e}: only the default WireGuard device can connect")
                extra = []
            peers += [key for key in extra if key not in peers]
        return await mitmproxy_rs.wireguard.start_wireguard_server(
            host, port, self.server_key, peers, self.handle_stream, self.handle_stream
        )

    instance.start_udp_based_server = start_udp_based_server


class RedactPrivateKeys:
    """Keeps WireGuard private keys out of the log, and lets every configured device connect."""

    def load(self, loader: Loader) -> None:
        logging.getLogger(mode_servers.__name__).addFilter(_FILTER)
        accept_every_device()

    def done(self) -> None:
        logging.getLogger(mode_servers.__name__).removeFilter(_FILTER)
