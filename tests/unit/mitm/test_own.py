"""OwnPages: a request addressed to the proxy itself gets the PAC file (or a 404), never a forward."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow

from port443.mitm import own as own_module
from port443.mitm.own import TO_PROXY, OwnPages
from port443.proxy.own import Listeners


@pytest.fixture
def pages() -> Iterator[OwnPages]:
    addon = OwnPages()
    with taddons.context(addon):
        addon.itself.listeners = Listeners((("0.0.0.0", 8080), ("::", 8080)))
        yield addon


def flow(url: str, method: str = "GET") -> Any:
    f = tflow.tflow()
    f.request.url = url
    f.request.method = method
    f.client_conn.sockname = ("10.0.0.1", 8080)
    return f


@pytest.mark.parametrize(
    ("url", "proxy"),
    [
        ("http://127.0.0.1:8080/proxy.pac", "127.0.0.1:8080"),
        ("http://[::1]:8080/wpad.dat", "[::1]:8080"),
        ("http://localhost:8080/proxy.pac?x=1", "localhost:8080"),
    ],
)
def test_the_pac_file_for_the_proxys_own_address(pages: OwnPages, url: str, proxy: str) -> None:
    f = flow(url)
    assert pages.request(f) is None
    assert f.response is not None and f.response.status_code == 200
    assert f.response.headers["Content-Type"] == "application/x-ns-proxy-autoconfig"
    assert f'return "PROXY {proxy}; DIRECT";' in f.response.text
    assert f.metadata[TO_PROXY] is True


def test_other_paths_of_the_proxy_get_404_and_other_methods_405(pages: OwnPages) -> None:
    f = flow("http://127.0.0.1:8080/")
    pages.request(f)
    assert f.response is not None and f.response.status_code == 404 and b"/proxy.pac" in f.response.content
    post = flow("http://127.0.0.1:8080/proxy.pac", method="POST")
    pages.request(post)
    assert post.response is not None and post.response.status_code == 405


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8081/proxy.pac",  # not a port the proxy listens on
        "http://192.0.2.1:8080/proxy.pac",  # not this machine
        "http://example.com/proxy.pac",
    ],
)
def test_everything_else_is_left_alone(pages: OwnPages, url: str) -> None:
    f = flow(url)
    assert pages.request(f) is None and f.response is None and TO_PROXY not in f.metadata


def test_answered_or_dead_flows_are_untouched(pages: OwnPages) -> None:
    f = flow("http://127.0.0.1:8080/proxy.pac")
    f.live = False
    assert pages.request(f) is None and f.response is None


async def test_a_name_for_the_proxy_is_resolved_once(
    pages: OwnPages, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[str] = []

    async def fake(host: str, port: int) -> list[Any]:
        lookups.append(host)
        return [ipaddress.ip_address("127.0.0.1" if host == "gateway.lan" else "192.0.2.1")]

    monkeypatch.setattr(own_module, "resolve_addresses", fake)
    for _ in range(2):
        f = flow("http://gateway.lan:8080/wpad.dat")
        pending = pages.request(f)
        if pending is not None:
            await pending
        assert f.response is not None and "PROXY gateway.lan:8080; DIRECT" in f.response.text
    assert lookups == ["gateway.lan"]  # remembered
    elsewhere = flow("http://printer.lan:8080/wpad.dat")
    pending = pages.request(elsewhere)
    assert pending is not None
    await pending
    assert elsewhere.response is None


async def test_post_entries_and_pages_that_answer_later(pages: OwnPages) -> None:
    async def later(flow: Any) -> Any:
        return http.Response.make(201, b"made")

    pages.posts["/make"] = later
    f = flow("http://127.0.0.1:8080/make", method="POST")
    pending = pages.request(f)
    assert pending is not None and f.response is None
    await pending
    assert f.response is not None and f.response.status_code == 201
    wrong = flow("http://127.0.0.1:8080/make")
    pages.request(wrong)
    assert wrong.response is not None and (wrong.response.status_code, wrong.response.headers["Allow"]) == (
        405,
        "POST",
    )


async def test_a_failing_page_is_a_500_never_a_forward(pages: OwnPages) -> None:
    def broken(flow: Any) -> Any:
        raise RuntimeError("bug")

    async def broken_later(flow: Any) -> Any:
        raise RuntimeError("bug")

    pages.pages["/now"], pages.pages["/later"] = broken, broken_later
    now = flow("http://127.0.0.1:8080/now")
    pages.request(now)
    later = flow("http://127.0.0.1:8080/later")
    pending = pages.request(later)
    assert pending is not None
    await pending
    for f in (now, later):
        assert f.response is not None and f.response.status_code == 500 and f.metadata[TO_PROXY]
