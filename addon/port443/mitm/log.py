"""InsecureLog: writes what HttpsUpgrade decided to the SQLite store, in batches off the event loop.

Writes are buffered per request and flushed by a background task, so a request never waits on the disk;
`done()` flushes what is left when the proxy stops.
"""

from __future__ import annotations

import asyncio
import logging
import os

from mitmproxy import ctx, exceptions, http
from mitmproxy.addonmanager import Loader
from mitmproxy.utils import asyncio_utils

from port443.errors import Port443Error
from port443.proxy.decide import Decision
from port443.proxy.store import InsecureStore, default_db_path

logger = logging.getLogger(__name__)


class InsecureLog:
    """Writes what HttpsUpgrade decided to the SQLite store, in batches off the event loop."""

    def __init__(self) -> None:
        self.store: InsecureStore | None = None
        self._flusher: asyncio.Task[None] | None = None

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "port443_db",
            str,
            "",
            "Path of the insecure-site store (SQLite). Default: insecure.sqlite3 in the user's data directory.",
        )
        loader.add_option(
            "port443_flush_interval", int, 2000, "Milliseconds between writes of the insecure-site log."
        )

    def configure(self, updated: set[str]) -> None:
        if "port443_db" not in updated and self.store is not None:
            return
        path = ctx.options.port443_db or default_db_path()
        try:
            store = InsecureStore(os.path.expanduser(path))
        except Port443Error as e:
            raise exceptions.OptionsError(f"port443_db: {e}") from e
        old, self.store = self.store, store
        if old is not None:
            old.close()
        upgrade = ctx.master.addons.get("httpsupgrade")
        if upgrade is not None and upgrade.decider is not None:
            upgrade.decider.learned.update({x.host: x for x in store.learned()})
            upgrade.decider.on_learned = store.note_learned

    def running(self) -> None:
        self._flusher = asyncio_utils.create_task(
            self._flush_loop(), name="port443 store flusher", keep_ref=True
        )

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(max(ctx.options.port443_flush_interval, 1) / 1000)
            await self.flush()

    async def flush(self) -> None:
        """Write buffered entries without blocking the event loop."""
        store = self.store
        if store is not None and store.pending:
            try:
                await asyncio.to_thread(store.flush)
            except Port443Error as e:
                logger.error(f"port443: {e}")

    def request(self, flow: http.HTTPFlow) -> None:
        decision = flow.metadata.get("port443.decision")
        if self.store is None or not isinstance(decision, Decision):
            return
        if decision.upgrade:
            self.store.note_upgrade(decision.step.value)
        elif decision.insecure:
            self.store.note_insecure(
                flow.request.pretty_host, decision.reason, decision.detail, flow.request.path
            )

    def error(self, flow: http.HTTPFlow) -> None:
        self.request(flow)  # rewrite mode's fallback replaced the decision with the failure

    def done(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
        if self.store is not None:
            try:
                self.store.close()
            except Port443Error as e:
                logger.error(f"port443: {e}")
