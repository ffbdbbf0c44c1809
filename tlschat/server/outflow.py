"""What the server writes to its clients, and when.

Once per event-loop pass: what the pass queued for each client goes out as one record and one
write, instead of one per message. Before anything is written, the room lines the pass stored
are committed together (``Store.commit``, a group commit): a line is durable before anyone hears
of it. And the clients' queued bytes are kept within the server's output budget.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from ..store.base import HistoryNotCommitted, Store

log = logging.getLogger("tlschat.server")


class Writer(Protocol):
    """A client connection, as the outflow sees it."""

    session_id: int

    def flush(self) -> None: ...
    def queued(self) -> int: ...
    def drop_slow_reader(self, why: str) -> None: ...
    def drop_unsent(self, why: str) -> None: ...


class Outflow:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        store: Store,
        writer_of: Callable[[int], Writer | None],
        budget: Callable[[], int],
        forget_lines: Callable[[tuple[tuple[str, int], ...]], None],
    ) -> None:
        self.loop = loop
        self.store = store
        self.writer_of = writer_of
        self.budget = budget
        self.forget_lines = forget_lines
        self._unflushed: dict[int, Writer] = {}
        self._scheduled = False
        # Bytes queued for each client as last seen, and their sum.
        self.queued: dict[int, int] = {}
        self.queued_total = 0

    def soon(self, writer: Writer) -> None:
        """``writer`` has output: write it at the end of this pass."""
        self._unflushed[writer.session_id] = writer
        if not self._scheduled:  # once a pass
            self._scheduled = True
            self.loop.call_soon(self.flush_all)

    def flush_all(self) -> None:
        self._scheduled = False
        self.commit()
        unflushed, self._unflushed = self._unflushed, {}
        for writer in unflushed.values():
            writer.flush()

    def commit(self) -> None:
        """Commit what this pass stored; every write calls this first. If the store cannot,
        no one hears of those lines: the connections with output waiting are dropped unsent
        (their clients reconnect and send again what was not confirmed)."""
        try:
            self.store.commit()
        except HistoryNotCommitted as failure:
            log.error(
                "[HISTORY] %d lines could not be stored (%s); dropping the %d connections"
                " that would have heard of them",
                len(failure.lines),
                failure,
                len(self._unflushed),
            )
            self.forget_lines(failure.lines)
            unflushed, self._unflushed = self._unflushed, {}
            for writer in unflushed.values():
                writer.drop_unsent("the server could not store the history")

    def forget(self, session_id: int) -> None:
        self._unflushed.pop(session_id, None)
        self.queued_total -= self.queued.pop(session_id, 0)

    def account(self, writer: Writer, size: int) -> None:
        """Record that ``writer`` holds ``size`` bytes; past the server's budget, shed the
        clients that hold the most until the rest fits (a client that reads keeps its queue near
        zero)."""
        held = self.queued.get(writer.session_id, 0)
        if size == held:  # most often 0 == 0: the kernel took it all, as before
            return
        self.queued_total += size - held
        if size:
            self.queued[writer.session_id] = size
        else:
            self.queued.pop(writer.session_id, None)
        if self.queued_total > self.budget():
            self._shed()

    def _shed(self) -> None:
        """The recorded sizes may be stale (the kernel took more meanwhile): look again, then
        drop the biggest holders until the total is within the budget."""
        for session_id in list(self.queued):
            writer = self.writer_of(session_id)
            size = writer.queued() if writer is not None else 0
            if size:
                self.queued[session_id] = size
            else:
                del self.queued[session_id]
        self.queued_total = sum(self.queued.values())
        budget = self.budget()
        for session_id in sorted(self.queued, key=lambda held: -self.queued[held]):
            if self.queued_total <= budget:
                break
            writer = self.writer_of(session_id)
            if writer is not None:
                why = f" (over the server's output budget: {self.queued_total} bytes queued)"
                writer.drop_slow_reader(why)
            self.queued_total -= self.queued.pop(session_id)
