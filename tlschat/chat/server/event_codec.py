"""The one codec of the cluster's events: the JSON object of each (its "type", then its fields),
as a cluster's log keeps it, and back. Pure.

Nothing read is taken on trust: an event from the log is data from another process. An unknown
type, a missing or mistyped field, or a value past its bound is an :class:`EventError`
(``typed_json`` has the rules); the fields the commit script adds are the events' optional ones.
"""

from __future__ import annotations

import json
from typing import Any

from .cluster_events import (
    Allow,
    Away,
    Ban,
    ClusterEvent,
    Deop,
    Encrypt,
    InvitationMade,
    InvitationRevoke,
    InvitationUse,
    Join,
    Kick,
    Mute,
    Nick,
    NodeUp,
    Offline,
    Online,
    Op,
    Part,
    Release,
    RoomBan,
    RoomInvite,
    RoomKick,
    RoomMode,
    RoomMute,
    RoomOp,
    RoomOwner,
    RoomUnban,
    RoomUnmute,
    Snapshot,
    Topic,
    Unban,
    Unmute,
)
from .line_events import (
    DeviceAck,
    DeviceKeys,
    DeviceRemove,
    E2EPrivate,
    KeysClaim,
    KeysUpload,
    Message,
    ToDevice,
)
from .typed_json import MalformedValue, from_json, to_json

# The longest JSON text of an event read from the cluster's log, checked before it is parsed: a
# snapshot of a server with many sessions is the longest any server writes.
MAX_EVENT_TEXT = 256 * 1024 * 1024


class EventError(MalformedValue):
    """Not an event a server of the cluster could have published: the text says why."""


EVENT_TYPES: dict[str, type[ClusterEvent]] = {
    cls.kind: cls
    for cls in (
        Online,
        Offline,
        Join,
        Part,
        Away,
        Nick,
        Topic,
        Message,
        E2EPrivate,
        ToDevice,
        DeviceAck,
        DeviceKeys,
        KeysUpload,
        KeysClaim,
        DeviceRemove,
        Kick,
        Ban,
        Unban,
        Mute,
        Unmute,
        Op,
        Deop,
        Encrypt,
        NodeUp,
        Snapshot,
        RoomOwner,
        RoomMode,
        RoomOp,
        RoomInvite,
        RoomKick,
        RoomBan,
        RoomUnban,
        RoomMute,
        RoomUnmute,
        Allow,
        Release,
        InvitationMade,
        InvitationUse,
        InvitationRevoke,
    )
}


def encode_event(event: ClusterEvent) -> dict[str, Any]:
    """The JSON object of ``event``: its "type", then its fields."""
    encoded: dict[str, Any] = to_json(event)
    return encoded


def decode_event(value: object) -> ClusterEvent:
    """The event a JSON object (parsed) holds; EventError if it holds none."""
    kind = value.get("type") if isinstance(value, dict) else None
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        shown = repr(kind)[:64] if isinstance(kind, str) else "no"
        raise EventError(f"not an event: {shown} type")
    try:
        return from_json(cls, value, f"{kind!r} event")
    except MalformedValue as error:
        raise EventError(str(error)) from None


def event_json(event: ClusterEvent) -> str:
    """``event`` as the cluster's log keeps it: compact JSON, its last character the closing
    brace (the commit script adds fields before it)."""
    return json.dumps(encode_event(event), separators=(",", ":"), ensure_ascii=False)


def event_from_json(text: str) -> ClusterEvent:
    """The event of a log entry's JSON text; EventError if it is not one."""
    if len(text) > MAX_EVENT_TEXT:
        raise EventError(f"an event of {len(text)} characters (at most {MAX_EVENT_TEXT})")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise EventError("not JSON") from None
    return decode_event(value)
