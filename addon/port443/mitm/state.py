"""Build HttpsUpgrade's state from mitmproxy options: the rule index, the probers and the decider.

Kept apart from the hooks so `configure` can build the complete new state and swap it in whole: a failure
while building leaves the old state serving (mitmproxy then rolls the option back).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from port443.engine.cache import default_cache_dir, load_rules
from port443.engine.index import Activation, RuleIndex
from port443.engine.shipped import shipped_rules_path
from port443.engine.watch import FileWatcher
from port443.net.connect import make_ssl_context, parse_connect_to
from port443.net.probe import ProbeResult, probe
from port443.proxy.decide import Decider, Settings
from port443.proxy.hsts import PreloadList

logger = logging.getLogger(__name__)

OPTIONS_THAT_REBUILD = frozenset(
    {
        "port443_rules",
        "port443_shipped_rules",
        "port443_platforms",
        "port443_never_upgrade",
        "port443_hsts_preload",
        "port443_probe",
        "port443_probe_timeout",
        "port443_confirm_rules",
        "port443_connect_to",
        "port443_secure_ttl",
        "port443_insecure_ttl",
        "ssl_insecure",
        "ssl_verify_upstream_trusted_ca",
        "ssl_verify_upstream_trusted_confdir",
    }
)
"""Options whose change means a new decider; the others are read per request."""


@dataclass(frozen=True, slots=True)
class Built:
    """A decider and where its rules came from."""

    decider: Decider
    rule_paths: list[str]
    rule_errors: int
    watcher: FileWatcher | None


def build(opts: Any, old: Decider | None) -> Built:
    """The complete new state; what `old` learned (and its store callback) carries over."""
    paths = [str(Path(p).expanduser()) for p in opts.port443_rules]
    if opts.port443_shipped_rules:
        paths.append(str(shipped_rules_path()))
    index, errors = load_index(paths, opts.port443_platforms)
    connect_to = parse_connect_to(list(opts.port443_connect_to))
    context = make_ssl_context(
        cafile=opts.ssl_verify_upstream_trusted_ca,
        capath=opts.ssl_verify_upstream_trusted_confdir,
        insecure=opts.ssl_insecure,
    )
    if opts.ssl_insecure:
        logger.warning("port443: ssl_insecure is set: probes will not verify certificates")
    timeout = opts.port443_probe_timeout / 1000

    async def prober(host: str) -> ProbeResult:
        return await probe(host, timeout=timeout, context=context, connect_to=connect_to)

    async def path_prober(host: str, path: str) -> ProbeResult:
        return await probe(host, path=path, timeout=timeout, context=context, connect_to=connect_to)

    settings = Settings(
        never=tuple(opts.port443_never_upgrade),
        use_hsts=opts.port443_hsts_preload,
        use_probe=opts.port443_probe,
        confirm_rules=opts.port443_confirm_rules,
        secure_ttl=float(opts.port443_secure_ttl),
        insecure_ttl=float(opts.port443_insecure_ttl),
    )
    decider = Decider(
        index,
        preload=old.preload if old is not None and old.preload is not None else PreloadList(),
        prober=prober,
        path_prober=path_prober,
        settings=settings,
        learned=old.entries() if old is not None else (),
    )
    decider.on_learned = old.on_learned if old is not None else None
    user_paths = [p for p in paths if p != str(shipped_rules_path())]
    return Built(decider, paths, errors, FileWatcher(user_paths) if user_paths else None)


def load_index(paths: list[str], platforms: Any) -> tuple[RuleIndex, int]:
    """Load the rules (through the compiled cache); returns the index and how many files were skipped."""
    activation = Activation(frozenset(platforms))
    loaded = load_rules(paths, cache_dir=default_cache_dir(), activation=activation)
    for error in loaded.errors:
        for problem in error.problems[:5]:
            logger.warning(
                f"port443: ruleset problem (file skipped, or its last good version kept): {problem}"
            )
    logger.info(
        f"port443: {len(loaded.index)} rulesets loaded from {loaded.files} files in {loaded.seconds:.2f}s"
    )
    return loaded.index, len(loaded.errors)
