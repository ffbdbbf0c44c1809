"""SQLite store (WAL): one file in the server's data directory, its history bounded by
:class:`Retention` (per room, by age, and by the database's size)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from . import sqlite_directory, sqlite_invitations, sqlite_rooms, sqlite_search
from .base import Ban, StoredMessage
from .files import PRIVATE_FILE, database_files, private_database, tighten
from .sqlite_directory import SQLiteDirectory
from .sqlite_invitations import SQLiteInvitations
from .sqlite_rooms import SQLiteRooms
from .sqlite_search import SQLiteSearch

INCREMENTAL = 2  # PRAGMA auto_vacuum's value for incremental
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
    signature BLOB NOT NULL,
    encrypted TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS messages_by_room ON messages (room, id);
CREATE INDEX IF NOT EXISTS messages_by_time ON messages (timestamp_ms);
CREATE INDEX IF NOT EXISTS messages_by_sender ON messages (sender, counter);
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
CREATE TABLE IF NOT EXISTS encrypted_rooms (
    room TEXT PRIMARY KEY
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS allow_decisions (
    fingerprint TEXT PRIMARY KEY,
    allowed INTEGER NOT NULL
) WITHOUT ROWID;
"""


class SQLiteStore(SQLiteDirectory, SQLiteRooms, SQLiteInvitations, SQLiteSearch):
    """Room lines are committed in batches, one per event-loop pass (sqlite_batch.py); every other
    write commits at once. In WAL mode a commit is in the OS's hands when it returns, so a killed
    server process loses nothing it had relayed or confirmed.

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
        self._db.executescript(
            SCHEMA + sqlite_directory.SCHEMA + sqlite_rooms.SCHEMA + sqlite_invitations.SCHEMA
        )
        self._add_missing_columns()
        sqlite_search.add_index(self._db)
        if file is not None:  # made by SQLite with the database's mode; checked all the same
            for companion in database_files(file):
                tighten(companion, PRIVATE_FILE)
        if self._pragma("auto_vacuum") != INCREMENTAL:
            self._db.execute("VACUUM")  # makes the auto_vacuum setting above take effect
        self._counters: dict[str, int] = {}
        self._batch = []
        self._counters_before = {}
        self._lost = ()
        self._lost_reason = ""
        self._appended = None
        self._dirty = False
        self._size_bound = 0
        self._room_left = 0
        self._written = 0
        self._kept_per_room = 0

    def _add_missing_columns(self) -> None:
        """A database made before end-to-end encryption gets the column for encrypted lines."""
        columns = {str(row[1]) for row in self._db.execute("PRAGMA table_info(messages)")}
        if "encrypted" not in columns:
            self._db.execute("ALTER TABLE messages ADD COLUMN encrypted TEXT NOT NULL DEFAULT ''")

    def append_message(self, message: StoredMessage) -> None:
        previous = self.last_counter(message.sender)
        self._open_batch()
        self._db.execute(
            "INSERT INTO messages (room, sender, nick, key_der, counter, timestamp_ms, body,"
            " signature, encrypted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                message.room,
                message.sender,
                message.nick,
                message.key_der,
                message.counter,
                message.timestamp_ms,
                message.body,
                message.signature,
                message.encrypted,
            ),
        )
        self._set_counter(message.sender, message.counter)
        self._batched(message.sender, message.counter, previous)
        self._counters[message.sender] = message.counter
        if self._appended is not None:
            self._appended.add(message.room)
        self._added(
            # The row, its words in the search index, and what merging the index takes.
            3 * len(message.body.encode())
            + len(message.encrypted.encode())
            + len(message.signature)
            + len(message.key_der)
        )

    def recent_messages(self, room: str, limit: int) -> list[StoredMessage]:
        rows = self._db.execute(
            "SELECT room, sender, nick, key_der, counter, timestamp_ms, body, signature,"
            " encrypted FROM messages WHERE room = ? ORDER BY id DESC LIMIT ?",
            (room, limit),
        ).fetchall()
        return [StoredMessage(*row) for row in reversed(rows)]

    def messages_before(
        self, room: str, anchor: tuple[str, int], limit: int
    ) -> list[StoredMessage] | None:
        found = self._db.execute(
            "SELECT id FROM messages WHERE sender = ? AND counter = ? AND room = ?",
            (*anchor, room),
        ).fetchone()
        if found is None:
            return None
        rows = self._db.execute(
            "SELECT room, sender, nick, key_der, counter, timestamp_ms, body, signature,"
            " encrypted FROM messages WHERE room = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (room, found[0], limit),
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
        with self._transaction():
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

    def set_allowed(self, fingerprint: str, allowed: bool) -> None:
        self._db.execute(
            "INSERT INTO allow_decisions (fingerprint, allowed) VALUES (?, ?)"
            " ON CONFLICT (fingerprint) DO UPDATE SET allowed = excluded.allowed",
            (fingerprint, int(allowed)),
        )

    def allowed(self, fingerprint: str) -> bool | None:
        row = self._db.execute(
            "SELECT allowed FROM allow_decisions WHERE fingerprint = ?", (fingerprint,)
        ).fetchone()
        return None if row is None else bool(row[0])

    def release_nick(self, nick: str) -> str | None:
        owner = self.nick_owner(nick)
        if owner is not None:
            self._db.execute("DELETE FROM nicks WHERE fingerprint = ?", (owner,))
        return owner

    def set_encrypted(self, room: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO encrypted_rooms (room) VALUES (?)", (room,))

    def encrypted_rooms(self) -> set[str]:
        return {str(row[0]) for row in self._db.execute("SELECT room FROM encrypted_rooms")}

    def close(self) -> None:
        self._commit_batch()
        self.index_for_search()
        self._db.close()
