"""The in-memory HSTS preload list, checked against the `hstspreload` package's own lookup."""

from __future__ import annotations

import random

import hstspreload
import pytest

from port443.proxy.hsts import PreloadList


@pytest.fixture(scope="module")
def preload() -> PreloadList:
    return PreloadList()


@pytest.fixture(scope="module")
def leaves(preload: PreloadList) -> dict[str, bool]:
    """Every preloaded name in the package's data (name -> includeSubDomains), read through its jump table."""
    found: dict[str, bool] = {}
    for spans in preload._jumps:
        for span in spans:
            found.update((name.decode("ascii"), sub) for name, sub in preload._parse(span).items())
    return found


def reference(host: str) -> bool:
    """The package's answer; it wants lower-case input without a trailing dot."""
    return bool(hstspreload.in_hsts_preload(host))


def relatives(name: str) -> list[str]:
    """The name, subdomains of it, its parent, and a look-alike that is not a subdomain."""
    parent = name.partition(".")[2]
    return [name, f"www.{name}", f"a.b.{name}", parent, f"x{name}"]


@pytest.fixture(scope="module")
def sample(leaves: dict[str, bool]) -> list[str]:
    rng = random.Random(443)
    names = sorted(leaves)
    without_subdomains = [n for n in names if not leaves[n]]
    deep = [n for n in names if n.count(".") >= 3]
    picked = rng.sample(names, 300) + rng.sample(without_subdomains, 60) + rng.sample(deep, 40)
    return [host for name in picked for host in relatives(name) if host]


def test_the_jump_table_yields_many_leaves(leaves: dict[str, bool]) -> None:
    assert len(leaves) > 100_000
    assert leaves["paypal.com"] is False  # preloaded without includeSubDomains
    assert leaves["github.com"] is True
    assert 5 <= max(n.count(".") + 1 for n in leaves) <= 6


def test_agrees_with_hstspreload(preload: PreloadList, sample: list[str]) -> None:
    answers = {host: reference(host) for host in sample}
    mismatches = [host for host, expected in answers.items() if preload.lookup(host) != expected]
    assert mismatches == []
    # the sample is worth something only if it has both answers
    assert 0.2 < sum(answers.values()) / len(answers) < 0.8


def test_upper_case_and_trailing_dot_are_normalised(preload: PreloadList, sample: list[str]) -> None:
    mismatches = [
        host
        for host in sample[::3]
        if {preload.lookup(host.upper()), preload.lookup(host + "."), preload.lookup(host.title() + ".")}
        != {reference(host)}
    ]
    assert mismatches == []


@pytest.mark.parametrize(
    ("host", "preloaded"),
    [
        ("paypal.com", True),
        ("www.paypal.com", True),  # preloaded on its own
        ("foo.paypal.com", False),  # paypal.com has no includeSubDomains
        ("github.com", True),
        ("deep.api.github.com", True),  # includeSubDomains
        ("PayPal.COM.", True),
        ("example.com", False),
        ("com", False),
        ("localhost", False),
        ("", False),
        (".", False),
        ("a..github.com", True),  # a parent with includeSubDomains covers odd labels too
    ],
)
def test_known_hosts(preload: PreloadList, host: str, preloaded: bool) -> None:
    assert preload.lookup(host) is preloaded
    normal = host.lower().rstrip(".")
    if normal:
        assert reference(normal) is preloaded


@pytest.mark.parametrize("host", ["x.dev", "a.b.app", "dev", "X.DEV.", "something.bank", "a.xn--cckwcxetd"])
def test_gtld_fast_path(preload: PreloadList, host: str) -> None:
    assert preload.lookup(host) is True
    assert reference(host.lower().rstrip(".")) is True


@pytest.mark.parametrize("host", ["bücher.de", "пример.рф", "www.github.com\u00e9", "gïthub.com"])
def test_non_ascii_input_is_not_preloaded(preload: PreloadList, host: str) -> None:
    assert preload.lookup(host) is False


def test_membership_operator(preload: PreloadList) -> None:
    assert "github.com" in preload
    assert "example.com" not in preload
    assert b"github.com" not in preload  # only str
    assert 443 not in preload


def test_blocks_are_parsed_once(preload: PreloadList) -> None:
    fresh = PreloadList(preload._data)
    assert fresh.lookup("github.com")
    parsed = dict(fresh._blocks)
    assert parsed
    assert fresh.lookup("github.com")
    assert fresh._blocks == parsed
    assert all(fresh._blocks[key] is block for key, block in parsed.items())
