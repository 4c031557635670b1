"""ClientPolicy: each request carries its device's mode for HttpsUpgrade."""

from __future__ import annotations

import pytest
from mitmproxy import exceptions
from mitmproxy.addonmanager import Loader
from mitmproxy.test import taddons, tflow

from port443.mitm.clients import CLIENT_MODE, ClientPolicy, client_mode
from port443.mitm.options import add_options


class Options:
    def load(self, loader: Loader) -> None:
        add_options(loader)


def test_each_request_carries_its_clients_mode() -> None:
    policy = ClientPolicy()
    with taddons.context(Options(), policy) as tctx:
        tctx.configure(
            policy, port443_mode="strict", port443_client_modes=["192.168.1.40=off", "192.168.1.0/24=rewrite"]
        )
        for address, mode in (("192.168.1.40", "off"), ("192.168.1.9", "rewrite"), ("10.0.0.1", "strict")):
            f = tflow.tflow()
            f.client_conn.peername = (address, 50000)
            policy.requestheaders(f)
            assert f.metadata[CLIENT_MODE] == mode == client_mode(f)
        tctx.configure(policy, port443_mode="redirect")  # the default follows the global mode
        f = tflow.tflow()
        f.client_conn.peername = ("10.0.0.1", 50000)
        policy.requestheaders(f)
        assert client_mode(f) == "redirect"
        assert client_mode(tflow.tflow()) == "redirect"  # untagged: the global mode


def test_bad_specs_are_refused_and_the_old_ones_stay() -> None:
    policy = ClientPolicy()
    with taddons.context(Options(), policy) as tctx:
        tctx.configure(policy, port443_client_modes=["10.0.0.0/8=off"])
        with pytest.raises(
            exceptions.OptionsError, match="port443_client_modes: client mode '10.0.0.0/8=fast'"
        ):
            tctx.configure(policy, port443_client_modes=["10.0.0.0/8=fast"])
        assert policy.modes.mode_for("10.1.1.1") == "off"
