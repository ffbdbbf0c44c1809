"""Rooms' roles and rules in a cluster server's replica, with the SQLite store's semantics: Redis
holds them durably (the broker's commit script writes them) and every replica applies the same
events in the log's order."""

from __future__ import annotations

from .base import Ban
from .room_state import Grant, RoomState


class MemoryRooms:
    def __init__(self) -> None:
        self._rooms: dict[str, RoomState] = {}

    def _room(self, room: str) -> RoomState:
        return self._rooms.setdefault(room, RoomState(room))

    def room_states(self) -> dict[str, RoomState]:
        """Copies: the caller's changes are not the store's."""
        return {room: state.copy() for room, state in self._rooms.items()}

    def set_room_owner(self, room: str, fingerprint: str) -> None:
        state = self._room(room)
        if state.owner is None:
            state.owner = fingerprint

    def set_invite_only(self, room: str, invite_only: bool) -> None:
        self._room(room).invite_only = invite_only

    def set_room_grant(self, room: str, fingerprint: str, grant: Grant, granted: bool) -> None:
        keys = self._room(room).granted(grant)
        if granted:
            keys.add(fingerprint)
        else:
            keys.discard(fingerprint)

    def set_room_ban(self, room: str, ban: Ban) -> None:
        self._room(room).bans[ban.fingerprint] = ban

    def lift_room_ban(self, room: str, fingerprint: str) -> None:
        self._room(room).bans.pop(fingerprint, None)

    def set_room_mute(self, room: str, fingerprint: str, until: float | None) -> None:
        self._room(room).mutes[fingerprint] = until

    def lift_room_mute(self, room: str, fingerprint: str) -> None:
        self._room(room).mutes.pop(fingerprint, None)
