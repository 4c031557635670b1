"""Shared fixtures: a clean environment and the shipped rules loaded once.

The suite needs nothing beside the clone: reference data lives in tests/data/, rules in rules/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from port443.engine.cache import LoadedRules, load_rules
from port443.engine.shipped import shipped_rules_path

REPO = Path(__file__).resolve().parents[1]
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxy and certificate settings of the machine must not leak into tests."""
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture(scope="session")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedRules]:
    """The shipped corpus, compiled once per test session into a private cache."""
    yield load_rules([shipped_rules_path()], cache_dir=tmp_path_factory.mktemp("rules-cache"))


_HEAVY = ("browser", "nginx", "gateway")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """SKIP_HEAVY=1 skips the headless-browser, nginx and gateway suites locally; CI never skips them."""
    if os.environ.get("SKIP_HEAVY") != "1" or os.environ.get("CI") == "true":
        return
    skip = pytest.mark.skip(reason="NOTICE: SKIP_HEAVY=1: heavy suite (browser/nginx/gateway) not run")
    for item in items:
        if any(item.get_closest_marker(name) for name in _HEAVY):
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say loudly when tests were skipped: a skipped test is not a passing one."""
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped:
        terminalreporter.write_sep(
            "!", f"NOTICE: {len(skipped)} test(s) SKIPPED, not passed", red=True, bold=True
        )
        for report in skipped[:10]:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            terminalreporter.write_line(f"  {report.nodeid}: {reason}")
