"""Per-device modes: CIDR=MODE specs, the most specific network wins, the global mode for everyone else."""

from __future__ import annotations

import pytest

from port443.errors import UsageError
from port443.proxy.clients import CLIENT_MODES, parse_address, parse_client_modes

SPECS = [
    "192.168.1.0/24=strict",
    "192.168.1.40/32=off",
    "192.168.1.32/28=rewrite",
    "fd00::/8=rewrite",
    "fd00::7=off",
]


@pytest.mark.parametrize(
    ("address", "mode"),
    [
        ("192.168.1.40", "off"),  # /32 beats /28 beats /24
        ("192.168.1.41", "rewrite"),
        ("192.168.1.7", "strict"),
        ("192.168.2.7", "redirect"),  # no match: the global mode
        ("::ffff:192.168.1.40", "off"),  # an IPv4 client on a dual-stack socket
        ("fd00::7", "off"),
        ("fd00::8", "rewrite"),
        ("[fd00::8]", "rewrite"),
        ("fe80::1%eth0", "redirect"),
        ("2001:db8::1", "redirect"),
        ("not an address", "redirect"),
        (None, "redirect"),
    ],
)
def test_most_specific_match_wins(address: str | None, mode: str) -> None:
    assert parse_client_modes(SPECS, default="redirect").mode_for(address) == mode


def test_the_default_is_the_global_mode_and_order_of_specs_does_not_matter() -> None:
    forward, backward = (
        parse_client_modes(SPECS, default="strict"),
        parse_client_modes(SPECS[::-1], default="strict"),
    )
    assert forward == backward
    assert forward.mode_for("10.0.0.1") == "strict"
    assert forward.describe()[0] in ("192.168.1.40/32=off", "fd00::7/128=off")


def test_off_is_a_mode_and_every_upgrade_mode_is_one() -> None:
    assert CLIENT_MODES == ("redirect", "rewrite", "strict", "off")
    assert parse_client_modes(["10.0.0.0/8=OFF"], default="rewrite").mode_for("10.1.2.3") == "off"


def test_no_specs_cost_nothing() -> None:
    modes = parse_client_modes([], default="redirect")
    assert modes.rules == () and modes.mode_for("10.0.0.1") == "redirect"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("192.168.1.0/24", "expected CIDR=MODE"),
        ("=off", "expected CIDR=MODE"),
        ("192.168.1.0/24=fast", "'fast' is not one of redirect, rewrite, strict, off"),
        ("192.168.300.0/24=off", "not an address or CIDR network"),
        ("example.com=off", "not an address or CIDR network"),
    ],
)
def test_malformed_specs_name_the_value(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        parse_client_modes([spec], default="redirect")
    assert repr(spec) in str(caught.value)


def test_one_network_cannot_have_two_modes() -> None:
    with pytest.raises(UsageError, match="already has mode 'off'"):
        parse_client_modes(["10.0.0.0/8=off", "10.1.0.0/8=strict"], default="redirect")  # the same /8


def test_addresses_parse_as_mitmproxy_reports_them() -> None:
    assert str(parse_address("::ffff:10.0.0.1")) == "10.0.0.1"
    assert parse_address("localhost") is None
