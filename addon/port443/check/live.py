"""`port443 rules test --live`: fetch each test URL over HTTP and as the ruleset rewrites it, and compare.

Like EFF's ruleset checker: a rewrite is broken when the HTTPS page fails, or differs from the HTTP page in
status class, final host or title. Timeouts and errors are results, never crashes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from port443.check.htmlscan import scan
from port443.check.site import CheckSettings, follow
from port443.engine.canon import canonicalize
from port443.engine.index import compile_record, record_of
from port443.engine.rewrite import apply_ruleset
from port443.engine.ruleset import Ruleset
from port443.net.fetch import Response


@dataclass(frozen=True, slots=True)
class LiveResult:
    """One test URL of one ruleset, fetched both ways."""

    ruleset: str
    source: str
    url: str
    rewritten: str | None
    ok: bool
    reason: str

    def as_json(self) -> dict[str, Any]:
        """For `--json`."""
        return {
            "ruleset": self.ruleset,
            "file": self.source,
            "url": self.url,
            "rewritten": self.rewritten,
            "ok": self.ok,
            "reason": self.reason,
        }


def test_urls(ruleset: Ruleset) -> list[str]:
    """Its test URLs and the root URL of each non-wildcard target, without repeats."""
    urls = list(ruleset.tests) + [f"http://{t}/" for t in ruleset.targets if "*" not in t]
    return list(dict.fromkeys(urls))


test_urls.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite its name


async def live_test(
    rulesets: Sequence[Ruleset],
    settings: CheckSettings,
    *,
    concurrency: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> list[LiveResult]:
    """Test every URL of every ruleset, at most `concurrency` at a time, results in input order."""
    jobs = [(r, url) for r in rulesets for url in test_urls(r)]
    compiled = {id(r): compile_record(record_of(r)) for r in rulesets}
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(ruleset: Ruleset, url: str) -> LiveResult:
        nonlocal done
        async with gate:
            result = await _test_one(ruleset, url, compiled[id(ruleset)], settings)
        done += 1
        if progress is not None:
            progress(done, len(jobs))
        return result

    return list(await asyncio.gather(*(one(r, u) for r, u in jobs)))


async def _test_one(ruleset: Ruleset, url: str, compiled: Any, settings: CheckSettings) -> LiveResult:
    canon = canonicalize(url)
    rewritten = apply_ruleset(compiled, canon.href) if canon is not None else None
    if rewritten is None:
        return LiveResult(
            ruleset.name, ruleset.source, url, None, True, "not rewritten (excluded): nothing to compare"
        )
    plain, secure = await asyncio.gather(follow(url, settings), follow(rewritten, settings))
    if not secure.responses or secure.error is not None:
        return LiveResult(
            ruleset.name, ruleset.source, url, rewritten, False, f"HTTPS failed: {secure.error}"
        )
    if secure.downgrade:
        return LiveResult(
            ruleset.name,
            ruleset.source,
            url,
            rewritten,
            False,
            f"HTTPS redirects back to HTTP: {secure.downgrade}",
        )
    if not plain.responses:
        return LiveResult(
            ruleset.name, ruleset.source, url, rewritten, True, f"HTTPS works; HTTP failed ({plain.error})"
        )
    return _compare(ruleset, url, rewritten, plain.responses[-1], secure.responses[-1])


def _compare(ruleset: Ruleset, url: str, rewritten: str, plain: Response, secure: Response) -> LiveResult:
    problems = []
    if plain.status // 100 != secure.status // 100:
        problems.append(f"status {plain.status} over HTTP, {secure.status} over HTTPS")
    plain_host, secure_host = urlsplit(plain.url).hostname, urlsplit(secure.url).hostname
    if plain_host != secure_host:
        problems.append(f"ends on {plain_host} over HTTP, {secure_host} over HTTPS")
    plain_title = scan(plain.body.decode("utf-8", "replace"))[0]
    secure_title = scan(secure.body.decode("utf-8", "replace"))[0]
    if plain_title != secure_title:
        problems.append(f"title {plain_title!r} over HTTP, {secure_title!r} over HTTPS")
    reason = "; ".join(problems) if problems else "same status class, host and title"
    return LiveResult(ruleset.name, ruleset.source, url, rewritten, not problems, reason)
