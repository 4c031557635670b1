"""Hosts port443 never upgrades: local networks, special-use names, captive-portal checks, the user's list.

Upgrading these would break things people rely on (routers, printers, .onion services, the checks an OS
makes to detect a captive portal) without protecting anything. Pure.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

# Names that only mean something on the local network or are not DNS at all (RFC 6761, 6762, 7686, 8375).
_LOCAL_SUFFIXES = (".localhost", ".local", ".lan", ".home.arpa", ".internal", ".onion")
_LOCAL_NAMES = frozenset(("localhost", "local", "lan", "home.arpa", "internal", "onion"))

# Operating systems and browsers fetch these over plain HTTP to detect a captive portal; upgrading them
# hides the portal's login page from the user.
CAPTIVE_PORTAL_HOSTS = frozenset(
    (
        "captive.apple.com",
        "connectivitycheck.gstatic.com",
        "connectivitycheck.android.com",
        "clients3.google.com",
        "www.msftconnecttest.com",
        "www.msftncsi.com",
        "ipv6.msftconnecttest.com",
        "detectportal.firefox.com",
        "nmcheck.gnome.org",
        "network-test.debian.org",
        "connectivity-check.ubuntu.com",
        "conncheck.opensuse.org",
    )
)


def exemption(host: str, never: Iterable[str] = ()) -> str | None:
    """Why `host` (lower-case, no trailing dot; IPv6 in brackets) must stay on HTTP, or None.

    `never` is the user's never-upgrade list: a plain name covers itself and its subdomains.
    """
    address = _ip(host)
    if address is not None:
        if not address.is_global:  # private, loopback, link-local, carrier-grade NAT, reserved, multicast...
            return "local or non-public address"
        return None
    if not host or "." not in host:
        return "single-label name"
    if host in _LOCAL_NAMES or host.endswith(_LOCAL_SUFFIXES):
        return "local or special-use name"
    if host in CAPTIVE_PORTAL_HOSTS:
        return "captive-portal check"
    for entry in never:
        entry = entry.lower().strip(".")
        if host == entry or host.endswith("." + entry):
            return "on the never-upgrade list"
    return None


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # Only what could be an address is parsed: a dotted IPv4 ends in a digit, IPv6 has colons. A name (nearly
    # every request) would cost a raised ValueError, a tenth of port443's time per request.
    if not (host[-1:].isdigit() or ":" in host):
        return None
    try:
        return ipaddress.ip_address(host[1:-1] if host.startswith("[") else host)
    except ValueError:
        return None
