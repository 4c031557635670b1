"""The runner's checks before anything listens: unknown options, and the "port in use" hint."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
from mitmproxy import exceptions, options

from port443.mitm.runner import _BusyHint, _refuse_unknown, dashboard_url
from port443.proxy.listen import Listener


def test_a_misspelt_option_is_refused_with_a_suggestion() -> None:
    opts = options.Options()
    opts.add_option("port443_mode", str, "redirect", "mode")
    opts.set("port443_mdoe=strict", defer=True)
    with pytest.raises(
        exceptions.OptionsError, match=r"--set port443_mdoe: no such option \(did you mean port443_mode\?\)"
    ):
        _refuse_unknown(opts)
    fine = options.Options()
    fine.set("listen_port=3128", defer=True)
    _refuse_unknown(fine)
    typo = options.Options()
    typo.set("listen_prot=3128", defer=True)
    with pytest.raises(exceptions.OptionsError, match="did you mean listen_port"):
        _refuse_unknown(typo)


def test_with_scripts_only_port443_names_are_checked() -> None:
    """A script loads after the options are read, and may declare its own."""
    opts = options.Options()
    opts.add_option("scripts", Sequence[str], [], "scripts")  # as the script loader declares it
    opts.update(scripts=[__file__])
    opts.set("myscript_option=1", defer=True)
    _refuse_unknown(opts)
    opts.set("port443_nope=1", defer=True)
    with pytest.raises(exceptions.OptionsError, match="port443_nope"):
        _refuse_unknown(opts)


def test_the_busy_hint_rewrites_mitmproxys_error() -> None:
    record = logging.LogRecord(
        "mitmproxy.addons.proxyserver",
        logging.ERROR,
        __file__,
        1,
        "[Errno 98] HTTP(S) proxy failed to listen on 127.0.0.1:%d with [Errno 98] address already in use",
        (8080,),
        None,
    )
    assert _BusyHint({8080: "--listen-port"}).filter(record)
    assert record.getMessage().endswith("pick another with --listen-port 8081")


@pytest.mark.parametrize(
    ("listeners", "url"),
    [
        ([Listener("regular", "", (("127.0.0.1", 8080),))], "http://127.0.0.1:8080/"),
        ([Listener("regular", "", (("::", 8080), ("0.0.0.0", 8080)))], "http://127.0.0.1:8080/"),
        ([Listener("regular", "", (("::", 8080),))], "http://[::1]:8080/"),
        (
            [
                Listener("wireguard", "", (("0.0.0.0", 51820),)),
                Listener("transparent", "", (("0.0.0.0", 8080),)),
            ],
            "http://127.0.0.1:8080/",
        ),
        ([Listener("regular", "", (("192.168.1.2", 3128),))], "http://192.168.1.2:3128/"),
        ([Listener("wireguard", "", (("0.0.0.0", 51820),))], None),
    ],
)
def test_the_dashboard_url_of_the_start_line(listeners: list[Listener], url: str | None) -> None:
    assert dashboard_url(listeners) == url
