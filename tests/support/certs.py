"""A trustme CA that the proxy trusts, and server TLS contexts with good, expired or untrusted certificates."""

from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass
class Certs:
    """A test CA the proxy trusts, and server contexts for good and bad certificates."""

    ca: trustme.CA
    ca_pem: Path
    tmp: Path

    def context(self, *names: str, expired: bool = False, untrusted: bool = False) -> ssl.SSLContext:
        """A server context with a certificate for `names` (expired, or from a CA nobody trusts)."""
        ca = trustme.CA() if untrusted else self.ca
        if expired:
            now = datetime.datetime.now(datetime.UTC)
            past = (now - datetime.timedelta(days=30), now - datetime.timedelta(days=1))
            cert = ca.issue_cert(*names, not_before=past[0], not_after=past[1])
        else:
            cert = ca.issue_cert(*names)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        return ctx


def make_certs(tmp: Path) -> Certs:
    """A new CA, its PEM written into `tmp`."""
    ca = trustme.CA()
    ca_pem = tmp / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    return Certs(ca, ca_pem, tmp)
