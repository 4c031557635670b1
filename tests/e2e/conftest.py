"""End-to-end fixtures: a real mitmdump with port443's addons, real upstream servers, trustme certificates.

Fake names (`site.test`) reach loopback through the `port443_connect_to` option, which maps HOST:PORT to a
local address for probes and upstream connections while TLS still verifies HOST itself. The machinery lives
in tests/support; these are only the fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.certs import Certs, make_certs
from tests.support.proxy import READY_ADDON, Launch, Proxy, mitmdump, start


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def proxy_env(tmp_path: Path) -> dict[str, str]:
    """A private cache and data dir, so tests never touch the user's."""
    # PYTHONFAULTHANDLER: should a proxy ever crash, its output holds the Python stacks of the crash.
    return {
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "PYTHONFAULTHANDLER": "1",
    }


@pytest.fixture
def launch(tmp_path: Path, certs: Certs, proxy_env: dict[str, str]) -> Iterator[Launch]:
    """Start port443 in mitmdump: launch(connect_to=[...], rules=..., mode=..., extra=[...])."""
    started: list[Proxy] = []

    def _launch(
        *,
        connect_to: list[str],
        mode: str = "redirect",
        rules: Path | None = None,
        extra: list[str] | None = None,
        db: Path | None = None,
    ) -> Proxy:
        argv = [
            mitmdump(),
            "-s",
            "addon/port443_mitm.py",
            "-s",
            READY_ADDON,
            "--listen-host",
            "127.0.0.1",
            "-p",
            "0",
        ]
        sets = [
            f"confdir={tmp_path / 'mitm'}",
            f"ssl_verify_upstream_trusted_ca={certs.ca_pem}",
            f"port443_mode={mode}",
            f"port443_db={db or tmp_path / 'insecure.sqlite3'}",
            "port443_shipped_rules=false",
            "port443_flush_interval=200",
            "flow_detail=0",
            *[f"port443_connect_to={c}" for c in connect_to],
            *([f"port443_rules={rules}"] if rules else []),
            *(extra or []),
        ]
        for s in sets:
            argv += ["--set", s]
        proxy = start(argv, certs.ca_pem, env=proxy_env)
        started.append(proxy)
        return proxy

    yield _launch
    for proxy in started:
        proxy.stop()
