"""Mode specs as `port443 run` writes them, its start line, and the "port in use" hint."""

from __future__ import annotations

import pytest

from port443.proxy.listen import (
    Listener,
    ModeSpec,
    busy_hint,
    is_loopback,
    listen_spec,
    parse_mode,
    start_line,
    wireguard_spec,
)


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("regular", ModeSpec("regular", "", None, None)),
        ("regular@8081", ModeSpec("regular", "", None, 8081)),
        ("transparent@:8080", ModeSpec("transparent", "", "", 8080)),
        ("regular@::1:8080", ModeSpec("regular", "", "::1", 8080)),
        ("wireguard:/a/b@c.json@51820", ModeSpec("wireguard", "/a/b@c.json", None, 51820)),
        ("reverse:https://x.test@127.0.0.1:443", ModeSpec("reverse", "https://x.test", "127.0.0.1", 443)),
    ],
)
def test_parse_and_round_trip(spec: str, parsed: ModeSpec) -> None:
    assert parse_mode(spec) == parsed
    assert str(parsed) == spec


def test_bad_port() -> None:
    with pytest.raises(ValueError, match="invalid port"):
        parse_mode("regular@80x")


def test_listen_specs_carry_their_own_address() -> None:
    assert listen_spec("transparent", "", 8080) == "transparent@:8080"
    assert listen_spec("regular", "::", 8080) == "regular@:::8080"
    assert parse_mode(listen_spec("regular", "::", 8080)).host == "::"


def test_a_users_wireguard_spec_gets_port443s_keys_and_port() -> None:
    assert wireguard_spec("wireguard", keys="/k.json", port=51820) == "wireguard:/k.json@:51820"
    assert (
        wireguard_spec("wireguard:/mine.json@4500", keys="/k.json", port=51820)
        == "wireguard:/mine.json@:4500"
    )  # every address, not the HTTP proxy's host
    assert wireguard_spec("regular@8081", keys="/k.json", port=51820) == "regular@8081"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("127.0.0.2", True),
        ("", False),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.1", False),
        ("gateway", False),
    ],
)
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_start_line_shows_real_addresses_and_modes() -> None:
    line = start_line(
        [
            Listener("transparent", "Transparent Proxy", (("0.0.0.0", 8080), ("::", 8080))),
            Listener("regular", "HTTP(S) proxy", (("127.0.0.1", 40123),)),
            Listener("wireguard", "WireGuard server", (("0.0.0.0", 51820),)),
        ],
        "strict",
        ["192.168.1.0/24"],
    )
    assert line.startswith("port443: listening on 0.0.0.0:8080 and [::]:8080 (transparent")
    assert "http://127.0.0.1:40123 (HTTP proxy)" in line
    assert "udp://0.0.0.0:51820 (WireGuard" in line
    assert line.endswith("; strict mode; clients: 192.168.1.0/24")
    assert "http://:::" not in line


def test_busy_hint_names_a_flag_of_port443_run() -> None:
    message = (
        "[Errno 98] HTTP(S) proxy failed to listen on 127.0.0.1:8080 with [Errno 98] error while attempting "
        "to bind on address ('127.0.0.1', 8080): address already in use"
    )
    hint = busy_hint(message, {8080: "--listen-port"})
    assert (
        hint
        == "port 8080 on 127.0.0.1 is already in use (another port443 or proxy?): stop what uses it, or pick another with --listen-port 8081"
    )
    assert busy_hint("something else failed", {8080: "--listen-port"}) is None
    assert "every address" in (busy_hint(message.replace("127.0.0.1:8080 with", ":8080 with"), {}) or "")
