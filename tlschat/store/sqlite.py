"""SQLite store (WAL): one file in the server's data directory, its history bounded by
:class:`Retention` (per room, by age, and by the database's size)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .base import Ban, Retention, StoredMessage
from .files import PRIVATE_FILE, database_files, private_database, tighten

INCREMENTAL = 2  # PRAGMA auto_vacuum's value for incremental
# What a message costs in the database beyond its fields: the row's header and its two index
# entries, roughly. Only an estimate of how many of the oldest to delete at once.
ROW_OVERHEAD = 64
# Of a size bound, the part kept for the write-ahead log: chat.db's pages in use are kept under
# the rest, and the WAL is checkpointed and cut back before it outgrows this part.
WAL_SHARE = 8  # one eighth
# An appended message is counted as this many times its estimated size against the room left
# under the bound: a long body takes whole overflow pages, and each insert rewrites index pages.
APPEND_MARGIN = 3
# The fields of a message row, in bytes, for that estimate.
ROW_BYTES = (
    "length(room) + length(sender) + length(nick) + length(key_der) + length(body)"
    " + length(signature) + length(room) + 24"
)
SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    room TEXT NOT NULL,
    sender TEXT NOT NULL,
    nick TEXT NOT NULL,
    key_der BLOB NOT NULL,
    counter INTEGER NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    body TEXT NOT NULL,
    signature BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_room ON messages (room, id);
CREATE INDEX IF NOT EXISTS messages_by_time ON messages (timestamp_ms);
CREATE TABLE IF NOT EXISTS nicks (
    nick_folded TEXT PRIMARY KEY,
    nick TEXT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS counters (
    fingerprint TEXT PRIMARY KEY,
    counter INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS bans (
    fingerprint TEXT PRIMARY KEY,
    until REAL,
    reason TEXT NOT NULL,
    by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS topics (
    room TEXT PRIMARY KEY,
    topic TEXT NOT NULL
);
"""


class SQLiteStore:
    """Every write commits at once: in WAL mode a commit is in the OS's hands when it returns, so
    a killed server process loses nothing it had relayed.

    One server process owns the database: the senders' last counters, read for every message,
    are cached in memory and written through.
    """

    def __init__(self, path: Path | str) -> None:
        # A file (not ":memory:") is its owner's alone: the database, -wal and -shm are 0600.
        file = Path(path) if path not in ("", ":memory:") else None
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            private_database(file)
        self._db = sqlite3.connect(str(path), isolation_level=None)
        # Before the first table: a new database gives pages it frees back to the file system
        # (PRAGMA incremental_vacuum) when retention deletes messages; an older one is converted
        # below, once.
        self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        if file is not None:  # made by SQLite with the database's mode; checked all the same
            for companion in database_files(file):
                tighten(companion, PRIVATE_FILE)
        if self._pragma("auto_vacuum") != INCREMENTAL:
            self._db.execute("VACUUM")  # makes the auto_vacuum setting above take effect
        self._counters: dict[str, int] = {}
        # The rooms appended to since retention last ran; None: every room (on start).
        self._appended: set[str] | None = None
        # With a size bound (from the last retention pass): the bytes that may still be
        # appended before the oldest messages must go, so that the bound holds between passes.
        self._size_bound = 0
        self._room_left = 0

    def append_message(self, message: StoredMessage) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO messages (room, sender, nick, key_der, counter, timestamp_ms, body,"
                " signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    message.room,
                    message.sender,
                    message.nick,
                    message.key_der,
                    message.counter,
                    message.timestamp_ms,
                    message.body,
                    message.signature,
                ),
            )
            self._set_counter(message.sender, message.counter)
        self._counters[message.sender] = message.counter
        if self._appended is not None:
            self._appended.add(message.room)
        if self._size_bound:
            size = len(message.body.encode()) + len(message.signature) + len(message.key_der)
            self._room_left -= APPEND_MARGIN * (size + ROW_OVERHEAD)
            if self._room_left < 0:
                self._keep_within(self._size_bound)

    def recent_messages(self, room: str, limit: int) -> list[StoredMessage]:
        rows = self._db.execute(
            "SELECT room, sender, nick, key_der, counter, timestamp_ms, body, signature"
            " FROM messages WHERE room = ? ORDER BY id DESC LIMIT ?",
            (room, limit),
        ).fetchall()
        return [StoredMessage(*row) for row in reversed(rows)]

    def nick_owner(self, nick: str) -> str | None:
        row = self._db.execute(
            "SELECT fingerprint FROM nicks WHERE nick_folded = ?", (nick.casefold(),)
        ).fetchone()
        return None if row is None else str(row[0])

    def nick_of(self, fingerprint: str) -> str | None:
        row = self._db.execute(
            "SELECT nick FROM nicks WHERE fingerprint = ?", (fingerprint,)
        ).fetchone()
        return None if row is None else str(row[0])

    def register_nick(self, nick: str, fingerprint: str) -> bool:
        owner = self.nick_owner(nick)
        if owner is not None and owner != fingerprint:
            return False
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM nicks WHERE fingerprint = ?", (fingerprint,))
            self._db.execute(
                "INSERT INTO nicks (nick_folded, nick, fingerprint) VALUES (?, ?, ?)",
                (nick.casefold(), nick, fingerprint),
            )
        return True

    def last_counter(self, fingerprint: str) -> int:
        cached = self._counters.get(fingerprint)
        if cached is not None:
            return cached
        row = self._db.execute(
            "SELECT counter FROM counters WHERE fingerprint = ?", (fingerprint,)
        ).fetchone()
        counter = -1 if row is None else int(row[0])
        self._counters[fingerprint] = counter
        return counter

    def set_last_counter(self, fingerprint: str, counter: int) -> None:
        self._set_counter(fingerprint, counter)
        self._counters[fingerprint] = counter

    def _set_counter(self, fingerprint: str, counter: int) -> None:
        self._db.execute(
            "INSERT INTO counters (fingerprint, counter) VALUES (?, ?)"
            " ON CONFLICT (fingerprint) DO UPDATE SET counter = excluded.counter",
            (fingerprint, counter),
        )

    def add_ban(self, ban: Ban) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO bans (fingerprint, until, reason, by) VALUES (?, ?, ?, ?)",
            (ban.fingerprint, ban.until, ban.reason, ban.by),
        )

    def remove_ban(self, fingerprint: str) -> bool:
        cursor = self._db.execute("DELETE FROM bans WHERE fingerprint = ?", (fingerprint,))
        return cursor.rowcount > 0

    def active_ban(self, fingerprint: str, now: float) -> Ban | None:
        row = self._db.execute(
            "SELECT fingerprint, until, reason, by FROM bans WHERE fingerprint = ?",
            (fingerprint,),
        ).fetchone()
        if row is None:
            return None
        ban = Ban(*row)
        if ban.until is not None and ban.until <= now:
            self.remove_ban(fingerprint)
            return None
        return ban

    def set_topic(self, room: str, topic: str) -> None:
        self._db.execute(
            "INSERT INTO topics (room, topic) VALUES (?, ?)"
            " ON CONFLICT (room) DO UPDATE SET topic = excluded.topic",
            (room, topic),
        )

    def topics(self) -> dict[str, str]:
        return {str(room): str(topic) for room, topic in self._db.execute("SELECT * FROM topics")}

    # ----- retention -----

    def enforce_retention(self, retention: Retention, now: float) -> int:
        """Per room, then by age, then by size (the oldest of all rooms first), each in its own
        transaction; then free pages go back to the file system and the WAL is checkpointed and
        truncated. Only rooms appended to since the last call are counted again."""
        appended, self._appended = self._appended, set()
        deleted = 0
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
            with self._db:
                self._db.execute("BEGIN")
                cursor = self._db.execute(
                    "DELETE FROM messages WHERE timestamp_ms < ?", (cutoff_ms,)
                )
                deleted += cursor.rowcount
        changed = bool(deleted or appended is None or appended)
        if retention.max_bytes > 0:
            if retention.max_bytes != self._size_bound:
                self._bound_wal(retention.max_bytes)
                changed = True
            if changed:
                deleted += self._keep_within(retention.max_bytes)
            return deleted
        self._size_bound = 0
        if changed:
            self._compact()
        return deleted

    def _bound_wal(self, max_bytes: int) -> None:
        """Checkpoint the WAL, and cut its file back, before it passes its share of the bound."""
        page_size = self._pragma("page_size")
        wal_bytes = max_bytes // WAL_SHARE
        # A checkpoint starts at a quarter of the share: a transaction or two more fit after it.
        self._db.execute(f"PRAGMA wal_autocheckpoint = {max(1, wal_bytes // page_size // 4)}")
        self._db.execute(f"PRAGMA journal_size_limit = {wal_bytes}").fetchall()

    def _keep_within(self, max_bytes: int) -> int:
        """Delete the oldest messages until chat.db's pages and the WAL's share fit ``max_bytes``;
        then how much may be appended before the next round. If what is not messages (counters,
        nicks, bans, topics) alone passes the bound, it is let grow by an eighth of the bound
        between rounds rather than a round run for every message."""
        self._size_bound = max_bytes
        pages_bound = max_bytes - max_bytes // WAL_SHARE
        deleted = self._shrink_to(pages_bound)
        self._compact()
        self._room_left = max(pages_bound - self.used_bytes(), max_bytes // WAL_SHARE)
        return deleted

    def _compact(self) -> None:
        # executescript steps it to the end (execute frees one page).
        self._db.executescript("PRAGMA incremental_vacuum;")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def used_bytes(self) -> int:
        """The database's pages in use (the file's pages less the free ones), in bytes, as this
        connection sees it: WAL frames not yet checkpointed included."""
        pages = self._pragma("page_count") - self._pragma("freelist_count")
        return pages * self._pragma("page_size")

    def _pragma(self, name: str) -> int:
        row = self._db.execute(f"PRAGMA {name}").fetchone()
        return int(row[0])

    def _keep_newest(self, room: str, keep: int) -> int:
        with self._db:
            self._db.execute("BEGIN")
            cursor = self._db.execute(
                "DELETE FROM messages WHERE room = ? AND id <= (SELECT id FROM messages"
                " WHERE room = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (room, room, keep),
            )
            return cursor.rowcount

    def _shrink_to(self, max_bytes: int) -> int:
        """Delete the oldest messages of all rooms until the pages in use fit in ``max_bytes``.

        Each round deletes about the excess, estimated from the rows' sizes scaled by what the
        last round's rows really freed (a long body takes whole overflow pages; a few deleted
        rows may free no page at all); the first round, about half of it. So it converges
        without deleting much more than needed.
        """
        deleted = 0
        # Bytes freed per estimated byte deleted, as last measured; at first a guess on the high
        # side, so that the first round deletes too few rather than too many.
        scale = 2.0
        used = self.used_bytes()
        while used > max_bytes:
            target = (used - max_bytes) / scale
            last_id: int | None = None
            estimate = 0
            rows = self._db.execute(f"SELECT id, {ROW_BYTES} FROM messages ORDER BY id")
            try:
                for row_id, size in rows:
                    last_id = int(row_id)
                    estimate += int(size) + ROW_OVERHEAD
                    if estimate >= target:
                        break
            finally:
                rows.close()
            if last_id is None:
                break  # no messages left: the rest is counters, nicks, bans and topics
            with self._db:
                self._db.execute("BEGIN")
                cursor = self._db.execute("DELETE FROM messages WHERE id <= ?", (last_id,))
                deleted += cursor.rowcount
            before, used = used, self.used_bytes()
            freed = before - used
            scale = max(freed / estimate, 0.01) if freed > 0 else scale / 2
        return deleted

    def close(self) -> None:
        self._db.close()
