"""`port443 run`'s gateway flags, `port443 gateway firewall` and `port443 wireguard-config`: output and exit codes."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from port443.cli.main import build_parser, main
from port443.cli.proxy import run_command_line
from port443.proxy import firewall
from port443.proxy import wireguard as wg


@pytest.fixture(autouse=True)
def private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def argv_for(*flags: str) -> list[str]:
    argv, _ = run_command_line(build_parser().parse_args(["run", *flags]))
    return argv


def sets(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--listen-host", "0.0.0.0"],
            "--listen-host 0.0.0.0 would expose the proxy beyond this machine; add --allow-lan and name the devices",
        ),
        (["--listen-host", "", "--allow-lan"], '--listen-host "" --allow-lan: add --allow-clients CIDR'),
        (
            ["--listen-host", "", "--allow-lan", "--allow-clients", "lan"],
            "--allow-clients 'lan': not an address or CIDR network",
        ),
        (["--client-mode", "10.0.0.0/8=fast"], "'fast' is not one of redirect, rewrite, strict, off"),
        (["--listen-port", "70000"], "--listen-port 70000: not a port"),
    ],
)
def test_usage_errors_exit_2_saying_what_to_add(
    capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    assert main(["run", *flags]) == 2
    assert message in capsys.readouterr().err


def test_a_transparent_gateway_with_wireguard(tmp_path: Path) -> None:
    argv = argv_for(
        "--transparent",
        "--listen-host",
        "",
        "--allow-lan",
        "--allow-clients",
        "192.168.1.0/24",
        "--wireguard",
        "--client-mode",
        "192.168.1.40=off",
    )
    keys = tmp_path / "data" / "port443" / "wireguard.json"
    assert sets(argv)[:2] == ["mode=transparent@:8080", f"mode=wireguard:{keys}@:51820"]
    assert {
        "port443_allow_lan=true",
        "port443_allow_clients=192.168.1.0/24",
        "port443_client_modes=192.168.1.40=off",
    } <= set(sets(argv))
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600  # made before mitmproxy would write one itself
    assert set(json.loads(keys.read_text())) >= {"server_key", "client_key"}


def test_user_modes_keep_working_and_wireguard_gets_its_own_port(tmp_path: Path) -> None:
    assert "mode=transparent" in sets(argv_for("--set", "mode=transparent"))
    argv = argv_for("--set", "mode=wireguard", "--wireguard-port", "4500")
    keys = tmp_path / "data" / "port443" / "wireguard.json"
    assert sets(argv)[0] == f"mode=wireguard:{keys}@:4500"  # not UDP 8080, not mitmproxy's own keys
    assert argv_for()[argv_for().index("--set") + 1] == "mode=regular@127.0.0.1:8080"
    assert sets(argv_for("--listen-host", "::1"))[0] == "mode=regular@::1:8080"


def test_set_listen_host_means_listen_host(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        sets(argv_for("--set", "listen_host=::1", "--set", "listen_port=3128"))[0] == "mode=regular@::1:3128"
    )
    assert main(["run", "--set", "listen_host=0.0.0.0"]) == 2
    assert "--listen-host 0.0.0.0 would expose the proxy" in capsys.readouterr().err


def test_the_port_flags_for_the_busy_hint() -> None:
    _, flags = run_command_line(
        build_parser().parse_args(["run", "--listen-port", "3128", "--wireguard-port", "4500"])
    )
    assert flags == {3128: "--listen-port", 4500: "--wireguard-port"}


def test_firewall_prints_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gateway", "firewall", "--lan", "eth1", "--port", "3128"]) == 0
    assert capsys.readouterr().out == firewall.ruleset(["eth1"], 3128)


def test_firewall_apply_and_remove_run_nft(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    scripts: list[str] = []
    monkeypatch.setattr(firewall, "run_nft", lambda script, **kw: scripts.append(script))
    assert main(["gateway", "firewall", "--lan", "eth1", "--apply"]) == 0
    assert main(["gateway", "firewall", "--lan", "eth1", "--remove"]) == 0
    assert scripts == [firewall.ruleset(["eth1"], 8080), firewall.removal()]
    assert "applied" in capsys.readouterr().err


def test_firewall_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gateway", "firewall", "--lan", "eth 1"]) == 2
    assert "not an interface name" in capsys.readouterr().err


def test_wireguard_config_for_a_device(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["wireguard-config", "--endpoint", "home.example.net"]) == 0
    out = capsys.readouterr().out
    keys = wg.load_or_create(tmp_path / "data" / "port443" / "wireguard.json")
    assert f"PrivateKey = {keys.client_key}" in out and "Endpoint = home.example.net:51820" in out
    assert main(["wireguard-config", "--endpoint", "[2001:db8::1]:4500", "--device", "phone"]) == 0
    captured = capsys.readouterr()
    assert "Address = 10.0.0.2/32" in captured.out and "Endpoint = [2001:db8::1]:4500" in captured.out
    assert "restart port443" in captured.err
    assert main(["wireguard-config", "--endpoint", "h", "--device", "phone"]) == 0
    assert "Address = 10.0.0.2/32" in capsys.readouterr().out  # the same key and address again


def test_wireguard_config_qr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["wireguard-config", "--endpoint", "192.0.2.7", "--qr"]) == 0
    out = capsys.readouterr().out
    assert "Endpoint = 192.0.2.7:51820" in out and "█" in out


def test_wireguard_config_usage_errors(capsys: pytest.CaptureFixture[str], monkeypatch: Any) -> None:
    assert main(["wireguard-config", "--endpoint", "host:port"]) == 2
    monkeypatch.setattr(wg, "guess_endpoint_host", lambda: None)
    assert main(["wireguard-config"]) == 2
    assert "pass --endpoint HOST[:PORT]" in capsys.readouterr().err
