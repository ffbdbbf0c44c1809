"""The search index kept up with the history as the server runs (store/sqlite_search.py).

Lines are indexed in bulk, a slice at a time, every INDEX_INTERVAL; a backlog is worked off a
slice per event-loop pass, so the chat keeps moving meanwhile, until a slice is not full. The
lines that arrive meanwhile wait for the interval: indexed a pass's worth at a time, under a
steady flood, they cost FTS5 a small segment each, and merging those cost far more per line.
A pass that fails is logged and tried again next time: it never stops the server.
"""

from __future__ import annotations

import asyncio
import logging

from ..store.base import Store
from ..store.sqlite_search import INDEX_SLICE

log = logging.getLogger("tlschat.server")

# How long a stored line may wait before it is indexed (a search indexes the rest itself).
INDEX_INTERVAL = 1.0


class SearchIndexTimer:
    def __init__(
        self, store: Store, loop: asyncio.AbstractEventLoop, interval: float = INDEX_INTERVAL
    ) -> None:
        self.store = store
        self.loop = loop
        self.interval = interval
        self._handle: asyncio.Handle | None = None

    def start(self) -> None:
        self._tick()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        try:
            indexed = self.store.index_for_search()
        except Exception as error:
            log.error("[HISTORY] Search indexing failed: %s: %s", type(error).__name__, error)
            indexed = 0
        if indexed >= INDEX_SLICE:  # a backlog: the next slice in the next pass
            self._handle = self.loop.call_soon(self._tick)
        else:
            self._handle = self.loop.call_later(self.interval, self._tick)
