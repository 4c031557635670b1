"""The dashboard's checks, pure: own Host only, same-origin actions, CSRF tokens, sessions and sign-in limits."""

from __future__ import annotations

import ipaddress

import pytest

from port443.proxy import guard as guard_module
from port443.proxy.clients import Address
from port443.proxy.guard import Guard, in_networks, own_host, same_origin, split_authority

NAMES = frozenset({"gateway", "gateway.home.arpa"})
OWN = {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"), ipaddress.ip_address("192.168.1.2")}


def is_local(address: Address) -> bool:
    return address in OWN


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("authority", "parts"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("LocalHost", ("localhost", None)),
        ("[::1]:8080", ("::1", 8080)),
        ("gateway.:80", ("gateway", 80)),
        ("[::1", None),
        ("[::1]x", None),
        ("host:", None),
        ("host:99999", None),
        ("host:8o", None),
        ("evil.example/x", None),
        ("user@127.0.0.1", None),
        ("", None),
    ],
)
def test_split_authority(authority: str, parts: tuple[str, int | None] | None) -> None:
    assert split_authority(authority) == parts


@pytest.mark.parametrize(
    ("host", "ours"),
    [
        ("127.0.0.1:8080", True),
        ("[::1]:8080", True),
        ("192.168.1.2:8080", True),
        ("localhost:8080", True),
        ("dashboard.localhost", True),
        ("gateway:8080", True),
        ("Gateway.Home.Arpa", True),
        ("192.168.1.3:8080", False),  # not this machine
        ("evil.example:8080", False),  # a rebound name: it resolves here, but it is not ours
        ("127.0.0.1.evil.example", False),
        ("localhost.evil.example", False),
        ("", False),
    ],
)
def test_only_the_proxys_own_addresses_and_names(host: str, ours: bool) -> None:
    assert own_host(host, NAMES, is_local) is ours


@pytest.mark.parametrize(
    ("origin", "referer", "ok"),
    [
        ("http://127.0.0.1:8080", None, True),
        (None, "http://127.0.0.1:8080/?x", True),
        ("http://127.0.0.1:8080", "http://evil.example/", True),  # Origin decides when present
        ("http://evil.example", "http://127.0.0.1:8080/", False),
        ("http://127.0.0.1:8081", None, False),
        ("http://127.0.0.1", None, False),  # port 80 is another origin
        ("https://127.0.0.1:8080", None, False),
        ("null", None, False),  # sandboxed frames, file: pages
        ("http://user@127.0.0.1:8080", None, False),
        ("http://127.0.0.1:99999", None, False),
        (None, None, False),
    ],
)
def test_same_origin(origin: str | None, referer: str | None, ok: bool) -> None:
    assert same_origin(origin, referer, "127.0.0.1:8080") is ok


def test_same_origin_on_the_default_port() -> None:
    assert same_origin("http://gateway", None, "gateway:80")
    assert same_origin("http://gateway:80", None, "gateway")
    assert not same_origin("http://gateway", None, "[bad")


def test_in_networks() -> None:
    networks = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
    assert in_networks("127.0.0.2", networks) and in_networks("::ffff:127.0.0.1", networks)
    assert not in_networks("192.168.1.5", networks) and not in_networks("garbage", networks)


def test_csrf_tokens_are_bound_to_what_they_were_made_for() -> None:
    guard, other = Guard(), Guard()
    token = guard.csrf_token("session:abc")
    assert guard.check_csrf(token, "session:abc")
    assert not guard.check_csrf(token, "session:abd")
    assert not guard.check_csrf(token, "trusted:127.0.0.1")
    assert not other.check_csrf(token, "session:abc")  # another process: another secret
    assert not guard.check_csrf("", "session:abc")


def test_sessions_belong_to_one_device_one_password_and_expire() -> None:
    clock = Clock()
    guard = Guard(clock=clock)
    token = guard.open_session("192.168.1.5", generation=1)
    assert guard.session(token, "192.168.1.5", 1)
    assert not guard.session(token, "192.168.1.6", 1)  # a copied cookie on another device
    assert not guard.session(token + "x", "192.168.1.5", 1)
    assert not guard.session("x" * 1000, "192.168.1.5", 1)
    clock.now += guard_module.SESSION_TTL + 1
    assert not guard.session(token, "192.168.1.5", 1)
    fresh = guard.open_session("192.168.1.5", generation=1)
    assert not guard.session(fresh, "192.168.1.5", 2)  # the password changed
    again = guard.open_session("192.168.1.5", generation=2)
    guard.close_session(again)
    assert not guard.session(again, "192.168.1.5", 2)


def test_sessions_are_bounded_oldest_first() -> None:
    guard = Guard()
    first = guard.open_session("192.168.1.5", 1)
    for _ in range(guard_module.MAX_SESSIONS):
        guard.open_session("192.168.1.5", 1)
    assert not guard.session(first, "192.168.1.5", 1)
    assert len(guard._sessions) == guard_module.MAX_SESSIONS


def test_wrong_passwords_are_limited_per_device_and_overall() -> None:
    clock = Clock()
    guard = Guard(clock=clock)
    for _ in range(guard_module.LOGIN_TRIES):
        assert guard.may_try("192.168.1.5")
        guard.failed("192.168.1.5")
    assert not guard.may_try("192.168.1.5")
    assert guard.may_try("192.168.1.6")
    clock.now += guard_module.LOGIN_WINDOW + 1
    assert guard.may_try("192.168.1.5")
    for n in range(guard_module.LOGIN_TRIES_ALL):
        guard.failed(f"192.168.1.{n}")
    assert not guard.may_try("192.168.1.200")  # many addresses, one guesser
    guard.succeeded("192.168.1.0")
    assert "192.168.1.0" not in guard._failures
