"""The HTTPS probe: the pure classifier, connect-to specs, injected failures, real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime
import re
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest
import trustme

from port443.errors import ProbeError
from port443.net.connect import make_ssl_context, parse_connect_to
from port443.net.probe import ProbeResult, ProbeStatus, classify, probe
from tests.support.servers import closed_port, silent_port

HOST = "site.test"


# --- certificates and real TLS errors, made in memory -------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def client_context(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """What the addon builds from `ssl_verify_upstream_trusted_ca`: only the test CA is trusted."""
    pem = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    return make_ssl_context(cafile=str(pem))


def server_context(ca: trustme.CA, *names: str, expired: bool = False) -> ssl.SSLContext:
    if expired:
        now = datetime.datetime.now(datetime.UTC)
        cert = ca.issue_cert(
            *names, not_before=now - datetime.timedelta(days=30), not_after=now - datetime.timedelta(days=1)
        )
    else:
        cert = ca.issue_cert(*names)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    return ctx


def handshake_error(
    client: ssl.SSLContext, server: ssl.SSLContext | None, answer: bytes = b""
) -> ssl.SSLError:
    """The error the ssl module itself raises when `client` meets `server` (or a peer that sends `answer`)."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client.wrap_bio(c_in, c_out, server_hostname=HOST)
    peer = server.wrap_bio(s_in, s_out, server_side=True) if server is not None else None
    for _ in range(10):
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as e:
            return e
        if peer is None:
            if answer:
                c_in.write(answer)
            else:
                c_in.write_eof()
            continue
        s_in.write(c_out.read())
        try:
            peer.do_handshake()
        except ssl.SSLError:
            pass
        c_in.write(s_out.read())
    raise AssertionError("the handshake did not fail")


@pytest.fixture(scope="module")
def real_errors(ca: trustme.CA, client_context: ssl.SSLContext) -> dict[str, Exception]:
    return {
        "wrong-host": handshake_error(client_context, server_context(ca, "other.test")),
        "untrusted": handshake_error(client_context, server_context(trustme.CA(), HOST)),
        "expired": handshake_error(client_context, server_context(ca, HOST, expired=True)),
        "plain-http": handshake_error(client_context, None, b"HTTP/1.1 400 Bad Request\r\n\r\n"),
        "eof": handshake_error(client_context, None),
        "timeout": TimeoutError(),
        "refused": ConnectionRefusedError(111, "Connection refused"),
        "dns": socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        "reset": ConnectionResetError(104, "Connection reset by peer"),
        "incomplete": asyncio.IncompleteReadError(b"", 5),
        "unreachable": OSError(101, "Network is unreachable"),
        "oserror-bare": OSError("odd"),
        "other": ValueError("boom"),
    }


ERROR_CASES = [
    ("wrong-host", ProbeStatus.BAD_CERT, "Hostname mismatch, certificate is not valid for 'site.test'."),
    ("untrusted", ProbeStatus.BAD_CERT, "unable to get local issuer certificate"),
    ("expired", ProbeStatus.BAD_CERT, "certificate has expired"),
    ("plain-http", ProbeStatus.NO_TLS, "TLS handshake failed (WRONG_VERSION_NUMBER)"),
    ("eof", ProbeStatus.NO_TLS, "TLS handshake failed (UNEXPECTED_EOF_WHILE_READING)"),
    ("timeout", ProbeStatus.TIMEOUT, "no answer in time"),
    ("refused", ProbeStatus.REFUSED, "connection refused on port 443"),
    ("dns", ProbeStatus.UNREACHABLE, "name does not resolve (Name or service not known)"),
    ("reset", ProbeStatus.NO_TLS, "connection closed during the TLS handshake"),
    ("incomplete", ProbeStatus.NO_TLS, "connection closed during the TLS handshake"),
    ("unreachable", ProbeStatus.UNREACHABLE, "Network is unreachable"),
    ("oserror-bare", ProbeStatus.UNREACHABLE, "odd"),
    ("other", ProbeStatus.UNREACHABLE, "ValueError: boom"),
]


@pytest.mark.parametrize(("error", "status", "detail"), ERROR_CASES)
def test_classify(real_errors: dict[str, Exception], error: str, status: ProbeStatus, detail: str) -> None:
    assert classify(real_errors[error]) == (status, detail)


@pytest.mark.parametrize(
    "error",
    [
        ssl.SSLError("handshake failed"),
        ssl.SSLEOFError(8, "EOF"),
        ssl.SSLCertVerificationError(1, "verify failed"),
    ],
)
def test_classify_ssl_errors_made_in_python(error: ssl.SSLError) -> None:
    # ssl.py raises SSLError("...") itself in places, and tests inject such errors through `connect`.
    assert classify(error)[0] in (ProbeStatus.NO_TLS, ProbeStatus.BAD_CERT)


# --- connect-to specs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("specs", "parsed"),
    [
        ([], {}),
        (["site.test:443:127.0.0.1:8443"], {("site.test", 443): ("127.0.0.1", 8443)}),
        (["Site.Test.:443:127.0.0.1:1"], {("site.test", 443): ("127.0.0.1", 1)}),
        (["site.test:443:[::1]:8443"], {("site.test", 443): ("::1", 8443)}),
        (["[2001:db8::1]:443:127.0.0.1:65535"], {("2001:db8::1", 443): ("127.0.0.1", 65535)}),
        (
            ["a.test:443:127.0.0.1:1", "b.test:80:127.0.0.2:2", "a.test:443:127.0.0.3:3"],
            {("a.test", 443): ("127.0.0.3", 3), ("b.test", 80): ("127.0.0.2", 2)},  # the last entry wins
        ),
        (("tuple.test:443:10.0.0.1:443",), {("tuple.test", 443): ("10.0.0.1", 443)}),
    ],
)
def test_parse_connect_to(specs: list[str], parsed: dict[tuple[str, int], tuple[str, int]]) -> None:
    assert parse_connect_to(specs) == parsed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "expected HOST:PORT:ADDR:PORT"),
        ("site.test", "'' is not a port"),
        ("site.test:443:127.0.0.1", "'' is not a port"),
        ("site.test:443:127.0.0.1:", "'' is not a port"),
        (":443:127.0.0.1:1", "expected HOST:PORT:ADDR:PORT"),
        ("site.test:443::1", "expected HOST:PORT:ADDR:PORT"),
        ("site.test:https:127.0.0.1:1", "'https' is not a port"),
        ("site.test:0:127.0.0.1:1", "'0' is not a port"),
        ("site.test:443:127.0.0.1:65536", "'65536' is not a port"),
        ("site.test:443:127.0.0.1:-1", "'-1' is not a port"),
        ("site.test:443:127.0.0.1:+1", "'+1' is not a port"),
        ("site.test:443:127.0.0.1:1:2", "expected HOST:PORT:ADDR:PORT"),
        ("site.test:443:::1:8443", "expected HOST:PORT:ADDR:PORT"),  # IPv6 needs brackets
        ("site.test:443:[::1]", "expected HOST:PORT:ADDR:PORT"),
        ("site.test:443:[::1]8443", "expected HOST:PORT:ADDR:PORT"),
        ("[]:443:127.0.0.1:1", "expected HOST:PORT:ADDR:PORT"),
        ("[::1:443:127.0.0.1:1", "expected HOST:PORT:ADDR:PORT"),
    ],
)
def test_parse_connect_to_errors(spec: str, message: str) -> None:
    with pytest.raises(ProbeError, match=re.escape(f"connect-to entry {spec!r}: {message}")):
        parse_connect_to(["ok.test:443:127.0.0.1:1", spec])


# --- probe() with an injected connection -------------------------------------------------------------------


class FakeTLS:
    def version(self) -> str:
        return "TLSv1.3"


class FakeWriter:
    def __init__(self) -> None:
        self.sent = bytearray()
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return FakeTLS() if name == "ssl_object" else default

    def write(self, data: bytes) -> None:
        self.sent += data

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class FakeConnect:
    """Records how it was called; raises `error`, or answers with `response` (then EOF)."""

    def __init__(self, *, error: BaseException | None = None, response: bytes = b"") -> None:
        self.error = error
        self.response = response
        self.calls: list[tuple[str, int, dict[str, Any]]] = []
        self.writer = FakeWriter()

    async def __call__(
        self, host: str, port: int, **kwargs: Any
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.calls.append((host, port, kwargs))
        if self.error is not None:
            raise self.error
        reader = asyncio.StreamReader()
        reader.feed_data(self.response)
        reader.feed_eof()
        return reader, cast(asyncio.StreamWriter, self.writer)


@pytest.mark.parametrize(("error", "status", "detail"), [c for c in ERROR_CASES if c[0] != "other"])
async def test_probe_turns_connection_errors_into_results(
    real_errors: dict[str, Exception],
    client_context: ssl.SSLContext,
    error: str,
    status: ProbeStatus,
    detail: str,
) -> None:
    connect = FakeConnect(error=real_errors[error])
    result = await probe(HOST, timeout=5, context=client_context, connect=connect)
    assert (result.host, result.status, result.detail, result.ok) == (HOST, status, detail, False)
    assert (result.tls_version, result.http_status) == (None, None)
    assert result.seconds >= 0


async def test_a_bug_is_not_an_outcome(
    real_errors: dict[str, Exception], client_context: ssl.SSLContext
) -> None:
    # A ValueError from deep inside is a bug: stored as "unreachable" it would hide for a day.
    with pytest.raises(ValueError, match="boom"):
        await probe(HOST, timeout=5, context=client_context, connect=FakeConnect(error=real_errors["other"]))


async def test_probe_passes_the_name_for_tls_and_the_mapped_address(client_context: ssl.SSLContext) -> None:
    connect = FakeConnect(response=b"HTTP/1.1 200 OK\r\n\r\n")
    connect_to = parse_connect_to([f"{HOST}:443:127.0.0.9:8443"])
    result = await probe(HOST, timeout=5, context=client_context, connect_to=connect_to, connect=connect)
    assert result.ok
    assert connect.calls == [("127.0.0.9", 8443, {"ssl": client_context, "server_hostname": HOST})]
    assert bytes(connect.writer.sent) == (
        b"HEAD / HTTP/1.1\r\nHost: site.test\r\nUser-Agent: port443-probe\r\nConnection: close\r\n\r\n"
    )
    assert connect.writer.closed


async def test_connect_to_is_per_host_and_port(client_context: ssl.SSLContext) -> None:
    connect = FakeConnect(error=ConnectionRefusedError())
    connect_to = parse_connect_to([f"{HOST}:8443:127.0.0.9:1", "other.test:443:127.0.0.9:2"])
    await probe(HOST, timeout=5, context=client_context, connect_to=connect_to, connect=connect)
    assert [call[:2] for call in connect.calls] == [(HOST, 443)]


async def test_probe_times_out_on_a_connection_that_never_completes(client_context: ssl.SSLContext) -> None:
    never = asyncio.Event()

    async def hang(host: str, port: int, **kwargs: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        await never.wait()
        raise AssertionError("unreachable")

    result = await probe(HOST, timeout=0.05, context=client_context, connect=hang)
    assert (result.status, result.detail) == (ProbeStatus.TIMEOUT, "no answer in time")
    assert 0.04 <= result.seconds < 2


async def test_cancellation_propagates(client_context: ssl.SSLContext) -> None:
    connect = FakeConnect(error=asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await probe(HOST, timeout=5, context=client_context, connect=connect)


@pytest.mark.parametrize(
    ("response", "status", "http_status", "detail"),
    [
        (b"HTTP/1.1 200 OK\r\n\r\n", ProbeStatus.OK, 200, "TLSv1.3, HTTP 200"),
        (b"HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\n", ProbeStatus.OK, 404, "TLSv1.3, HTTP 404"),
        (
            b"HTTP/1.1 301 Moved\r\nLocation: http://site.test/\r\n\r\n",
            ProbeStatus.REDIRECTS_TO_HTTP,
            301,
            "301 to http://site.test/",
        ),
        (
            b"HTTP/1.1 302 Found\r\nlocation:  HTTP://Site.Test/a?b\r\n\r\n",
            ProbeStatus.REDIRECTS_TO_HTTP,
            302,
            "302 to HTTP://Site.Test/a?b",
        ),
        (
            b"HTTP/1.1 307 Temp\r\nLocation: http://elsewhere.test/\r\n\r\n",
            ProbeStatus.REDIRECTS_TO_HTTP,
            307,
            "307 to http://elsewhere.test/",
        ),
        (
            b"HTTP/1.1 301 Moved\r\nLocation: https://www.site.test/\r\n\r\n",
            ProbeStatus.OK,
            301,
            "TLSv1.3, HTTP 301",
        ),
        (b"HTTP/1.1 301 Moved\r\nLocation: /login\r\n\r\n", ProbeStatus.OK, 301, "TLSv1.3, HTTP 301"),
        (b"HTTP/1.1 301 Moved\r\nLocation: //cdn.test/\r\n\r\n", ProbeStatus.OK, 301, "TLSv1.3, HTTP 301"),
        (b"HTTP/1.1 301 Moved\r\n\r\n", ProbeStatus.OK, 301, "TLSv1.3, HTTP 301"),
        (b"HTTP/1.1 200 OK\r\nLocation: http://site.test/\r\n\r\n", ProbeStatus.OK, 200, "TLSv1.3, HTTP 200"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", ProbeStatus.OK, None, "TLSv1.3, no HTTP response"),
        (b"HTTP/1.1 200 OK\r\n", ProbeStatus.OK, None, "TLSv1.3, no HTTP response"),  # EOF before the end
        (b"", ProbeStatus.OK, None, "TLSv1.3, no HTTP response"),
        (
            b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70_000 + b"\r\n\r\n",
            ProbeStatus.OK,
            None,
            "TLSv1.3, no HTTP response",
        ),
    ],
)
async def test_probe_reads_the_first_response(
    client_context: ssl.SSLContext, response: bytes, status: ProbeStatus, http_status: int | None, detail: str
) -> None:
    result = await probe(HOST, timeout=5, context=client_context, connect=FakeConnect(response=response))
    assert (result.status, result.http_status, result.detail) == (status, http_status, detail)
    assert result.tls_version == "TLSv1.3"
    assert result.ok is (status is ProbeStatus.OK)


async def test_probe_of_an_ipv6_literal_uses_the_bare_address(client_context: ssl.SSLContext) -> None:
    # Decider passes canon.host, which is bracketed for IPv6 ("[2001:db8::1]").
    connect = FakeConnect(response=b"HTTP/1.1 200 OK\r\n\r\n")
    await probe("[2001:db8::1]", timeout=5, context=client_context, connect=connect)
    host, port, kwargs = connect.calls[0]
    assert (host, port, kwargs["server_hostname"]) == ("2001:db8::1", 443, "2001:db8::1")


# --- probe() against real servers on 127.0.0.1 --------------------------------------------------------------

Respond = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]


def answer(response: bytes) -> Respond:
    """A server side that reads one request head and sends `response` (b"" = hang up without answering)."""

    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(response)
            await writer.drain()
        except (asyncio.IncompleteReadError, OSError):
            pass  # the client gave up (failed handshake)
        finally:
            writer.close()

    return respond


async def plain_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An HTTP server that gets a TLS ClientHello: it answers 400 in plain text, as real servers do."""
    await reader.read(4096)
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    writer.close()


@asynccontextmanager
async def server(respond: Respond, context: ssl.SSLContext | None) -> AsyncIterator[int]:
    srv = await asyncio.start_server(respond, "127.0.0.1", 0, ssl=context)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()
        await srv.wait_closed()


def mapped(port: int) -> dict[tuple[str, int], tuple[str, int]]:
    return parse_connect_to([f"{HOST}:443:127.0.0.1:{port}"])


OK_200 = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"


async def test_real_server_with_a_good_certificate(ca: trustme.CA, client_context: ssl.SSLContext) -> None:
    async with server(answer(OK_200), server_context(ca, HOST)) as port:
        result = await probe(HOST, timeout=5, context=client_context, connect_to=mapped(port))
    assert (result.status, result.http_status) == (ProbeStatus.OK, 200)
    assert result.tls_version in ("TLSv1.2", "TLSv1.3")
    assert result.detail == f"{result.tls_version}, HTTP 200"


async def test_real_server_by_ip_address_without_mapping(
    ca: trustme.CA, client_context: ssl.SSLContext
) -> None:
    async with server(answer(OK_200), server_context(ca, "127.0.0.1")) as port:
        result = await probe("127.0.0.1", port, timeout=5, context=client_context)
    assert (result.host, result.status, result.http_status) == ("127.0.0.1", ProbeStatus.OK, 200)


@pytest.mark.parametrize(
    ("names", "expired", "detail"),
    [
        (("other.test",), False, "certificate is not valid for 'site.test'"),
        ((HOST,), True, "certificate has expired"),
    ],
)
async def test_real_server_with_a_bad_certificate(
    ca: trustme.CA, client_context: ssl.SSLContext, names: tuple[str, ...], expired: bool, detail: str
) -> None:
    async with server(answer(OK_200), server_context(ca, *names, expired=expired)) as port:
        result = await probe(HOST, timeout=5, context=client_context, connect_to=mapped(port))
    assert result.status is ProbeStatus.BAD_CERT
    assert detail in result.detail


async def test_real_server_from_an_untrusted_ca(client_context: ssl.SSLContext) -> None:
    async with server(answer(OK_200), server_context(trustme.CA(), HOST)) as port:
        result = await probe(HOST, timeout=5, context=client_context, connect_to=mapped(port))
        insecure = await probe(
            HOST, timeout=5, context=make_ssl_context(insecure=True), connect_to=mapped(port)
        )
    assert (result.status, result.detail) == (ProbeStatus.BAD_CERT, "unable to get local issuer certificate")
    assert insecure.status is ProbeStatus.OK  # mitmproxy's ssl_insecure


async def test_real_plain_http_server_on_the_tls_port(client_context: ssl.SSLContext) -> None:
    async with server(plain_http, None) as port:
        result = await probe(HOST, timeout=5, context=client_context, connect_to=mapped(port))
    assert result.status is ProbeStatus.NO_TLS
    assert result.detail.startswith("TLS handshake failed")


@pytest.mark.parametrize(
    ("location", "status"),
    [
        ("http://site.test/", ProbeStatus.REDIRECTS_TO_HTTP),
        ("https://site.test/home", ProbeStatus.OK),
    ],
)
async def test_real_server_that_redirects(
    ca: trustme.CA, client_context: ssl.SSLContext, location: str, status: ProbeStatus
) -> None:
    response = f"HTTP/1.1 301 Moved Permanently\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()
    async with server(answer(response), server_context(ca, HOST)) as port:
        result = await probe(HOST, timeout=5, context=client_context, connect_to=mapped(port))
    assert (result.status, result.http_status) == (status, 301)
    if status is ProbeStatus.REDIRECTS_TO_HTTP:
        assert result.detail == "301 to http://site.test/"


async def test_real_server_that_hangs_up_after_the_handshake(
    ca: trustme.CA, client_context: ssl.SSLContext
) -> None:
    async with server(answer(b""), server_context(ca, HOST)) as port:
        result = await probe(HOST, timeout=5, context=client_context, connect_to=mapped(port))
    assert (result.status, result.http_status) == (ProbeStatus.OK, None)
    assert result.detail.endswith("no HTTP response")


@pytest.fixture
def refused_port() -> Iterator[int]:
    with closed_port() as port:
        yield port


@pytest.fixture
def silent() -> Iterator[int]:
    with silent_port() as port:
        yield port


async def test_real_closed_port(client_context: ssl.SSLContext, refused_port: int) -> None:
    result = await probe(HOST, timeout=5, context=client_context, connect_to=mapped(refused_port))
    assert (result.status, result.detail) == (ProbeStatus.REFUSED, "connection refused on port 443")


async def test_real_port_that_never_answers(client_context: ssl.SSLContext, silent: int) -> None:
    result = await probe(HOST, timeout=0.2, context=client_context, connect_to=mapped(silent))
    assert (result.status, result.detail) == (ProbeStatus.TIMEOUT, "no answer in time")
    assert 0.15 <= result.seconds < 3


async def test_real_server_for_an_ipv6_literal_through_connect_to(
    ca: trustme.CA, client_context: ssl.SSLContext
) -> None:
    async with server(answer(OK_200), server_context(ca, "::1")) as port:
        connect_to = parse_connect_to([f"[::1]:443:127.0.0.1:{port}"])
        result = await probe("[::1]", timeout=5, context=client_context, connect_to=connect_to)
    assert result.status is ProbeStatus.OK, result.detail


def test_probe_result_ok() -> None:
    assert ProbeResult(HOST, ProbeStatus.OK, "", 0.1).ok
    assert not ProbeResult(HOST, ProbeStatus.REDIRECTS_TO_HTTP, "", 0.1).ok


def test_default_context_verifies_with_certifi() -> None:
    ctx = make_ssl_context()
    assert (ctx.verify_mode, ctx.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert ctx.cert_store_stats()["x509_ca"] > 50
