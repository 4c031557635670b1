"""`port443 run` refuses what it cannot do safely before anything listens, and says what to do instead.

A LAN listener without --allow-lan and --allow-clients (whichever way its address was given), a misspelt
option, proxyauth with transparent mode: exit 2 with one `port443:` line. A busy port names the flag that
picks another. Real processes on loopback; no namespace needed.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.support.netns import environ

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def run_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("run-home")
    return environ({"XDG_DATA_HOME": str(home / "data"), "XDG_CACHE_HOME": str(home / "cache")})


def run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "port443", "run", "--set", "port443_shipped_rules=false", *argv]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--set", "mode=regular@0.0.0.0:8113"],
            "regular@0.0.0.0:8113 listens on 0.0.0.0, beyond this machine: set port443_allow_lan (port443 run --allow-lan)",
        ),
        (
            ["--allow-lan", "--set", "mode=socks5@0.0.0.0:1080"],
            "socks5@0.0.0.0:1080 listens on 0.0.0.0: name the clients that may use it",
        ),
        (
            ["--set", "listen_host=0.0.0.0"],
            "--listen-host 0.0.0.0 would expose the proxy beyond this machine; add --allow-lan",
        ),
        (["--set", "port443_mdoe=strict"], "--set port443_mdoe: no such option (did you mean port443_mode?)"),
        (
            ["--transparent", "--set", "proxyauth=user:pass"],
            "proxyauth cannot work in transparent or WireGuard mode",
        ),
    ],
)
def test_run_refuses_unsafe_or_misspelt_settings(
    run_env: dict[str, str], argv: list[str], message: str
) -> None:
    done = run(run_env, *argv)
    assert done.returncode == 2 and f"port443: {message}" in done.stderr, done.stderr
    assert "listening on" not in done.stderr


def test_a_busy_port_names_a_flag_of_port443_run(run_env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run(run_env, "--listen-port", str(port))
    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in done.stdout + done.stderr
    assert f"pick another with --listen-port {port + 1}" in done.stdout + done.stderr
