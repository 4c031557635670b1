"""Decide, for one plain-HTTP URL, whether to upgrade it, and which step decided.

Steps, in order: exempt hosts, rulesets (user rules first), the HSTS preload list, what earlier probes
learned, a fresh probe of host:443, and otherwise plain HTTP logged as insecure. Concurrent requests for one
host share one probe. No mitmproxy here, so `port443 explain` and the proxy give the same answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from port443.engine.canon import CanonicalURL, canonicalize, restore_userinfo
from port443.engine.index import RuleIndex
from port443.engine.rewrite import Outcome, apply_rulesets
from port443.net.probe import ProbeResult
from port443.proxy.exempt import exemption
from port443.proxy.hsts import PreloadList

MODES = ("redirect", "rewrite", "strict")
"""How the proxy upgrades: a redirect, fetching HTTPS itself, or a redirect plus a warning page."""

Prober = Callable[[str], Awaitable[ProbeResult]]


@dataclass(frozen=True, slots=True)
class Learned:
    """What a probe (or a confirmed redirect loop) taught about a host, or one path of it, until `expires`."""

    host: str
    secure: bool
    reason: str
    detail: str
    expires: float
    path: str = ""
    """Empty for the whole host; else the one path (no query) this is about, e.g. a path whose HTTPS bounces."""


class Step(StrEnum):
    """Which step decided; also the reason logged for sites left on plain HTTP by a rule or a loop."""

    EXEMPT = "exempt"
    RULESET = "ruleset"
    EXCLUDED = "excluded-by-rule"
    HSTS = "hsts-preload"
    LEARNED = "learned"
    PROBE = "probe"
    LOOP = "redirect-loop"
    BYPASS = "user-bypass"
    NOT_HTTP = "not-http"


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one request."""

    upgrade: bool
    url: str | None
    """The https URL to send the client to (or fetch) when `upgrade`."""
    step: Step
    reason: str
    """Why it stays on HTTP (e.g. `refused`, `bad-certificate`), or how it was upgraded."""
    detail: str = ""
    ruleset: str | None = None

    @property
    def insecure(self) -> bool:
        """A site the user reached over plain HTTP for a reason worth reporting (not exempt hosts)."""
        return not self.upgrade and self.step not in (Step.EXEMPT, Step.NOT_HTTP, Step.BYPASS)


@dataclass(slots=True)
class Settings:
    """The decider's knobs (the addon fills them from mitmproxy options)."""

    never: tuple[str, ...] = ()
    use_hsts: bool = True
    use_probe: bool = True
    secure_ttl: float = 7 * 24 * 3600
    insecure_ttl: float = 24 * 3600


class Decider:
    """Holds what the steps need; `index` may be swapped at any time (it is immutable)."""

    def __init__(
        self,
        index: RuleIndex,
        *,
        preload: PreloadList | None = None,
        prober: Prober | None = None,
        settings: Settings | None = None,
        learned: Iterable[Learned] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.index = index
        self.preload = preload
        self.prober = prober
        self.settings = settings or Settings()
        self.clock = clock
        self.learned: dict[str, Learned] = {x.host: x for x in learned}
        self.on_learned: Callable[[Learned], None] | None = None
        self._probes: dict[str, asyncio.Task[ProbeResult]] = {}
        self.probes_started = 0

    def decide_known(self, url: str) -> Decision | None:
        """Steps 1-4 (no network); None when only a probe can tell."""
        canon = canonicalize(url)
        if canon is None or not canon.href.startswith("http://"):
            return Decision(False, None, Step.NOT_HTTP, "not a plain-HTTP URL")
        why = exemption(canon.host, self.settings.never)
        if why is not None:
            return Decision(False, None, Step.EXEMPT, why)
        result = apply_rulesets(canon.href, canon.host, self.index)
        if result.outcome is Outcome.UPGRADED and result.url is not None:
            url_out = restore_userinfo(result.url, canon.userinfo)
            return Decision(True, url_out, Step.RULESET, "ruleset", ruleset=result.ruleset)
        if result.outcome is Outcome.EXCLUDED:
            return Decision(
                False,
                None,
                Step.EXCLUDED,
                Step.EXCLUDED.value,
                f"excluded by {result.ruleset}",
                result.ruleset,
            )
        if self.settings.use_hsts and self.preload is not None and self.preload.lookup(canon.host):
            return Decision(True, https_url(canon, keep_port=True), Step.HSTS, "preloaded")
        if _port(canon) not in ("", ":80"):
            # What port 443 said (probed or learned) tells nothing about a service on another port.
            return Decision(False, None, Step.EXEMPT, "non-default port (port 443 says nothing about it)")
        known = self.learned.get(canon.host)
        if known is not None and known.expires > self.clock():
            if known.secure:
                return Decision(True, https_url(canon), Step.LEARNED, known.reason, known.detail)
            return Decision(False, None, Step.LEARNED, known.reason, known.detail)
        if not self.settings.use_probe or self.prober is None:
            return Decision(False, None, Step.PROBE, "not-probed", "probing is off")
        return None

    async def decide(self, url: str) -> Decision:
        """All steps, probing host:443 if nothing else decides."""
        known = self.decide_known(url)
        if known is not None:
            return known
        canon = canonicalize(url)
        assert canon is not None  # decide_known returned None, so it parsed
        result = await self.probe(canon.host)
        if result.ok:
            return Decision(True, https_url(canon), Step.PROBE, result.status.value, result.detail)
        return Decision(False, None, Step.PROBE, result.status.value, result.detail)

    async def probe(self, host: str) -> ProbeResult:
        """Probe `host`, sharing one probe among concurrent callers, and remember the answer."""
        task = self._probes.get(host)
        if task is None:
            assert self.prober is not None
            self.probes_started += 1
            task = asyncio.ensure_future(self._probe_and_learn(host))
            self._probes[host] = task
            task.add_done_callback(lambda _t: self._probes.pop(host, None))
        return await asyncio.shield(task)

    async def _probe_and_learn(self, host: str) -> ProbeResult:
        assert self.prober is not None
        result = await self.prober(host)
        ttl = self.settings.secure_ttl if result.ok else self.settings.insecure_ttl
        self.learn(Learned(host, result.ok, result.status.value, result.detail, self.clock() + ttl))
        return result

    def needs_confirmation(self, decision: Decision) -> bool:
        """Rewrite mode must check HTTPS before trusting a ruleset or HSTS, unless that is already known."""
        if not decision.upgrade or decision.step not in (Step.RULESET, Step.HSTS):
            return False
        if not self.settings.use_probe or self.prober is None:
            return False
        known = self.learned.get(urlsplit(decision.url or "").hostname or "")
        return known is None or known.expires <= self.clock()

    async def confirm(self, decision: Decision) -> Decision:
        """Rewrite mode fetches HTTPS itself: make sure it works first, so a failure falls back to HTTP at once.

        A redirect lets the browser find out; here the client would get an error page instead of the site.
        """
        if not self.settings.use_probe or self.prober is None:
            return decision
        target = urlsplit(decision.url or "")
        host = target.hostname or ""
        known = self.learned.get(host)
        if target.port not in (None, 443):
            return decision
        if known is not None and known.expires > self.clock():
            result_ok, status, detail = known.secure, known.reason, known.detail
        else:
            result = await self.probe(host)
            result_ok, status, detail = result.ok, result.status.value, result.detail
        if result_ok:
            return decision
        return Decision(
            False,
            None,
            Step.PROBE,
            status,
            f"{decision.step.value} would upgrade, but {detail}",
            decision.ruleset,
        )

    def learn(self, learned: Learned) -> None:
        """Record knowledge about a host (a probe result, a redirect loop) and pass it to the store."""
        self.learned[learned.host] = learned
        if self.on_learned is not None:
            self.on_learned(learned)


def _port(canon: CanonicalURL) -> str:
    authority = canon.href[len("http://") :].split("/", 1)[0]
    return authority[len(canon.host) :]


def https_url(canon: CanonicalURL, *, keep_port: bool = False) -> str:
    """The https form of a canonical http URL: port 443 unless `keep_port` (as browsers do for HSTS)."""
    rest = canon.href[len("http://") :]
    slash = rest.find("/")
    path = rest[slash:] if slash >= 0 else "/"
    port = _port(canon) if keep_port else ""
    return restore_userinfo(f"https://{canon.host}{port if port != ':80' else ''}{path}", canon.userinfo)
