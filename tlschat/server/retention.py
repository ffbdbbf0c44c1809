"""History retention as the server runs: once on start, then every few seconds (issue 13).

The store does the deleting (:meth:`Store.enforce_retention`, given the time); this only calls it
on the event loop. A pass that fails (a full disk, say) is logged and tried again next time: it
never stops the server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..store.base import Retention, Store

log = logging.getLogger("tlschat.server")

# Between passes the database grows by at most what arrives in this long.
RETENTION_INTERVAL = 2.0


class RetentionTimer:
    def __init__(
        self,
        store: Store,
        retention: Retention,
        loop: asyncio.AbstractEventLoop,
        interval: float = RETENTION_INTERVAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.retention = retention
        self.loop = loop
        self.interval = interval
        self.clock = clock
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        deleted = self.run()
        log.info("[HISTORY] Retention on start: %d old messages deleted", deleted)
        self._schedule()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def run(self) -> int:
        try:
            return self.store.enforce_retention(self.retention, self.clock())
        except Exception as error:
            log.error("[HISTORY] Retention failed: %s: %s", type(error).__name__, error)
            return 0

    def _schedule(self) -> None:
        self._handle = self.loop.call_later(self.interval, self._tick)

    def _tick(self) -> None:
        deleted = self.run()
        if deleted:
            log.debug("[HISTORY] Retention deleted %d messages", deleted)
        self._schedule()
