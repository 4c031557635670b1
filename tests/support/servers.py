"""Upstream sites for end-to-end tests: HTTP and HTTPS servers on 127.0.0.1 in threads, with trustme certificates."""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

Handler = Callable[[http.server.BaseHTTPRequestHandler], tuple[int, dict[str, str], bytes]]


def page(title: str) -> Handler:
    """A handler answering every GET with a small HTML page titled `title`."""

    def handle(req: http.server.BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        body = f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{req.path}</p>".encode()
        return 200, {"Content-Type": "text/html; charset=utf-8"}, body

    return handle


def redirect_to(location: str) -> Handler:
    """A handler answering every request with a 301 to `location` (use `{path}` for the request path)."""

    def handle(req: http.server.BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        return 301, {"Location": location.format(path=req.path)}, b""

    return handle


@dataclass
class Server:
    """A running upstream; `requests` counts what it served, per path."""

    port: int
    requests: list[str] = field(default_factory=list)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def _answer(self, body_allowed: bool) -> None:
        self.server.record.requests.append(self.path)
        status, headers, body = self.server.handle_fn(self)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body_allowed:
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up first (a test of exactly that); nothing to report

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's naming
        self._answer(True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(False)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    handle_fn: Handler
    record: Server


@contextmanager
def serve(handler: Handler, *, context: ssl.SSLContext | None = None) -> Iterator[Server]:
    """Serve `handler` on 127.0.0.1 (HTTPS when `context` is given) until the block ends."""
    httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
    if context is not None:
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    record = Server(httpd.server_address[1])
    httpd.handle_fn, httpd.record = handler, record
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield record
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections but never answers: a probe against it times out."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@contextmanager
def closed_port() -> Iterator[int]:
    """A port nothing listens on: connections are refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    yield port
