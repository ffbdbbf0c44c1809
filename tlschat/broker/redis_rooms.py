"""Rooms' roles and rules in Redis: what the commit script writes for each room event, and how a
server's replica loads them.

Each room with roles or rules is in the set ``rooms_state`` and has the hash ``room:ROOM`` with
the fields ``owner`` (a fingerprint), ``invite_only`` ("1" or "0"), and per key ``operator FP``
and ``admitted FP`` ("1"), ``ban FP`` (JSON {"until", "reason", "by"}) and ``mute FP`` (JSON:
until when, or null). The script applies a list of (op, field, value) writes to that hash: 'set',
'setnx' (the owner: the first claim in the log's order wins, as every replica decides), 'del',
and 'encrypt' (the room joins ``encrypted_rooms``).
"""

from __future__ import annotations

import json
from typing import Any

from ..chat.server.cluster_events import (
    Part,
    RoomBan,
    RoomInvite,
    RoomKeyEvent,
    RoomKick,
    RoomMode,
    RoomMute,
    RoomOp,
    RoomOwner,
    RoomUnban,
    RoomUnmute,
)
from ..store.base import Ban
from ..store.memory import MemoryStore
from ..store.room_state import GRANTS, Grant

Write = tuple[str, str, str]


GRANT_FIELDS: dict[str, Grant] = {grant: grant for grant in GRANTS}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def room_writes(event: RoomOwner | RoomMode | RoomKeyEvent | Part) -> list[Write]:
    """The writes that make Redis hold what applying ``event`` does to a replica; [] for an
    event that changes no room's roles or rules."""
    match event:
        case RoomOwner():
            return [("setnx", "owner", event.fingerprint)]
        case RoomMode(invite_only=False):
            return [("set", "invite_only", "0")]
        case RoomMode():
            members = [("set", f"admitted {member}", "1") for member in event.members]
            return [("set", "invite_only", "1"), ("encrypt", "", ""), *members]
        case RoomOp() | RoomInvite():
            grant, granted = (
                ("operator", event.operator)
                if isinstance(event, RoomOp)
                else ("admitted", event.invited)
            )
            return [("set" if granted else "del", f"{grant} {event.fingerprint}", "1")]
        case RoomKick() | Part():
            return [("del", f"admitted {event.fingerprint}", "")]
        case RoomBan():
            ban = {"until": event.until, "reason": event.reason, "by": event.by}
            expired = [("del", f"ban {each}", "") for each in event.expired_bans]
            return [
                *expired,
                ("set", f"ban {event.fingerprint}", _dumps(ban)),
                ("del", f"admitted {event.fingerprint}", ""),
                ("del", f"operator {event.fingerprint}", ""),
            ]
        case RoomUnban():
            return [("del", f"ban {event.fingerprint}", "")]
        case RoomMute():
            expired = [("del", f"mute {each}", "") for each in event.expired_mutes]
            return [*expired, ("set", f"mute {event.fingerprint}", _dumps(event.until))]
        case RoomUnmute():
            return [("del", f"mute {event.fingerprint}", "")]
    return []


def room_arguments(event: RoomOwner | RoomMode | RoomKeyEvent | Part) -> list[str]:
    """The commit script's arguments for a room event: the room, how many writes, the writes."""
    writes = room_writes(event)
    return [event.room, str(len(writes)), *(part for write in writes for part in write)]


async def load_rooms(connection: Any, prefix: str, store: MemoryStore) -> None:
    """Every room's roles and rules into a replica."""
    for room in await connection.smembers(f"{prefix}rooms_state"):
        for name, value in (await connection.hgetall(f"{prefix}room:{room}")).items():
            field, _, fingerprint = name.partition(" ")
            if field == "owner":
                store.set_room_owner(room, value)
            elif field == "invite_only":
                store.set_invite_only(room, value == "1")
            elif field in GRANT_FIELDS:
                store.set_room_grant(room, fingerprint, GRANT_FIELDS[field], True)
            elif field == "ban":
                ban = json.loads(value)
                store.set_room_ban(room, Ban(fingerprint, ban["until"], ban["reason"], ban["by"]))
            elif field == "mute":
                store.set_room_mute(room, fingerprint, json.loads(value))
