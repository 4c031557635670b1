"""The nftables table: its text, its one table of its own, and how nft is run."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from port443.errors import Port443Error, UsageError
from port443.proxy.firewall import removal, ruleset, run_nft


def test_ruleset_redirects_port_80_from_the_lan_and_drops_direct_connections() -> None:
    text = ruleset(["eth1"], 8080)
    assert 'iifname "eth1" tcp dport 80 fib daddr type != local redirect to :8080' in text
    assert "tcp dport 8080 ct status dnat accept" in text
    assert 'iifname != "lo" tcp dport 8080 drop' in text
    # Declared, deleted and made again in one file: applying twice leaves one copy, atomically.
    assert (
        text.index("table inet port443\n")
        < text.index("delete table inet port443")
        < text.index("table inet port443 {")
    )
    assert "ip " not in text and "ip6 " not in text  # one inet table serves IPv4 and IPv6


def test_several_lan_interfaces_and_wildcards() -> None:
    assert 'iifname { "eth1", "wlan*" } tcp dport 80' in ruleset(["eth1", "wlan*", "eth1"], 3128)
    assert 'iifname { "eth1", "wlan0" } tcp dport 80' in ruleset(["eth1,wlan0"], 3128)


@pytest.mark.parametrize(
    ("lan", "port"), [(["eth 1"], 8080), (['e"th'], 8080), (["a" * 16], 8080), ([], 8080), (["eth1"], 0)]
)
def test_bad_values_are_usage_errors(lan: list[str], port: int) -> None:
    with pytest.raises(UsageError):
        ruleset(lan, port)


def test_removal_succeeds_without_a_table() -> None:
    assert removal() == "table inet port443\ndelete table inet port443\n"


def test_run_nft_feeds_the_script_on_stdin() -> None:
    seen: dict[str, Any] = {}

    def fake(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        seen.update(argv=argv, **kwargs)
        return subprocess.CompletedProcess(argv, 0, "", "")

    run_nft("table inet port443\n", run=fake, nft="/usr/sbin/nft")
    assert seen["argv"] == ["/usr/sbin/nft", "-f", "-"] and seen["input"] == "table inet port443\n"


def test_run_nft_reports_what_nft_said() -> None:
    def refused(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 1, "", "Error: Operation not permitted\n")

    with pytest.raises(
        Port443Error, match=r"nft refused the rules \(run it as root\): Error: Operation not permitted"
    ):
        run_nft("x", run=refused, nft="nft")

    def missing(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        raise FileNotFoundError(2, "No such file or directory")

    with pytest.raises(Port443Error, match="install nftables"):
        run_nft("x", run=missing, nft="nft")
