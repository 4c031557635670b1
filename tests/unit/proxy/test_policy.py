"""Actions on a site: the host a form, the API or the CLI names is checked and put in the decider's form."""

from __future__ import annotations

import pytest

from port443.errors import UsageError
from port443.proxy.decide import Policy
from port443.proxy.policy import Action, Request, parse_host, parse_request


@pytest.mark.parametrize(
    ("text", "host"),
    [
        ("Example.COM", "example.com"),
        (" tv.lan. ", "tv.lan"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("192.168.1.20", "192.168.1.20"),
        ("[::1]", "::1"),
        ("_dmarc.example", "_dmarc.example"),
    ],
)
def test_hosts_in_the_deciders_form(text: str, host: str) -> None:
    assert parse_host(text) == host


@pytest.mark.parametrize(
    "text",
    [
        "",
        "http://example.com/",
        "exa mple.com",
        "-bad.example",
        "bad-.example",
        "a..b",
        "a" * 64 + ".example",
        ("a" * 60 + ".") * 5,
        "<script>",
        "evil.example\x1b[2J",
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(UsageError, match="not a host name"):
        parse_host(text)


def test_an_error_shows_control_characters_as_escapes_and_stays_short() -> None:
    with pytest.raises(UsageError) as caught:
        parse_host("\x1b[31m" + "x" * 5000)
    assert "\x1b" not in str(caught.value) and "\\x1b" in str(caught.value)
    assert len(str(caught.value)) < 300


def test_actions_and_their_choices() -> None:
    assert parse_request("NEVER", "a.example") == Request(Action.NEVER, "a.example")
    assert Action.NEVER.policy is Policy.NEVER and Action.ALWAYS.policy is Policy.ALWAYS
    assert Action.CLEAR.policy is None and Action.FORGET.policy is None
    with pytest.raises(UsageError, match="not an action"):
        parse_request("delete-everything", "a.example")
