"""The gateway's own addresses: loopback, unspecified and bound addresses are this machine; others are not."""

from __future__ import annotations

import ipaddress

import pytest

from port443.proxy.own import is_local_address, is_local_name, listeners_of


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),  # all of 127/8 is loopback
        ("::1", True),
        ("0.0.0.0", True),  # connecting to it reaches this machine
        ("::", True),
        ("192.0.2.77", False),  # TEST-NET: never this machine's
        ("2001:db8::77", False),
        ("224.0.0.1", False),
    ],
)
def test_local_addresses(address: str, local: bool) -> None:
    assert is_local_address(ipaddress.ip_address(address)) is local


@pytest.mark.parametrize(
    ("name", "local"),
    [("localhost", True), ("LocalHost.", True), ("a.localhost", True), ("localhost.example", False)],
)
def test_local_names(name: str, local: bool) -> None:
    assert is_local_name(name) is local


def test_a_local_address_on_a_listening_port_is_the_proxy_itself() -> None:
    listeners = listeners_of([("0.0.0.0", 8080), ("::", 8080, 0, 0), ("127.0.0.1", 8081)])
    assert listeners.ports == {8080, 8081}
    assert listeners.is_proxy(ipaddress.ip_address("127.0.0.1"), 8080)
    assert listeners.is_proxy(ipaddress.ip_address("::1"), 8081)
    assert not listeners.is_proxy(ipaddress.ip_address("127.0.0.1"), 80)
    assert not listeners.is_proxy(ipaddress.ip_address("192.0.2.1"), 8080)  # elsewhere, same port
