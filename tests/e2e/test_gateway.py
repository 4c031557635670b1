"""The household gateway for real: network namespaces, nftables, real nginx, curl as the devices, WireGuard.

A client namespace with no proxy configured sits behind a gateway namespace that forwards, runs
`port443 run --transparent` and the rules of `port443 gateway firewall --apply`; a server namespace runs
nginx for several names with a trustme CA; an outside namespace plays the ISP side. IPv4 and IPv6 alike:
plain HTTP is upgraded, HTTPS goes around the proxy, broken sites stay on HTTP and are logged, strangers
get nothing, CONNECT is held to port 443 and away from the gateway itself, a device that uses the
transparent port as its proxy starts no storm, the PAC file is served, and a WireGuard client (wireguard-go
and wg, as on a phone) is upgraded through the tunnel. See tests/support/netns.py for the layout.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.support import netns
from tests.support.browser import HEADLESS
from tests.support.netns import Lab, Namespace, Output
from tests.support.nginx import Cert, Nginx, Page, Redirect, Site, run_nginx
from tests.support.proxy import report

pytestmark = [pytest.mark.e2e, pytest.mark.gateway]

TRANSPARENT, EXPLICIT, WIREGUARD = 8080, 8081, 51820
TV4, TV6 = netns.LAN4 + "3", netns.LAN6 + "3"  # a device that cannot follow redirects: rewrite mode
PRINTER4 = netns.LAN4 + "4"  # a device the household asked port443 never to touch
MAX_CONNECTIONS, IDLE_TIMEOUT = 16, 3  # small, so the bounds can be seen quickly


def page(title: str) -> Page:
    return Page(f"<!doctype html><title>{title}</title><h1>{title}</h1>\n")


SITES = [
    Site("good.test", page("Good over HTTP"), page("Good")),
    Site("plain.test", page("Plain only")),  # no HTTPS server for this name
    Site("expired.test", page("Expired over HTTP"), page("Expired"), Cert.EXPIRED),
    Site("back.test", page("Back over HTTP"), Redirect("http://back.test$request_uri")),
]
HOSTS = " ".join(s.name for s in SITES)
FAMILIES = [pytest.param(4, id="ipv4"), pytest.param(6, id="ipv6")]


@dataclass
class Gateway:
    """The port443 process in the gateway namespace, and where its store and keys are."""

    ns: Namespace
    argv: list[str]
    env: dict[str, str]
    db: Path
    output: Output | None = None

    def start(self) -> Output:
        if self.output is None or self.output.process.poll() is not None:
            self.output = self.ns.start(*self.argv, env=self.env)
            self.output.wait_for("port443: listening on")  # printed once every listener is up
        return self.output

    def stop(self) -> int:
        code = netns.stop(self.output.process) if self.output is not None else 0
        return code

    def port443(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """Another port443 command in the gateway namespace, with the gateway's data directory."""
        return self.ns.run(
            "env", *[f"{k}={v}" for k, v in self.env.items()], sys.executable, "-m", "port443", *argv
        )


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    netns.require_tools()
    lines = [(netns.SERVER4, HOSTS), (netns.SERVER6, HOSTS)]
    with Lab(lines) as built:
        built.client.run("ip", "addr", "add", TV4 + "/24", "dev", "eth0")
        built.client.run("ip", "addr", "add", PRINTER4 + "/24", "dev", "eth0")
        built.client.run("ip", "-6", "addr", "add", TV6 + "/64", "dev", "eth0", "nodad", "preferred_lft", "0")
        yield built


@pytest.fixture(scope="module")
def nginx(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    prefix = tmp_path_factory.mktemp("gateway-nginx")
    with run_nginx(
        prefix, SITES, addresses=(netns.SERVER4, netns.SERVER6), exec_prefix=lab.server.prefix
    ) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(lab: Lab, nginx: Nginx, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    home = tmp_path_factory.mktemp("gateway-home")
    env = {
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "PYTHONFAULTHANDLER": "1",
    }
    db = home / "insecure.sqlite3"
    argv = [
        sys.executable,
        "-m",
        "port443",
        "run",
        "--transparent",
        "--listen-host",
        "",
        "--listen-port",
        str(TRANSPARENT),
    ]
    argv += ["--allow-lan", *[a for net in netns.ALLOWED for a in ("--allow-clients", net)]]
    argv += ["--wireguard", "--wireguard-port", str(WIREGUARD), "--db", str(db)]
    argv += ["--client-mode", f"{TV4}/32=rewrite", "--client-mode", f"{TV6}/128=rewrite"]
    argv += ["--client-mode", f"{PRINTER4}/32=off"]
    for setting in (
        f"mode=regular@{EXPLICIT}",
        "port443_shipped_rules=false",
        f"ssl_verify_upstream_trusted_ca={nginx.ca_pem}",
        f"confdir={home / 'mitmproxy'}",
        "port443_flush_interval=200",
        f"port443_client_connections={MAX_CONNECTIONS}",
        f"port443_idle_timeout={IDLE_TIMEOUT}",
    ):
        argv += ["--set", setting]
    gw = Gateway(lab.gateway, argv, env, db)
    gw.port443("gateway", "firewall", "--lan", "lan0", "--port", str(TRANSPARENT), "--apply")
    gw.port443("wireguard-config", "--device", "phone", "--endpoint", netns.GW_WAN4)  # a key before the start
    gw.start()
    yield gw
    gw.stop()


def curl(ns: Namespace, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return ns.run("curl", "-sS", "--max-time", str(timeout), *argv, check=False, timeout=timeout + 10)


def status(ns: Namespace, url: str, *argv: str) -> str:
    """`CODE LOCATION` as curl saw them."""
    done = curl(ns, "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", *argv, url)
    return done.stdout.strip()


def access_log(nginx: Nginx) -> list[str]:
    return (nginx.prefix / "access.log").read_text().splitlines()


# --- the gateway's own set-up ------------------------------------------------------------------------


def test_the_start_line_names_the_real_listeners(gateway: Gateway) -> None:
    log = gateway.start().text
    found = re.search(r"port443: listening on .*", log)  # stderr, interleaved with mitmproxy's stdout log
    assert found is not None, log
    line = found[0]
    assert f"0.0.0.0:{TRANSPARENT} and [::]:{TRANSPARENT} (transparent" in line
    assert f"http://0.0.0.0:{EXPLICIT} and http://[::]:{EXPLICIT} (HTTP proxy)" in line
    assert f"udp://0.0.0.0:{WIREGUARD}" in line and "redirect mode" in line
    assert "clients: " + ", ".join(netns.ALLOWED) in line
    assert "WireGuard server public key" in log and not re.search(r"PrivateKey = [A-Za-z0-9+/]{43}=", log)


def test_the_firewall_table_applies_and_removes(gateway: Gateway, lab: Lab) -> None:
    listed = lab.gateway.run("nft", "list", "table", "inet", "port443").stdout
    assert f"redirect to :{TRANSPARENT}" in listed and 'iifname "lan0"' in listed
    gateway.port443("gateway", "firewall", "--lan", "lan0", "--port", str(TRANSPARENT), "--remove")
    assert lab.gateway.run("nft", "list", "table", "inet", "port443", check=False).returncode != 0
    gateway.port443("gateway", "firewall", "--lan", "lan0", "--port", str(TRANSPARENT), "--apply")
    gateway.port443(
        "gateway", "firewall", "--lan", "lan0", "--port", str(TRANSPARENT), "--apply"
    )  # idempotent
    assert lab.gateway.run("nft", "list", "ruleset").stdout.count("table inet port443") == 1


# --- a device with no proxy configured ---------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_plain_http_is_upgraded_and_https_goes_around_the_proxy(
    gateway: Gateway, lab: Lab, nginx: Nginx, family: int
) -> None:
    gateway.start()
    assert status(lab.client, "http://good.test/page", f"-{family}") == "307 https://good.test/page"
    done = curl(lab.client, f"-{family}", "--cacert", str(nginx.ca_pem), "https://good.test/page")
    assert done.returncode == 0 and "<h1>Good</h1>" in done.stdout, done.stderr
    client = netns.CLIENT4 if family == 4 else netns.CLIENT6
    # nginx saw the device itself: HTTPS was routed, not proxied (the proxy's probe comes from the gateway).
    assert any(line.startswith(client) and "GET /page" in line for line in access_log(nginx))


@pytest.mark.parametrize("family", FAMILIES)
def test_a_device_in_rewrite_mode_gets_the_https_page_through_the_gateway(
    gateway: Gateway, lab: Lab, family: int
) -> None:
    gateway.start()
    tv = TV4 if family == 4 else TV6
    done = curl(lab.client, f"-{family}", "--interface", tv, "-w", "\n%{http_code}", "http://good.test/tv")
    # The proxy fetched https://good.test/ itself, by name (TLS name and Host), not by the destination address.
    assert done.stdout.endswith("\n200") and "<h1>Good</h1>" in done.stdout, done
    broken = curl(lab.client, f"-{family}", "--interface", tv, "-w", "\n%{http_code}", "http://expired.test/")
    assert broken.stdout.endswith("\n200") and "Expired over HTTP" in broken.stdout, broken  # falls back


def test_each_device_gets_its_own_mode_and_its_own_log(gateway: Gateway, lab: Lab) -> None:
    gateway.start()
    assert status(lab.client, "http://good.test/m", "-4") == "307 https://good.test/m"  # the default
    untouched = curl(lab.client, "-4", "--interface", PRINTER4, "-w", "\n%{http_code}", "http://good.test/m")
    assert untouched.stdout.endswith("\n200") and "Good over HTTP" in untouched.stdout, untouched
    curl(lab.client, "-4", "http://plain.test/mine")
    assert gateway.stop() == 0  # flushed
    listed = gateway.port443("report", "--by-client", "--json", "--db", str(gateway.db))
    devices = {row["client"]: row for row in json.loads(listed.stdout)}
    assert devices[netns.CLIENT4]["insecure"] >= 1 and PRINTER4 not in devices  # "off" is never logged


@pytest.mark.parametrize("family", FAMILIES)
def test_sites_that_cannot_be_upgraded_stay_on_http_and_are_logged(
    gateway: Gateway, lab: Lab, family: int
) -> None:
    gateway.start()
    for host in ("plain.test", "expired.test", "back.test"):
        done = curl(lab.client, f"-{family}", "-w", "\n%{http_code}", f"http://{host}/")
        assert done.stdout.endswith("\n200"), (host, done)
        assert "over HTTP" in done.stdout or "Plain only" in done.stdout, (host, done)
    assert gateway.stop() == 0  # the store is flushed on a clean stop
    sites = report(gateway.db)
    reasons = {host: sites[host]["reason"] for host in ("plain.test", "expired.test", "back.test")}
    assert reasons["expired.test"] == "bad-certificate"
    assert reasons["back.test"] == "redirects-to-http"
    assert (
        reasons["plain.test"] == "no-tls"
    )  # nginx refuses the handshake for a name it has no certificate for
    assert "good.test" not in sites


@pytest.mark.parametrize("family", FAMILIES)
def test_a_device_outside_the_allowed_clients_gets_nothing(gateway: Gateway, lab: Lab, family: int) -> None:
    output = gateway.start()
    stranger = netns.STRANGER4 if family == 4 else netns.STRANGER6
    done = curl(lab.client, f"-{family}", "--interface", stranger, "http://good.test/")
    assert done.returncode in (52, 56) and done.stdout == "", (
        done
    )  # empty reply / reset: the connection closed
    explicit = f"http://[{netns.GW_LAN6}]:{EXPLICIT}" if family == 6 else f"http://{netns.GW_LAN4}:{EXPLICIT}"
    done = curl(lab.client, f"-{family}", "--interface", stranger, "-x", explicit, "http://good.test/")
    assert done.returncode in (52, 56) and done.stdout == "", done
    output.wait_for(f"refused connections from {stranger}: not in port443_allow_clients")
    assert output.text.count(f"refused connections from {stranger}") == 1  # once per address


@pytest.mark.parametrize("family", FAMILIES)
def test_the_outside_gets_nothing(gateway: Gateway, lab: Lab, family: int) -> None:
    gateway.start()
    wan, lan = (netns.GW_WAN4, netns.GW_LAN4) if family == 4 else (f"[{netns.GW_WAN6}]", f"[{netns.GW_LAN6}]")
    for address in (wan, lan):
        done = curl(lab.outside, "-x", f"http://{address}:{EXPLICIT}", "http://good.test/", timeout=5)
        assert done.returncode in (52, 56) and done.stdout == "", done
        done = curl(
            lab.outside,
            "--connect-timeout",
            "1",
            "-x",
            f"http://{address}:{TRANSPARENT}",
            "http://good.test/",
        )
        assert done.returncode == 28, done  # the firewall drops what was not redirected


# --- explicit-proxy devices, CONNECT and the gateway itself -------------------------------------------


@pytest.fixture(scope="module")
def loopback_service(lab: Lab) -> Iterator[Output]:
    """A service only for the gateway itself, on its loopback port 443."""
    output = lab.gateway.start(sys.executable, "-u", "-m", "http.server", "443", "--bind", "127.0.0.1")
    output.wait_for("Serving HTTP on 127.0.0.1 port 443")
    yield output


def test_connect_only_to_port_443_and_never_to_the_gateway(
    gateway: Gateway, lab: Lab, loopback_service: Output
) -> None:
    gateway.start()
    proxy = f"http://{netns.GW_LAN4}:{EXPLICIT}"
    tunnel = ["-o", "/dev/null", "-w", "%{http_connect}", "-p", "-x", proxy]
    assert curl(lab.client, *tunnel, "http://good.test:25/").stdout == "403"
    for target in ("127.0.0.1", "localhost", netns.GW_LAN4, netns.GW_WAN4):
        assert curl(lab.client, *tunnel, f"https://{target}:443/").stdout == "403", target
    done = curl(lab.client, "-x", proxy, "-w", "\n%{http_code}", "http://127.0.0.1:443/")
    assert done.stdout.endswith("\n502"), done
    assert "GET /" not in loopback_service.text  # the loopback-only service never saw a request
    # A real tunnel to 443 works, and so does an upgrade through the explicit proxy.
    done = curl(lab.client, *tunnel, "https://good.test/", timeout=5)
    assert done.stdout == "200", done
    assert status(lab.client, "http://good.test/x", "-x", proxy) == "307 https://good.test/x"


def test_a_device_using_the_transparent_port_as_its_proxy_starts_no_storm(gateway: Gateway, lab: Lab) -> None:
    output = gateway.start()
    # From the gateway itself, which the firewall lets through: the proxy must refuse to connect to itself.
    done = curl(lab.gateway, "-x", f"http://{netns.GW_LAN4}:{TRANSPARENT}", "http://good.test/", timeout=5)
    assert done.returncode in (52, 56), done
    output.wait_for("the destination is the proxy itself")
    connections = lab.gateway.run(
        "ss", "-Htn", "state", "established", f"( sport = :{TRANSPARENT} or dport = :{TRANSPARENT} )"
    )
    assert len(connections.stdout.splitlines()) < 3, connections.stdout
    assert output.text.count("Too many open files") == 0
    # It still serves the devices behind the REDIRECT.
    assert status(lab.client, "http://good.test/after") == "307 https://good.test/after"


# Opens one connection more than a client may hold and asks for the PAC file on each, keeping them all open
# (so the count cannot drop while the proxy is still accepting); reports how many were answered, and how
# long an answered, then idle, connection stayed open before the proxy closed it.
BOUNDS = """
import socket, sys, time
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
socks = [socket.create_connection((host, port), timeout=30) for _ in range(count)]
request = f"GET /proxy.pac HTTP/1.1\\r\\nHost: {host}:{port}\\r\\n\\r\\n".encode()
answered = []
for s in socks:
    try:
        s.sendall(request)
        answered.append(s.recv(12).startswith(b"HTTP/1.1 200"))
    except OSError:
        answered.append(False)
idle = socks[answered.index(True)]
start = time.monotonic()
while idle.recv(65536):  # the rest of the answer, then nothing until the proxy closes it
    pass
print(sum(answered), round(time.monotonic() - start, 1))
"""


def test_connections_per_device_are_bounded(gateway: Gateway, lab: Lab) -> None:
    output = gateway.start()
    done = lab.client.run(
        sys.executable, "-c", BOUNDS, netns.GW_LAN4, str(EXPLICIT), str(MAX_CONNECTIONS + 1)
    )
    answered, waited = done.stdout.split()
    assert int(answered) == MAX_CONNECTIONS  # the one beyond the bound was closed unanswered
    output.wait_for(f"{netns.CLIENT4} holds {MAX_CONNECTIONS} connections")
    assert IDLE_TIMEOUT - 1 <= float(waited) < IDLE_TIMEOUT + 10  # an idle connection does not stay


@pytest.mark.parametrize("family", FAMILIES)
def test_the_pac_file(gateway: Gateway, lab: Lab, family: int) -> None:
    gateway.start()
    host = netns.GW_LAN4 if family == 4 else f"[{netns.GW_LAN6}]"
    for path in ("/proxy.pac", "/wpad.dat"):
        done = curl(lab.client, "-D", "-", f"http://{host}:{EXPLICIT}{path}")
        assert done.returncode == 0, done
        assert "content-type: application/x-ns-proxy-autoconfig" in done.stdout.lower()
        assert f'return "PROXY {host}:{EXPLICIT}; DIRECT";' in done.stdout
    done = curl(
        lab.outside,
        f"http://{netns.GW_WAN4 if family == 4 else '[' + netns.GW_WAN6 + ']'}:{EXPLICIT}/proxy.pac",
        timeout=5,
    )
    assert done.returncode in (52, 56) and done.stdout == ""


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing; `make test` installs it when run as root (scripts/test-deps)")
        pytest.skip(
            "NOTICE: chromium is not installed: the PAC browser test did not run (see scripts/test-deps)"
        )
    return path


def spki_hash(chain: Path) -> str:
    """Chromium's --ignore-certificate-errors-spki-list: base64(sha256(SubjectPublicKeyInfo)) of the leaf."""
    key = x509.load_pem_x509_certificate(chain.read_bytes()).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@pytest.mark.browser
def test_a_browser_with_the_pac_file_ends_on_https(
    gateway: Gateway, lab: Lab, nginx: Nginx, tmp_path: Path
) -> None:
    """Headless Chromium set up only with the PAC URL: http:// goes to the proxy, which upgrades; https:// goes direct."""
    browser = chromium()
    gateway.start()
    argv = [
        browser,
        *HEADLESS,
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--proxy-pac-url=http://{netns.GW_LAN4}:{EXPLICIT}/proxy.pac",
        f"--ignore-certificate-errors-spki-list={spki_hash(nginx.prefix / 'certs' / 'good.test.crt')}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        "http://good.test/browser",
    ]
    done = lab.client.run(*argv, check=False, timeout=120)
    assert "<h1>Good</h1>" in done.stdout, done.stderr[-3000:]
    # The HTTPS page came straight from the device (DIRECT), not through the proxy.
    https = [line for line in access_log(nginx) if "GET /browser" in line]
    assert https and all(line.split()[0] in (netns.CLIENT4, netns.CLIENT6) for line in https), https


# --- WireGuard, as a phone away from home ------------------------------------------------------------


def wireguard_tools() -> tuple[str, str]:
    go, wg = shutil.which("wireguard-go"), shutil.which("wg")
    if go is None or wg is None:
        if os.environ.get("CI") == "true":
            pytest.fail("wireguard-go and wg are missing; scripts/test-deps installs them when run as root")
        pytest.skip(
            "NOTICE: wireguard-go or wg is not installed: the WireGuard test did not run (scripts/test-deps)"
        )
    return go, wg


def test_a_wireguard_device_is_upgraded_through_the_tunnel(
    gateway: Gateway, lab: Lab, nginx: Nginx, tmp_path: Path
) -> None:
    go, wg = wireguard_tools()
    gateway.start()
    config = gateway.port443("wireguard-config", "--device", "phone", "--endpoint", netns.GW_WAN4).stdout
    fields = dict(re.findall(r"^(\w+) = (.+)$", config, re.M))
    assert fields["Endpoint"] == f"{netns.GW_WAN4}:{WIREGUARD}" and fields["Address"] == "10.0.0.2/32"
    key = tmp_path / "phone.key"
    key.write_text(fields["PrivateKey"] + "\n")
    key.chmod(0o600)
    name = f"wg{lab.tag.split('-')[1][-6:]}"  # wireguard-go's control socket is machine-wide: a unique name
    tunnel = lab.outside.start(go, "-f", name, env={"LOG_LEVEL": "verbose"})
    tunnel.wait_for("UAPI listener started")
    try:
        lab.outside.run(
            wg,
            "set",
            name,
            "private-key",
            str(key),
            "peer",
            fields["PublicKey"],
            "endpoint",
            fields["Endpoint"],
            "allowed-ips",
            f"{netns.SRV4}0/24",
        )
        lab.outside.run("ip", "addr", "add", fields["Address"], "dev", name)
        lab.outside.run("ip", "link", "set", name, "up")
        lab.outside.run("ip", "route", "add", f"{netns.SRV4}0/24", "dev", name)
        assert status(lab.outside, "http://good.test/phone", "-4") == "307 https://good.test/phone"
        done = curl(lab.outside, "-4", "--cacert", str(nginx.ca_pem), "https://good.test/phone")
        assert done.returncode == 0 and "<h1>Good</h1>" in done.stdout, done.stderr
        # Through the tunnel: nginx sees the gateway, not the phone's outside address.
        last = [line for line in access_log(nginx) if "GET /phone" in line][-1]
        assert last.startswith(netns.SRV4 + "1 "), last
    finally:
        netns.stop(tunnel.process)
