"""The addons port443 adds to mitmproxy, in the order their hooks must run."""

from __future__ import annotations

from port443.mitm.access import AccessControl
from port443.mitm.clients import ClientPolicy
from port443.mitm.dashboard import Dashboard
from port443.mitm.log import InsecureLog
from port443.mitm.memory import MemoryRelease
from port443.mitm.own import OwnPages
from port443.mitm.passthrough import TlsPassthrough
from port443.mitm.rewrite import RewriteFallback
from port443.mitm.upgrade import HttpsUpgrade
from port443.mitm.wireguard import RedactPrivateKeys


def make_addons() -> list[object]:
    """In hook order.

    OwnPages answers requests addressed to the proxy itself before anything decides on them. HttpsUpgrade
    declares the options the others read, so it comes before them; ClientPolicy tags each request with its
    device's mode in `requestheaders`, before HttpsUpgrade's `request`. AccessControl vets upstream
    connections before TlsPassthrough maps them; RewriteFallback learns from rewrite mode's upstream
    before InsecureLog logs the outcome.
    """
    return [
        OwnPages(),
        HttpsUpgrade(),
        RewriteFallback(),
        ClientPolicy(),
        AccessControl(),
        RedactPrivateKeys(),
        TlsPassthrough(),
        InsecureLog(),
        Dashboard(),
        MemoryRelease(),  # only watches: counts requests, forgets huge URLs, releases memory after bursts
    ]
