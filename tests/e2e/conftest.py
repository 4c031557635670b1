"""End-to-end harness: a real mitmdump with port443's addons, real upstream servers, trustme certificates.

Fake names (`site.test`) reach loopback through the `port443_connect_to` option, which maps HOST:PORT to a
local address for probes and upstream connections while TLS still verifies HOST itself.
"""

from __future__ import annotations

import datetime
import os
import signal
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import trustme

from tests.conftest import REPO

READY = "PORT443-TEST-READY "


@dataclass
class Certs:
    """A test CA the proxy trusts, and server contexts for good and bad certificates."""

    ca: trustme.CA
    ca_pem: Path
    tmp: Path

    def context(self, *names: str, expired: bool = False, untrusted: bool = False) -> ssl.SSLContext:
        """A server context with a certificate for `names` (expired, or from a CA nobody trusts)."""
        ca = trustme.CA() if untrusted else self.ca
        if expired:
            now = datetime.datetime.now(datetime.UTC)
            past = (now - datetime.timedelta(days=30), now - datetime.timedelta(days=1))
            cert = ca.issue_cert(*names, not_before=past[0], not_after=past[1])
        else:
            cert = ca.issue_cert(*names)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        return ctx


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    tmp = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    ca_pem = tmp / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    return Certs(ca, ca_pem, tmp)


@dataclass
class Proxy:
    """A running port443 proxy process."""

    process: subprocess.Popen[str]
    port: int
    ca_pem: Path
    output: list[str] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs: object) -> httpx.Client:
        """An HTTP client using the proxy, trusting the test CA (for HTTPS through the tunnel)."""
        verify = ssl.create_default_context(cafile=str(self.ca_pem))
        return httpx.Client(proxy=self.url, verify=verify, timeout=15, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> int:
        """SIGTERM, as a service manager would; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=20)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code

    @property
    def log(self) -> str:
        return "".join(self.output)

    def wait_for_log(self, text: str, *, times: int = 1, timeout: float = 30) -> None:
        """Block until the proxy has printed `text` `times` times (woken by each new line, not by a timer)."""
        with self.changed:
            ok = self.changed.wait_for(lambda: self.log.count(text) >= times, timeout)
        assert ok, f"{text!r} never appeared in the proxy's output:\n{self.log}"


def mitmdump() -> str:
    path = Path(sys.executable).with_name("mitmdump")
    return str(path) if path.exists() else "mitmdump"


def start(argv: list[str], ca_pem: Path, *, env: dict[str, str] | None = None) -> Proxy:
    """Start a proxy command line and wait (on its output, not a timer) until it listens."""
    process = subprocess.Popen(
        argv,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        # mitmproxy changes its logging and task handling when it sees pytest's variables: hide them.
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}, **(env or {})},
    )
    ready = threading.Event()
    proxy = Proxy(process, 0, ca_pem)

    def drain() -> None:  # keeps the pipe empty for the whole run, and notices the ready line
        assert process.stdout is not None
        for line in process.stdout:
            with proxy.changed:
                proxy.output.append(line)
                proxy.changed.notify_all()
            if line.startswith(READY):
                proxy.port = int(line[len(READY) :])
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    if not ready.wait(timeout=120) or proxy.port == 0:
        process.kill()
        process.wait()
        raise AssertionError(f"proxy did not start:\n{proxy.log}")
    return proxy


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
def launch(tmp_path: Path, certs: Certs, proxy_env: dict[str, str]) -> Iterator[object]:
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
            "tests/e2e/ready.py",
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
