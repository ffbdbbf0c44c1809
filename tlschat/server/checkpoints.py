"""The write-ahead log checkpointed on a thread of its own, every CHECKPOINT_INTERVAL
(store/sqlite_checkpoint.py says why): the event loop only starts each one and hears how it went.

A checkpoint that fails is logged and tried again next time; it never stops the server, and
SQLite's own checkpoint inside a commit (``wal_autocheckpoint``) still bounds the log if this one
falls behind.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from ..store.sqlite_checkpoint import CheckpointResult, WalCheckpointer

log = logging.getLogger("tlschat.server")

# Often enough that the log a checkpoint copies stays small (about a second of writes), so
# that SQLite's checkpoint inside a commit, at its larger threshold, is never reached.
CHECKPOINT_INTERVAL = 1.0


class CheckpointTimer:
    def __init__(
        self,
        checkpointer: WalCheckpointer,
        loop: asyncio.AbstractEventLoop,
        interval: float = CHECKPOINT_INTERVAL,
    ) -> None:
        self.checkpointer = checkpointer
        self.loop = loop
        self.interval = interval
        self.last: CheckpointResult | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tlschat-checkpoint")
        self._handle: asyncio.TimerHandle | None = None
        self._running: asyncio.Future[CheckpointResult] | None = None
        self._stopped = False

    def start(self) -> None:
        self._schedule()

    def _schedule(self) -> None:
        if not self._stopped:
            self._handle = self.loop.call_later(self.interval, self._tick)

    def _tick(self) -> None:
        self._handle = None
        self._running = self.loop.run_in_executor(self._thread, self.checkpointer.checkpoint)
        self._running.add_done_callback(self._done)

    def _done(self, running: asyncio.Future[CheckpointResult]) -> None:
        self._running = None
        if running.cancelled():
            return
        error = running.exception()
        if error is not None:
            log.error("[HISTORY] Checkpoint failed: %s: %s", type(error).__name__, error)
        else:
            self.last = running.result()
        self._schedule()

    async def stop(self) -> None:
        """Let a checkpoint under way finish, then close its connection on its own thread."""
        self._stopped = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        running = self._running
        if running is not None:
            await asyncio.wait([running])
        await self.loop.run_in_executor(self._thread, self.checkpointer.close)
        self._thread.shutdown(wait=True)
