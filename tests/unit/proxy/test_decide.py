"""The decision steps for a plain-HTTP URL, in order, with a fake prober and an injected clock."""

from __future__ import annotations

import asyncio

import hstspreload
import pytest

from port443.engine.canon import canonicalize
from port443.engine.index import RuleIndex
from port443.engine.ruleset import Rule, Ruleset
from port443.net.probe import ProbeResult, ProbeStatus
from port443.proxy.decide import Decider, Decision, Learned, Policy, Reason, Settings, Step, https_url
from port443.proxy.hsts import PreloadList

TRIVIAL = Rule("^http:", "https:")
PRELOADED = "paypal.com"  # preloaded without includeSubDomains


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeProber:
    """Answers `status` for every host; holds each probe until `gate` is set, when there is one."""

    def __init__(self, status: ProbeStatus = ProbeStatus.OK, *, gate: asyncio.Event | None = None) -> None:
        self.status = status
        self.gate = gate
        self.started = asyncio.Event()
        self.calls: list[str] = []

    async def __call__(self, host: str) -> ProbeResult:
        self.calls.append(host)
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        return ProbeResult(host, self.status, f"detail of {self.status.value}", 0.01)


@pytest.fixture(scope="module")
def preload() -> PreloadList:
    return PreloadList()


@pytest.fixture(scope="module")
def index() -> RuleIndex:
    return RuleIndex.build(
        [
            Ruleset(
                "Example",
                ("example.test", "*.example.test"),
                (TRIVIAL,),
                exclusions=(r"^http://example\.test/old/",),
            ),
            Ruleset("Moves", ("moves.test",), (Rule(r"^http://moves\.test/", "https://secure.moves.test/"),)),
            Ruleset("Local", ("nas.local",), (TRIVIAL,)),
            Ruleset("Preloaded", (PRELOADED,), (TRIVIAL,), exclusions=(r"/legacy/",)),
        ]
    )


@pytest.fixture
def prober() -> FakeProber:
    return FakeProber()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def decider(index: RuleIndex, preload: PreloadList, prober: FakeProber, clock: Clock) -> Decider:
    return Decider(
        index,
        preload=preload,
        prober=prober,
        settings=Settings(never=("corp.test",), confirm_rules=False),
        clock=clock,
    )


def test_the_sample_host_is_preloaded(preload: PreloadList) -> None:
    assert hstspreload.in_hsts_preload(PRELOADED)
    assert not hstspreload.in_hsts_preload("sub." + PRELOADED)
    assert preload.lookup(PRELOADED)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.test/", Decision.stay(Step.NOT_HTTP, Reason.NOT_HTTP, "not a plain-HTTP URL")),
        ("ftp://example.test/", Decision.stay(Step.NOT_HTTP, Reason.NOT_HTTP, "not a plain-HTTP URL")),
        ("http://exa mple.test/", Decision.stay(Step.NOT_HTTP, Reason.NOT_HTTP, "not a plain-HTTP URL")),
        ("http://192.168.1.1/", Decision.stay(Step.EXEMPT, Reason.EXEMPT, "local or non-public address")),
        ("http://[::1]:8080/", Decision.stay(Step.EXEMPT, Reason.EXEMPT, "local or non-public address")),
        (
            "http://nas.local/",
            Decision.stay(Step.EXEMPT, Reason.EXEMPT, "local or special-use name"),
        ),  # before rulesets
        ("http://router/", Decision.stay(Step.EXEMPT, Reason.EXEMPT, "single-label name")),
        ("http://captive.apple.com/", Decision.stay(Step.EXEMPT, Reason.EXEMPT, "captive-portal check")),
        ("http://www.CORP.test/", Decision.stay(Step.EXEMPT, Reason.EXEMPT, "on the never-upgrade list")),
        (
            "http://user:pw@www.example.test/a?b=1#c",
            Decision(
                True,
                "https://user:pw@www.example.test/a?b=1#c",
                Step.RULESET,
                Reason.RULESET,
                ruleset="Example",
            ),
        ),
        (
            "http://EXAMPLE.test.:80/x",
            Decision(True, "https://example.test/x", Step.RULESET, Reason.RULESET, ruleset="Example"),
        ),
        (
            "http://u@moves.test/p",
            Decision(True, "https://u@secure.moves.test/p", Step.RULESET, Reason.RULESET, ruleset="Moves"),
        ),
        (
            "http://example.test/old/page",
            Decision(False, None, Step.EXCLUDED, Reason.EXCLUDED, "excluded by Example", "Example"),
        ),
        (  # a ruleset's exclusion wins over the HSTS preload list
            f"http://{PRELOADED}/legacy/",
            Decision(False, None, Step.EXCLUDED, Reason.EXCLUDED, "excluded by Preloaded", "Preloaded"),
        ),
        (
            "http://www.paypal.com/a?b",
            Decision(True, "https://www.paypal.com/a?b", Step.HSTS, Reason.PRELOADED),
        ),
        (
            "http://x.dev:8080/",
            Decision(True, "https://x.dev:8080/", Step.HSTS, Reason.PRELOADED),
        ),  # keeps the port
        ("http://u:p@x.dev:80/", Decision(True, "https://u:p@x.dev/", Step.HSTS, Reason.PRELOADED)),
        (
            "http://new.test:8080/",
            Decision.stay(Step.EXEMPT, Reason.NON_DEFAULT_PORT, "port 443 says nothing about this port"),
        ),
    ],
)
async def test_steps_before_probing(
    decider: Decider, prober: FakeProber, url: str, expected: Decision
) -> None:
    assert decider.decide_known(url) == expected
    assert await decider.decide(url) == expected
    assert prober.calls == []


async def test_hsts_can_be_switched_off(index: RuleIndex, preload: PreloadList, prober: FakeProber) -> None:
    for decider in (
        Decider(index, preload=preload, prober=prober, settings=Settings(use_hsts=False)),
        Decider(index, prober=prober),
    ):
        decision = await decider.decide("http://x.dev/")
        assert (decision.step, decision.upgrade) == (Step.PROBE, True)
    assert prober.calls == ["x.dev", "x.dev"]


async def test_learned_answers_until_they_expire(decider: Decider, prober: FakeProber, clock: Clock) -> None:
    decider.learn(Learned("good.test", True, Reason.OK, "TLSv1.3", expires=2000))
    decider.learn(Learned("bad.test", False, Reason.REFUSED, "connection refused", expires=2000))
    assert await decider.decide("http://u@good.test/a") == Decision(
        True, "https://u@good.test/a", Step.LEARNED, Reason.OK, "TLSv1.3"
    )
    assert await decider.decide("http://bad.test/") == Decision(
        False, None, Step.LEARNED, Reason.REFUSED, "connection refused"
    )
    clock.now = 1999.9
    assert decider.decide_known("http://bad.test/") is not None
    clock.now = 2000  # expired: asks again
    assert decider.decide_known("http://bad.test/") is None
    decision = await decider.decide("http://bad.test/")
    assert (decision.step, decision.upgrade) == (Step.PROBE, True)
    assert prober.calls == ["bad.test"]


def test_learned_knowledge_can_come_from_the_store(index: RuleIndex, clock: Clock) -> None:
    decider = Decider(index, learned=[Learned("old.test", True, Reason.OK, "", expires=5000)], clock=clock)
    assert decider.decide_known("http://old.test/") == Decision(
        True, "https://old.test/", Step.LEARNED, Reason.OK
    )


def test_learned_does_not_cover_other_ports(decider: Decider) -> None:
    decider.learn(Learned("good.test", True, Reason.OK, "", expires=1e12))
    decision = decider.decide_known("http://good.test:8080/app")
    assert decision is not None
    assert (decision.upgrade, decision.step) == (False, Step.EXEMPT)  # found as https://good.test/app instead


@pytest.mark.parametrize(
    "decider",
    [
        Decider(RuleIndex.build([]), prober=FakeProber(), settings=Settings(use_probe=False)),
        Decider(RuleIndex.build([])),  # no prober at all
    ],
)
async def test_probing_off(decider: Decider) -> None:
    expected = Decision.stay(Step.PROBE, Reason.NOT_PROBED, "no rule or list decides, and probing is off")
    if decider.settings.use_probe:  # no prober: only a probe could tell, and there is none to ask
        assert decider.decide_known("http://new.test/") is None
    else:
        assert decider.decide_known("http://new.test/") == expected
    assert await decider.decide("http://new.test/") == expected


@pytest.mark.parametrize(
    ("status", "upgrade", "ttl"),
    [
        (ProbeStatus.OK, True, 7 * 24 * 3600),
        (ProbeStatus.REFUSED, False, 24 * 3600),
        (ProbeStatus.BAD_CERT, False, 24 * 3600),
        (ProbeStatus.REDIRECTS_TO_HTTP, False, 24 * 3600),
    ],
)
async def test_probe_result_decides_and_is_learned(
    index: RuleIndex, clock: Clock, status: ProbeStatus, upgrade: bool, ttl: float
) -> None:
    prober = FakeProber(status)
    decider = Decider(index, prober=prober, clock=clock)
    learned: list[Learned] = []
    decider.on_learned = learned.append
    decision = await decider.decide("http://u:p@new.test/path?q=1")
    detail = f"detail of {status.value}"
    url = "https://u:p@new.test/path?q=1" if upgrade else None
    assert decision == Decision(upgrade, url, Step.PROBE, Reason(status.value), detail)
    assert decision.insecure is not upgrade
    expected = Learned("new.test", upgrade, Reason(status.value), detail, 1000 + ttl)
    assert learned == [expected]
    assert decider.learned["new.test"] == expected
    again = await decider.decide("http://new.test/other")
    assert (again.step, again.upgrade, again.reason) == (Step.LEARNED, upgrade, status.value)
    assert prober.calls == ["new.test"]


async def test_ttls_come_from_the_settings(index: RuleIndex, clock: Clock) -> None:
    settings = Settings(secure_ttl=60, insecure_ttl=5)
    decider = Decider(index, prober=FakeProber(), settings=settings, clock=clock)
    await decider.decide("http://a.test/")
    decider.prober = FakeProber(ProbeStatus.TIMEOUT)
    await decider.decide("http://b.test/")
    assert (decider.learned["a.test"].expires, decider.learned["b.test"].expires) == (1060, 1005)


async def test_concurrent_requests_share_one_probe(index: RuleIndex) -> None:
    gate = asyncio.Event()
    prober = FakeProber(gate=gate)
    decider = Decider(index, prober=prober)
    learned: list[Learned] = []
    decider.on_learned = learned.append
    tasks = [asyncio.ensure_future(decider.decide(f"http://busy.test/{n}")) for n in range(50)]
    await prober.started.wait()  # every caller is waiting on the probe by now
    gate.set()
    decisions = await asyncio.gather(*tasks)
    assert prober.calls == ["busy.test"]
    assert decider.probes_started == 1
    assert len(learned) == 1
    assert [d.url for d in decisions] == [f"https://busy.test/{n}" for n in range(50)]
    assert decider._probes == {}


async def test_a_cancelled_caller_does_not_cancel_the_shared_probe(index: RuleIndex) -> None:
    gate = asyncio.Event()
    prober = FakeProber(gate=gate)
    decider = Decider(index, prober=prober)
    first = asyncio.ensure_future(decider.decide("http://busy.test/"))
    second = asyncio.ensure_future(decider.decide("http://busy.test/"))
    await prober.started.wait()
    first.cancel()
    gate.set()
    assert (await second).step is Step.PROBE
    assert first.cancelled()
    assert prober.calls == ["busy.test"]


async def test_different_hosts_are_probed_separately(decider: Decider, prober: FakeProber) -> None:
    await asyncio.gather(decider.decide("http://a.test/"), decider.decide("http://b.test/"))
    assert sorted(prober.calls) == ["a.test", "b.test"]
    assert decider.probes_started == 2


@pytest.mark.parametrize(
    ("url", "plain", "keep_port"),
    [
        ("http://a.test/x?y#z", "https://a.test/x?y#z", "https://a.test/x?y#z"),
        ("http://a.test", "https://a.test/", "https://a.test/"),
        ("http://a.test:80/x", "https://a.test/x", "https://a.test/x"),
        ("http://a.test:8080/x?y", "https://a.test/x?y", "https://a.test:8080/x?y"),
        ("http://u:p@a.test:81/", "https://u:p@a.test/", "https://u:p@a.test:81/"),
        ("http://u@A.Test./", "https://u@a.test/", "https://u@a.test/"),
        ("http://[2001:db8::1]:8080/a", "https://[2001:db8::1]/a", "https://[2001:db8::1]:8080/a"),
    ],
)
def test_https_url(url: str, plain: str, keep_port: str) -> None:
    canon = canonicalize(url)
    assert canon is not None
    assert https_url(canon) == plain
    assert https_url(canon, keep_port=True) == keep_port


@pytest.mark.parametrize(
    ("decision", "insecure"),
    [
        (Decision(True, "https://a.test/", Step.RULESET, Reason.RULESET), False),
        (Decision(True, "https://a.test/", Step.PROBE, Reason.OK), False),
        (Decision.stay(Step.EXEMPT, Reason.EXEMPT, "local or non-public address"), False),
        (Decision.stay(Step.NOT_HTTP, Reason.NOT_HTTP, "not a plain-HTTP URL"), False),
        (Decision.stay(Step.BYPASS, Reason.USER_BYPASS, "user chose HTTP"), False),
        (Decision(False, None, Step.EXCLUDED, Reason.EXCLUDED), True),
        (Decision(False, None, Step.PROBE, Reason.REFUSED), True),
        (Decision(False, None, Step.PROBE, Reason.NOT_PROBED), True),
        (Decision(False, None, Step.LEARNED, Reason.TIMEOUT), True),
        (Decision(False, None, Step.LOOP, Reason.REDIRECT_LOOP), True),
    ],
)
def test_insecure_property(decision: Decision, insecure: bool) -> None:
    assert decision.insecure is insecure


@pytest.fixture
def confirming(index: RuleIndex, preload: PreloadList, clock: Clock) -> Decider:
    """Rulesets confirmed by a probe of their target (the default); the prober says OK unless told."""
    return Decider(index, preload=preload, prober=FakeProber(), clock=clock)


async def test_a_ruleset_is_confirmed_once_then_trusted(confirming: Decider) -> None:
    prober = confirming.prober
    assert isinstance(prober, FakeProber)
    assert confirming.decide_known("http://www.example.test/a") is None  # only a probe can tell
    first = await confirming.decide("http://www.example.test/a")
    assert first == Decision.upgrade_to(
        "https://www.example.test/a", Step.RULESET, Reason.RULESET, ruleset="Example"
    )
    assert confirming.decide_known("http://www.example.test/b") == Decision.upgrade_to(
        "https://www.example.test/b", Step.RULESET, Reason.RULESET, ruleset="Example"
    )
    assert prober.calls == ["www.example.test"]


async def test_a_stale_ruleset_falls_back_to_http_with_the_reason(
    index: RuleIndex, preload: PreloadList, clock: Clock
) -> None:
    decider = Decider(index, preload=preload, prober=FakeProber(ProbeStatus.REFUSED), clock=clock)
    decision = await decider.decide("http://moves.test/p")
    assert decision == Decision.stay(
        Step.PROBE, Reason.REFUSED, "ruleset 'Moves' would upgrade, but detail of refused", "Moves"
    )
    assert decision.insecure
    later = decider.decide_known("http://moves.test/q")  # the learned failure overrides the rule
    assert later is not None and (later.upgrade, later.step, later.reason) == (
        False,
        Step.LEARNED,
        Reason.REFUSED,
    )
    assert decider.prober.calls == ["secure.moves.test"]  # type: ignore[union-attr]  # the rule's target


async def test_hsts_is_trusted_without_a_probe_unless_the_proxy_fetches_it(confirming: Decider) -> None:
    prober = confirming.prober
    assert isinstance(prober, FakeProber)
    redirect = confirming.decide_known("http://x.dev/")
    assert redirect is not None and (redirect.upgrade, redirect.step) == (True, Step.HSTS)
    assert confirming.decide_known("http://x.dev/", fetches_https=True) is None
    fetched = await confirming.decide("http://x.dev/", fetches_https=True)
    assert (fetched.upgrade, fetched.step) == (True, Step.HSTS) and prober.calls == ["x.dev"]


def test_rules_can_be_trusted_blindly(index: RuleIndex, clock: Clock) -> None:
    decider = Decider(index, prober=FakeProber(), settings=Settings(confirm_rules=False), clock=clock)
    decision = decider.decide_known("http://www.example.test/")
    assert decision is not None and decision.upgrade


@pytest.mark.parametrize("url", ["http://www.example.test/loop", "http://learned.test/loop"])
def test_a_confirmed_loop_keeps_only_its_path_on_http(confirming: Decider, url: str) -> None:
    host = url.split("/")[2]
    confirming.learn(Learned(host, True, Reason.OK, "TLSv1.3", expires=5000))
    learned = confirming.learn_insecure(
        host, Reason.REDIRECT_LOOP, "HTTPS /loop sends clients back", path="/loop"
    )
    assert (learned.path, learned.expires) == ("/loop", 1000 + 24 * 3600)
    looped = confirming.decide_known(url + "?q=1")
    assert looped is not None and (looped.upgrade, looped.reason) == (False, Reason.REDIRECT_LOOP)
    other = confirming.decide_known(url.replace("/loop", "/fine"))
    assert other is not None and other.upgrade


def test_a_loop_at_the_root_is_about_the_whole_host(confirming: Decider) -> None:
    learned = confirming.learn_insecure("root.test", Reason.REDIRECT_LOOP, "HTTPS / bounces", path="/")
    assert learned.path == "" and confirming.learned["root.test"] is learned
    decision = confirming.decide_known("http://root.test/any")
    assert decision is not None and (decision.upgrade, decision.reason) == (False, Reason.REDIRECT_LOOP)


def test_forget_drops_every_entry_of_a_host(confirming: Decider) -> None:
    confirming.learn(Learned("f.test", False, Reason.REFUSED, "", expires=5000))
    confirming.learn_insecure("f.test", Reason.REDIRECT_LOOP, "", path="/a")
    confirming.learn_insecure("g.test", Reason.REDIRECT_LOOP, "", path="/a")
    assert confirming.forget("f.test") == 2
    assert [(x.host, x.path) for x in confirming.entries()] == [("g.test", "/a")]
    assert confirming.decide_known("http://f.test/a") is None  # unknown again: probed next time


def test_a_persons_choice_covers_subdomains_and_the_nearest_one_wins(confirming: Decider) -> None:
    confirming.policies = {
        "example.test": Policy.NEVER,
        "pay.example.test": Policy.ALWAYS,
        "x.dev": Policy.NEVER,
    }
    never = confirming.decide_known("http://www.example.test/")
    assert never == Decision.stay(Step.POLICY, Reason.USER_POLICY, "a person chose never to upgrade it")
    assert not never.insecure  # a choice, not a site to report
    always = confirming.decide_known("http://a.pay.example.test/p?q")
    assert always == Decision.upgrade_to(
        "https://a.pay.example.test/p?q", Step.POLICY, Reason.USER_POLICY, "a person chose HTTPS"
    )
    preloaded = confirming.decide_known("http://x.dev/")  # a choice outranks the preload list too
    assert preloaded is not None and preloaded.step is Step.POLICY and not preloaded.upgrade


def test_always_gives_way_only_to_a_confirmed_loop(confirming: Decider) -> None:
    confirming.policies = {"loop.test": Policy.ALWAYS}
    confirming.learn(Learned("loop.test", False, Reason.REFUSED, "", expires=5000))
    assert confirming.decide_known("http://loop.test/a") is not None
    assert confirming.decide_known("http://loop.test/a").upgrade  # type: ignore[union-attr]
    confirming.learn_insecure("loop.test", Reason.REDIRECT_LOOP, "bounces", path="/a")
    looped = confirming.decide_known("http://loop.test/a")
    assert looped is not None and not looped.upgrade
