"""Dashboard: the admin page at the proxy's own address (`/`), its JSON API (`/api/...`) and its actions.

It adds entries to OwnPages' tables, so it only ever answers requests addressed to the proxy itself, and
checks every one (proxy/guard.py): the Host must be the proxy's own, an action needs a same-origin
Origin/Referer and a CSRF token, and a device outside `port443_dashboard_trusted` (loopback by default)
needs the password of `port443 dashboard password`; until one is set it gets the page read-only. Reading
the store happens in a worker thread, at most once a second however many pages poll. Actions go to the
store first, then to the running decider.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mitmproxy import ctx, exceptions, http
from mitmproxy.addonmanager import Loader

from port443.engine.shipped import shipped_rules_path
from port443.errors import Port443Error
from port443.mitm import replies
from port443.mitm.rule_problems import RuleProblems
from port443.proxy import dashboard_html as pages
from port443.proxy import overview as data
from port443.proxy.access import parse_networks
from port443.proxy.guard import COOKIE, SESSION_TTL, Guard, in_networks, own_host, same_origin
from port443.proxy.own import is_local_address
from port443.proxy.passwords import PasswordFile, default_password_path, verify_password
from port443.proxy.policy import Action, parse_request

logger = logging.getLogger(__name__)

DEFAULT_TRUSTED = ["127.0.0.0/8", "::1"]
_FRESH = 1.0
"""Seconds an overview is reused: many open pages cost one read of the store per second."""
_RENDERS = 64
"""Renderings kept per overview (one per kind and viewer); beyond, they start over."""
_API = {
    "/api/summary": data.summary_json,
    "/api/insecure": data.insecure_json,
    "/api/learned": data.learned_json,
    "/api/devices": data.devices_json,
    "/api/policy": data.policy_json,
}
_ACTIONS = {"/api/policy": None, "/api/forget": Action.FORGET, "/api/revoke": Action.REVOKE}
"""POST paths and the action each stands for (`/api/policy` takes `policy`: never, always or clear)."""
_READ_ONLY = (
    "Read-only from this device: no dashboard password is set. To make changes from here, set one on the "
    "proxy's machine with `port443 dashboard password`."
)

Handler = Callable[[http.HTTPFlow, "Viewer"], http.Response | Awaitable[http.Response]]


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who sent a request, and what they may do."""

    client: str
    trusted: bool
    """Inside port443_dashboard_trusted: no password needed."""
    session: str
    """A valid session's cookie value, else ''."""
    password_set: bool

    @property
    def may_act(self) -> bool:
        """Full access: a trusted device, or a signed-in one."""
        return self.trusted or bool(self.session)

    @property
    def must_sign_in(self) -> bool:
        """A password exists and this device has not given it."""
        return not self.may_act and self.password_set


class Dashboard:
    """Serves the dashboard through OwnPages and applies its actions."""

    def __init__(self) -> None:
        self.guard = Guard()
        self.password = PasswordFile(default_password_path())
        self.trusted = parse_networks(DEFAULT_TRUSTED, what="port443_dashboard_trusted")
        self.problems = RuleProblems()
        self._cached: tuple[float, asyncio.Future[data.Overview]] | None = None
        self._rendered_of: data.Overview | None = None
        self._renders: dict[tuple[str, pages.View | None], asyncio.Future[str]] = {}
        self._verifying = asyncio.Lock()
        self._warned_generation = 0
        self._running = False
        self.names = _names([])

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "port443_dashboard",
            bool,
            True,
            "Serve the dashboard at the proxy's own address (http://127.0.0.1:8080/) and its API under /api/.",
        )
        loader.add_option(
            "port443_dashboard_trusted",
            Sequence[str],
            list(DEFAULT_TRUSTED),
            "Clients (CIDR) that may use the dashboard without its password; every other device needs the password set with `port443 dashboard password`, and sees the dashboard read-only until one is set.",
        )
        loader.add_option(
            "port443_dashboard_names",
            Sequence[str],
            [],
            "Host names the dashboard answers to besides this machine's addresses, localhost and its host name (e.g. gateway.home.arpa); requests naming any other host get nothing.",
        )
        self.problems.attach()

    def configure(self, updated: set[str]) -> None:
        opts: Any = ctx.options
        if "port443_dashboard_trusted" in updated:
            try:
                self.trusted = parse_networks(
                    list(opts.port443_dashboard_trusted), what="port443_dashboard_trusted"
                )
            except Port443Error as e:
                raise exceptions.OptionsError(str(e)) from e
        if "port443_dashboard_names" in updated:
            self.names = _names(list(opts.port443_dashboard_names))
        if "port443_dashboard" in updated and self._running:
            self._mount(bool(opts.port443_dashboard))

    def running(self) -> None:
        self._running = True
        self._mount(bool(ctx.options.port443_dashboard))

    def done(self) -> None:
        self.problems.detach()

    def _mount(self, on: bool) -> None:
        """Add the dashboard's entries to OwnPages' tables (or take them out: `--no-dashboard`)."""
        own: Any = ctx.master.addons.get("ownpages")
        if own is None:
            return
        gets: dict[str, Handler] = {
            "/": self._page,
            "/parts": self._parts,
            "/api/session": self._session_info,
            **{path: self._api(path) for path in _API},
            **{f"/static/{name}": self._asset(name) for name in pages.ASSETS},
        }
        posts: dict[str, Handler] = {"/login": self._login, "/logout": self._logout}
        posts |= {path: self._act for path in _ACTIONS}
        for table, handlers, post in ((own.pages, gets, False), (own.posts, posts, True)):
            for path, handler in handlers.items():
                if on:
                    table[path] = self._guarded(handler, post=post, action=path in _ACTIONS)
                else:
                    table.pop(path, None)

    # --- the checks every request passes ---------------------------------------------------------------

    def _guarded(self, handler: Handler, *, post: bool, action: bool) -> Callable[[http.HTTPFlow], Any]:
        """`handler` behind the checks: Host always; for a POST, Origin, size, access and the CSRF token."""

        def serve(flow: http.HTTPFlow) -> http.Response | Awaitable[http.Response]:
            host = flow.request.host_header or ""
            if not own_host(host, self.names, is_local_address):
                # DNS rebinding: a page whose name now points here still sends its own name.
                return replies.text(
                    403, "port443: this dashboard answers only to the proxy's own addresses and names\n"
                )
            viewer = self._viewer(flow)
            if post:
                refusal = self._refuse_post(flow, viewer, host, action=action)
                if refusal is not None:
                    return refusal
            answer = handler(flow, viewer)
            return answer if isinstance(answer, http.Response) else _unavailable_on_error(answer)

        return serve

    def _viewer(self, flow: http.HTTPFlow) -> Viewer:
        client = str(flow.client_conn.peername[0]) if flow.client_conn.peername else ""
        stored = self.password.current()
        if self.password.problem and self.password.generation != self._warned_generation:
            self._warned_generation = self.password.generation
            logger.warning(f"port443: {self.password.problem}")
        token = str(flow.request.cookies.get(COOKIE, ""))
        session = (
            token
            if stored is not None and self.guard.session(token, client, self.password.generation)
            else ""
        )
        return Viewer(client, in_networks(client, self.trusted), session, stored is not None)

    def _refuse_post(
        self, flow: http.HTTPFlow, viewer: Viewer, host: str, *, action: bool
    ) -> http.Response | None:
        """Cross-origin, oversized, unauthorised or token-less POSTs get nothing done."""
        request = flow.request
        if not same_origin(request.headers.get("Origin"), request.headers.get("Referer"), host):
            return replies.text(403, "port443: refused: not sent by the dashboard's own page (Origin)\n")
        if len(request.raw_content or b"") > replies.MAX_BODY:
            return replies.text(413, "port443: refused: too large\n")
        if action and not viewer.may_act:
            if viewer.must_sign_in:
                return replies.answer(flow, 401, {"ok": False, "message": "Sign in first."})
            return replies.answer(flow, 403, {"ok": False, "message": _READ_ONLY})
        token = request.headers.get("X-CSRF-Token") or replies.fields(request).get("csrf", "")
        if not self.guard.check_csrf(token, self._token_key(viewer, flow)):
            return replies.text(403, "port443: refused: missing or wrong CSRF token (reload the page)\n")
        return None

    def _token_key(self, viewer: Viewer, flow: http.HTTPFlow) -> str:
        """What a viewer's CSRF token is bound to: the session, the trusted device, or signing in."""
        if viewer.session:
            return "session:" + viewer.session
        if viewer.trusted:
            return "trusted:" + viewer.client
        return "login" if flow.request.path.split("?", 1)[0] == "/login" else "anonymous:" + viewer.client

    def _view(self, viewer: Viewer) -> pages.View:
        if viewer.may_act:
            key = "session:" + viewer.session if viewer.session else "trusted:" + viewer.client
            return pages.View(csrf=self.guard.csrf_token(key), signed_in=bool(viewer.session))
        return pages.View(notice=_READ_ONLY)

    # --- pages and the API -----------------------------------------------------------------------------

    async def _page(self, flow: http.HTTPFlow, viewer: Viewer) -> http.Response:
        if viewer.must_sign_in:
            return replies.html(200, pages.render_login(self.guard.csrf_token("login")))
        return replies.html(200, await self._rendered("page", self._view(viewer)))

    async def _parts(self, flow: http.HTTPFlow, viewer: Viewer) -> http.Response:
        if viewer.must_sign_in:
            return replies.text(401, "port443: sign in first\n")
        return replies.html(200, await self._rendered("parts", self._view(viewer)))

    def _api(self, path: str) -> Handler:
        async def serve(flow: http.HTTPFlow, viewer: Viewer) -> http.Response:
            if viewer.must_sign_in:
                return replies.json_reply(
                    401, {"error": "sign in first (POST /login with the dashboard password)"}
                )
            return replies.respond(200, await self._rendered(path, None), "application/json; charset=utf-8")

        return serve

    async def _rendered(self, kind: str, view: pages.View | None) -> str:
        """The page, its parts or an API document of the current overview, rendered off the event loop.

        Each is rendered once per overview and viewer, however often it is asked for (a flood of polls
        costs one rendering a second), and in a worker thread: a table of 10,000 sites is tens of ms.
        """
        o = await self.overview()
        if o is not self._rendered_of or len(self._renders) > _RENDERS:
            self._rendered_of, self._renders = o, {}
        key = (kind, view)
        task = self._renders.get(key)
        if task is None:
            task = asyncio.ensure_future(asyncio.to_thread(_render, kind, o, view))
            self._renders[key] = task
        return await asyncio.shield(task)

    def _session_info(self, flow: http.HTTPFlow, viewer: Viewer) -> http.Response:
        view = self._view(viewer)
        return replies.json_reply(
            200,
            {
                "csrf": view.csrf or None,
                "can_act": viewer.may_act,
                "sign_in_required": viewer.must_sign_in,
                "password_set": viewer.password_set,
            },
        )

    def _asset(self, name: str) -> Handler:
        kind = "text/css" if name.endswith(".css") else "text/javascript"

        def serve(flow: http.HTTPFlow, viewer: Viewer) -> http.Response:
            return replies.respond(200, pages.asset(name), f"{kind}; charset=utf-8")

        return serve

    async def overview(self) -> data.Overview:
        """The current overview, read at most once per _FRESH seconds (off the event loop).

        Raises:
            StoreError: when the store cannot be read.
        """
        cached = self._cached
        if cached is not None and time.monotonic() - cached[0] < _FRESH and not cached[1].cancelled():
            return await asyncio.shield(cached[1])
        log: Any = ctx.master.addons.get("insecurelog")
        store = getattr(log, "store", None)
        if store is None:
            raise Port443Error("the insecure-site store is not open")
        upgrade: Any = ctx.master.addons.get("httpsupgrade")
        rules = self._rules_info(upgrade)
        exemptions = [data.Exemption(c, h, t) for c, h, t in upgrade.bypasses.active()] if upgrade else []
        mode = str(getattr(ctx.options, "port443_mode", ""))
        task = asyncio.ensure_future(
            asyncio.to_thread(data.build_overview, store, rules=rules, exemptions=exemptions, mode=mode)
        )
        self._cached = (time.monotonic(), task)
        try:
            return await asyncio.shield(task)
        except Port443Error:
            self._cached = None
            raise

    def _rules_info(self, upgrade: Any) -> data.RulesInfo | None:
        rules = getattr(upgrade, "rules", None)
        if rules is None:
            return None
        shipped = str(shipped_rules_path())
        files = tuple(p for p in rules.paths if p != shipped)
        return data.RulesInfo(
            len(rules.index), files, shipped in rules.paths, rules.errors, self.problems.current(rules.errors)
        )

    # --- actions ---------------------------------------------------------------------------------------

    async def _act(self, flow: http.HTTPFlow, viewer: Viewer) -> http.Response:
        fields = replies.fields(flow.request)
        path = flow.request.path.split("?", 1)[0]
        implied = _ACTIONS[path]
        try:
            request = parse_request(
                implied.value if implied else fields.get("policy", ""), fields.get("host", "")
            )
            if path == "/api/policy" and request.action.policy is None and request.action is not Action.CLEAR:
                raise Port443Error("/api/policy takes policy=never, always or clear")
            message = await self._apply(request.action, request.host)
        except Port443Error as e:
            return replies.answer(flow, 400, {"ok": False, "message": str(e)})
        self._cached = None  # the next page refresh shows the change
        logger.info(f"port443: dashboard: {viewer.client}: {message}")
        return replies.answer(
            flow, 200, {"ok": True, "action": request.action.value, "host": request.host, "message": message}
        )

    async def _apply(self, action: Action, host: str) -> str:
        """Persist the action in the store, then apply it to the running proxy; returns what was done."""
        log: Any = ctx.master.addons.get("insecurelog")
        upgrade: Any = ctx.master.addons.get("httpsupgrade")
        store = getattr(log, "store", None)
        if store is None or upgrade is None:
            raise Port443Error("the proxy is not ready yet")
        if action is Action.REVOKE:
            gone = upgrade.bypasses.revoke(host)
            return f"{host}: {gone} strict-mode exception(s) removed"
        if action is Action.FORGET:
            gone = await asyncio.to_thread(store.forget, host)
            decider = upgrade.decider
            if decider is not None:
                gone = max(gone, decider.forget(host))
            return f"{host}: forgotten ({gone} entries); its next request probes it again"
        await asyncio.to_thread(store.set_policy, host, action.policy)
        await log.sync()
        if action is Action.CLEAR:
            return f"{host}: choice cleared; the usual steps decide again"
        said = "never upgraded" if action is Action.NEVER else "always sent to HTTPS"
        return f"{host} (and its subdomains): {said} from now on"

    # --- signing in --------------------------------------------------------------------------------------

    async def _login(self, flow: http.HTTPFlow, viewer: Viewer) -> http.Response:
        if viewer.may_act:
            return replies.see_other("/")
        stored = self.password.current()
        if stored is None:
            return replies.html(
                403, pages.render_login(self.guard.csrf_token("login"), "No dashboard password is set.")
            )
        if not self.guard.may_try(viewer.client):
            message = "Too many wrong passwords: wait a few minutes."
            return replies.html(429, pages.render_login(self.guard.csrf_token("login"), message))
        password = replies.fields(flow.request).get("password", "")
        async with self._verifying:  # one scrypt at a time: each takes MiBs and tens of milliseconds
            right = await asyncio.to_thread(verify_password, password, stored)
        if not right:
            self.guard.failed(viewer.client)
            logger.warning(f"port443: dashboard: wrong password from {viewer.client}")
            return replies.html(403, pages.render_login(self.guard.csrf_token("login"), "Wrong password."))
        self.guard.succeeded(viewer.client)
        token = self.guard.open_session(viewer.client, self.password.generation)
        cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={int(SESSION_TTL)}"
        logger.info(f"port443: dashboard: {viewer.client} signed in")
        return replies.see_other("/", cookie)

    def _logout(self, flow: http.HTTPFlow, viewer: Viewer) -> http.Response:
        if viewer.session:
            self.guard.close_session(viewer.session)
        return replies.see_other("/", f"{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")


def _names(extra: list[str]) -> frozenset[str]:
    """The names the dashboard answers to besides addresses and localhost: this machine's, and the user's."""
    host = socket.gethostname().lower().rstrip(".")
    names = {host, f"{host}.local", *(str(n).strip().lower().rstrip(".") for n in extra)}
    return frozenset(names - {"", ".local"})


async def _unavailable_on_error(pending: Awaitable[http.Response]) -> http.Response:
    """A store that cannot be read is a 503 with the reason, not a traceback."""
    try:
        return await pending
    except Port443Error as e:
        logger.error(f"port443: dashboard: {e}")
        return replies.text(503, f"port443: the dashboard cannot read the store ({e})\n")


def _render(kind: str, o: data.Overview, view: pages.View | None) -> str:
    """In a worker thread: one of the dashboard's documents."""
    if kind == "page" and view is not None:
        return pages.render_page(o, view)
    if kind == "parts" and view is not None:
        return pages.render_fragment(o, view)
    return replies.dumps(_API[kind](o))
