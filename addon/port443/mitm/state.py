"""Build HttpsUpgrade's state from mitmproxy options, in two parts: the rules (slow), and the decider (fast).

Kept apart from the hooks so each part is built complete and then swapped in whole: a failure while building
leaves the old state serving (mitmproxy then rolls the option back). Splitting the two means an option that
does not touch the rules (a TTL, the probe timeout, TLS trust) never reloads them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from port443.engine.cache import default_cache_dir, load_rules
from port443.engine.index import Activation, RuleIndex
from port443.engine.shipped import shipped_rules_path
from port443.engine.watch import FileWatcher
from port443.errors import Problem, RulesetError
from port443.net.connect import make_ssl_context, parse_connect_to
from port443.net.probe import ProbeResult, probe
from port443.proxy.decide import Decider, Settings
from port443.proxy.hsts import PreloadList
from port443.proxy.inert import visible

logger = logging.getLogger(__name__)

RULE_OPTIONS = ("port443_rules", "port443_shipped_rules", "port443_platforms")
"""Options whose change means loading the rules again (the slow part: seconds on a cold cache)."""

DECIDER_OPTIONS = (
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
)
"""Options whose change means a new decider over the same rules (milliseconds); the others are read per request."""


def signature(opts: Any, names: tuple[str, ...]) -> tuple[str, ...]:
    """The values of `names`, comparable: an unchanged signature means nothing to rebuild."""
    return tuple(repr(getattr(opts, name)) for name in names)


@dataclass(frozen=True, slots=True)
class Rules:
    """The loaded rules and where they came from."""

    index: RuleIndex
    paths: list[str]
    errors: int
    watcher: FileWatcher | None


def rule_paths(opts: Any) -> list[str]:
    """The user's rule paths, then the shipped ones.

    Raises:
        RulesetError: for a path that does not exist (cheap enough to check while configuring).
    """
    paths = [str(Path(p).expanduser()) for p in opts.port443_rules]
    for path in paths:
        if not Path(path).exists():
            raise RulesetError([Problem(path, None, "", "no such file or directory")])
    if opts.port443_shipped_rules:
        paths.append(str(shipped_rules_path()))
    return paths


def load(opts: Any) -> Rules:
    """Load the rules the options name (through the compiled cache); safe to run in a worker thread."""
    paths = rule_paths(opts)
    index, errors = load_index(paths, opts.port443_platforms)
    user_paths = [p for p in paths if p != str(shipped_rules_path())]
    return Rules(index, paths, errors, FileWatcher(user_paths) if user_paths else None)


def make_decider(opts: Any, index: RuleIndex, old: Decider | None) -> Decider:
    """A decider over `index`; what `old` learned, its choices and its store callback carry over."""
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
    if old is not None:
        decider.on_learned, decider.policies = old.on_learned, old.policies
    return decider


class _Progress:
    """Says how far a long rules compile (a first start, or a changed corpus) has come, every few seconds."""

    def __init__(self, every: float = 3.0) -> None:
        self.every = every
        self.started = time.monotonic()
        self.said = self.started

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.said >= self.every and total:
            self.said = now
            logger.info(f"port443: compiling rules: {done} of {total} files ({now - self.started:.0f}s)")


def load_index(paths: list[str], platforms: Any) -> tuple[RuleIndex, int]:
    """Load the rules (through the compiled cache); returns the index and how many files were skipped."""
    activation = Activation(frozenset(platforms))
    loaded = load_rules(paths, cache_dir=default_cache_dir(), activation=activation, progress=_Progress())
    for warning in loaded.warnings[:20]:
        logger.warning(f"port443: ruleset warning: {visible(str(warning))}")
    for error in loaded.errors:
        for problem in error.problems[:5]:
            logger.warning(
                f"port443: ruleset problem (file skipped, or its last good version kept): {visible(str(problem))}"
            )
    parsed = f", {loaded.parsed} parsed from YAML" if loaded.parsed else ""
    logger.info(
        f"port443: {len(loaded.index)} rulesets loaded from {loaded.files} files in {loaded.seconds:.2f}s{parsed}"
    )
    return loaded.index, len(loaded.errors)
