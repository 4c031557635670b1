"""WireGuard mode: no private key in the log, and every device of the keys file accepted."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from mitmproxy.proxy import mode_servers
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import taddons

from port443.mitm import wireguard as addon_module
from port443.mitm.wireguard import RedactPrivateKeys
from port443.proxy import wireguard as wg


def test_private_keys_never_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    addon = RedactPrivateKeys()
    with taddons.context(addon):
        caplog.set_level(logging.INFO)
        logging.getLogger(mode_servers.__name__).info(
            "[Interface]\nPrivateKey = c2VjcmV0\nAddress = 10.0.0.1/32"
        )
        addon.done()
    assert "c2VjcmV0" not in caplog.text
    assert (
        "PrivateKey = (hidden: `port443 wireguard-config`" in caplog.text
        and "Address = 10.0.0.1/32" in caplog.text
    )


async def test_the_server_accepts_every_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "wireguard.json"
    keys = wg.load_or_create(path)
    wg.add_device(keys, "phone")
    wg.write_keys(path, keys)
    seen: dict[str, Any] = {}

    async def fake_start(host: str, port: int, key: str, peers: list[str], *handlers: Any) -> str:
        seen.update(host=host, port=port, key=key, peers=peers)
        return "server"

    import mitmproxy_rs

    monkeypatch.setattr(mitmproxy_rs.wireguard, "start_wireguard_server", fake_start)
    addon_module.accept_every_device()
    instance: Any = mode_servers.WireGuardServerInstance.__new__(mode_servers.WireGuardServerInstance)
    instance.mode = ProxyMode.parse(f"wireguard:{path}@51820")
    instance.server_key, instance.pubkey = keys.server_key, wg.public_key(keys.client_key)
    assert await instance.start_udp_based_server("", 51820) == "server"
    assert seen["peers"] == keys.peer_public_keys() and len(seen["peers"]) == 2
