"""The proxy auto-config (PAC) file that points devices at port443: plain-HTTP URLs only, DIRECT as fallback.

HTTPS and every other scheme go direct (the proxy would only tunnel them), and so do plain host names,
local names and private addresses (port443 never upgrades those). `PROXY host:port; DIRECT` lets browsers
go on when the proxy is down. Private addresses are only checked for IP literals, so the file never makes
a browser resolve a name just to choose a proxy. Pure text; served by mitm/own.py.
"""

from __future__ import annotations

import re

from port443.proxy.clients import parse_address

CONTENT_TYPE = "application/x-ns-proxy-autoconfig"
PATHS = ("/proxy.pac", "/wpad.dat")
"""`/wpad.dat` is where WPAD clients look (DHCP option 252, or http://wpad.<domain>/wpad.dat)."""

LOCAL_SUFFIXES = (".localhost", ".local", ".lan", ".home.arpa", ".internal", ".onion")
"""The names proxy/exempt.py never upgrades (RFC 6761, 6762, 7686, 8375); a test keeps the two in step."""

# Private, loopback, link-local and carrier-grade NAT IPv4 networks (RFC 1918, 1122, 3927, 6598).
PRIVATE_V4 = (
    ("10.0.0.0", "255.0.0.0"),
    ("172.16.0.0", "255.240.0.0"),
    ("192.168.0.0", "255.255.0.0"),
    ("127.0.0.0", "255.0.0.0"),
    ("169.254.0.0", "255.255.0.0"),
    ("100.64.0.0", "255.192.0.0"),
)

_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")


def proxy_address(host: str, port: int) -> str | None:
    """`host:port` as a PAC `PROXY` target (IPv6 in brackets), or None when `host` is not a name or an address.

    The host comes from a request, so anything that is not plainly a DNS name or an IP literal is refused
    rather than written into JavaScript.
    """
    if not 0 < port < 65536:
        return None
    address = parse_address(host)
    if address is not None:
        return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
    name = host.lower().rstrip(".")
    if len(name) > 253 or not _NAME.match(name):
        return None
    return f"{name}:{port}"


def pac_file(proxy: str) -> str:
    """The PAC file sending plain-HTTP URLs to `proxy` (from proxy_address) and everything else DIRECT."""
    suffixes = " ||\n        ".join(f'dnsDomainIs(host, "{s}")' for s in LOCAL_SUFFIXES)
    networks = " ||\n            ".join(f'isInNet(host, "{net}", "{mask}")' for net, mask in PRIVATE_V4)
    return f"""\
// port443: only plain-HTTP URLs go through the HTTPS upgrade proxy; HTTPS and the rest go direct.
// "; DIRECT" keeps browsing working when the proxy is down.
function FindProxyForURL(url, host) {{
    if (url.substring(0, 5).toLowerCase() !== "http:") {{
        return "DIRECT";
    }}
    host = host.toLowerCase();
    if (host.indexOf(":") >= 0) {{
        // IPv6 literal: loopback, unique local (fc00::/7) and link-local (fe80::/10) stay direct.
        var bare = host.replace(/^\\[|\\]$/g, "");
        if (bare === "::1" || /^f[cd]/.test(bare) || /^fe[89ab]/.test(bare)) {{
            return "DIRECT";
        }}
    }} else if (isPlainHostName(host) ||
        {suffixes}) {{
        return "DIRECT";
    }} else if (/^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$/.test(host)) {{
        if ({networks}) {{
            return "DIRECT";
        }}
    }}
    return "PROXY {proxy}; DIRECT";
}}
"""
