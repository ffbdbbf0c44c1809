"""Every room's roles and rules as this server applied them, who outranks whom in a room, and the
bounds of both. Pure."""

from __future__ import annotations

from collections import Counter

from ...store.room_state import RoomState
from ..frames import FrameError, has_unsafe_text, valid_room

# Ranks in a room: each may act on the ranks below its own (a room operator on plain members, the
# owner on its operators too); a server operator may act on anyone but another server operator.
MEMBER = 0
ROOM_OPERATOR = 1
OWNER = 2
SERVER_OPERATOR = 3


# Bounds of what one room holds, and of how many rooms one key owns: a key that owns this many
# joins a room without an owner as a plain member (the room stays without one).
MAX_ROOM_OPERATORS = 50
MAX_ROOM_ADMITTED = 1000
MAX_ROOM_BANS = 1000
MAX_ROOM_MUTES = 1000
MAX_OWNED_ROOMS = 100
# A kick's or ban's reason: told to the room's members (and kept, for a ban).
MAX_REASON_BYTES = 200


INVITE_ONLY_REFUSAL = "{room} is invite-only; ask one of its operators for an invitation"


class RoomBook:
    """Room -> its :class:`RoomState`, with how many rooms each key owns."""

    def __init__(self, states: dict[str, RoomState]) -> None:
        self._rooms = states
        self._owned = Counter(s.owner for s in states.values() if s.owner is not None)

    def get(self, room: str) -> RoomState | None:
        return self._rooms.get(room)

    def state(self, room: str) -> RoomState:
        """The room's state, made (with no roles and no rules) if it has none yet."""
        return self._rooms.setdefault(room, RoomState(room))

    def owned_by(self, fingerprint: str) -> int:
        return self._owned[fingerprint]

    def take(self, room: str, fingerprint: str) -> bool:
        """``fingerprint`` owns ``room`` now, unless it has an owner already."""
        state = self.state(room)
        if state.owner is not None:
            return False
        state.owner = fingerprint
        self._owned[fingerprint] += 1
        return True

    def invite_only(self, room: str) -> bool:
        state = self._rooms.get(room)
        return state is not None and state.invite_only

    def rank(self, room: str, fingerprint: str, server_operator: bool) -> int:
        if server_operator:
            return SERVER_OPERATOR
        state = self._rooms.get(room)
        if state is None:
            return MEMBER
        if fingerprint == state.owner:
            return OWNER
        return ROOM_OPERATOR if fingerprint in state.operators else MEMBER


def title(rank: int, room: str) -> str:
    """What a key of ``rank`` is, as refusals name it."""
    if rank == SERVER_OPERATOR:
        return "a server operator"
    if rank == OWNER:
        return f"the owner of {room}"
    return f"an operator of {room}" if rank == ROOM_OPERATOR else f"a member of {room}"


def split_room_target(args: str, usage: str) -> tuple[str, str, str]:
    """'NICK|FP #room [rest]' (or '#room NICK|FP [rest]': a nick never starts with '#') ->
    (room, who, rest)."""
    first, _, remainder = args.partition(" ")
    second, _, rest = remainder.strip().partition(" ")
    room, who = (first, second) if first.startswith("#") else (second, first)
    if not who or not valid_room(room):
        raise FrameError(f"usage: {usage}")
    return room, who, rest.strip()


def checked_reason(reason: str) -> str:
    if len(reason.encode()) > MAX_REASON_BYTES or has_unsafe_text(reason):
        raise FrameError(f"a reason is at most {MAX_REASON_BYTES} bytes of plain text")
    return reason or "no reason given"


def room_argument(args: str, usage: str) -> str:
    room = args.split(" ", 1)[0] if args else ""
    if not valid_room(room):
        raise FrameError(f"usage: {usage}")
    return room
