"""A real port443 proxy process for end-to-end tests: start it, wait for its ready line, read its output.

The ready line comes from a test-only addon (ready_addon.py) that prints the listening port once mitmproxy
runs, so tests never guess a port or sleep.
"""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpcore
import httpx

REPO = Path(__file__).resolve().parents[2]
READY = "PORT443-TEST-READY "
READY_ADDON = "tests/support/ready_addon.py"
_READY_LINE = re.compile(re.escape(READY) + r"(\d+)")


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

    def client(self, *, bind: str | None = None, **kwargs: object) -> httpx.Client:
        """An HTTP client using the proxy, trusting the test CA (for HTTPS through the tunnel).

        `bind`: the client's own address (127.0.0.2, ...), so one proxy sees several devices.
        """
        verify = ssl.create_default_context(cafile=str(self.ca_pem))
        if bind is None:
            return httpx.Client(proxy=self.url, verify=verify, timeout=15, **kwargs)  # type: ignore[arg-type]
        transport = httpx.HTTPTransport(proxy=self.url, verify=verify)
        # Neither httpx nor httpcore passes local_address on to proxied connections, so the transport's pool
        # is rebuilt on a network backend that binds every socket it opens.
        transport._pool = httpcore.HTTPProxy(
            proxy_url=self.url, ssl_context=verify, network_backend=_BoundBackend(bind)
        )
        return httpx.Client(mounts={"all://": transport}, timeout=15, **kwargs)  # type: ignore[arg-type]

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
            found = _READY_LINE.search(line)  # another thread's log line may be glued to it
            if found is not None:
                proxy.port = int(found.group(1))
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    if not ready.wait(timeout=120) or proxy.port == 0:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
        raise AssertionError(f"proxy did not start:\n{proxy.log}")
    return proxy


class _BoundBackend(httpcore.SyncBackend):
    """Opens every TCP connection from one local address, as a second device on the network would."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        return super().connect_tcp(host, port, timeout, self.address, socket_options)


class Launch(Protocol):
    """The `launch` fixture: start port443 in mitmdump with these settings."""

    def __call__(
        self,
        *,
        connect_to: list[str],
        mode: str = "redirect",
        rules: Path | None = None,
        extra: list[str] | None = None,
        db: Path | None = None,
    ) -> Proxy: ...


def report(db: Path) -> dict[str, dict[str, object]]:
    """`port443 report --json` on the store, by host."""
    out = subprocess.run(
        [sys.executable, "-m", "port443", "report", "--json", "--db", str(db)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {row["host"]: row for row in json.loads(out)}
