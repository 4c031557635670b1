"""`port443 check`'s command-line parts: option parsing, usage errors and the suggested ruleset."""

from __future__ import annotations

from typing import Any

import pytest

from port443.cli.check import suggest_rules
from port443.cli.main import main
from port443.engine.ruleset import parse_ruleset
from port443.net.connect import parse_connect_to, parse_resolve


def report(host: str, *, valid: bool = True, downgrade: bool = False, passed: bool = True) -> dict[str, Any]:
    return {
        "host": host,
        "passed": passed and valid and not downgrade,
        "https": {"reachable": True, "certificate": {"valid": valid}},
        "http": {"downgrade": downgrade},
    }


def test_suggested_rulesets_are_valid_and_grouped_by_registrable_domain() -> None:
    text = suggest_rules(
        [
            report("www.shop.test"),
            report("shop.test"),
            report("bad.test", valid=False),
            report("loop.test", downgrade=True),
            report("bounce.test", passed=False),  # grade D: its HTTPS page redirects back to plain HTTP
        ]
    )
    (only,) = text.split("---\n")
    header, body = only.split("\n", 1)
    ruleset = parse_ruleset(body)
    assert header == "# shop.test.yaml"
    assert (ruleset.name, ruleset.targets) == ("shop.test", ("www.shop.test", "shop.test"))
    assert ruleset.tests == ("http://www.shop.test/", "http://shop.test/") and ruleset.rules[0].trivial


def test_nothing_to_suggest() -> None:
    assert suggest_rules([report("bad.test", valid=False)]).startswith("# no host")


def test_resolve_and_connect_to_merge() -> None:
    resolved = [parse_resolve(spec) for spec in ["A.test:443:127.0.0.2", "b.test:80:::1"]]
    assert parse_connect_to(["c.test:443:127.0.0.1:8443", *resolved]) == {
        ("c.test", 443): ("127.0.0.1", 8443),
        ("a.test", 443): ("127.0.0.2", 443),
        ("b.test", 80): ("::1", 80),
    }


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--resolve", "nonsense", "a.test"],
        ["check", "--connect-to", "a.test:443:x", "a.test"],
        ["check", "--concurrency", "0", "a.test"],
        ["check"],
        ["check", "http://"],
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("port443: ")
