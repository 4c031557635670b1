"""HttpsUpgrade: decides on each plain-HTTP request (through proxy.decide) and redirects, rewrites or warns.

Options are `port443_*` (mitm/options.py); a bad value raises OptionsError in `configure` and the previous
state stays. Hooks never raise for bad traffic. The rules are reloaded off the event loop when a user
ruleset file changes, keeping a broken file's last good version.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from mitmproxy import command, ctx, exceptions, http
from mitmproxy.addonmanager import Loader
from mitmproxy.utils import asyncio_utils

from port443.engine.cache import default_cache_dir, load_rules
from port443.engine.index import Activation, RuleIndex
from port443.engine.shipped import shipped_rules_path
from port443.engine.watch import FileWatcher
from port443.errors import Port443Error
from port443.mitm.options import add_options
from port443.net.connect import make_ssl_context, parse_connect_to
from port443.net.probe import probe
from port443.proxy.bypass import BYPASS_PATH, Bypasses, warning_page
from port443.proxy.decide import Decider, Decision, Learned, Settings, Step
from port443.proxy.fixups import adapt_response
from port443.proxy.hsts import PreloadList

logger = logging.getLogger(__name__)

REDIRECT_STATUSES = (301, 302, 307, 308)
_MAX_RECENT_REDIRECTS = 100_000
_OPTIONS_THAT_REBUILD = {
    "port443_rules",
    "port443_shipped_rules",
    "port443_platforms",
    "port443_never_upgrade",
    "port443_hsts_preload",
    "port443_probe",
    "port443_probe_timeout",
    "port443_connect_to",
    "port443_secure_ttl",
    "port443_insecure_ttl",
    "ssl_insecure",
    "ssl_verify_upstream_trusted_ca",
    "ssl_verify_upstream_trusted_confdir",
}


class HttpsUpgrade:
    """Upgrade plain-HTTP requests to HTTPS when it is known to work; otherwise let them through and say why."""

    def __init__(self) -> None:
        self.decider: Decider | None = None
        self.rule_paths: list[str] = []
        self.rule_errors = 0
        self.bypasses = Bypasses()
        self.watcher: FileWatcher | None = None
        self._recent_redirects: dict[tuple[str, str], float] = {}
        self._built_from: tuple[str, ...] = ()

    def load(self, loader: Loader) -> None:
        add_options(loader)

    def configure(self, updated: set[str]) -> None:
        opts: Any = ctx.options
        if "port443_redirect_status" in updated and opts.port443_redirect_status not in REDIRECT_STATUSES:
            raise exceptions.OptionsError(
                f"port443_redirect_status: {opts.port443_redirect_status} is not one of {REDIRECT_STATUSES}"
            )
        if "port443_probe_timeout" in updated and not 0 < opts.port443_probe_timeout <= 60_000:
            raise exceptions.OptionsError("port443_probe_timeout: must be between 1 and 60000 milliseconds")
        if "port443_bypass_ttl" in updated:
            self.bypasses.ttl = float(opts.port443_bypass_ttl)
        wanted = tuple(repr(getattr(opts, name)) for name in sorted(_OPTIONS_THAT_REBUILD))
        if self.decider is None or (updated & _OPTIONS_THAT_REBUILD and wanted != self._built_from):
            # Unchanged values (mitmproxy rolling back a refused option, say) keep the current state as is.
            try:
                self._rebuild(opts)
            except (Port443Error, OSError) as e:
                raise exceptions.OptionsError(f"port443: {e}") from e
            self._built_from = wanted

    def _rebuild(self, opts: Any) -> None:
        """Build the complete new state, then swap it in: a failure leaves the old state serving."""
        paths = [str(Path(p).expanduser()) for p in opts.port443_rules]
        if opts.port443_shipped_rules:
            paths.append(str(shipped_rules_path()))
        index = self._load_index(paths, opts)
        connect_to = parse_connect_to(list(opts.port443_connect_to))
        context = make_ssl_context(
            cafile=opts.ssl_verify_upstream_trusted_ca,
            capath=opts.ssl_verify_upstream_trusted_confdir,
            insecure=opts.ssl_insecure,
        )
        if opts.ssl_insecure:
            logger.warning("port443: ssl_insecure is set: probes will not verify certificates")
        timeout = opts.port443_probe_timeout / 1000

        async def prober(host: str) -> Any:
            return await probe(host, timeout=timeout, context=context, connect_to=connect_to)

        settings = Settings(
            never=tuple(opts.port443_never_upgrade),
            use_hsts=opts.port443_hsts_preload,
            use_probe=opts.port443_probe,
            secure_ttl=float(opts.port443_secure_ttl),
            insecure_ttl=float(opts.port443_insecure_ttl),
        )
        old = self.decider
        decider = Decider(
            index,
            preload=old.preload if old is not None and old.preload is not None else PreloadList(),
            prober=prober,
            settings=settings,
            learned=old.learned.values() if old is not None else (),
        )
        decider.on_learned = old.on_learned if old is not None else None
        self.decider, self.rule_paths = decider, paths
        user_paths = [p for p in paths if p != str(shipped_rules_path())]
        self.watcher = FileWatcher(user_paths) if user_paths else None

    def _load_index(self, paths: list[str], opts: Any) -> RuleIndex:
        activation = Activation(frozenset(opts.port443_platforms))
        loaded = load_rules(paths, cache_dir=default_cache_dir(), activation=activation)
        for error in loaded.errors:
            for problem in error.problems[:5]:
                logger.warning(
                    f"port443: ruleset problem (file skipped, or its last good version kept): {problem}"
                )
        self.rule_errors = len(loaded.errors)
        logger.info(
            f"port443: {len(loaded.index)} rulesets loaded from {loaded.files} files in {loaded.seconds:.2f}s"
        )
        return loaded.index

    def running(self) -> None:
        asyncio_utils.create_task(self._watch_rules(), name="port443 rules watcher", keep_ref=True)

    async def _watch_rules(self) -> None:
        """Reload when a user ruleset file changes; a broken edit keeps the last good rules."""
        while True:
            await asyncio.sleep(1.0)
            watcher = self.watcher
            if watcher is None or not watcher.changed():
                continue
            try:
                await self._reload()
            except Exception as e:  # a reload failure must never stop the proxy
                logger.error(f"port443: reload failed, keeping the previous rules: {e}")

    async def _reload(self) -> None:
        decider = self.decider
        if decider is None:
            return
        opts: Any = ctx.options
        index = await asyncio.to_thread(self._load_index, self.rule_paths, opts)
        decider.index = index  # immutable index: one reference swap
        logger.info("port443: rules reloaded")

    @command.command("port443.reload")
    def reload(self) -> None:
        """Reload the rulesets now (bad files are reported and skipped)."""
        if self.decider is None:
            raise exceptions.CommandError("port443 is not configured yet")
        try:
            self.decider.index = self._load_index(self.rule_paths, ctx.options)
        except Port443Error as e:
            raise exceptions.CommandError(str(e)) from e

    @command.command("port443.stats")
    def stats(self) -> str:
        """Rulesets, probes and what was learned so far."""
        d = self.decider
        if d is None:
            return "port443 is not configured yet"
        secure = sum(1 for x in d.learned.values() if x.secure)
        return (
            f"rulesets: {len(d.index)} ({self.rule_errors} files skipped); probes started: {d.probes_started}; "
            f"hosts learned: {secure} secure, {len(d.learned) - secure} insecure"
        )

    def request(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        """Decide synchronously when no network is needed (nearly always); only a probe makes this async.

        mitmproxy awaits what a hook returns, so the common case costs no coroutine at all.
        """
        if flow.response or flow.error or not flow.live or self.decider is None:
            return None
        if flow.request.scheme != "http":
            return None
        try:
            return self._handle(flow, self.decider)
        except Exception as e:  # bad traffic is logged and let through, never a crash
            logger.warning(f"port443: {flow.request.pretty_host}: {type(e).__name__}: {e}")
            return None

    def _handle(self, flow: http.HTTPFlow, decider: Decider) -> Awaitable[None] | None:
        mode: str = ctx.options.port443_mode
        host = flow.request.pretty_host.lower().rstrip(".")
        if flow.request.path.startswith(BYPASS_PATH):
            target = self.bypasses.redeem(host, flow.request.path)
            if target is not None:
                flow.response = http.Response.make(
                    303, b"", {"Location": target, "Cache-Control": "no-store"}
                )
                return None
        url = flow.request.pretty_url
        if mode == "strict" and self.bypasses.allowed(host):
            decision: Decision | None = Decision(False, None, Step.BYPASS, "user chose to continue over HTTP")
        else:
            decision = decider.decide_known(url)
        if decision is None or (mode == "rewrite" and decider.needs_confirmation(decision)):
            return self._handle_after_probe(flow, decider, decision, mode, url, host)
        self._act(flow, decider, decision, mode, url, host)
        return None

    async def _handle_after_probe(
        self, flow: http.HTTPFlow, decider: Decider, decision: Decision | None, mode: str, url: str, host: str
    ) -> None:
        try:
            if decision is None:
                decision = await decider.decide(url)
            if mode == "rewrite" and decision.upgrade and decision.step in (Step.RULESET, Step.HSTS):
                decision = await decider.confirm(decision)
            self._act(flow, decider, decision, mode, url, host)
        except Exception as e:  # bad traffic is logged and let through, never a crash
            logger.warning(f"port443: {host}: {type(e).__name__}: {e}")

    def _act(
        self, flow: http.HTTPFlow, decider: Decider, decision: Decision, mode: str, url: str, host: str
    ) -> None:
        if decision.upgrade and self._is_loop(flow, url, decider, host):
            decision = Decision(False, None, Step.LOOP, Step.LOOP.value, "HTTPS sent the client back to HTTP")
        flow.metadata["port443.decision"] = decision
        if decision.upgrade and decision.url is not None:
            self._upgrade(flow, url, decision, mode)
        elif mode == "strict" and decision.insecure and decision.step is not Step.EXCLUDED:
            self._warn(flow, host, url, decision)
        _annotate(flow, decision)

    def _is_loop(self, flow: http.HTTPFlow, url: str, decider: Decider, host: str) -> bool:
        """The client asks again for the very URL we just redirected it from: HTTPS sent it back."""
        now = time.monotonic()
        window = float(ctx.options.port443_loop_window)
        recent = self._recent_redirects
        # Oldest first (see _upgrade): drop what left the window, and cap the memory a flood could take.
        while recent and (now - next(iter(recent.values())) >= window or len(recent) > _MAX_RECENT_REDIRECTS):
            del recent[next(iter(recent))]
        last = recent.get((_client(flow), url))
        if last is not None and now - last < window:
            expires = time.time() + decider.settings.insecure_ttl
            decider.learn(Learned(host, False, Step.LOOP.value, "HTTPS redirects back to HTTP", expires))
            logger.warning(f"port443: redirect loop on {host}: leaving it on HTTP")
            return True
        return False

    def _upgrade(self, flow: http.HTTPFlow, url: str, decision: Decision, mode: str) -> None:
        assert decision.url is not None
        if mode == "rewrite":
            flow.metadata["port443.original_url"] = url
            if url.startswith("http://") and decision.url == "https://" + url[7:] and flow.request.port == 80:
                flow.request.scheme = (
                    "https"  # the common scheme-only upgrade: far cheaper than re-parsing a URL
                )
                flow.request.port = 443
            else:
                flow.request.url = decision.url
            return
        key = (_client(flow), url)
        self._recent_redirects.pop(key, None)  # re-insert at the end: the dict stays ordered by time
        self._recent_redirects[key] = time.monotonic()
        status = int(ctx.options.port443_redirect_status)
        flow.response = http.Response.make(
            status,
            f'<a href="{decision.url}">Moved to HTTPS</a>\n',
            {
                "Location": decision.url,
                "Content-Type": "text/html; charset=utf-8",
                "Non-Authoritative-Reason": "port443",
            },
        )

    def _warn(self, flow: http.HTTPFlow, host: str, url: str, decision: Decision) -> None:
        page = warning_page(host, url, decision.reason, decision.detail, self.bypasses.link(host, url))
        flow.response = http.Response.make(
            403, page, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
        )

    def error(self, flow: http.HTTPFlow) -> None:
        """Rewrite mode: HTTPS upstream failed; remember it so the next request goes over HTTP."""
        original = flow.metadata.get("port443.original_url")
        if original is None or self.decider is None:
            return
        host = flow.request.pretty_host
        expires = time.time() + self.decider.settings.insecure_ttl
        detail = str(flow.error.msg) if flow.error else "upstream HTTPS failed"
        self.decider.learn(Learned(host, False, "tls-error", detail, expires))
        flow.metadata["port443.decision"] = Decision(False, None, Step.LEARNED, "tls-error", detail)

    def response(self, flow: http.HTTPFlow) -> None:
        """Rewrite mode: keep the site working over the client's plain-HTTP connection."""
        original = flow.metadata.get("port443.original_url")
        if original is None or flow.response is None:
            return
        headers = flow.response.headers
        if "Set-Cookie" not in headers and "Location" not in headers:
            return  # nothing to adapt (most responses)
        host = flow.request.pretty_host
        if adapt_response(headers, host) and self.decider is not None:
            expires = time.time() + self.decider.settings.insecure_ttl
            self.decider.learn(Learned(host, False, Step.LOOP.value, "HTTPS redirects to HTTP", expires))


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
