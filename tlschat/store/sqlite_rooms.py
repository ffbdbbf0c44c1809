"""Rooms' roles and rules in the SQLite store (docs/PROTOCOL.md, section 22, "Private rooms and
room roles"): each room's owner and whether it is invite-only, and per key its grants (operator,
admitted) and sanctions (ban, mute). Every write commits at once."""

from __future__ import annotations

import sqlite3

from .base import Ban
from .room_state import Grant, RoomState

# Two tables (each costs the database at least a page): one row per room, one per (room, kind,
# key). ``kind`` is a grant ('operator', 'admitted') or a sanction ('ban', 'mute'); ``until``,
# ``reason`` and ``by`` are a sanction's.
SCHEMA = """
CREATE TABLE IF NOT EXISTS room_settings (
    room TEXT PRIMARY KEY,
    owner TEXT,
    invite_only INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS room_entries (
    room TEXT NOT NULL,
    kind TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    until REAL,
    reason TEXT NOT NULL DEFAULT '',
    by TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (room, kind, fingerprint)
) WITHOUT ROWID;
"""


class SQLiteRooms:
    """The rooms half of :class:`~tlschat.store.sqlite.SQLiteStore`, which opens ``_db``."""

    _db: sqlite3.Connection
    _dirty: bool

    def room_states(self) -> dict[str, RoomState]:
        rooms: dict[str, RoomState] = {}
        for room, owner, invite_only in self._db.execute(
            "SELECT room, owner, invite_only FROM room_settings"
        ):
            rooms[str(room)] = RoomState(str(room), owner, bool(invite_only))
        for room, kind, fingerprint, until, reason, by in self._db.execute(
            "SELECT room, kind, fingerprint, until, reason, by FROM room_entries"
        ):
            state = rooms.setdefault(str(room), RoomState(str(room)))
            if kind == "operator":
                state.operators.add(fingerprint)
            elif kind == "admitted":
                state.admitted.add(fingerprint)
            elif kind == "ban":
                state.bans[fingerprint] = Ban(fingerprint, until, reason, by)
            elif kind == "mute":
                state.mutes[fingerprint] = until
        return rooms

    def set_room_owner(self, room: str, fingerprint: str) -> None:
        """Unless it has one: a room's owner never changes."""
        self._db.execute(
            "INSERT INTO room_settings (room, owner) VALUES (?, ?) ON CONFLICT (room)"
            " DO UPDATE SET owner = excluded.owner WHERE owner IS NULL",
            (room, fingerprint),
        )
        self._dirty = True

    def set_invite_only(self, room: str, invite_only: bool) -> None:
        self._db.execute(
            "INSERT INTO room_settings (room, invite_only) VALUES (?, ?) ON CONFLICT (room)"
            " DO UPDATE SET invite_only = excluded.invite_only",
            (room, int(invite_only)),
        )
        self._dirty = True

    def set_room_grant(self, room: str, fingerprint: str, grant: Grant, granted: bool) -> None:
        if granted:
            self._put_entry(room, grant, fingerprint, None, "", "")
        else:
            self._delete_entry(room, grant, fingerprint)

    def set_room_ban(self, room: str, ban: Ban) -> None:
        self._put_entry(room, "ban", ban.fingerprint, ban.until, ban.reason, ban.by)

    def lift_room_ban(self, room: str, fingerprint: str) -> None:
        self._delete_entry(room, "ban", fingerprint)

    def set_room_mute(self, room: str, fingerprint: str, until: float | None) -> None:
        self._put_entry(room, "mute", fingerprint, until, "", "")

    def lift_room_mute(self, room: str, fingerprint: str) -> None:
        self._delete_entry(room, "mute", fingerprint)

    def _put_entry(
        self, room: str, kind: str, fingerprint: str, until: float | None, reason: str, by: str
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO room_entries (room, kind, fingerprint, until, reason, by)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (room, kind, fingerprint, until, reason, by),
        )
        self._dirty = True

    def _delete_entry(self, room: str, kind: str, fingerprint: str) -> None:
        self._db.execute(
            "DELETE FROM room_entries WHERE room = ? AND kind = ? AND fingerprint = ?",
            (room, kind, fingerprint),
        )
        self._dirty = True
