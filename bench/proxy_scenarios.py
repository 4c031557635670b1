"""The proxy benchmark's scenarios: which proxies run side by side, with which settings, on what traffic.

* redirect: `GET http://bench.test/p<n>` (absolute form, plain HTTP) to the proxy. port443 upgrades it
  by a generated one-file ruleset (trivial rule; `port443_shipped_rules=false`, `port443_probe=false`)
  and answers the 307 itself. Bare mitmdump forwards the same request to a local upstream that answers
  the same 307 (byte for byte, but for the value of Non-Authoritative-Reason, which tells who answered).
* rewrite: the same requests; port443 in rewrite mode fetches https://bench.test/p<n> from a local HTTPS
  upstream (trustme certificate, verified through `ssl_verify_upstream_trusted_ca`) and answers over
  plain HTTP. The baseline is bare mitmdump + `map_remote` doing the same http -> https switch to the
  same upstream; a second bare row forwards plain HTTP to a plain-HTTP upstream, as context.
* tunnel: CONNECT bench.test:443, TLS end to end and keep-alive GETs inside. port443 passes TLS through
  untouched; bare mitmdump runs with `ignore_hosts=.*` so it passes it through too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.proxy_traffic import HOST, LOOPBACK
from tests.support.certs import make_certs
from tests.support.proxy import READY_ADDON, mitmdump

SCENARIOS = ("redirect", "rewrite", "tunnel")
HELPER_ADDON = "bench/helper_addon.py"
PORT443_ADDON = "addon/port443_mitm.py"


@dataclass(frozen=True)
class Variant:
    """One proxy configuration of a scenario."""

    key: str
    label: str
    port443: bool
    sets: tuple[str, ...]
    marker: bytes  # must appear in the response (checked before and after measuring)


@dataclass(frozen=True)
class Scenario:
    """One kind of traffic, and the proxies measured on it side by side."""

    name: str
    variants: tuple[Variant, ...]
    baseline: str  # key of the variant the target compares port443 with
    status: int
    tunnel: bool
    direct_port: int
    upstream_http: str  # the upstream bench.test:80 resolves to in this scenario: redirect or http
    notes: tuple[str, ...]


TLS_MARKER, TCP_MARKER = b"over tls", b"over tcp"


def build_scenarios(ports: dict[str, int], tmp: Path) -> dict[str, Scenario]:
    """Every scenario, by name, for upstreams on `ports` and the fixtures in `tmp`."""
    common = ("port443_shipped_rules=false", f"port443_rules={tmp / 'rules'}", "port443_probe=false")
    scenarios = (_redirect(ports, common), _rewrite(ports, common, tmp / "ca.pem"), _tunnel(ports, common))
    return {s.name: s for s in scenarios}


def _redirect(ports: dict[str, int], common: tuple[str, ...]) -> Scenario:
    """Plain-HTTP requests port443 answers with its own 307; bare mitmdump forwards them."""
    bare = Variant("bare", "bare → 307 upstream", False, (), b"Non-Authoritative-Reason: bench-u")
    port443 = Variant(
        "port443",
        "port443, own 307",
        True,
        (*common, "port443_mode=redirect"),
        b"Non-Authoritative-Reason: port443",
    )
    note = (
        "redirect: bare mitmdump forwards each request to a local upstream that answers the same 307 (same "
        "size); port443 answers it itself, without the upstream hop. What a user sees: the cost of port443's "
        "redirects against plain proxying of the same requests."
    )
    return Scenario(
        "redirect",
        (bare, port443),
        "bare",
        307,
        tunnel=False,
        direct_port=ports["redirect"],
        upstream_http="redirect",
        notes=(note,),
    )


def _rewrite(ports: dict[str, int], common: tuple[str, ...], ca: Path) -> Scenario:
    """Plain-HTTP requests fetched over verified HTTPS upstream: port443's rewrite mode or map_remote."""
    trust = f"ssl_verify_upstream_trusted_ca={ca}"
    bare_https = Variant(
        "bare-https",
        "bare + map_remote → https",
        False,
        (f"map_remote=|^http://bench\\.test/|https://{HOST}/", trust),
        TLS_MARKER,
    )
    bare_http = Variant("bare-http", "bare → http (context)", False, (), TCP_MARKER)
    port443 = Variant(
        "port443", "port443 rewrite → https", True, (*common, "port443_mode=rewrite", trust), TLS_MARKER
    )
    note = (
        "rewrite: the baseline is bare mitmdump + map_remote (|^http://bench\\.test/|https://bench.test/): the "
        "same work minus port443's decision (plain HTTP from the client, one verified TLS connection upstream "
        "per client connection, the same 1 KiB page). 'bare → http' forwards plain HTTP to a plain upstream, "
        "as context: it leaves out the upstream TLS leg that rewrite mode exists for."
    )
    return Scenario(
        "rewrite",
        (bare_https, bare_http, port443),
        "bare-https",
        200,
        tunnel=False,
        direct_port=ports["http"],
        upstream_http="http",
        notes=(note,),
    )


def _tunnel(ports: dict[str, int], common: tuple[str, ...]) -> Scenario:
    """CONNECT and TLS end to end: both proxies only relay bytes."""
    bare = Variant("bare", "bare, ignore_hosts=.*", False, ("ignore_hosts=.*",), TLS_MARKER)
    port443 = Variant("port443", "port443 passthrough", True, common, TLS_MARKER)
    note = (
        "tunnel: CONNECT, then TLS end to end (the proxies only relay bytes) and keep-alive GETs inside; bare "
        "mitmdump passes through at CONNECT (ignore_hosts), port443 after peeking at the ClientHello."
    )
    return Scenario(
        "tunnel",
        (bare, port443),
        "bare",
        200,
        tunnel=True,
        direct_port=ports["https"],
        upstream_http="http",
        notes=(note,),
    )


def proxy_argv(variant: Variant, scenario: Scenario, ports: dict[str, int], tmp: Path) -> list[str]:
    """The mitmdump command line of one variant (paths relative to the repository, where it runs)."""
    argv = [mitmdump()]
    if variant.port443:
        argv += ["-s", PORT443_ADDON]
    argv += ["-s", HELPER_ADDON, "-s", READY_ADDON, "--listen-host", LOOPBACK, "-p", "0"]
    sets = [
        f"confdir={tmp / f'mitm-{scenario.name}-{variant.key}'}",
        "flow_detail=0",
        f"bench_map={HOST}:80:{LOOPBACK}:{ports[scenario.upstream_http]}",
        f"bench_map={HOST}:443:{LOOPBACK}:{ports['https']}",
        *variant.sets,
    ]
    if variant.port443:
        sets.append(f"port443_db={tmp / f'insecure-{scenario.name}.sqlite3'}")
    for s in sets:
        argv += ["--set", s]
    return argv


def write_fixtures(tmp: Path) -> None:
    """The ruleset, the test CA (`ca.pem`) and the upstream's certificate and key (`server.pem`) in `tmp`."""
    (tmp / "rules").mkdir()
    (tmp / "rules" / "bench.yaml").write_text(
        f'name: Bench\ntargets:\n  - {HOST}\nrules:\n  - from: "^http:"\n    to: "https:"\ntests:\n  - http://{HOST}/\n'
    )
    certs = make_certs(tmp)
    certs.ca.issue_cert(HOST).private_key_and_cert_chain_pem.write_to_path(str(tmp / "server.pem"))
