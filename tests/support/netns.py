"""A household in network namespaces for the gateway suite: client, gateway, servers and the outside.

    client (eth0) ── (lan0) gateway (srv0) ── (eth0) server: nginx on 80/443
                              (wan0)
                                │
                       outside (eth0): the ISP side, a neighbour, a phone away from home

Every namespace, veth pair, address and nftables table is made here and only lives in namespaces this
module created; names resolve through /etc/netns/NAME/hosts (and resolv.conf points at a loopback where
nothing listens, so no query leaves). `Lab` removes it all on exit, even after a failure, and removes what
a killed run left behind. Needs root, iproute2 and nftables: without them the suite skips with a NOTICE,
except under CI=true, where it fails (scripts/test-deps installs them).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# The LAN: the gateway .1, an allowed device .2, a device outside --allow-clients .200.
LAN4, LAN6 = "10.43.1.", "fd43:1::"
SRV4, SRV6 = "10.43.2.", "fd43:2::"
WAN4, WAN6 = "10.43.3.", "fd43:3::"
GW_LAN4, GW_LAN6 = LAN4 + "1", LAN6 + "1"
GW_WAN4, GW_WAN6 = WAN4 + "1", WAN6 + "1"
CLIENT4, CLIENT6 = LAN4 + "2", LAN6 + "2"
STRANGER4, STRANGER6 = LAN4 + "200", LAN6 + "c8"
ALLOWED = (LAN4 + "0/25", LAN6 + "/121")  # .0-.127 and ::0-::7f: the gateway and .2, not .200
SERVER4, SERVER6 = SRV4 + "2", SRV6 + "2"
OUTSIDE4, OUTSIDE6 = WAN4 + "2", WAN6 + "2"

_STALE = re.compile(r"^p443-(\d+)-")
_TIMEOUT = 30
_DROP = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR")


def environ(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without proxy, CA-file and pytest variables (curl and mitmproxy read them)."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in _DROP and not k.startswith("PYTEST_")}
    path = env.get("PATH", "/usr/bin:/bin").split(":")
    env["PATH"] = ":".join(path + [d for d in ("/usr/sbin", "/sbin") if d not in path])  # ip, nft, nginx
    return {**env, **(extra or {})}


def tool(name: str) -> str | None:
    """A program's path; iproute2 and nftables live in /usr/sbin, which a non-login shell may not search."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


IP = tool("ip") or "ip"


def require_tools() -> dict[str, str]:
    """ip, nft and curl (and root); skips with a NOTICE, or fails under CI=true."""
    found = {name: tool(name) for name in ("ip", "nft", "curl")}
    missing = [name for name, path in found.items() if path is None]
    problem = None
    if os.geteuid() != 0:
        problem = "not running as root, so no network namespaces can be made"
    elif missing:
        problem = f"missing {', '.join(missing)}"
    if problem is None:
        return {name: path for name, path in found.items() if path is not None}
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"{problem}; `make test` installs iproute2, nftables and curl when run as root (scripts/test-deps)"
        )
    pytest.skip(f"NOTICE: {problem}: the household-gateway suite did not run (see scripts/test-deps)")


@dataclass
class Namespace:
    """One network namespace, and what runs in it."""

    name: str
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def prefix(self) -> list[str]:
        return [IP, "netns", "exec", self.name]

    def run(
        self, *argv: str, check: bool = True, timeout: float = _TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the namespace and wait for it."""
        done = subprocess.run(
            [*self.prefix, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env=environ(),
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} in {self.name} failed ({done.returncode}):\n{done.stderr}"
            )
        return done

    def start(self, *argv: str, env: dict[str, str] | None = None) -> Output:
        """Start a long-running command in the namespace; its output is collected line by line."""
        process = subprocess.Popen(
            [*self.prefix, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=environ(env),
        )
        self.processes.append(process)
        return Output.follow(process)

    def stop_all(self) -> None:
        for process in self.processes:
            stop(process)
        self.processes.clear()


@dataclass
class Output:
    """What a process printed, and a way to wait for a line without a timer."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    ended: bool = False

    @classmethod
    def follow(cls, process: subprocess.Popen[str]) -> Output:
        output = cls(process)

        def drain() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                with output.changed:
                    output.lines.append(line)
                    output.changed.notify_all()
            with output.changed:
                output.ended = True
                output.changed.notify_all()

        threading.Thread(target=drain, daemon=True).start()
        return output

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, *, timeout: float = _TIMEOUT) -> None:
        """Block until `text` appears (woken by each line); fail if the process ends or time runs out."""
        with self.changed:
            self.changed.wait_for(lambda: text in self.text or self.ended, timeout)
            if text not in self.text:
                raise AssertionError(f"{text!r} never appeared (exit {self.process.poll()}):\n{self.text}")


def stop(process: subprocess.Popen[str]) -> int:
    """SIGTERM, then SIGKILL if it hangs; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    code = process.wait()
    if process.stdout is not None:
        process.stdout.close()
    return code


def _ip(*argv: str) -> None:
    done = subprocess.run([IP, *argv], capture_output=True, text=True, timeout=_TIMEOUT)
    if done.returncode != 0:
        raise AssertionError(f"ip {' '.join(argv)} failed:\n{done.stderr}")


class Lab:
    """The four namespaces and their links; `close()` removes every trace."""

    def __init__(self, hosts: Sequence[tuple[str, str]]) -> None:
        self.tag = f"p443-{os.getpid()}-"
        self.client = Namespace(self.tag + "cl")
        self.gateway = Namespace(self.tag + "gw")
        self.server = Namespace(self.tag + "sv")
        self.outside = Namespace(self.tag + "out")
        self.all = (self.client, self.gateway, self.server, self.outside)
        self.hosts = hosts  # (address, names) lines for every namespace's /etc/hosts

    def __enter__(self) -> Lab:
        remove_stale()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _build(self) -> None:
        for ns in self.all:
            _ip("netns", "add", ns.name)
            ns.run("ip", "link", "set", "lo", "up")
            etc = Path("/etc/netns") / ns.name
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(
                "127.0.0.1 localhost\n::1 localhost\n" + "".join(f"{a} {n}\n" for a, n in self.hosts)
            )
            (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")  # no DNS query leaves the namespace
        self._link(self.client, "eth0", LAN4 + "2", LAN6 + "2", "lan0", LAN4 + "1", LAN6 + "1")
        self.client.run("ip", "addr", "add", STRANGER4 + "/24", "dev", "eth0")
        # Deprecated (preferred_lft 0): only used when a test binds to it, never chosen as a source.
        self.client.run(
            "ip", "-6", "addr", "add", STRANGER6 + "/64", "dev", "eth0", "nodad", "preferred_lft", "0"
        )
        self._link(self.server, "eth0", SRV4 + "2", SRV6 + "2", "srv0", SRV4 + "1", SRV6 + "1")
        self._link(self.outside, "eth0", WAN4 + "2", WAN6 + "2", "wan0", WAN4 + "1", WAN6 + "1")
        for ns, net4, net6 in (
            (self.client, LAN4, LAN6),
            (self.server, SRV4, SRV6),
            (self.outside, WAN4, WAN6),
        ):
            ns.run("ip", "route", "add", "default", "via", net4 + "1")
            ns.run("ip", "-6", "route", "add", "default", "via", net6 + "1")
        # A router: forwarding on (per namespace, so only this gateway).
        self.gateway.run("sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
        self.gateway.run("sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/all/forwarding")

    def _link(
        self, ns: Namespace, inner: str, addr4: str, addr6: str, outer: str, gw4: str, gw6: str
    ) -> None:
        """A veth pair straight between `ns` and the gateway (never in this machine's own namespace)."""
        _ip(
            "link",
            "add",
            inner,
            "netns",
            ns.name,
            "type",
            "veth",
            "peer",
            "name",
            outer,
            "netns",
            self.gateway.name,
        )
        for where, dev, a4, a6 in ((ns, inner, addr4, addr6), (self.gateway, outer, gw4, gw6)):
            where.run("ip", "addr", "add", a4 + "/24", "dev", dev)
            where.run(
                "ip", "-6", "addr", "add", a6 + "/64", "dev", dev, "nodad"
            )  # usable at once, no DAD wait
            where.run("ip", "link", "set", dev, "up")

    def close(self) -> None:
        """Stop every process, then delete the namespaces (their veths and nft tables go with them)."""
        for ns in self.all:
            ns.stop_all()
        for ns in self.all:
            subprocess.run([IP, "netns", "del", ns.name], capture_output=True, timeout=_TIMEOUT)
            shutil.rmtree(Path("/etc/netns") / ns.name, ignore_errors=True)


def remove_stale() -> None:
    """Namespaces a killed run of this suite left behind (their pid is gone)."""
    done = subprocess.run([IP, "netns", "list"], capture_output=True, text=True, timeout=_TIMEOUT)
    for line in done.stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        match = _STALE.match(name)
        if match is None or _alive(int(match[1])):
            continue
        pids = subprocess.run([IP, "netns", "pids", name], capture_output=True, text=True, timeout=_TIMEOUT)
        for pid in pids.stdout.split():  # what the killed run left running in there (nginx, port443...)
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run([IP, "netns", "del", name], capture_output=True, timeout=_TIMEOUT)
        shutil.rmtree(Path("/etc/netns") / name, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
