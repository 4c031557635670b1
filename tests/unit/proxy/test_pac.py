"""The PAC file: only plain-HTTP URLs to the proxy, DIRECT as fallback, local names and addresses direct."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from port443.proxy import exempt
from port443.proxy.pac import LOCAL_SUFFIXES, pac_file, proxy_address


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("10.0.0.1", 8080, "10.0.0.1:8080"),
        ("fd00::1", 8080, "[fd00::1]:8080"),
        ("[fd00::1]", 8080, "[fd00::1]:8080"),
        ("Gateway.Home.Arpa.", 3128, "gateway.home.arpa:3128"),
        ('x"); alert(1); ("', 8080, None),  # from a request: never written into JavaScript
        ("a b", 8080, None),
        ("", 8080, None),
        ("10.0.0.1", 0, None),
    ],
)
def test_proxy_address(host: str, port: int, expected: str | None) -> None:
    assert proxy_address(host, port) == expected


def test_the_file_sends_http_to_the_proxy_with_direct_fallback() -> None:
    text = pac_file("10.0.0.1:8080")
    assert "function FindProxyForURL(url, host)" in text
    assert 'return "PROXY 10.0.0.1:8080; DIRECT";' in text
    assert text.count("PROXY") == 1
    assert 'url.substring(0, 5).toLowerCase() !== "http:"' in text
    assert "isPlainHostName(host)" in text
    for net in ("10.0.0.0", "172.16.0.0", "192.168.0.0", "127.0.0.0", "169.254.0.0", "100.64.0.0"):
        assert f'"{net}"' in text


def test_local_suffixes_are_the_ones_port443_exempts() -> None:
    assert LOCAL_SUFFIXES == exempt._LOCAL_SUFFIXES


_STUBS = """
function isPlainHostName(h) { return h.indexOf(".") < 0; }
function dnsDomainIs(h, d) { return h.length >= d.length && h.substring(h.length - d.length) === d; }
function n(ip) { return ip.split(".").reduce(function (a, b) { return a * 256 + Number(b); }, 0); }
function isInNet(h, net, mask) {
    if (!/^[0-9.]+$/.test(h)) { throw new Error("would resolve " + h); }
    return (n(h) & n(mask)) >>> 0 === (n(net) & n(mask)) >>> 0;
}
"""
CASES = {
    "http://example.com/": "PROXY [fd00::1]:8080; DIRECT",
    "HTTP://EXAMPLE.COM/": "PROXY [fd00::1]:8080; DIRECT",
    "http://8.8.8.8/": "PROXY [fd00::1]:8080; DIRECT",
    "http://[2001:db8::1]/": "PROXY [fd00::1]:8080; DIRECT",
    "https://example.com/": "DIRECT",
    "ws://example.com/": "DIRECT",
    "ftp://example.com/": "DIRECT",
    "http://printer/": "DIRECT",
    "http://nas.local/": "DIRECT",
    "http://router.home.arpa/": "DIRECT",
    "http://192.168.1.1/": "DIRECT",
    "http://172.20.0.1/": "DIRECT",
    "http://172.32.0.1/": "PROXY [fd00::1]:8080; DIRECT",
    "http://[fd12::1]/": "DIRECT",
    "http://[fe80::1]/": "DIRECT",
    "http://[::1]/": "DIRECT",
}


def test_the_file_runs_and_answers_as_documented(tmp_path: Path) -> None:
    """Evaluated by a JavaScript engine where the machine has one (node); the browser suite runs it too."""
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("no JavaScript engine (node) to evaluate the PAC file; its text is checked above")
    calls = "".join(
        f"console.log(FindProxyForURL({url!r}, {url.split('/')[2].strip('[]').lower()!r}));\n"
        for url in CASES
    )
    script = tmp_path / "pac.js"
    script.write_text(_STUBS + pac_file("[fd00::1]:8080") + calls)
    out = subprocess.run([node, str(script)], capture_output=True, text=True, check=True, timeout=30).stdout
    assert dict(zip(CASES, out.splitlines(), strict=True)) == CASES
