"""The addons port443 adds to mitmproxy, in the order their hooks must run."""

from __future__ import annotations

from port443.mitm.log import InsecureLog
from port443.mitm.passthrough import TlsPassthrough
from port443.mitm.upgrade import HttpsUpgrade


def make_addons() -> list[object]:
    """HttpsUpgrade declares the options the others read, so it comes first; InsecureLog logs its decisions."""
    return [HttpsUpgrade(), TlsPassthrough(), InsecureLog()]
