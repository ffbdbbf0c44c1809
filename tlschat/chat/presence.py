"""Presence notices to a room's bystanders, at a bounded rate and with flaps folded away. Pure.

Every join and leave used to reach every member at once, so a key that parts and joins in a loop
(keys cost nothing to make) made each bystander's client print, and the server encrypt, one
notice per flap per member. Here each room has its own budget of notices: while it lasts a change
is announced at once; past it, changes wait, one entry per key holding its latest frame, and go
out together, as one batch, each time the budget refills (``due``). A key whose waiting changes
end where they began (a leave then a join) is not announced at all: its bystanders' member lists
were right all along.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .limits import TokenBucket
from .runs import split_run

DEFAULT_PRESENCE_RATE = 5.0
DEFAULT_PRESENCE_BURST = 10


@dataclass
class _Waiting:
    """A key's changes in one room since it was last announced there."""

    was_present: bool  # as its bystanders were last told
    frame: dict[str, Any]  # its latest join or leave


@dataclass
class _RoomPresence:
    bucket: TokenBucket
    waiting: dict[str, _Waiting] = field(default_factory=dict)  # by fingerprint, oldest first


@dataclass(frozen=True)
class Announcement:
    room: str
    fingerprint: str  # whose presence changed: its own sessions are not told
    frame: dict[str, Any]


class PresenceLimiter:
    """Which join and leave notices go out now, and which wait for the room's budget."""

    def __init__(
        self, rate: float = DEFAULT_PRESENCE_RATE, burst: int = DEFAULT_PRESENCE_BURST
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._rooms: dict[str, _RoomPresence] = {}
        self.waiting = 0  # changes waiting, over all rooms

    def announce(self, room: str, fingerprint: str, frame: dict[str, Any], now: float) -> bool:
        """A join or leave of ``fingerprint`` in ``room``: True to announce it now, False if it
        waits (``due`` hands it out later, or drops it if the key ends where it was)."""
        presence = self._rooms.get(room)
        if presence is None:
            presence = self._rooms[room] = _RoomPresence(TokenBucket(self.rate, self.burst))
        waiting = presence.waiting.get(fingerprint)
        if waiting is not None:
            waiting.frame = frame
            return False
        if not presence.waiting and presence.bucket.take(now) == 0:
            return True
        presence.waiting[fingerprint] = _Waiting(frame["type"] != "join", frame)
        self.waiting += 1
        return False

    def due(self, now: float) -> list[Announcement]:
        """The waiting changes of every room whose budget allows one more notice now, oldest
        first; flaps are dropped. A room's waiting changes go out together, as one batch that
        costs one notice: in a storm of arrivals each bystander gets a few notices a second, each
        naming many keys, rather than one notice per key."""
        out: list[Announcement] = []
        for room, presence in list(self._rooms.items()):
            waiting = presence.waiting
            if waiting and presence.bucket.take(now) == 0:
                self.waiting -= len(waiting)
                out += [
                    Announcement(room, fingerprint, change.frame)
                    for fingerprint, change in waiting.items()
                    if change.was_present != (change.frame["type"] == "join")
                ]
                waiting.clear()
            if not waiting and presence.bucket.is_full(now):
                del self._rooms[room]  # what is kept is what a quiet room would start with
        return out


def presence_frames(room: str, changes: list[Announcement]) -> list[dict[str, Any]]:
    """What tells a member of ``changes`` in ``room``: nothing, one change's own 'join' or
    'leave' frame, or a 'presence' run listing them all, oldest first."""
    if len(changes) <= 1:
        return [change.frame for change in changes]
    entries = [{k: v for k, v in c.frame.items() if k != "room"} for c in changes]
    return split_run({"type": "presence", "room": room}, "changes", entries, ("room",))
