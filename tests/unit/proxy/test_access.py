"""Who may use a LAN-facing proxy, which ports CONNECT reaches, and the per-client connection bound."""

from __future__ import annotations

import pytest

from port443.errors import UsageError
from port443.proxy.access import ClientGate, ConnectionCounter, SayOnce, parse_networks, parse_ports


def test_loopback_is_always_allowed_and_lan_clients_only_when_named() -> None:
    closed = ClientGate()
    assert closed.allows("127.0.0.1") and closed.allows("::1") and closed.allows("::ffff:127.0.0.1")
    assert not closed.allows("192.168.1.5")
    gate = ClientGate(parse_networks(["192.168.1.0/24", "fd00::/64"], what="x"), allow_lan=True)
    assert gate.allows("192.168.1.5") and gate.allows("::ffff:192.168.1.5") and gate.allows("fd00::5")
    assert not gate.allows("192.168.2.5") and not gate.allows("fd00:1::5") and not gate.allows("8.8.8.8")
    assert not gate.allows(None) and not gate.allows("garbage")


def test_networks_without_allow_lan_let_nobody_in() -> None:
    gate = ClientGate(parse_networks(["0.0.0.0/0"], what="x"), allow_lan=False)
    assert not gate.allows("192.168.1.5")


def test_networks_parse_lists_and_single_addresses() -> None:
    assert [str(n) for n in parse_networks(["10.0.0.1, 10.0.0.0/8", "10.0.0.1"], what="x")] == [
        "10.0.0.1/32",
        "10.0.0.0/8",
    ]
    with pytest.raises(UsageError, match="--allow-clients 'lan': not an address or CIDR network"):
        parse_networks(["lan"], what="--allow-clients")


@pytest.mark.parametrize(
    ("specs", "expected"),
    [
        (["443"], {443}),
        (["443, 8443"], {443, 8443}),
        (["8000-8002", "443"], {443, 8000, 8001, 8002}),
        ([], set()),
    ],
)
def test_ports(specs: list[str], expected: set[int]) -> None:
    assert parse_ports(specs) == expected


@pytest.mark.parametrize("bad", ["https", "0", "70000", "9-3", "1-"])
def test_bad_ports_are_refused(bad: str) -> None:
    with pytest.raises(UsageError, match="port443_connect_ports"):
        parse_ports([bad])


def test_the_counter_refuses_the_connection_beyond_the_limit_and_frees_on_close() -> None:
    counter = ConnectionCounter(limit=2)
    assert counter.open("a") and counter.open("a") and not counter.open("a")
    assert counter.open("b")  # per client
    counter.close("a")
    assert counter.count("a") == 1 and counter.open("a")
    for _ in range(5):
        counter.close("b")
    assert counter.count("b") == 0 and len(counter) == 1  # nothing left behind for a client that left


def test_no_limit() -> None:
    counter = ConnectionCounter(limit=0)
    assert all(counter.open("a") for _ in range(1000))


def test_say_once_is_bounded() -> None:
    say = SayOnce(size=3)
    assert say.first("a") and not say.first("a")
    for key in "bcd":
        assert say.first(key)
    assert say.first("a")  # evicted by the flood, so it may be said again; memory stays at 3
    assert len(say._seen) == 3
