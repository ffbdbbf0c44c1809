"""Group commit for the SQLite store: the room lines of one event-loop pass share a transaction.

A line committed alone costs the store about 70 us here, most of it the commit (the WAL frames of
every page it touched); in a batch of ten, under 20 us a line. So the lines that arrive in one
pass of the event loop are written in one transaction, which the server commits before it writes
anything to any socket (``server/outflow.py``: ``Outflow.commit``).
No line is relayed or confirmed before it is committed, and in WAL mode a commit is in the
operating system's hands when it returns: a killed server process loses no line it confirmed.

Every other write commits the open batch first, so a write that fails can never roll back lines
that were already handed out to be sent. If that commit fails, the lines are reported by the next
``commit``, the one the server makes before it writes to any socket.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

from .base import HistoryNotCommitted


class SQLiteBatch:
    """The transaction half of :class:`~tlschat.store.sqlite.SQLiteStore`."""

    _db: sqlite3.Connection
    _counters: dict[str, int]
    # The open batch's lines, and their senders' last counters from before it.
    _batch: list[tuple[str, int]]
    _counters_before: dict[str, int]
    # Lines of batches that failed to commit, not yet reported by :meth:`commit`, and why.
    _lost: tuple[tuple[str, int], ...]
    _lost_reason: str

    def _open_batch(self) -> None:
        """Before a line is written: the pass's transaction, opened by its first line."""
        if not self._db.in_transaction:
            # What a commit outside :meth:`commit` left noted (executescript commits by itself).
            self._batch, self._counters_before = [], {}
            self._db.execute("BEGIN")

    def _batched(self, sender: str, counter: int, previous: int) -> None:
        """Note a written line and its sender's last counter before the batch."""
        self._batch.append((sender, counter))
        self._counters_before.setdefault(sender, previous)

    def commit(self) -> None:
        """Commit the open batch. If that fails, or a commit made on the way to another write
        failed since the last call, nothing of those lines stays, their senders' last counters
        are as before them, and :class:`HistoryNotCommitted` names them: the caller, which writes
        to the sockets, must then let no one hear of them."""
        self._commit_batch()
        if self._lost:
            lost, reason = self._lost, self._lost_reason
            self._lost, self._lost_reason = (), ""
            raise HistoryNotCommitted(lost, reason)

    def _commit_batch(self) -> None:
        """Commit the open batch; a failure is kept for :meth:`commit` to report."""
        if not self._db.in_transaction:
            return
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as error:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._counters.update(self._counters_before)
            self._lost += tuple(self._batch)
            self._lost_reason = f"{type(error).__name__}: {error}"
        self._batch, self._counters_before = [], {}

    @contextlib.contextmanager
    def _transaction(self, mode: str = "") -> Iterator[None]:
        """One write of its own, after the open batch is committed; rolled back if it fails."""
        self._commit_batch()
        with self._db:
            self._db.execute(f"BEGIN {mode}".rstrip())
            yield
