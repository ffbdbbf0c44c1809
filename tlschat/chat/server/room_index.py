"""How many sessions of each key are in each room, kept as members come and go. Pure.

Looking it up in the sessions themselves costs a pass over every session of the cluster, and a
join asked it several times: a storm of N joins cost N² steps. Kept here, a join's questions
(is this key in the room already? is the room large?) cost one lookup each.
"""

from __future__ import annotations

from collections import Counter


class RoomIndex:
    def __init__(self) -> None:
        self._rooms: dict[str, Counter[str]] = {}

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
