"""Test-only mitmproxy addon: print the proxy's port on stdout once it listens, so tests need not guess or sleep."""

from __future__ import annotations

import sys

from mitmproxy import ctx


class Ready:
    def running(self) -> None:
        addrs = ctx.master.addons.get("proxyserver").listen_addrs()
        print(f"PORT443-TEST-READY {addrs[0][1]}", flush=True)
        sys.stdout.flush()


addons = [Ready()]
