"""Reading certificates: names, validity, issuer, self-signed, host coverage."""

from __future__ import annotations

import datetime

import pytest
import trustme
from cryptography import x509

from port443.check.certinfo import parse_certificate


def der(cert: trustme.LeafCert) -> bytes:
    pem = cert.cert_chain_pems[0].bytes()
    from cryptography.hazmat.primitives.serialization import Encoding

    return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA(organization_name="Test CA")


def test_names_issuer_and_coverage(ca: trustme.CA) -> None:
    info = parse_certificate(
        der(ca.issue_cert("site.test", "*.site.test", "127.0.0.1", common_name="site.test"))
    )
    assert info.subject == "site.test" and info.issuer == "Test CA" and not info.self_signed
    assert info.names == ("site.test", "*.site.test", "127.0.0.1")
    for host, covered in [
        ("site.test", True),
        ("WWW.site.test.", True),
        ("a.b.site.test", False),
        ("other.test", False),
    ]:
        assert info.covers(host) is covered, host


def test_validity_dates_and_days_left(ca: trustme.CA) -> None:
    now = datetime.datetime.now(datetime.UTC)
    cert = ca.issue_cert(
        "old.test", not_before=now - datetime.timedelta(days=10), not_after=now - datetime.timedelta(days=2)
    )
    info = parse_certificate(der(cert))
    assert info.days_left(now) in (-2, -3)
    assert info.not_before < info.not_after < now


def test_a_ca_certificate_is_self_signed(ca: trustme.CA) -> None:
    pem = ca.cert_pem.bytes()
    from cryptography.hazmat.primitives.serialization import Encoding

    assert parse_certificate(x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)).self_signed


def test_garbage_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_certificate(b"not a certificate")
