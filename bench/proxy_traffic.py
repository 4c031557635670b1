"""The bytes of the proxy benchmark: its requests, the upstreams' answers, and a path per request.

Every path is new (`/p<n>`, numbered over the whole run): port443 takes a client asking again within
`port443_loop_window` (10 s) for an http URL it has just redirected as a redirect loop (what a browser stuck
in one would do) and leaves the host on HTTP. A benchmark repeating one URL would measure that fallback,
not the upgrade; distinct pages are what browsing looks like.
"""

from __future__ import annotations

HOST = "bench.test"  # bench/wrk.lua names it too
LOOPBACK = "127.0.0.1"


class BenchError(Exception):
    """A proxy or upstream failed: the run cannot go on."""


class Paths:
    """Request numbers for paths `/p<n>`, unique over the whole run."""

    def __init__(self) -> None:
        self.next = 1

    def take(self, count: int = 1) -> int:
        """The first of `count` fresh numbers."""
        start, self.next = self.next, self.next + count
        return start


PATHS = Paths()


def proxy_request(n: int) -> bytes:
    """Request number `n` to a proxy: absolute form, a path of its own."""
    return f"GET http://{HOST}/p{n} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()


def tunnel_request(n: int) -> bytes:
    """Request number `n` inside a tunnel: origin form."""
    return f"GET /p{n} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()


def redirect_response(path: bytes, reason: bytes = b"bench-u") -> bytes:
    """What port443 answers in redirect mode, byte for byte but for the `reason` ("port443" there), which
    tells who answered (checked before and after measuring; the run also compares sizes)."""
    url = f"https://{HOST}".encode() + path
    body = b'<a href="' + url + b'">Moved to HTTPS</a>\n'
    return (
        b"HTTP/1.1 307 Temporary Redirect\r\nLocation: "
        + url
        + b"\r\nContent-Type: text/html; charset=utf-8\r\nNon-Authoritative-Reason: "
        + reason
        + b"\r\n"
        + f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )


def page_response(marker: str) -> bytes:
    """A 1 KiB HTML page naming the upstream that served it (`tcp` or `tls`, same length)."""
    head = f"<!doctype html>\n<title>{HOST}</title>\n<p>served by the bench upstream over {marker}</p>\n"
    body = (head + "<!--" + "x" * (1024 - len(head) - 8) + "-->\n").encode()
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
