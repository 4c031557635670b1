"""WireGuard keys: mitmproxy's file format, mode 0600, one key per device, and a usable client config."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from port443.errors import Port443Error, UsageError
from port443.proxy import wireguard as wg


def test_keys_are_clamped_curve25519_and_public_keys_derive() -> None:
    raw = base64.b64decode(wg.generate_key())
    assert len(raw) == 32 and raw[0] & 7 == 0 and raw[31] & 128 == 0 and raw[31] & 64
    # RFC 7748 test vector (Alice): private a546e3..., public 8520f0...
    private = base64.b64encode(
        bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    ).decode()
    public = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    assert base64.b64decode(wg.public_key(private)) == public
    with pytest.raises(Port443Error, match="not a WireGuard private key"):
        wg.public_key("short")


def test_the_keys_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "data" / "wireguard.json"
    keys = wg.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert (
        data["server_key"] == keys.server_key and data["client_key"] == keys.client_key
    )  # mitmproxy's format
    assert wg.load_or_create(path) == keys


def test_devices_get_their_own_key_and_address(tmp_path: Path) -> None:
    path = tmp_path / "wireguard.json"
    keys = wg.load_or_create(path)
    phone = wg.add_device(keys, "phone")
    laptop = wg.add_device(keys, "laptop")
    assert (phone.address, laptop.address) == ("10.0.0.2", "10.0.0.3")
    assert wg.add_device(keys, "phone") == phone
    wg.write_keys(path, keys)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = wg.load_or_create(path)
    assert again.device("phone") == phone and again.device("default").address == "10.0.0.1"
    assert len(set(again.peer_public_keys())) == 3
    with pytest.raises(UsageError, match="short name"):
        wg.add_device(keys, "my phone!")


def test_a_broken_keys_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "wireguard.json"
    path.write_text('{"server_key": "x"}')
    with pytest.raises(Port443Error, match=f"{path}: not a WireGuard keys file"):
        wg.load_or_create(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("home.example.net", ("home.example.net", 51820)),
        ("home.example.net:4500", ("home.example.net", 4500)),
        ("203.0.113.7", ("203.0.113.7", 51820)),
        ("[2001:db8::1]:4500", ("2001:db8::1", 4500)),
        ("[2001:db8::1]", ("2001:db8::1", 51820)),
        ("2001:db8::1", ("2001:db8::1", 51820)),
    ],
)
def test_endpoints(text: str, expected: tuple[str, int]) -> None:
    assert wg.parse_endpoint(text) == expected


@pytest.mark.parametrize("bad", ["", "host:port", "host:0", "host:70000", "a b"])
def test_bad_endpoints(bad: str) -> None:
    with pytest.raises(UsageError, match="--endpoint"):
        wg.parse_endpoint(bad)


def test_client_config(tmp_path: Path) -> None:
    keys = wg.load_or_create(tmp_path / "k.json")
    text = wg.client_config(keys, "default", ("2001:db8::1", 51820))
    assert f"PrivateKey = {keys.client_key}\n" in text
    assert f"PublicKey = {wg.public_key(keys.server_key)}\n" in text
    assert "Address = 10.0.0.1/32\n" in text and "DNS = 10.0.0.53\n" in text
    assert "Endpoint = [2001:db8::1]:51820\n" in text and "0.0.0.0:" not in text
    assert keys.server_key not in text  # the server's private key never leaves the machine
