"""HttpsUpgrade: decides on each plain-HTTP request (through proxy.decide) and redirects, rewrites or warns.

Options are `port443_*` (mitm/options.py); a bad value raises OptionsError in `configure` and the previous
state stays. Hooks never raise for bad traffic. A client coming back for a URL it was just redirected from
is checked by proxy.loops and confirmed before anything is learned; what rewrite mode's upstream teaches
is RewriteFallback's (mitm/rewrite.py). Longer than most modules because the state's life (built once with
the final options, rebuilt off the event loop) and the request path it guards belong to one addon.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from mitmproxy import command, ctx, exceptions, http
from mitmproxy.addonmanager import Loader
from mitmproxy.utils import asyncio_utils

from port443.errors import Port443Error
from port443.mitm import state
from port443.mitm.clients import client_mode
from port443.mitm.options import add_options
from port443.net.connect import NETWORK_ERRORS, parse_connect_to
from port443.net.probe import ProbeStatus
from port443.proxy.bypass import BYPASS_PATH, Bypasses, warning_page
from port443.proxy.decide import Decider, Decision, Learned, Policy, Reason, Step
from port443.proxy.inert import loggable
from port443.proxy.loops import LoopGuard, Suspicion
from port443.proxy.pages import redirect_page

logger = logging.getLogger(__name__)

REDIRECT_STATUSES = (301, 302, 307, 308)
Signature = tuple[tuple[str, ...], tuple[str, ...]]
MAX_URL = 64 * 1024
"""Plain-HTTP request targets longer than this get a 414 from the proxy itself."""
RULES_WAIT = 60.0
"""Seconds a request may wait for rules that are still loading (a first start compiles the corpus)."""


class HttpsUpgrade:
    """Upgrade plain-HTTP requests to HTTPS when it is known to work; otherwise let them through and say why.

    The rules are loaded once per start, with the final options: mitmproxy configures addons with default
    options first and the command line's `--set` values after, so nothing is built before `running` (or
    before `ensure_built`, which is how mitmproxy's test helpers reach it). Once running, a change of rule options reloads the rules in a worker thread, and requests
    that arrive meanwhile wait for them (up to RULES_WAIT seconds, then they pass untouched).
    """

    def __init__(self) -> None:
        self.decider: Decider | None = None
        self.rules: state.Rules | None = None
        self.bypasses = Bypasses()
        self.loops = LoopGuard()
        self._built_for: Signature | None = None
        self._running = False
        self._loading: asyncio.Task[None] | None = None
        self._store: tuple[list[Learned], Callable[[Learned], None]] | None = None
        self._policies: dict[str, Policy] = {}

    def ensure_built(self) -> Decider | None:
        """Build now if the options changed and the proxy is not running yet (mitmproxy's test helpers
        and commands before the start reach the addon this way); returns the decider.

        Raises:
            OptionsError: when the rules cannot be loaded.
        """
        if not self._running and self._built_for != self._wanted():
            try:
                self._swap(self._build(ctx.options))
            except (Port443Error, OSError) as e:
                raise exceptions.OptionsError(f"port443: {e}") from e
        return self.decider

    @property
    def rule_paths(self) -> list[str]:
        """Where the rules in force came from."""
        return self.rules.paths if self.rules is not None else []

    @property
    def rule_errors(self) -> int:
        """How many rule files were skipped (or kept at their last good version)."""
        return self.rules.errors if self.rules is not None else 0

    def attach_store(
        self,
        learned: list[Learned],
        on_learned: Callable[[Learned], None],
        policies: Mapping[str, Policy] | None = None,
    ) -> None:
        """What the store knows (and a person chose), and where new knowledge goes; kept for every decider."""
        self._store = (learned, on_learned)
        if self.decider is not None:
            self.decider.remember(learned)
            self.decider.on_learned = on_learned
        if policies is not None:
            self.set_policies(policies)

    def set_policies(self, policies: Mapping[str, Policy]) -> None:
        """A person's per-site choices, in force at once and in every decider built from now on."""
        self._policies = dict(policies)
        if self.decider is not None:
            self.decider.policies = self._policies

    def load(self, loader: Loader) -> None:
        add_options(loader)

    def configure(self, updated: set[str]) -> None:
        opts: Any = ctx.options
        self._check(opts, updated)
        if "port443_loop_window" in updated:
            self.loops.window = float(opts.port443_loop_window)
        if "port443_bypass_ttl" in updated:
            self.bypasses.ttl = float(opts.port443_bypass_ttl)
        if not self._running or self._built_for == self._wanted():
            return  # not running yet: built once, with the final options; or nothing to rebuild
        if self.rules is not None and self._built_for is not None and self._built_for[0] == self._wanted()[0]:
            self._swap((self.rules, state.make_decider(opts, self.rules.index, self.decider)))
        else:
            self._start_loading()

    def _check(self, opts: Any, updated: set[str]) -> None:
        """Refuse bad values at once (mitmproxy rolls the option back and the old state keeps serving)."""
        if "port443_redirect_status" in updated and opts.port443_redirect_status not in REDIRECT_STATUSES:
            raise exceptions.OptionsError(
                f"port443_redirect_status: {opts.port443_redirect_status} is not one of {REDIRECT_STATUSES}"
            )
        if "port443_probe_timeout" in updated and not 0 < opts.port443_probe_timeout <= 60_000:
            raise exceptions.OptionsError("port443_probe_timeout: must be between 1 and 60000 milliseconds")
        if "port443_loop_window" in updated and opts.port443_loop_window <= 0:
            raise exceptions.OptionsError("port443_loop_window: must be at least 1 second")
        try:
            if "port443_connect_to" in updated:
                parse_connect_to(list(opts.port443_connect_to))
            if "port443_rules" in updated:
                state.rule_paths(opts)
        except Port443Error as e:
            raise exceptions.OptionsError(f"port443: {e}") from e

    def _wanted(self) -> Signature:
        opts: Any = ctx.options
        return state.signature(opts, state.RULE_OPTIONS), state.signature(opts, state.DECIDER_OPTIONS)

    def _build(self, opts: Any, *, reload_rules: bool = False) -> tuple[state.Rules, Decider]:
        """Rules (loaded again only when their options changed, or when asked) and a decider over them."""
        same_rules = self._built_for is not None and self._built_for[0] == self._wanted()[0]
        rules = self.rules if self.rules is not None and same_rules and not reload_rules else state.load(opts)
        return rules, state.make_decider(opts, rules.index, self.decider)

    def _swap(self, built: tuple[state.Rules, Decider], built_for: Signature | None = None) -> None:
        rules, decider = built
        if self.decider is None and self._store is not None:
            decider.remember(self._store[0])
            decider.on_learned = self._store[1]
        if self.decider is None:
            decider.policies = self._policies
        self.rules, self.decider, self._built_for = rules, decider, built_for or self._wanted()

    def running(self) -> None:
        self._running = True
        asyncio_utils.create_task(self._watch_rules(), name="port443 rules watcher", keep_ref=True)
        if self._built_for != self._wanted():
            self._start_loading()

    def _start_loading(self, *, reload_rules: bool = False) -> None:
        self._loading = asyncio_utils.create_task(
            self._load(reload_rules=reload_rules), name="port443 rules loader", keep_ref=True
        )

    async def _load(self, *, reload_rules: bool) -> None:
        """Build off the event loop; a failure keeps the previous state serving, and says why."""
        wanted = self._wanted()
        try:
            self._swap(await asyncio.to_thread(self._build, ctx.options, reload_rules=reload_rules), wanted)
            # The loaded corpus is hundreds of thousands of long-lived objects: move them out of the
            # collector's sight, or every full collection walks them while requests wait on the loop.
            gc.freeze()
            if reload_rules:
                logger.info("port443: rules reloaded")
        except (Port443Error, OSError):
            logger.exception("port443: loading the rules failed, keeping the previous state")
        finally:
            self._loading = None
        if self._built_for != self._wanted():  # the options changed while loading: once more
            self._start_loading()

    async def _watch_rules(self) -> None:
        """Reload when a user ruleset file changes; a broken edit keeps the last good rules."""
        while True:
            await asyncio.sleep(1.0)
            rules = self.rules
            if (
                rules is None
                or rules.watcher is None
                or self._loading is not None
                or not rules.watcher.changed()
            ):
                continue
            self._start_loading(reload_rules=True)

    # mitmweb's command route only matches [a-z.]+, so each command also has a name without digits.
    @command.command("httpsupgrade.reload")
    def reload(self) -> None:
        """Reload the rulesets now, in the background (bad files are reported and skipped)."""
        if self.ensure_built() is None:
            raise exceptions.CommandError("port443 is not configured yet")
        if self._running:
            self._start_loading(reload_rules=True)
            return
        try:
            self._swap(self._build(ctx.options, reload_rules=True))
        except Port443Error as e:
            raise exceptions.CommandError(str(e)) from e

    @command.command("port443.reload")
    def reload_alias(self) -> None:
        """Reload the rulesets now (the same as httpsupgrade.reload)."""
        self.reload()

    @command.command("httpsupgrade.stats")
    def stats(self) -> str:
        """Rulesets, probes and what was learned so far."""
        d = self.ensure_built()
        if d is None:
            return "port443 is not configured yet"
        entries = d.entries()
        secure = sum(1 for x in entries if x.secure)
        return (
            f"rulesets: {len(d.index)} ({self.rule_errors} files skipped); probes started: {d.probes_started}; "
            f"learned: {secure} secure, {len(entries) - secure} insecure"
        )

    @command.command("port443.stats")
    def stats_alias(self) -> str:
        """Rulesets, probes and what was learned so far (the same as httpsupgrade.stats)."""
        return str(self.stats())

    @command.command("httpsupgrade.forget")
    def forget(self, host: str) -> str:
        """Forget what was learned about a host (every path), in memory and in the store."""
        decider = self.ensure_built()
        if decider is None:
            raise exceptions.CommandError("port443 is not configured yet")
        name = host.strip().lower().rstrip(".")
        gone = decider.forget(name)
        log = ctx.master.addons.get("insecurelog")
        store = getattr(log, "store", None)
        if store is not None and hasattr(store, "forget"):
            gone = max(gone, store.forget(name))
        return f"{name}: {gone} entries forgotten (learned results and the insecure-site row)"

    @command.command("port443.forget")
    def forget_alias(self, host: str) -> str:
        """Forget what was learned about a host (the same as httpsupgrade.forget)."""
        return str(self.forget(host))

    def request(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        """Decide synchronously when no network is needed (nearly always); a probe makes this async.

        mitmproxy awaits what a hook returns, so the common case costs no coroutine at all.
        """
        if flow.response or flow.error or not flow.live or flow.request.scheme != "http":
            return None
        if len(flow.request.path) > MAX_URL:
            # Far past what browsers send or servers take (nginx answers 414 past 8 KiB): answered here, so
            # an attacker's URL is never copied into a redirect or held for a decision.
            flow.response = http.Response.make(
                414, b"port443: URL too long\n", {"Content-Type": "text/plain; charset=utf-8"}
            )
            return None
        if self._loading is not None:
            return self._after_loading(flow, self._loading)
        decider = self.decider if self._running else self.ensure_built()
        if decider is None:
            return None
        try:
            return self._handle(flow, decider)
        except Exception:  # a bug shows with its traceback, and the request goes through untouched
            logger.exception(f"port443: {loggable(flow.request.pretty_host)}: request hook failed")
            return None

    async def _after_loading(self, flow: http.HTTPFlow, loading: asyncio.Task[None]) -> None:
        """Rules are loading (the first start, or a change): decide once they are in, within RULES_WAIT."""
        try:
            await asyncio.wait_for(asyncio.shield(loading), RULES_WAIT)
        except TimeoutError:
            logger.warning(
                f"port443: rules still loading after {RULES_WAIT:g}s: {loggable(flow.request.pretty_host)} passes untouched"
            )
            return
        decider = self.decider
        if decider is None:
            return
        try:
            pending = self._handle(flow, decider)
            if pending is not None:
                await pending
        except Exception:  # a bug shows with its traceback, and the request goes through untouched
            logger.exception(f"port443: {loggable(flow.request.pretty_host)}: request hook failed")

    def _handle(self, flow: http.HTTPFlow, decider: Decider) -> Awaitable[None] | None:
        mode = client_mode(flow)  # the device's own mode (port443_client_modes), else port443_mode
        if mode == "off":
            return None  # a device the household asked port443 never to touch
        host = flow.request.pretty_host.lower().rstrip(".")
        if flow.request.path.startswith(BYPASS_PATH):
            target = self.bypasses.redeem(host, flow.request.path, client=_client(flow))
            if target is not None:
                flow.response = http.Response.make(
                    303, b"", {"Location": target, "Cache-Control": "no-store"}
                )
                return None
        url = flow.request.pretty_url
        if mode == "strict" and self.bypasses.allowed(host, client=_client(flow)):
            decision = Decision.stay(Step.BYPASS, Reason.USER_BYPASS, "user chose to continue over HTTP")
        else:
            known = decider.decide_known(url, fetches_https=mode == "rewrite")
            if known is None:
                return self._decide_and_act(flow, decider, mode, url, host)
            decision = known
        suspicion = self._suspicion(flow, decision, mode, url)
        if suspicion is Suspicion.REPEAT:
            return self._confirm_and_act(flow, decider, decision, mode, url, host)
        self._act(flow, _after(decision, suspicion), mode, url, host)
        return None

    async def _decide_and_act(
        self, flow: http.HTTPFlow, decider: Decider, mode: str, url: str, host: str
    ) -> None:
        try:
            decision = await decider.decide(url, fetches_https=mode == "rewrite")
            suspicion = self._suspicion(flow, decision, mode, url)
            if suspicion is Suspicion.REPEAT:
                await self._confirm_and_act(flow, decider, decision, mode, url, host)
            else:
                self._act(flow, _after(decision, suspicion), mode, url, host)
        except Exception:  # a bug shows with its traceback, and the request goes through untouched
            logger.exception(f"port443: {loggable(host)}: deciding failed")

    def _suspicion(self, flow: http.HTTPFlow, decision: Decision, mode: str, url: str) -> Suspicion:
        """Only a redirect can loop: a client back for the URL it was just redirected from is a suspect."""
        if not decision.upgrade or mode == "rewrite":
            return Suspicion.NONE
        return self.loops.check(_client(flow), url, time.monotonic())

    async def _confirm_and_act(
        self, flow: http.HTTPFlow, decider: Decider, decision: Decision, mode: str, url: str, host: str
    ) -> None:
        """Ask the https URL ourselves: only a redirect back to plain HTTP is a loop, and then it is a fact."""
        target = urlsplit(decision.url or "")
        name, path = target.hostname or "", target.path or "/"
        if decider.path_prober is not None and name and target.port in (None, 443):
            try:
                result = await decider.probe_path(name, path)
            except NETWORK_ERRORS as e:  # the prober classifies these; this is belt and braces
                logger.warning(f"port443: {loggable(name)}: loop check failed: {e}")
            else:
                if result.status is ProbeStatus.REDIRECTS_TO_HTTP:
                    detail = f"HTTPS {path} sends clients back to HTTP ({result.detail})"
                    decider.learn_insecure(name, Reason.REDIRECT_LOOP, detail, path=path)
                    logger.warning(
                        f"port443: redirect loop confirmed on {loggable(name + path)}: leaving it on HTTP"
                    )
                    decision = Decision.stay(Step.LOOP, Reason.REDIRECT_LOOP, detail, decision.ruleset)
                else:
                    self.loops.cleared(url, time.monotonic())
        self._act(flow, decision, mode, url, host)

    def _act(self, flow: http.HTTPFlow, decision: Decision, mode: str, url: str, host: str) -> None:
        flow.metadata["port443.decision"] = decision
        if decision.upgrade and decision.url is not None:
            self._upgrade(flow, url, host, decision, mode)
        elif (
            mode == "strict"
            and decision.insecure
            and decision.step is not Step.EXCLUDED
            and _is_navigation(flow.request)
        ):
            self._warn(flow, host, url, decision)
        _annotate(flow, decision)

    def _upgrade(self, flow: http.HTTPFlow, url: str, host: str, decision: Decision, mode: str) -> None:
        assert decision.url is not None
        if mode == "rewrite":
            flow.metadata["port443.original_url"] = url
            if url.startswith("http://") and decision.url == "https://" + url[7:] and flow.request.port == 80:
                # The common scheme-only upgrade: far cheaper than re-parsing a URL.
                if flow.request.host.lower().rstrip(".") != host:
                    # Behind a transparent gateway the destination is an address and the name is in Host:
                    # connect (TLS server name, certificate check) by the name the client asked for. First,
                    # because setting the port rewrites Host from the current host.
                    flow.request.host = host
                flow.request.scheme = "https"
                flow.request.port = 443
            else:
                flow.request.url = decision.url
            return
        self.loops.redirected(_client(flow), url, time.monotonic())
        status = int(ctx.options.port443_redirect_status)
        flow.response = http.Response.make(
            status,
            redirect_page(decision.url),
            {
                "Location": decision.url,
                "Content-Type": "text/html; charset=utf-8",
                "Non-Authoritative-Reason": "port443",
            },
        )

    def _warn(self, flow: http.HTTPFlow, host: str, url: str, decision: Decision) -> None:
        link = self.bypasses.link(host, url, client=_client(flow))
        page = warning_page(host, url, decision.reason, decision.detail, link)
        flow.response = http.Response.make(
            403, page, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
        )


def _after(decision: Decision, suspicion: Suspicion) -> Decision:
    """A burst of repeats keeps this client (only) on HTTP for this URL, without learning anything."""
    if suspicion is not Suspicion.BURST:
        return decision
    detail = "this client keeps coming back from HTTPS (a loop for it; other devices are still upgraded)"
    return Decision.stay(Step.LOOP, Reason.REDIRECT_LOOP, detail, decision.ruleset)


def _is_navigation(request: http.Request) -> bool:
    """A page the user opens (worth a warning page), not an image or script that would break on one."""
    mode = request.headers.get("Sec-Fetch-Mode")
    if mode is not None:
        return str(mode) == "navigate"
    accept = str(request.headers.get("Accept", "*/*")).strip()
    return accept in ("", "*/*") or "text/html" in accept  # curl and scripts send */*; images name image/


def _client(flow: http.HTTPFlow) -> str:
    return str(flow.client_conn.peername[0]) if flow.client_conn.peername else ""


def _annotate(flow: http.HTTPFlow, decision: Decision) -> None:
    """Mark and comment the flow for mitmweb, so a person sees what port443 did and why."""
    if decision.upgrade:
        flow.marked = ":lock:"
        via = f" by ruleset {decision.ruleset}" if decision.ruleset else ""
        flow.comment = f"port443: upgraded ({decision.step.value}{via}) to {decision.url}"
    elif decision.insecure:
        flow.marked = ":warning:"
        detail = f": {decision.detail}" if decision.detail else ""
        flow.comment = f"port443: left on HTTP ({decision.step.value}, {decision.reason}{detail})"
