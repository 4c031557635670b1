"""A real nginx for end-to-end tests: sites on 127.80.43.1:80 and :443, told apart by Host and SNI.

Everything nginx writes (config, pages, certificates, pid, logs, temp files) lives in one private directory;
nothing touches /etc/nginx or the system service. Needs nginx and root (for ports 80 and 443): without them
the tests skip with a NOTICE, except under CI=true, where they fail. The gateway suite runs it inside a
network namespace of its own (`addresses` of that namespace, `exec_prefix` = `ip netns exec NAME`).
"""

from __future__ import annotations

import datetime
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import pytest
import trustme

ADDRESS = "127.80.43.1"
UNUSED_ADDRESS = "127.80.43.2"
"""An address of the same loopback block where nothing listens: connections are refused at once."""
READY_TIMEOUT = 10.0


class Cert(StrEnum):
    """Which certificate a site's 443 server presents."""

    GOOD = "good"
    EXPIRED = "expired"
    WRONG_NAME = "wrong-name"  # valid, from the trusted CA, but for other.test
    UNTRUSTED = "untrusted"  # a self-signed CA the checker is not told about, sent along in the chain


@dataclass(frozen=True)
class Page:
    """Answer every path with this HTML (status 200) and these extra headers."""

    html: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Redirect:
    """Answer every path with a redirect; `$request_uri` in `location` keeps the path."""

    location: str
    status: int = 301
    headers: tuple[tuple[str, str], ...] = ()


Answer = Page | Redirect


@dataclass(frozen=True)
class Site:
    """One host name: what port 80 answers, and what port 443 answers (None: no TLS server for it)."""

    name: str
    http: Answer
    https: Answer | None = None
    cert: Cert = Cert.GOOD


@dataclass
class Nginx:
    """A running nginx; `ca_pem` is the CA that issued the trusted certificates."""

    process: subprocess.Popen[bytes]
    prefix: Path
    ca_pem: Path

    @property
    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> int:
        """Graceful shutdown (SIGQUIT), then SIGKILL if it hangs; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                return self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def nginx_binary() -> str:
    """The nginx executable; skips (fails under CI=true) when it is missing or we cannot bind ports 80/443."""
    path = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    problem = None
    if path is None:
        problem = "nginx is not installed"
    elif os.geteuid() != 0:
        problem = "not running as root, so nginx cannot listen on ports 80 and 443"
    if problem is None:
        assert path is not None
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"{problem}; `make test` installs nginx when run as root (scripts/test-deps)")
    pytest.skip(f"NOTICE: {problem}: the nginx tests of `port443 check` did not run (see scripts/test-deps)")


@contextmanager
def run_nginx(
    prefix: Path,
    sites: Sequence[Site],
    *,
    addresses: Sequence[str] = (ADDRESS,),
    exec_prefix: Sequence[str] = (),
) -> Iterator[Nginx]:
    """Write certificates, pages and a config for `sites` under `prefix`, run nginx, stop it on exit.

    nginx listens on ports 80 and 443 of every address in `addresses` (IPv6 ones too); `exec_prefix` runs it
    elsewhere, e.g. `ip netns exec NAME` (which execs, so the process is nginx itself).
    """
    binary = nginx_binary()
    ca_pem = _write_certificates(prefix, sites)
    (prefix / "temp").mkdir(exist_ok=True)  # nginx makes only the last level of its temp paths
    conf = prefix / "nginx.conf"
    conf.write_text(render_config(prefix, sites, addresses))
    argv = [*exec_prefix, binary, "-p", f"{prefix}/", "-c", str(conf), "-e", str(prefix / "error.log")]
    # `nginx -t` reports a broken config as one clear line, before anything listens.
    test = subprocess.run([*argv, "-t"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert test.returncode == 0, f"nginx rejected its config:\n{test.stderr}\n{conf.read_text()}"
    with open(prefix / "stderr.log", "wb") as out:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    server = Nginx(process, prefix, ca_pem)
    try:
        # From here the listening addresses of another namespace cannot be reached: the pid file must do.
        _wait_until_listening(server, addresses if not exec_prefix else ())
        yield server
    finally:
        code = server.stop()
    assert code == 0, f"nginx exited with {code}:\n{server.error_log}"


def _wait_until_listening(server: Nginx, addresses: Sequence[str]) -> None:
    """Wait, at most READY_TIMEOUT, until nginx has written its pid file; fail at once if it exits.

    nginx writes the pid file only after it has bound every listening socket, so our pid in it means our
    sockets are up. Merely connecting is not enough: another nginx (a parallel test run, a system service)
    may hold the address while ours is still retrying bind(). Between looks we wait on the process itself,
    whose exit is the other event we care about, not on a bare timer.
    """
    pid_file = server.prefix / "nginx.pid"
    deadline = time.monotonic() + READY_TIMEOUT
    while not (pid_file.exists() and pid_file.read_text().strip() == str(server.process.pid)):
        if time.monotonic() > deadline:
            raise AssertionError(f"nginx did not start in {READY_TIMEOUT} s:\n{server.error_log}")
        try:
            code = server.process.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        stderr = (server.prefix / "stderr.log").read_text(errors="replace")
        raise AssertionError(
            f"nginx exited with {code} at start (is another nginx on {ADDRESS}:80/443, or a system nginx "
            f"on 0.0.0.0:80? see scripts/test-deps):\n{stderr}\n{server.error_log}"
        )
    for address in addresses:
        for port in (80, 443):
            socket.create_connection((address, port), timeout=READY_TIMEOUT).close()


def render_config(prefix: Path, sites: Sequence[Site], addresses: Sequence[str] = (ADDRESS,)) -> str:
    """The whole nginx.conf: one process in the foreground, everything under `prefix`."""
    hosts = [f"[{a}]" if ":" in a else a for a in addresses]
    servers = "\n".join(_server_blocks(prefix, site, hosts) for site in sites)
    defaults = "\n".join(
        f"    server {{ listen {h}:80 default_server; return 444; }}\n"
        f"    server {{ listen {h}:443 ssl default_server; ssl_reject_handshake on; }}"
        for h in hosts
    )
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / 'temp' / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""\
# Generated by tests/e2e/nginx.py for one test run.
daemon off;
master_process off;  # one process, run as root: the private directory need not be readable by nobody
pid {prefix / "nginx.pid"};
lock_file {prefix / "nginx.lock"};
error_log {prefix / "error.log"} info;
events {{ worker_connections 256; }}
http {{
    access_log {prefix / "access.log"};
{temp}
    types {{ text/html html; }}
    default_type text/html;
    server_tokens off;
    ssl_protocols TLSv1.2 TLSv1.3;
    # Unknown names get nothing: port 80 closes the connection, port 443 refuses the handshake.
{defaults}
{servers}
}}
"""


def _server_blocks(prefix: Path, site: Site, hosts: Sequence[str]) -> str:
    blocks = [_server(prefix, site, "http", site.http, hosts)]
    if site.https is not None:
        certs = prefix / "certs"
        tls = (
            f"        ssl_certificate {certs / site.name}.crt;\n"
            f"        ssl_certificate_key {certs / site.name}.key;\n"
        )
        blocks.append(_server(prefix, site, "https", site.https, hosts, tls))
    return "\n".join(blocks)


def _server(
    prefix: Path, site: Site, scheme: str, answer: Answer, hosts: Sequence[str], tls: str = ""
) -> str:
    port = "443 ssl" if scheme == "https" else "80"
    listen = "".join(f"        listen {h}:{port};\n" for h in hosts)
    # `always`: the headers also go on redirects, as HSTS must for preload eligibility.
    headers = "".join(
        f"            add_header {name} {_quote(value)} always;\n" for name, value in answer.headers
    )
    if isinstance(answer, Redirect):
        body = f"            return {answer.status} {answer.location};\n"
    else:
        root = prefix / "www" / f"{site.name}-{scheme}"
        root.mkdir(parents=True, exist_ok=True)
        (root / "index.html").write_text(answer.html)
        body = f"            root {root};\n            try_files /index.html =404;\n"
    return (
        f"    server {{\n{listen}        server_name {site.name};\n{tls}"
        f"        location / {{\n{headers}{body}        }}\n    }}"
    )


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _write_certificates(prefix: Path, sites: Sequence[Site]) -> Path:
    """Issue each site's certificate into prefix/certs; returns the trusted CA's PEM file (ca.pem)."""
    certs = prefix / "certs"
    certs.mkdir(parents=True, exist_ok=True)
    trusted, untrusted = trustme.CA(), trustme.CA()
    now = datetime.datetime.now(datetime.UTC)
    for site in sites:
        if site.https is None:
            continue
        match site.cert:
            case Cert.GOOD:
                leaf = trusted.issue_cert(site.name)
            case Cert.EXPIRED:
                past = now - datetime.timedelta(days=30), now - datetime.timedelta(days=1)
                leaf = trusted.issue_cert(site.name, not_before=past[0], not_after=past[1])
            case Cert.WRONG_NAME:
                leaf = trusted.issue_cert("other.test")
            case Cert.UNTRUSTED:
                leaf = untrusted.issue_cert(site.name)
        chain = certs / f"{site.name}.crt"
        for blob in leaf.cert_chain_pems:
            blob.write_to_path(str(chain), append=True)
        if site.cert is Cert.UNTRUSTED:
            # The self-signed root too, so verification fails on it ("self-signed certificate in chain").
            untrusted.cert_pem.write_to_path(str(chain), append=True)
        leaf.private_key_pem.write_to_path(str(certs / f"{site.name}.key"))
    ca_pem = prefix / "ca.pem"
    trusted.cert_pem.write_to_path(str(ca_pem))
    return ca_pem
