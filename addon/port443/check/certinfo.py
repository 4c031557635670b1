"""What a certificate says, for people: subject, issuer, validity, and whether it covers a host name."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.x509.oid import NameOID


@dataclass(frozen=True, slots=True)
class CertInfo:
    """The facts `port443 check` reports about a server certificate."""

    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    names: tuple[str, ...]
    self_signed: bool

    def days_left(self, now: datetime | None = None) -> int:
        """Whole days until expiry (negative once expired)."""
        now = now or datetime.now(UTC)
        return int((self.not_after - now).total_seconds() // 86400)

    def covers(self, host: str) -> bool:
        """Does a subjectAltName match `host` (RFC 6125: one wildcard, left-most label only)?"""
        host = host.lower().rstrip(".")
        for name in self.names:
            name = name.lower()
            if name == host:
                return True
            if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
                return True
        return False


def parse_certificate(der: bytes) -> CertInfo:
    """Read a DER certificate.

    Raises:
        ValueError: when it is not a certificate.
    """
    cert = x509.load_der_x509_certificate(der)
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += san.get_values_for_type(x509.DNSName)
        names += [
            str(ip)
            for ip in san.get_values_for_type(x509.IPAddress)
            if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)
        ]
    except x509.ExtensionNotFound:
        pass
    return CertInfo(
        subject=_name(cert.subject),
        issuer=_name(cert.issuer),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        names=tuple(names),
        self_signed=cert.issuer == cert.subject,
    )


def _name(name: x509.Name) -> str:
    """The most telling part of a distinguished name: its common name, else organisation, else all of it."""
    for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME):
        values = name.get_attributes_for_oid(oid)
        if values:
            return str(values[0].value)
    return name.rfc4514_string()
