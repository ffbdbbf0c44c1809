"""How much the SQLite store keeps: room history bounded per room, by age and by the database's
size (:class:`Retention`), with the end-to-end inboxes counted in that size."""

from __future__ import annotations

import sqlite3

from .base import Retention
from .sqlite_batch import SQLiteBatch

# What a row costs in the database beyond its fields: the row's header and its index entries,
# roughly. Only an estimate of how many of the oldest to delete at once.
ROW_OVERHEAD = 64
# Of a size bound, the part kept for the write-ahead log: chat.db's pages in use are kept under
# the rest, and the WAL is checkpointed and cut back before it outgrows this part.
WAL_SHARE = 8  # one eighth
# An appended row is counted as this many times its estimated size against the room left under
# the bound: a long body takes whole overflow pages, and each insert rewrites index pages.
APPEND_MARGIN = 3
# The fields of a message row, in bytes, for that estimate.
MESSAGE_BYTES = (
    "length(room) + length(sender) + length(nick) + length(key_der) + length(body)"
    " + length(signature) + length(encrypted) + length(room) + 24"
)
# The fields of an inbox row (``size`` is its payload's), likewise.
INBOX_BYTES = "2 * (length(fingerprint) + length(device)) + size + 24"
# Free pages are given back to the file system when they are more than this many times what was
# appended since the last pass: fewer are taken again by the lines of the next one (SQLite fills
# free pages before it grows the file), and giving them back costs a checkpoint on the event loop.
FREE_KEPT_FACTOR = 2
# What the size bound may delete, in order: room history (the oldest of all rooms) first; inbox
# items (the oldest of all devices) only when no history is left. History is a copy of what the
# members were sent live; an inbox item may be a device's only copy of a room key or a private
# message, so it goes last.
SHRINKABLE = (("messages", MESSAGE_BYTES), ("inbox", INBOX_BYTES))


class SQLiteRetention(SQLiteBatch):
    """The retention half of :class:`~tlschat.store.sqlite.SQLiteStore`, which sets these
    attributes up."""

    _db: sqlite3.Connection
    # The rooms appended to since retention last ran; None: every room (on start).
    _appended: set[str] | None
    # Whether anything but room history was written since retention last ran (the directory,
    # one-time keys, inboxes): pages to count and give back.
    _dirty: bool
    # With a size bound (from the last retention pass): the bytes that may still be written
    # before the oldest rows must go, so that the bound holds between passes.
    _size_bound: int
    _room_left: int
    # About how many bytes of rows were appended since retention last ran.
    _written: int
    # The count per room that the last pass kept: a new one counts every room again.
    _kept_per_room: int

    def _added(self, size: int) -> None:
        """A row of about ``size`` bytes was written: with a size bound, make room when the
        room left is spent."""
        self._written += size + ROW_OVERHEAD
        if self._size_bound:
            self._room_left -= APPEND_MARGIN * (size + ROW_OVERHEAD)
            if self._room_left < 0:
                self._keep_within(self._size_bound)

    def enforce_retention(self, retention: Retention, now: float) -> int:
        """Per room, then by age, then by size (the oldest of all rooms first, then, only if
        history alone cannot bring the database under the bound, the oldest inbox items of all
        devices), each in its own transaction; then, if rows were deleted and the pages they
        freed are more than the next pass's lines would take again, free pages go back to the
        file system and the WAL is checkpointed and truncated. Only rooms appended to since the
        last call are counted again (every room when ``keep_per_room`` changed). The directory
        (devices, one-time and fallback keys), counters, nicks, bans, topics and encrypted rooms
        are never deleted. The search index's entries of deleted lines go as its segments merge
        (sqlite_search), not in a rewrite of the whole index here. Returns how many room
        messages were deleted."""
        self._commit_batch()
        appended, self._appended = self._appended, set()
        dirty, self._dirty = self._dirty, False
        written, self._written = self._written, 0
        deleted = 0
        if retention.keep_per_room != self._kept_per_room:
            self._kept_per_room, appended = retention.keep_per_room, None
        if retention.keep_per_room > 0:
            rooms = appended
            if rooms is None:
                rooms = {
                    str(row[0]) for row in self._db.execute("SELECT DISTINCT room FROM messages")
                }
            for room in sorted(rooms):
                deleted += self._keep_newest(room, retention.keep_per_room)
        if retention.max_age > 0:
            cutoff_ms = int((now - retention.max_age) * 1000)
            with self._transaction():
                cursor = self._db.execute(
                    "DELETE FROM messages WHERE timestamp_ms < ?", (cutoff_ms,)
                )
                deleted += cursor.rowcount
        # Pages may be free to give back only after deletes; lines only appended are counted
        # against the size bound, and the server's checkpoint thread copies their log. Under a
        # steady flood each pass frees about what the next one fills: those are kept.
        frees = appended is None or (
            bool(deleted or dirty) and self._free_bytes() > FREE_KEPT_FACTOR * written
        )
        if retention.max_bytes > 0:
            if retention.max_bytes != self._size_bound:
                self._bound_wal(retention.max_bytes)
                frees = True
            if frees or appended:
                deleted += self._keep_within(retention.max_bytes, compact=frees)
            return deleted
        self._size_bound = 0
        if frees:
            self._compact()
        return deleted

    def _bound_wal(self, max_bytes: int) -> None:
        """Checkpoint the WAL, and cut its file back, before it passes its share of the bound."""
        page_size = self._pragma("page_size")
        wal_bytes = max_bytes // WAL_SHARE
        # A checkpoint starts at a quarter of the share: a transaction or two more fit after it.
        self._db.execute(f"PRAGMA wal_autocheckpoint = {max(1, wal_bytes // page_size // 4)}")
        self._db.execute(f"PRAGMA journal_size_limit = {wal_bytes}").fetchall()

    def _keep_within(self, max_bytes: int, compact: bool = True) -> int:
        """Delete the oldest rows (:data:`SHRINKABLE`) until chat.db's pages and the WAL's share
        fit ``max_bytes``; how many room messages went. Free pages go back to the file system
        if any row went, if ``compact``, or if the file with them would not fit. Then how much
        may be written before the next round: if what is never deleted (the directory,
        counters, nicks, bans, topics) alone passes the bound, it is let grow by an eighth of
        the bound between rounds rather than a round run for every row."""
        self._size_bound = max_bytes
        pages_bound = max_bytes - max_bytes // WAL_SHARE
        deleted, any_deleted = self._shrink_to(pages_bound)
        if compact or any_deleted or self._file_bytes() > pages_bound:
            self._compact()
        self._room_left = max(pages_bound - self.used_bytes(), max_bytes // WAL_SHARE)
        return deleted

    def _compact(self) -> None:
        # executescript steps it to the end (execute frees one page).
        self._db.executescript("PRAGMA incremental_vacuum;")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def _free_bytes(self) -> int:
        return self._pragma("freelist_count") * self._pragma("page_size")

    def _file_bytes(self) -> int:
        """chat.db's pages, in use or free."""
        return self._pragma("page_count") * self._pragma("page_size")

    def used_bytes(self) -> int:
        """The database's pages in use (the file's pages less the free ones), in bytes, as this
        connection sees it: WAL frames not yet checkpointed included."""
        pages = self._pragma("page_count") - self._pragma("freelist_count")
        return pages * self._pragma("page_size")

    def _pragma(self, name: str) -> int:
        row = self._db.execute(f"PRAGMA {name}").fetchone()
        return int(row[0])

    def _keep_newest(self, room: str, keep: int) -> int:
        with self._transaction():
            cursor = self._db.execute(
                "DELETE FROM messages WHERE room = ? AND id <= (SELECT id FROM messages"
                " WHERE room = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (room, room, keep),
            )
            return cursor.rowcount

    def _shrink_to(self, max_bytes: int) -> tuple[int, bool]:
        """Delete the oldest rows of :data:`SHRINKABLE`, table after table, until the pages in
        use fit in ``max_bytes``; how many room messages went, and whether any row went.

        Each round deletes about the excess, estimated from the rows' sizes scaled by what the
        last round's rows really freed (a long body takes whole overflow pages; a few deleted
        rows may free no page at all); the first round, about half of it. So it converges
        without deleting much more than needed. Every round deletes at least one row, and a
        table with none left is done with: it ends. With no history left, the search index is
        emptied before the next table.
        """
        deleted = {table: 0 for table, _ in SHRINKABLE}
        # Bytes freed per estimated byte deleted, as last measured; at first a guess on the high
        # side, so that the first round deletes too few rather than too many.
        scale = 2.0
        used = self.used_bytes()
        for table, row_bytes in SHRINKABLE:
            while used > max_bytes:
                last_id, estimate = self._oldest(table, row_bytes, (used - max_bytes) / scale)
                if last_id is None:
                    break
                with self._transaction():
                    cursor = self._db.execute(f"DELETE FROM {table} WHERE id <= ?", (last_id,))
                    deleted[table] += cursor.rowcount
                before, used = used, self.used_bytes()
                freed = before - used
                scale = max(freed / estimate, 0.01) if freed > 0 else scale / 2
            if table == "messages" and used > max_bytes:
                # No history is left, yet the bound is passed: what the search index still
                # holds of deleted lines (until its segments merge) goes before any inbox item.
                with self._transaction():
                    self._db.execute(
                        "INSERT INTO messages_fts (messages_fts) VALUES ('delete-all')"
                    )
                used = self.used_bytes()
        return deleted["messages"], any(deleted.values())

    def _oldest(self, table: str, row_bytes: str, target: float) -> tuple[int | None, int]:
        """The id up to which the oldest rows of ``table`` add up to ``target`` estimated bytes
        (at least one row; None if the table is empty), and their estimate."""
        last_id: int | None = None
        estimate = 0
        rows = self._db.execute(f"SELECT id, {row_bytes} FROM {table} ORDER BY id")
        try:
            for row_id, size in rows:
                last_id = int(row_id)
                estimate += int(size) + ROW_OVERHEAD
                if estimate >= target:
                    break
        finally:
            rows.close()
        return last_id, estimate
