"""InsecureLog: writes what HttpsUpgrade decided to the SQLite store, in batches off the event loop.

Each request is counted once, when it ends (its response or its error), with the decision it ended with:
rewrite mode's fallback replaces the decision when HTTPS fails, and that failure is what gets counted.
Notes are buffered in memory and flushed by a background task every `port443_flush_interval` ms, so a
request never waits on the disk and a killed proxy loses at most that much; `done()` flushes the rest.
The same task follows the store: when another process (the CLI: `port443 never`, `forget`...) committed
to it (SQLite's `data_version` moved), the per-site choices are read again and forgotten hosts are
dropped from the running decider, so those commands act on a running proxy within a flush interval.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from mitmproxy import ctx, exceptions, http
from mitmproxy.addonmanager import Loader
from mitmproxy.utils import asyncio_utils

from port443.errors import Port443Error
from port443.proxy.decide import Decision, Policy
from port443.proxy.notes import DAY, MAX_PATH
from port443.proxy.store import InsecureStore, default_db_path

logger = logging.getLogger(__name__)

_LOGGED = "port443.logged"
"""Flow metadata key: this flow has been counted (a flow may see both a response and an error)."""
_MAX_PATH_BYTES = 4 * MAX_PATH + 1
"""Bytes of a request path read for the example path: enough for MAX_PATH characters of any UTF-8."""


class InsecureLog:
    """Writes what HttpsUpgrade decided to the SQLite store, in batches off the event loop."""

    def __init__(self) -> None:
        self.store: InsecureStore | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._version = 0
        """The store's `data_version` when it was last followed."""
        self._forgotten = 0
        """The last `forgotten` row applied."""

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "port443_db",
            str,
            "",
            "Path of the insecure-site store (SQLite). Default: insecure.sqlite3 in the user's data directory.",
        )
        loader.add_option(
            "port443_flush_interval",
            int,
            500,
            "Milliseconds between writes of the insecure-site log: what a killed proxy can lose at most. Each write is synced to disk.",
        )
        loader.add_option(
            "port443_keep_days",
            int,
            90,
            "Days the insecure-site log keeps a site, a device or a count after it was last seen.",
        )
        loader.add_option(
            "port443_keep_hosts",
            int,
            10_000,
            "Insecure sites the log keeps at most; beyond that the least recently seen go first.",
        )

    def configure(self, updated: set[str]) -> None:
        opts: Any = ctx.options
        interval, days, hosts = opts.port443_flush_interval, opts.port443_keep_days, opts.port443_keep_hosts
        if "port443_flush_interval" in updated and not 1 <= interval <= 60_000:
            raise exceptions.OptionsError("port443_flush_interval: must be between 1 and 60000 milliseconds")
        if "port443_keep_days" in updated and days < 1:
            raise exceptions.OptionsError("port443_keep_days: must be at least 1")
        if "port443_keep_hosts" in updated and hosts < 1:
            raise exceptions.OptionsError("port443_keep_hosts: must be at least 1")
        if "port443_db" in updated or self.store is None:
            self._open(opts.port443_db or default_db_path())
        assert self.store is not None
        self.store.limits.max_age = days * DAY
        self.store.limits.max_hosts = hosts

    def _open(self, path: str | os.PathLike[str]) -> None:
        try:
            store = InsecureStore(os.path.expanduser(path))
        except Port443Error as e:
            raise exceptions.OptionsError(f"port443_db: {e}") from e
        old, self.store = self.store, store
        if old is not None:
            old.close()
        self._version, self._forgotten = store.data_version(), store.last_forgotten()
        upgrade = ctx.master.addons.get("httpsupgrade")
        if upgrade is not None:
            upgrade.attach_store(store.learned(), store.note_learned, _choices(store))

    def running(self) -> None:
        self._flusher = asyncio_utils.create_task(
            self._flush_loop(), name="port443 store flusher", keep_ref=True
        )

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(ctx.options.port443_flush_interval / 1000)
            await self.flush()
            await self.follow()

    async def flush(self) -> None:
        """Write buffered entries without blocking the event loop."""
        store = self.store
        if store is not None and store.pending:
            try:
                await asyncio.to_thread(store.flush)
            except Port443Error as e:
                logger.error(f"port443: {e}")

    async def follow(self) -> None:
        """If another process changed the store, apply its choices and forgotten hosts to the running proxy."""
        store = self.store
        if store is None:
            return
        try:
            changed = await asyncio.to_thread(self._changed, store)
        except Port443Error as e:
            logger.error(f"port443: {e}")
            return
        if changed is not None and store is self.store:
            choices, forgotten = changed
            self._apply(store, choices, forgotten)
            logger.info(
                f"port443: the store changed: {len(choices)} per-site choices in force"
                + (f", {len(forgotten)} hosts forgotten" if forgotten else "")
            )

    async def sync(self) -> None:
        """Apply the store's per-site choices now (after this process changed them: the dashboard)."""
        store = self.store
        if store is not None:
            choices, forgotten = await asyncio.to_thread(self._changes, store)
            if store is self.store:
                self._apply(store, choices, forgotten)

    def _changed(self, store: InsecureStore) -> tuple[dict[str, Policy], list[str]] | None:
        """In a worker thread: `_changes` if another process committed since last time, else None."""
        version = store.data_version()
        if version == self._version:
            return None
        self._version = version
        return self._changes(store)

    def _changes(self, store: InsecureStore) -> tuple[dict[str, Policy], list[str]]:
        """In a worker thread: the choices in force, and the hosts forgotten elsewhere since last time."""
        forgotten, self._forgotten = store.forgotten_since(self._forgotten)
        return _choices(store), forgotten

    def _apply(self, store: InsecureStore, choices: dict[str, Policy], forgotten: list[str]) -> None:
        upgrade: Any = ctx.master.addons.get("httpsupgrade")
        if upgrade is None:
            return
        upgrade.set_policies(choices)
        for host in forgotten:
            store.drop_pending(host)  # the buffer must not write back what the other process removed
            if upgrade.decider is not None:
                upgrade.decider.forget(host)

    def response(self, flow: http.HTTPFlow) -> None:
        """The request ended with a response (the site's, or the proxy's own redirect or warning page)."""
        self._count(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        """The request ended with an error; rewrite mode's fallback may have replaced the decision."""
        self._count(flow)

    def _count(self, flow: http.HTTPFlow) -> None:
        decision = flow.metadata.get("port443.decision")
        if self.store is None or not isinstance(decision, Decision) or flow.metadata.get(_LOGGED):
            return
        flow.metadata[_LOGGED] = True
        client = str(flow.client_conn.peername[0]) if flow.client_conn.peername else ""
        if decision.upgrade:
            self.store.note_upgrade(decision.step.value, client=client)
        elif decision.insecure:
            host = flow.request.pretty_host.lower().rstrip(".")
            # Decode only the start of a path that may be megabytes long: the store keeps MAX_PATH characters.
            path = flow.request.data.path[:_MAX_PATH_BYTES].decode("utf-8", "surrogateescape")
            self.store.note_insecure(host, decision.reason, decision.detail, path, client=client)
        else:
            self.store.note_request(client)

    def done(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
        if self.store is not None:
            try:
                self.store.close()
            except Port443Error as e:
                logger.error(f"port443: {e}")


def _choices(store: InsecureStore) -> dict[str, Policy]:
    return {choice.host: choice.policy for choice in store.policies()}
