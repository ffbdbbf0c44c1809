"""Copying the write-ahead log back into chat.db away from the server's own connection.

In WAL mode every commit appends pages to chat.db-wal; a checkpoint copies them back into chat.db
and syncs it, which took 4-14 ms here. Run on the server's connection (SQLite's automatic
checkpoint inside a commit, or retention's), that is a stall of the event loop: every line in
flight waits for it. A passive checkpoint from a connection of its own, on another thread, needs
no lock the server's writes need, and Python's sqlite3 lets the other thread run meanwhile. Once
it has copied everything, the server's next write starts the log over from its beginning, so
the file stays as small as what is written between two checkpoints.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CheckpointResult:
    """What one checkpoint found: the log's frames, and how many of them are now in chat.db."""

    log_frames: int
    copied_frames: int

    @property
    def complete(self) -> bool:
        return self.copied_frames >= self.log_frames


class WalCheckpointer:
    """Passive checkpoints of one database from a connection of its own.

    Every call must come from one and the same thread (the connection is made by the first
    call, on the thread that makes it): the server gives it a thread of its own.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def checkpoint(self) -> CheckpointResult:
        """Copy what the log holds into chat.db, as far as no reader still needs it; never
        waits for the server's writes, nor makes them wait."""
        if self._db is None:
            self._db = sqlite3.connect(str(self.path), isolation_level=None)
            # The sync a checkpoint makes of chat.db stays; this only avoids a second sync of the
            # log, which the server's own commits do not make either.
            self._db.execute("PRAGMA synchronous=NORMAL")
        _, log_frames, copied_frames = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return CheckpointResult(max(0, int(log_frames)), max(0, int(copied_frames)))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
