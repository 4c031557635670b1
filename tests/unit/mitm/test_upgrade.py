"""The mitmproxy addons with mitmproxy's own test helpers: options, hooks and commands, no sockets."""

from __future__ import annotations

from pathlib import Path

import pytest
from mitmproxy import exceptions, http
from mitmproxy.test import taddons, tutils

from port443.mitm.clients import CLIENT_MODE
from port443.mitm.upgrade import HttpsUpgrade
from port443.proxy.decide import Decision, Learned, Policy, Reason, Step
from tests.support.flows import http_flow

RULESET = "name: Mine\ntargets: [mine.test]\nrules:\n  - from: '^http:'\n    to: 'https:'\nexclusions: [^http://mine\\.test/old/]\n"


@pytest.fixture
def rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "mine.yaml").write_text(RULESET)
    return folder


async def handle(up: HttpsUpgrade, flow: http.HTTPFlow) -> None:
    """Run the request hook as mitmproxy does: await what it returns, if anything."""
    pending = up.request(flow)
    if pending is not None:
        await pending


async def test_redirect_mode_answers_with_a_redirect(rules: Path) -> None:
    up = HttpsUpgrade()
    with taddons.context(up) as tctx:
        tctx.configure(up, port443_rules=[str(rules)], port443_shipped_rules=False, port443_probe=False)
        flow = http_flow("http://mine.test/a?b=1")
        await handle(up, flow)
        assert flow.response is not None
        assert (flow.response.status_code, flow.response.headers["Location"]) == (
            307,
            "https://mine.test/a?b=1",
        )
        assert flow.marked and "ruleset" in flow.comment
        tctx.configure(up, port443_redirect_status=308)
        flow = http_flow("http://mine.test/c")
        await handle(up, flow)
        assert flow.response is not None and flow.response.status_code == 308


async def test_excluded_and_unknown_urls_pass_through(rules: Path) -> None:
    up = HttpsUpgrade()
    with taddons.context(up) as tctx:
        tctx.configure(up, port443_rules=[str(rules)], port443_shipped_rules=False, port443_probe=False)
        for url, step in (("http://mine.test/old/x", Step.EXCLUDED), ("http://other.test/", Step.PROBE)):
            flow = http_flow(url)
            await handle(up, flow)
            assert flow.response is None
            decision = flow.metadata["port443.decision"]
            assert isinstance(decision, Decision) and decision.step is step and not decision.upgrade


async def test_rewrite_mode_changes_the_request(rules: Path) -> None:
    up = HttpsUpgrade()
    with taddons.context(up) as tctx:
        tctx.configure(
            up,
            port443_rules=[str(rules)],
            port443_shipped_rules=False,
            port443_mode="rewrite",
            port443_probe=False,
        )
        flow = http_flow("http://mine.test/a")
        await handle(up, flow)
        assert flow.response is None
        assert (flow.request.scheme, flow.request.host, flow.request.port) == ("https", "mine.test", 443)


async def test_handled_or_dead_flows_are_left_alone(rules: Path) -> None:
    up = HttpsUpgrade()
    with taddons.context(up) as tctx:
        tctx.configure(up, port443_rules=[str(rules)], port443_shipped_rules=False)
        answered = http_flow("http://mine.test/")
        answered.response = tutils.tresp()
        killed = http_flow("http://mine.test/")
        killed.live = False
        https = http_flow("https://mine.test/")
        for flow in (answered, killed, https):
            await handle(up, flow)
            assert "port443.decision" not in flow.metadata


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("port443_redirect_status", 200, "is not one of"),
        ("port443_probe_timeout", 0, "between 1 and 60000"),
        ("port443_connect_to", ["nonsense"], "connect-to entry .nonsense."),
        ("port443_rules", ["/does/not/exist"], "no such file or directory"),
    ],
)
def test_bad_options_are_refused_and_the_old_state_stays(
    rules: Path, option: str, value: object, message: str
) -> None:
    up = HttpsUpgrade()
    with taddons.context(up) as tctx:
        tctx.configure(up, port443_rules=[str(rules)], port443_shipped_rules=False)
        decider = up.ensure_built()
        assert decider is not None
        with pytest.raises(exceptions.OptionsError, match=message):
            tctx.configure(up, **{option: value})
        assert up.decider is decider


def test_commands(rules: Path) -> None:
    up = HttpsUpgrade()
    with taddons.context(up) as tctx:
        tctx.configure(up, port443_rules=[str(rules)], port443_shipped_rules=False)
        assert tctx.master.commands.execute("port443.stats").startswith("rulesets: 1 (0 files skipped)")
        (rules / "more.yaml").write_text(RULESET.replace("mine", "more"))
        tctx.master.commands.execute("port443.reload")
        assert up.decider is not None and len(up.decider.index) == 2


async def test_only_a_probe_makes_the_hook_asynchronous(rules: Path) -> None:
    from port443.net.probe import ProbeResult, ProbeStatus

    async def fake_probe(host: str) -> ProbeResult:
        return ProbeResult(host, ProbeStatus.OK, "TLSv1.3, HTTP 200", 0.01)

    up = HttpsUpgrade()
    with taddons.context(up) as tctx:
        tctx.configure(
            up, port443_rules=[str(rules)], port443_shipped_rules=False, port443_confirm_rules=False
        )
        decider = up.ensure_built()
        assert decider is not None
        decider.prober = fake_probe
        assert up.request(http_flow("http://mine.test/")) is None  # a ruleset decides: no coroutine at all
        flow = http_flow("http://other.test/x")
        pending = up.request(flow)
        assert pending is not None and flow.response is None  # only a probe can tell: await it
        await pending
        assert flow.response is not None and flow.response.headers["Location"] == "https://other.test/x"


async def test_rewrite_mode_connects_by_name_behind_a_transparent_gateway(rules: Path) -> None:
    up = HttpsUpgrade()
    with taddons.context(up) as tctx:
        tctx.configure(
            up,
            port443_rules=[str(rules)],
            port443_shipped_rules=False,
            port443_confirm_rules=False,
            port443_mode="rewrite",
        )
        flow = http_flow("http://192.0.2.7/page")  # transparent mode: the destination address ...
        flow.request.headers["Host"] = "mine.test"  # ... and the name the device asked for
        await handle(up, flow)
        assert (flow.request.scheme, flow.request.host, flow.request.port) == ("https", "mine.test", 443)
        assert flow.request.headers["Host"] == "mine.test"


async def test_each_device_gets_its_own_mode(rules: Path) -> None:
    up = HttpsUpgrade()
    with taddons.context(up) as tctx:
        tctx.configure(
            up, port443_rules=[str(rules)], port443_shipped_rules=False, port443_confirm_rules=False
        )
        flows = {mode: http_flow("http://mine.test/a") for mode in ("off", "rewrite", "redirect")}
        for mode, flow in flows.items():
            flow.metadata[CLIENT_MODE] = mode  # what ClientPolicy put there for this device
            await handle(up, flow)
        assert flows["off"].response is None and flows["off"].request.scheme == "http"  # never touched
        assert "port443.decision" not in flows["off"].metadata
        assert flows["rewrite"].response is None and flows["rewrite"].request.scheme == "https"
        redirected = flows["redirect"].response
        assert redirected is not None and redirected.status_code == 307


async def test_an_overlong_url_gets_a_414_and_is_never_echoed(rules: Path) -> None:
    up = HttpsUpgrade()
    with taddons.context(up) as tctx:
        tctx.configure(
            up, port443_rules=[str(rules)], port443_shipped_rules=False, port443_confirm_rules=False
        )
        flow = http_flow("http://mine.test/" + "a" * (1024 * 1024))
        await handle(up, flow)
        assert flow.response is not None and flow.response.status_code == 414
        assert len(flow.response.content or b"") < 100 and "Location" not in flow.response.headers
        decider = up.ensure_built()
        assert decider is not None  # past the rules' 8 KiB bound, what was learned still upgrades
        decider.learn(Learned("mine.test", True, Reason.OK, "TLSv1.3", expires=1e12))
        fine = http_flow("http://mine.test/" + "a" * 20_000)  # long, but within bounds: still upgraded
        await handle(up, fine)
        assert fine.response is not None and fine.response.status_code == 307
        assert len(fine.response.content or b"") < 4096  # the body shows a bounded part of the URL


def test_a_persons_choices_are_in_force_at_once_and_in_every_decider(rules: Path) -> None:
    up = HttpsUpgrade()
    with taddons.context(up) as tctx:
        up.set_policies({"mine.test": Policy.NEVER})  # before anything is built (the store opened first)
        tctx.configure(up, port443_rules=[str(rules)], port443_shipped_rules=False, port443_probe=False)
        decider = up.ensure_built()
        assert decider is not None and decider.policies == {"mine.test": Policy.NEVER}
        up.set_policies({"mine.test": Policy.ALWAYS})
        assert decider.policies == {"mine.test": Policy.ALWAYS}
        tctx.configure(up, port443_probe_timeout=1500)  # a new decider over the same rules
        rebuilt = up.ensure_built()
        assert rebuilt is not None and rebuilt.policies == {"mine.test": Policy.ALWAYS}
