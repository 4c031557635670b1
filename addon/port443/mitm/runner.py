"""Run mitmdump with port443's addons in this process: what `port443 run` starts.

mitmproxy's own runner parses the options, installs the SIGINT/SIGTERM handlers and shuts the addons down
cleanly (so the store is flushed).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from port443.mitm.addons import make_addons


def run_proxy(argv: Sequence[str], *, quiet: bool = True) -> int:
    """Run mitmdump with port443's addons and the given mitmdump command line; returns the exit code.

    mitmproxy's own runner parses the options, installs the SIGINT/SIGTERM handlers and shuts the addons
    down cleanly (so the store is flushed).
    """
    from mitmproxy.tools import cmdline
    from mitmproxy.tools import main as mitm_main
    from mitmproxy.tools.dump import DumpMaster

    class Port443Master(DumpMaster):
        def __init__(self, options: Any, **kwargs: Any) -> None:
            super().__init__(options, **kwargs)
            self.addons.add(*make_addons())
            if quiet:  # a line per client connection drowns what port443 says
                logging.getLogger("mitmproxy.proxy.server").setLevel(logging.WARNING)

    try:
        mitm_main.run(Port443Master, cmdline.mitmdump, list(argv))
    except SystemExit as e:
        return int(e.code or 0) if not isinstance(e.code, str) else 1
    return 0
