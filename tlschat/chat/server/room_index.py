"""How many sessions of each key are in each room, and which of this server's sessions are,
kept as members come and go. Pure.

Looking it up in the sessions themselves costs a pass over every session of the cluster, and a
join asked it several times: a storm of N joins cost N² steps; and every line of a room asked
which sessions of the server are in it. Kept here, a join's questions (is this key in the room
already? is the room large?) cost one lookup each, and a line's recipients one dictionary.
"""

from __future__ import annotations

from collections import Counter
from typing import Generic, TypeVar

S = TypeVar("S")


class RoomIndex(Generic[S]):
    def __init__(self) -> None:
        self._rooms: dict[str, Counter[str]] = {}
        # This server's sessions in each room, by session id, in the order they came in.
        self._local: dict[str, dict[int, S]] = {}

    def enter(self, room: str, fingerprint: str) -> None:
        self._rooms.setdefault(room, Counter())[fingerprint] += 1

    def leave(self, room: str, fingerprint: str) -> None:
        keys = self._rooms.get(room)
        if keys is None or keys[fingerprint] <= 0:
            return
        keys[fingerprint] -= 1
        if keys[fingerprint] == 0:
            del keys[fingerprint]
            if not keys:
                del self._rooms[room]

    def enter_local(self, room: str, session_id: int, session: S) -> None:
        self._local.setdefault(room, {})[session_id] = session

    def leave_local(self, room: str, session_id: int) -> None:
        sessions = self._local.get(room)
        if sessions is not None and sessions.pop(session_id, None) is not None and not sessions:
            del self._local[room]

    def local(self, room: str) -> list[S]:
        """This server's sessions in ``room``."""
        sessions = self._local.get(room)
        return list(sessions.values()) if sessions is not None else []

    def keys(self, room: str) -> int:
        """How many keys have a session in ``room``."""
        return len(self._rooms.get(room, ()))

    def sessions(self, room: str, fingerprint: str) -> int:
        """How many sessions of ``fingerprint`` are in ``room``."""
        keys = self._rooms.get(room)
        return keys[fingerprint] if keys is not None else 0

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Every room's count per key (for checking it against the sessions)."""
        return {room: dict(keys) for room, keys in self._rooms.items()}

    def local_snapshot(self) -> dict[str, set[int]]:
        """Every room's local session ids (for checking them against the sessions)."""
        return {room: set(sessions) for room, sessions in self._local.items()}
