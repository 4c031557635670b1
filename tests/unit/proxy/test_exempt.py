"""Hosts never upgraded: local addresses, special-use names, captive-portal checks, the user's list."""

from __future__ import annotations

import pytest

from port443.proxy.exempt import CAPTIVE_PORTAL_HOSTS, exemption

LOCAL_ADDRESS = "local or non-public address"
SINGLE_LABEL = "single-label name"
SPECIAL_USE = "local or special-use name"
CAPTIVE = "captive-portal check"
NEVER = "on the never-upgrade list"


@pytest.mark.parametrize(
    ("host", "why"),
    [
        # RFC 1918 private, loopback, link-local, unspecified, documentation ranges
        ("10.0.0.1", LOCAL_ADDRESS),
        ("172.16.5.4", LOCAL_ADDRESS),
        ("172.31.255.254", LOCAL_ADDRESS),
        ("192.168.1.1", LOCAL_ADDRESS),
        ("127.0.0.1", LOCAL_ADDRESS),
        ("127.8.9.10", LOCAL_ADDRESS),
        ("169.254.169.254", LOCAL_ADDRESS),
        ("0.0.0.0", LOCAL_ADDRESS),
        ("192.0.2.1", LOCAL_ADDRESS),
        # IPv6 comes in brackets, as in a URL's host
        ("[::1]", LOCAL_ADDRESS),
        ("[::]", LOCAL_ADDRESS),
        ("[fe80::1]", LOCAL_ADDRESS),
        ("[fd12:3456::1]", LOCAL_ADDRESS),
        ("[fc00::1]", LOCAL_ADDRESS),
        ("[::ffff:192.168.0.10]", LOCAL_ADDRESS),  # IPv4-mapped private address
        ("[fe80::a]", LOCAL_ADDRESS),  # ends in a letter: still parsed as an address
        ("fe80::a", LOCAL_ADDRESS),  # and without brackets
        # public addresses are probed like any other host
        ("8.8.8.8", None),
        ("93.184.215.14", None),
        ("172.32.0.1", None),  # just outside 172.16.0.0/12
        ("[2606:4700:4700::1111]", None),
        ("[::ffff:8.8.8.8]", None),
    ],
)
def test_ip_addresses(host: str, why: str | None) -> None:
    assert exemption(host) == why


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("printer", SINGLE_LABEL),
        ("intranet", SINGLE_LABEL),
        ("localhost", SINGLE_LABEL),
        ("", SINGLE_LABEL),
        ("app.localhost", SPECIAL_USE),
        ("a.b.localhost", SPECIAL_USE),
        ("nas.local", SPECIAL_USE),
        ("router.lan", SPECIAL_USE),
        ("router.home.arpa", SPECIAL_USE),
        ("home.arpa", SPECIAL_USE),
        ("db.corp.internal", SPECIAL_USE),
        ("duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion", SPECIAL_USE),
        # only whole labels count
        ("notlocal.com", None),
        ("mylan.net", None),
        ("localhost.example.com", None),
        ("onion.example", None),
        ("internal.example.org", None),
        ("arpa.example", None),
    ],
)
def test_names(host: str, why: str | None) -> None:
    assert exemption(host) == why


@pytest.mark.parametrize("host", sorted(CAPTIVE_PORTAL_HOSTS))
def test_captive_portal_checks(host: str) -> None:
    assert exemption(host) == CAPTIVE


@pytest.mark.parametrize(
    "host",
    ["apple.com", "www.apple.com", "gstatic.com", "sub.captive.apple.com", "firefox.com", "google.com"],
)
def test_captive_portal_list_is_exact(host: str) -> None:
    assert exemption(host) is None


@pytest.mark.parametrize(
    ("host", "never", "why"),
    [
        ("corp.example", ["corp.example"], NEVER),
        ("www.corp.example", ["corp.example"], NEVER),
        ("a.b.corp.example", ["corp.example"], NEVER),
        ("corp.example", ["Corp.Example."], NEVER),  # entries are normalised like hosts
        ("corp.example", [".corp.example"], NEVER),
        ("notcorp.example", ["corp.example"], None),  # a suffix is not a subdomain
        ("corp.example.com", ["corp.example"], None),
        ("example", ["example"], SINGLE_LABEL),  # earlier steps name their own reason
        ("other.example", ["one.example", "other.example"], NEVER),
        ("other.example", [], None),
        ("other.example", ("a.example",), None),
    ],
)
def test_never_list(host: str, never: list[str], why: str | None) -> None:
    assert exemption(host, never) == why


def test_never_list_can_be_a_generator() -> None:
    assert exemption("x.corp.example", (n for n in ["corp.example"])) == NEVER


@pytest.mark.parametrize(
    "host", ["example.com", "www.example.org", "a.b.c.d.example.co.uk", "xn--bcher-kva.de"]
)
def test_ordinary_hosts(host: str) -> None:
    assert exemption(host) is None
    assert exemption(host, ["elsewhere.example"]) is None
