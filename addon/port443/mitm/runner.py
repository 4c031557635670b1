"""Run mitmdump with port443's addons in this process: what `port443 run` starts.

mitmproxy's own start-up (tools/main.py `run`), with what a command line for people needs on top: options
are checked before anything listens (a misspelt `--set port443_...` or a LAN listener without its allow
flags is a usage error, exit 2), the start line is printed once the listeners are really up, and "port in
use" names a flag of `port443 run`. mitmproxy still installs the SIGINT/SIGTERM handlers and shuts the
addons down cleanly (so the store is flushed).
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import os
import resource
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from port443.mitm.addons import make_addons
from port443.proxy.listen import Listener, busy_hint, format_address, start_line

# A LAN-facing proxy holds two descriptors per client connection; the usual soft limit of 1024 is a few
# busy devices. Raise it towards the hard limit (no privilege needed), capped where it stops mattering.
_WANTED_FILES = 65536


class _BusyHint(logging.Filter):
    """Adds which flag picks another port to mitmproxy's "address already in use" error."""

    def __init__(self, flags: Mapping[int, str]) -> None:
        super().__init__()
        self.flags = flags

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            hint = busy_hint(record.getMessage(), self.flags)
            if hint is not None:
                record.msg, record.args = f"port443: {hint}", None
        return True


def dashboard_url(listeners: Sequence[Listener]) -> str | None:
    """Where a browser on this machine opens the dashboard: the first HTTP listener (wildcards as loopback)."""
    for listener in listeners:
        if listener.mode not in ("regular", "transparent") or not listener.addresses:
            continue
        host, port = sorted(listener.addresses, key=lambda a: ":" in a[0])[0]  # IPv4 first
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
        return f"http://{format_address(host, port)}/"
    return None


class Port443:
    """port443's addons as the children of one, as `mitmdump -s` loads them too.

    mitmproxy guards each top-level addon's hook call on its own (a context manager and a coroutine per
    addon per event, about eight events per request); as children they share one guard. Their hooks catch
    and log their own errors, so one failing hook never keeps the others from running.
    """

    def __init__(self, addons: list[object]) -> None:
        self.addons = addons


class StartLine:
    """Prints where port443 listens, once mitmproxy's servers are up (the `running` hook comes after them)."""

    def running(self) -> None:
        from mitmproxy import ctx

        proxyserver: Any = ctx.master.addons.get("proxyserver")
        listeners = [
            Listener(
                server.mode.type_name,
                server.mode.description,
                tuple((str(a[0]), int(a[1])) for a in server.listen_addrs),
            )
            for server in proxyserver.servers
        ]
        opts: Any = ctx.options
        clients = list(opts.port443_allow_clients) if opts.port443_allow_lan else []
        line = start_line(listeners, str(opts.port443_mode), clients)
        if opts.port443_client_modes:
            line += "; per-device modes: " + ", ".join(opts.port443_client_modes)
        url = dashboard_url(listeners) if opts.port443_dashboard else None
        if url is not None:
            line += f"; dashboard: {url}"
        print(line, file=sys.stderr, flush=True)


def run_proxy(argv: Sequence[str], *, quiet: bool = True, port_flags: Mapping[int, str] | None = None) -> int:
    """Run mitmdump with port443's addons and the given mitmdump command line; returns the exit code.

    Exit codes: 0 after a clean stop, 1 when mitmproxy could not start (a port in use...), 2 for options
    that cannot be used.
    """
    _raise_file_limit()
    try:
        return asyncio.run(_main(list(argv), quiet, dict(port_flags or {})))
    except SystemExit as e:  # mitmproxy's start-up error check exits this way
        return int(e.code or 0) if not isinstance(e.code, str) else 1
    except KeyboardInterrupt:
        return 130


async def _main(argv: list[str], quiet: bool, port_flags: dict[int, str]) -> int:
    from mitmproxy import exceptions, options, optmanager
    from mitmproxy.tools import cmdline
    from mitmproxy.tools import main as mitm_main
    from mitmproxy.tools.dump import DumpMaster
    from mitmproxy.utils import debug

    _configure_logging()
    debug.register_info_dumpers()
    opts = options.Options()
    master = DumpMaster(opts)
    master.addons.add(Port443([*make_addons(), StartLine()]))
    if quiet:  # a line per client connection drowns what port443 says
        logging.getLogger("mitmproxy.proxy.server").setLevel(logging.WARNING)
    logging.getLogger("mitmproxy.addons.proxyserver").addFilter(_BusyHint(port_flags))
    parser = cmdline.mitmdump(opts)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0
    try:
        opts.set(*args.setoptions, defer=True)
        optmanager.load_paths(
            opts, os.path.join(opts.confdir, "config.yaml"), os.path.join(opts.confdir, "config.yml")
        )
        mitm_main.process_options(parser, opts, args)
        _refuse_unknown(opts)
        access: Any = master.addons.get("accesscontrol")
        access.check_listeners()
    except exceptions.OptionsError as e:
        for line in str(e).splitlines():
            print(f"port443: {line}", file=sys.stderr)
        return 2

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, lambda: loop.call_soon_threadsafe(master.shutdown))
    loop.add_signal_handler(signal.SIGTERM, lambda: loop.call_soon_threadsafe(master.shutdown))
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # mitmproxy issue 6744: a closed pipe must not end it
    await master.run()
    return 0


def _refuse_unknown(opts: Any) -> None:
    """Options nobody declared (a typo such as port443_mdoe) would be kept for a script forever: refuse them.

    Scripts (`--set scripts=...`) load a moment later and may declare their own options, so with scripts
    only unknown `port443_` names are refused.
    """
    from mitmproxy import exceptions

    scripts = "scripts" in opts and bool(opts.scripts)
    unknown = sorted(n for n in opts.deferred if n.startswith("port443_") or not scripts)
    if not unknown:
        return
    name = unknown[0]
    close = difflib.get_close_matches(name, list(opts.keys()), n=1)
    hint = f" (did you mean {close[0]}?)" if close else " (`mitmdump --options` lists them)"
    raise exceptions.OptionsError(f"--set {name}: no such option{hint}")


def _configure_logging() -> None:
    """The levels mitmproxy's own runner sets before it starts."""
    logging.getLogger().setLevel(logging.DEBUG)
    for name, level in (
        ("tornado", logging.WARNING),
        ("asyncio", logging.WARNING),
        ("hpack", logging.WARNING),
        ("urwid", logging.INFO),
        ("quic", logging.WARNING),
    ):
        logging.getLogger(name).setLevel(level)


def _raise_file_limit() -> None:
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = min(_WANTED_FILES, hard) if hard != resource.RLIM_INFINITY else _WANTED_FILES
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (OSError, ValueError):
        pass  # keep the limit we have
