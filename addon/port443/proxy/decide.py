"""Decide, for one plain-HTTP URL, whether to upgrade it, and which step decided.

Steps, in order: exempt hosts, rulesets (user rules first), the HSTS preload list, what earlier probes
learned, a fresh probe of host:443, and otherwise plain HTTP logged as insecure. A ruleset is trusted only
once HTTPS is confirmed on its target (rules date from 2021 and can be stale), and what was learned about a
host overrides a rule; HSTS-preloaded hosts are trusted as browsers trust them (they hard-fail on them too),
except when the proxy fetches HTTPS itself. A confirmed redirect loop on one path keeps only that path on
HTTP. Concurrent requests for one host share one probe. No mitmproxy here, so `port443 explain` and the
proxy give the same answers. The value types (Step, Reason, Decision, Learned) live here too, with the one
pipeline that makes them: the vocabulary and its only author stay together.
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
from port443.net.probe import ProbeResult, ProbeStatus
from port443.proxy.exempt import exemption
from port443.proxy.hsts import PreloadList

MODES = ("redirect", "rewrite", "strict")
"""How the proxy upgrades: a redirect, fetching HTTPS itself, or a redirect plus a warning page."""

Prober = Callable[[str], Awaitable[ProbeResult]]
PathProber = Callable[[str, str], Awaitable[ProbeResult]]
"""Asks `https://HOST/PATH` once (no redirects followed): confirms or refutes a suspected redirect loop."""


class Step(StrEnum):
    """Which step decided."""

    EXEMPT = "exempt"
    RULESET = "ruleset"
    EXCLUDED = "excluded-by-rule"
    HSTS = "hsts-preload"
    LEARNED = "learned"
    PROBE = "probe"
    LOOP = "redirect-loop"
    BYPASS = "user-bypass"
    POLICY = "user-policy"
    NOT_HTTP = "not-http"


class Policy(StrEnum):
    """What a person chose for a site (the dashboard, `port443 never`/`always`): it covers its subdomains."""

    NEVER = "never"
    """Never upgrade it (a device that breaks on HTTPS, say)."""
    ALWAYS = "always"
    """Always send it to HTTPS, whatever rules, probes or learned failures say (only confirmed loops hold)."""


class Reason(StrEnum):
    """Why a request was upgraded or left on HTTP: the one vocabulary of decisions, the store and reports."""

    RULESET = "ruleset"
    PRELOADED = "preloaded"
    OK = ProbeStatus.OK.value
    REFUSED = ProbeStatus.REFUSED.value
    TIMEOUT = ProbeStatus.TIMEOUT.value
    BAD_CERT = ProbeStatus.BAD_CERT.value
    NO_TLS = ProbeStatus.NO_TLS.value
    REDIRECTS_TO_HTTP = ProbeStatus.REDIRECTS_TO_HTTP.value
    UNREACHABLE = ProbeStatus.UNREACHABLE.value
    REDIRECT_LOOP = "redirect-loop"
    TLS_ERROR = "tls-error"
    EXCLUDED = "excluded-by-rule"
    EXEMPT = "exempt"
    NON_DEFAULT_PORT = "non-default-port"
    NOT_HTTP = "not-http"
    NOT_PROBED = "not-probed"
    USER_BYPASS = "user-bypass"
    USER_POLICY = "user-policy"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: str) -> Reason:
        """A stored reason; one this version does not know (a newer store) reads as UNKNOWN."""
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one request."""

    upgrade: bool
    url: str | None
    """The https URL to send the client to (or fetch) when `upgrade`."""
    step: Step
    reason: Reason
    detail: str = ""
    ruleset: str | None = None

    @classmethod
    def upgrade_to(
        cls, url: str, step: Step, reason: Reason, detail: str = "", ruleset: str | None = None
    ) -> Decision:
        """Send the request to `url` (https)."""
        return cls(True, url, step, reason, detail, ruleset)

    @classmethod
    def stay(cls, step: Step, reason: Reason, detail: str = "", ruleset: str | None = None) -> Decision:
        """Leave the request on plain HTTP."""
        return cls(False, None, step, reason, detail, ruleset)

    @property
    def insecure(self) -> bool:
        """A site the user reached over plain HTTP for a reason worth reporting (not exempt hosts)."""
        return not self.upgrade and self.step not in (Step.EXEMPT, Step.NOT_HTTP, Step.BYPASS, Step.POLICY)


@dataclass(frozen=True, slots=True)
class Learned:
    """What a probe (or a confirmed redirect loop) taught about a host, or one path of it, until `expires`."""

    host: str
    secure: bool
    reason: Reason
    detail: str
    expires: float
    path: str = ""
    """Empty for the whole host; else the one path (no query) this is about, e.g. a path whose HTTPS bounces."""


@dataclass(slots=True)
class Settings:
    """The decider's knobs (the addon fills them from mitmproxy options)."""

    never: tuple[str, ...] = ()
    use_hsts: bool = True
    use_probe: bool = True
    confirm_rules: bool = True
    """Probe a ruleset's target before trusting the rule; off for people who trust their rules."""
    secure_ttl: float = 7 * 24 * 3600
    insecure_ttl: float = 24 * 3600


@dataclass(frozen=True, slots=True)
class Pending:
    """Only the network can tell: probe `host`, then upgrade to `candidate` (or by the probe) if it works."""

    canon: CanonicalURL
    host: str
    candidate: Decision | None


class Decider:
    """Holds what the steps need; `index` may be swapped at any time (it is immutable)."""

    def __init__(
        self,
        index: RuleIndex,
        *,
        preload: PreloadList | None = None,
        prober: Prober | None = None,
        path_prober: PathProber | None = None,
        settings: Settings | None = None,
        learned: Iterable[Learned] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.index = index
        self.preload = preload
        self.prober = prober
        self.path_prober = path_prober
        self.settings = settings or Settings()
        self.clock = clock
        self.learned: dict[str, Learned] = {}
        """Host-wide knowledge, by host."""
        self.learned_paths: dict[tuple[str, str], Learned] = {}
        """Knowledge about one path (confirmed loops), by (host, path)."""
        self.on_learned: Callable[[Learned], None] | None = None
        self.policies: dict[str, Policy] = {}
        """A person's choices by host (lower-case); a name covers its subdomains, the most specific wins."""
        self._probes: dict[tuple[str, str], asyncio.Task[ProbeResult]] = {}
        self.probes_started = 0
        self.remember(learned)

    def remember(self, entries: Iterable[Learned]) -> None:
        """Take knowledge back from the store (no callback: it is already there)."""
        for x in entries:
            if x.path:
                self.learned_paths[(x.host, x.path)] = x
            else:
                self.learned[x.host] = x

    def entries(self) -> list[Learned]:
        """Everything known now, host-wide entries first."""
        return [*self.learned.values(), *self.learned_paths.values()]

    def forget(self, host: str) -> int:
        """Drop what was learned about `host` (every path); returns how many entries went."""
        gone = 1 if self.learned.pop(host, None) is not None else 0
        for key in [k for k in self.learned_paths if k[0] == host]:
            del self.learned_paths[key]
            gone += 1
        return gone

    def policy_for(self, host: str) -> Policy | None:
        """The choice that covers `host`: its own, else its nearest parent's."""
        if not self.policies:
            return None
        name = host
        while True:
            chosen = self.policies.get(name)
            if chosen is not None:
                return chosen
            dot = name.find(".")
            if dot < 0:
                return None
            name = name[dot + 1 :]

    def decide_known(self, url: str, *, fetches_https: bool = False) -> Decision | None:
        """Every step that needs no network; None when only a probe can tell.

        `fetches_https`: the proxy will fetch the https URL itself (rewrite mode), so even HSTS is confirmed.
        """
        known = self.assess(url, fetches_https=fetches_https)
        return known if isinstance(known, Decision) else None

    async def decide(self, url: str, *, fetches_https: bool = False) -> Decision:
        """All steps, probing host:443 if nothing else decides."""
        known = self.assess(url, fetches_https=fetches_https)
        if isinstance(known, Decision):
            return known
        if self.prober is None:
            if known.candidate is not None:
                return known.candidate  # nothing to confirm with: the rule stands
            return Decision.stay(Step.PROBE, Reason.NOT_PROBED, _NOT_PROBED)
        result = await self.probe(known.host)
        candidate = known.candidate
        if candidate is not None:
            if result.ok:
                return candidate
            why = f"{_source(candidate)} would upgrade, but {result.detail}"
            return Decision.stay(Step.PROBE, Reason(result.status.value), why, candidate.ruleset)
        if result.ok:
            upgraded = Decision.upgrade_to(https_url(known.canon), Step.PROBE, Reason.OK, result.detail)
            return self._unless_looped(upgraded)
        return Decision.stay(Step.PROBE, Reason(result.status.value), result.detail)

    def assess(self, url: str, *, fetches_https: bool = False) -> Decision | Pending:
        """What the steps that need no network say: a decision, or which host a probe must ask first."""
        canon = canonicalize(url)
        if canon is None or not canon.href.startswith("http://"):
            return Decision.stay(Step.NOT_HTTP, Reason.NOT_HTTP, "not a plain-HTTP URL")
        why = exemption(canon.host, self.settings.never)
        if why is not None:
            return Decision.stay(Step.EXEMPT, Reason.EXEMPT, why)
        chosen = self.policy_for(canon.host)
        if chosen is Policy.NEVER:
            return Decision.stay(Step.POLICY, Reason.USER_POLICY, "a person chose never to upgrade it")
        if chosen is Policy.ALWAYS:
            always = Decision.upgrade_to(
                https_url(canon), Step.POLICY, Reason.USER_POLICY, "a person chose HTTPS"
            )
            return self._unless_looped(always)
        result = apply_rulesets(canon.href, canon.host, self.index)
        if result.outcome is Outcome.EXCLUDED:
            detail = f"excluded by {result.ruleset}"
            return Decision.stay(Step.EXCLUDED, Reason.EXCLUDED, detail, result.ruleset)
        if result.outcome is Outcome.UPGRADED and result.url is not None:
            target = restore_userinfo(result.url, canon.userinfo)
            rule = Decision.upgrade_to(target, Step.RULESET, Reason.RULESET, ruleset=result.ruleset)
            return self._trusted(canon, rule, confirm=self.settings.confirm_rules)
        if self.settings.use_hsts and self.preload is not None and self.preload.lookup(canon.host):
            preloaded = Decision.upgrade_to(https_url(canon, keep_port=True), Step.HSTS, Reason.PRELOADED)
            return self._trusted(canon, preloaded, confirm=fetches_https)
        if _port(canon) not in ("", ":80"):
            # What port 443 said (probed or learned) tells nothing about a service on another port.
            return Decision.stay(
                Step.EXEMPT, Reason.NON_DEFAULT_PORT, "port 443 says nothing about this port"
            )
        known = self._known(canon.host)
        if known is not None:
            if known.secure:
                learned = Decision.upgrade_to(https_url(canon), Step.LEARNED, known.reason, known.detail)
                return self._unless_looped(learned)
            return Decision.stay(Step.LEARNED, known.reason, known.detail)
        if not self.settings.use_probe:
            return Decision.stay(Step.PROBE, Reason.NOT_PROBED, _NOT_PROBED)
        return Pending(canon, canon.host, None)

    def _trusted(self, canon: CanonicalURL, candidate: Decision, *, confirm: bool) -> Decision | Pending:
        """A rule or list would upgrade: what was learned about its target decides, or a probe confirms it."""
        looped = self._unless_looped(candidate)
        if not looped.upgrade:
            return looped
        target = urlsplit(candidate.url or "")
        host = target.hostname or ""
        if target.port not in (None, 443) or not host:
            return candidate  # port 443 says nothing about another port: the rule stands
        known = self._known(host)
        if known is not None and not known.secure:
            why = f"{_source(candidate)} would upgrade, but {known.detail or known.reason}"
            return Decision.stay(Step.LEARNED, known.reason, why, candidate.ruleset)
        if known is not None or not confirm or not self.settings.use_probe:
            return candidate
        return Pending(canon, host, candidate)

    def _unless_looped(self, decision: Decision) -> Decision:
        """A confirmed loop on the target's path (or a bouncing root) keeps the request on HTTP."""
        if not self.learned_paths:  # the usual case, and no URL to split for it
            return decision
        target = urlsplit(decision.url or "")
        host = target.hostname or ""
        entry = self.learned_paths.get((host, target.path or "/"))
        if entry is None or entry.expires <= self.clock():
            return decision
        return Decision.stay(Step.LEARNED, entry.reason, entry.detail, decision.ruleset)

    def _known(self, host: str) -> Learned | None:
        known = self.learned.get(host)
        return known if known is not None and known.expires > self.clock() else None

    async def probe(self, host: str) -> ProbeResult:
        """Probe `host`, sharing one probe among concurrent callers, and remember the answer."""
        assert self.prober is not None
        prober = self.prober
        return await self._shared((host, ""), lambda: prober(host))

    async def probe_path(self, host: str, path: str) -> ProbeResult:
        """Ask `https://host/path` once (shared among concurrent callers); nothing is learned here."""
        assert self.path_prober is not None
        path_prober = self.path_prober
        return await self._shared((host, path), lambda: path_prober(host, path))

    async def _shared(self, key: tuple[str, str], start: Callable[[], Awaitable[ProbeResult]]) -> ProbeResult:
        task = self._probes.get(key)
        if task is None:
            self.probes_started += 1
            task = asyncio.ensure_future(self._run_probe(key, start))
            self._probes[key] = task
            task.add_done_callback(lambda _t: self._probes.pop(key, None))
        return await asyncio.shield(task)

    async def _run_probe(
        self, key: tuple[str, str], start: Callable[[], Awaitable[ProbeResult]]
    ) -> ProbeResult:
        result = await start()
        host, path = key
        if not path:
            ttl = self.settings.secure_ttl if result.ok else self.settings.insecure_ttl
            self.learn(
                Learned(host, result.ok, Reason(result.status.value), result.detail, self.clock() + ttl)
            )
        return result

    def learn(self, learned: Learned) -> None:
        """Record knowledge about a host or a path and pass it to the store."""
        if learned.path:
            self.learned_paths[(learned.host, learned.path)] = learned
        else:
            self.learned[learned.host] = learned
        if self.on_learned is not None:
            self.on_learned(learned)

    def learn_insecure(self, host: str, reason: Reason, detail: str, *, path: str = "") -> Learned:
        """The site's own HTTPS failed (for one path, or `/` and so the whole host): remember it for a while."""
        scope = "" if path in ("", "/") else path
        learned = Learned(host, False, reason, detail, self.clock() + self.settings.insecure_ttl, scope)
        self.learn(learned)
        return learned


_NOT_PROBED = "no rule or list decides, and probing is off"


def _source(decision: Decision) -> str:
    if decision.ruleset:
        return f"ruleset {decision.ruleset!r}"
    return "the HSTS preload list" if decision.step is Step.HSTS else str(decision.step)


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
