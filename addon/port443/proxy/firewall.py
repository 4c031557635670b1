"""The gateway's nftables table: send TCP port 80 arriving from the LAN to the transparent proxy.

One table of its own (`inet port443`, IPv4 and IPv6 alike), so applying and removing it never touches
anybody else's rules. Traffic addressed to the gateway itself is not redirected (its own web interface
stays reachable), and connections to the proxy port that did not come through the REDIRECT are dropped:
their destination would be the proxy itself. Text is built here; `nft` runs it (`apply`, `remove`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Sequence

from port443.errors import Port443Error, UsageError

TABLE = "port443"
FAMILY = "inet"  # one table for IPv4 and IPv6 (nftables >= 0.9 redirects both from an inet nat chain)

_IFACE = re.compile(
    r"^[A-Za-z0-9_.:@+-]{1,15}\*?$"
)  # Linux IFNAMSIZ is 16 with the NUL; `*` as nft's wildcard

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def check_interfaces(names: Sequence[str]) -> tuple[str, ...]:
    """Interface names as nft takes them (`eth1`, `wlan*`); a value may list several, comma-separated.

    Raises:
        UsageError: naming the first value that cannot be an interface name.
    """
    names = [part.strip() for name in names for part in name.split(",") if part.strip()]
    if not names:
        raise UsageError("--lan IFACE: name the interface the household's devices are on (e.g. eth1)")
    for name in names:
        if not _IFACE.match(name):
            raise UsageError(f"--lan {name!r}: not an interface name (at most 15 letters, digits or ._-:@+)")
    return tuple(dict.fromkeys(names))


def ruleset(lan: Sequence[str], port: int) -> str:
    """The nft script that (re)creates the table: applying it twice leaves one copy."""
    if not 0 < port < 65536:
        raise UsageError(f"--port {port}: not a port")
    names = check_interfaces(lan)
    iif = f'"{names[0]}"' if len(names) == 1 else "{ " + ", ".join(f'"{n}"' for n in names) + " }"
    return f"""\
#!/usr/sbin/nft -f
# port443 household gateway: plain HTTP from the LAN goes to the transparent proxy on port {port}.
# Written by `port443 gateway firewall`; removed with `port443 gateway firewall --remove`.
table {FAMILY} {TABLE}
delete table {FAMILY} {TABLE}
table {FAMILY} {TABLE} {{
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        # Not for the gateway's own addresses: its own services stay reachable, and never loop back.
        iifname {iif} tcp dport 80 fib daddr type != local redirect to :{port}
    }}
    chain input {{
        type filter hook input priority filter; policy accept;
        # A connection to the proxy port that was not redirected has the proxy itself as its
        # destination (a device set to use it as a proxy): drop it. Local programs may still connect.
        tcp dport {port} ct status dnat accept
        iifname != "lo" tcp dport {port} drop
    }}
}}
"""


def removal() -> str:
    """The nft script that removes the table, and succeeds when there is none."""
    return f"table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n"


def nft_binary() -> str:
    """Where nft is (it lives in /usr/sbin, which a user's PATH may lack)."""
    return shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin") or "nft"


def run_nft(script: str, *, run: Runner = subprocess.run, nft: str | None = None) -> None:
    """Feed `script` to `nft -f -` (atomic: all of it applies, or none).

    Raises:
        Port443Error: nft is missing or refused the script, with what it said.
    """
    binary = nft or nft_binary()
    try:
        done = run([binary, "-f", "-"], input=script, capture_output=True, text=True, check=False)
    except OSError as e:
        raise Port443Error(f"cannot run {binary} ({e}); install nftables (apt-get install nftables)") from e
    if done.returncode != 0:
        hint = " (run it as root)" if "Operation not permitted" in done.stderr else ""
        raise Port443Error(f"nft refused the rules{hint}: {done.stderr.strip()}")
