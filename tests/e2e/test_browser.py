"""A real browser through the proxy: headless Chromium asks for http://site.test/ and ends on https://site.test/."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.support.browser import HEADLESS
from tests.support.certs import Certs
from tests.support.proxy import Launch
from tests.support.servers import serve

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing; `make test` installs it when run as root (scripts/test-deps)")
        pytest.skip("NOTICE: chromium is not installed: the browser test did not run (see scripts/test-deps)")
    return path


def spki_hash(cert_pem: bytes) -> str:
    """Chromium's --ignore-certificate-errors-spki-list wants base64(sha256(SubjectPublicKeyInfo))."""
    key = x509.load_pem_x509_certificate(cert_pem).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def test_chromium_asks_for_http_and_ends_on_the_https_page(
    launch: Launch, certs: Certs, tmp_path: Path
) -> None:
    browser = chromium()
    leaf = certs.ca.issue_cert("site.test")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(
        context
    )  # the leaf whose key Chromium is told to trust (it does not know the test CA)
    page = b"<!doctype html><title>secure</title><body><script>document.body.dataset.url = location.href</script>secure page</body>"

    def https_handler(req):  # type: ignore[no-untyped-def]
        return 200, {"Content-Type": "text/html"}, page

    db = tmp_path / "log.sqlite3"
    with serve(https_handler, context=context) as https, serve(lambda req: (200, {}, b"plain page")) as http:
        proxy = launch(
            db=db, connect_to=[f"site.test:443:127.0.0.1:{https.port}", f"site.test:80:127.0.0.1:{http.port}"]
        )
        argv = [
            browser,
            *HEADLESS,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--proxy-server={proxy.url}",
            f"--ignore-certificate-errors-spki-list={spki_hash(b''.join(b.bytes() for b in leaf.cert_chain_pems[:1]))}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            "http://site.test/",
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert proxy.stop() == 0
    assert 'data-url="https://site.test/"' in done.stdout, done.stderr[-3000:]
    assert "secure page" in done.stdout
    assert http.requests == []  # the page never came over plain HTTP
    assert "/" in https.requests
    counts = report_counts(db)
    assert counts.get("probe") == 1, counts


def report_counts(db: Path) -> dict[str, int]:
    from port443.proxy.store import InsecureStore

    store = InsecureStore(db)
    try:
        return store.upgrade_counts()
    finally:
        store.close()
