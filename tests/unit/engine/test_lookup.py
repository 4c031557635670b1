"""`rules lookup`: which rulesets a host reaches, through which target, and why each is on or off."""

from __future__ import annotations

import pytest

from port443.engine.index import Activation, RuleIndex
from port443.engine.lookup import explain_host, normalize_host
from tests.support.samples import LOOKUP_RULESETS as RULESETS


@pytest.fixture(scope="module")
def index() -> RuleIndex:
    return RuleIndex.build(RULESETS)


def summary(rows: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [(r["ruleset"], r["target"], r["match"], r["active"], r["why"]) for r in rows]


@pytest.mark.parametrize(
    "host", ["www.example.test", "WWW.Example.TEST", "www.example.test.", "www.example.test.."]
)
def test_rows_in_engine_order(index: RuleIndex, host: str) -> None:
    rows = explain_host(host, index)
    assert summary(rows) == [
        ("Exact", "www.example.test", "exact", True, "active"),
        ("Off", "www.example.test", "exact", False, "default_off: failed ruleset test"),
        ("Both", "www.example.test", "exact", True, "active"),  # listed once, by its first target
        ("Mine", "www.example.test", "exact", True, "turned on by the user"),
        ("Right", "www.example.*", "right wildcard", True, "active"),
        ("Left", "*.example.test", "left wildcard", True, "active"),
        (
            "Mixed",
            "*.example.test",
            "left wildcard",
            False,
            "platform 'mixedcontent' not enabled (--platform mixedcontent)",
        ),
    ]
    assert {r["host"] for r in rows} == {"www.example.test"}
    assert [r["source"] for r in rows][:2] == ["rules/Exact.yaml", "rules/Off.yaml"]
    assert set(rows[0]) == {"host", "ruleset", "active", "target", "match", "why", "source"}


def test_wildcards_never_cover_the_bare_parent(index: RuleIndex) -> None:
    assert explain_host("example.test", index) == []
    assert explain_host("b.example.test", index)[0]["ruleset"] == "Left"


def test_left_wildcards_most_specific_first(index: RuleIndex) -> None:
    rows = explain_host("a.b.example.test", index)
    assert [(r["ruleset"], r["target"]) for r in rows] == [
        ("Deep", "*.b.example.test"),
        ("Left", "*.example.test"),
        ("Mixed", "*.example.test"),
        ("Both", "*.example.test"),
    ]


def test_user_choices(index: RuleIndex) -> None:
    chosen = index.with_activation(
        Activation(
            platforms=frozenset({"mixedcontent"}), overrides={"Off": True, "Exact": False, "Mine": False}
        )
    )
    why = {r["ruleset"]: (r["active"], r["why"]) for r in explain_host("www.example.test", chosen)}
    assert why["Off"] == (True, "turned on by the user")
    assert why["Exact"] == (False, "turned off by the user")
    assert why["Mine"] == (False, "turned off by the user")
    assert why["Mixed"] == (True, "turned on by the user")


@pytest.mark.parametrize("host", ["bücher.test", "BÜCHER.test.", "xn--bcher-kva.test"])
def test_idn_hosts_are_looked_up_in_punycode(index: RuleIndex, host: str) -> None:
    rows = explain_host(host, index)
    assert [(r["host"], r["ruleset"]) for r in rows] == [("xn--bcher-kva.test", "Books")]


def test_no_candidates(index: RuleIndex) -> None:
    assert explain_host("nothing.example", index) == []


@pytest.mark.parametrize(
    ("host", "normal"),
    [
        ("example.com", "example.com"),
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("EXAMPLE.com..", "example.com"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("BÜCHER.DE.", "xn--bcher-kva.de"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("ex%41mple.com", "example.com"),
        ("127.1", "127.0.0.1"),
        ("[::1]", "[::1]"),
        ("[0:0::1]", "[::1]"),
        # not a host a URL can have: given back as it is
        ("a b", "a b"),
        ("", ""),
    ],
)
def test_normalize_host(host: str, normal: str) -> None:
    assert normalize_host(host) == normal
