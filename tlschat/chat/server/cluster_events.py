"""The cluster's events: every change that other sessions see, as typed values. Pure.

The chat logic makes one event per change and hands it to ``publish``. One server alone applies
it at once; a cluster's broker commits it to the cluster's log, and every server applies it in the
log's order (``event_codec`` is how an event is written there and read back, ``line_events`` has
the events of chat lines and of the end-to-end layer's directory).

What made an event is in its base: :class:`NodeEvent` (a server), :class:`SessionEvent` (one of
its sessions, which hears the outcome), :class:`ConfirmedEvent` (an operator's change, confirmed
to its maker once it took effect), :class:`PresenceEvent` (a session as its rooms see it). The
fields a cluster's commit script adds to an event are the optional ones, absent from what a
server publishes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, TypedDict, TypeVar

from .typed_json import at_most

# A snapshot lists every session of a server and what it knows of mutes and operators: more
# than one server process holds.
MAX_NODE_ITEMS = 1_000_000


class Origin(TypedDict):
    """The fields of the session that causes an event (``**`` them into it)."""

    node: str
    sid: int


class ConfirmedOrigin(Origin):
    confirm: str


class PresenceOrigin(Origin):
    nick: str
    fingerprint: str
    away: str


# ----- what made an event -----


@dataclass(frozen=True, kw_only=True)
class ClusterEvent:
    """One change. ``eid``: the id the Redis broker gives it when it first commits it, by which
    a copy committed again after a lost connection is known."""

    kind: ClassVar[str]
    eid: str | None = None

    @property
    def origin(self) -> tuple[str, int] | None:
        """The server and the id there of the session that caused it, if one did."""
        return None


@dataclass(frozen=True, kw_only=True)
class NodeEvent(ClusterEvent):
    node: str


@dataclass(frozen=True, kw_only=True)
class SessionEvent(NodeEvent):
    sid: int

    @property
    def origin(self) -> tuple[str, int] | None:
        return self.node, self.sid


@dataclass(frozen=True, kw_only=True)
class ConfirmedEvent(SessionEvent):
    """The operator hears ``confirm`` once every server can have applied it."""

    confirm: str


@dataclass(frozen=True, kw_only=True)
class PresenceEvent(SessionEvent):
    nick: str
    fingerprint: str
    away: str

    def describe(self) -> dict[str, str]:
        return {"nick": self.nick, "fingerprint": self.fingerprint, "away": self.away}


# ----- presence -----


@dataclass(frozen=True, kw_only=True)
class Online(PresenceEvent):
    """A session said hello; with ``claim``, its nick is its key's (the log checks it)."""

    kind = "online"
    connected_at: float
    claim: bool


@dataclass(frozen=True, kw_only=True)
class Offline(PresenceEvent):
    kind = "offline"
    rooms: tuple[str, ...]
    reason: str


@dataclass(frozen=True, kw_only=True)
class Join(PresenceEvent):
    kind = "join"
    room: str


@dataclass(frozen=True, kw_only=True)
class Part(PresenceEvent):
    kind = "part"
    room: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class Away(PresenceEvent):
    """The key's away text (``away``; empty: back)."""

    kind = "away"


@dataclass(frozen=True, kw_only=True)
class Nick(SessionEvent):
    kind = "nick"
    fingerprint: str
    old: str
    new: str


@dataclass(frozen=True, kw_only=True)
class Topic(ClusterEvent):
    """A room's topic, by ``by`` (a nick). It names no session: one the log refuses (while it
    is unreachable) is not reported to its setter."""

    kind = "topic"
    room: str
    topic: str
    by: str


# ----- moderation -----


@dataclass(frozen=True, kw_only=True)
class Kick(ConfirmedEvent):
    kind = "kick"
    fingerprint: str
    text: str


@dataclass(frozen=True, kw_only=True)
class Ban(ConfirmedEvent):
    kind = "ban"
    fingerprint: str
    until: float | None
    reason: str
    by: str
    text: str


@dataclass(frozen=True, kw_only=True)
class Unban(ConfirmedEvent):
    kind = "unban"
    fingerprint: str


@dataclass(frozen=True, kw_only=True)
class Mute(ConfirmedEvent):
    kind = "mute"
    fingerprint: str
    until: float | None
    text: str


@dataclass(frozen=True, kw_only=True)
class Unmute(ConfirmedEvent):
    kind = "unmute"
    fingerprint: str
    text: str


@dataclass(frozen=True, kw_only=True)
class Op(ConfirmedEvent):
    kind = "op"
    fingerprint: str
    text: str


@dataclass(frozen=True, kw_only=True)
class Deop(ConfirmedEvent):
    kind = "deop"
    fingerprint: str


@dataclass(frozen=True, kw_only=True)
class Encrypt(ConfirmedEvent):
    kind = "encrypt"
    room: str
    by: str


# ----- the servers of the cluster -----


@dataclass(frozen=True, kw_only=True)
class NodeUp(NodeEvent):
    """A server (re)joined the log: the others answer with their snapshots."""

    kind = "node_up"


@dataclass(frozen=True, kw_only=True)
class SnapshotSession:
    sid: int
    nick: str
    fingerprint: str
    away: str
    rooms: tuple[str, ...]
    connected_at: float
    last_active: float


@dataclass(frozen=True, kw_only=True)
class Snapshot(NodeEvent):
    """Who is on a server, and the mutes and operators it knows of."""

    kind = "snapshot"
    sessions: tuple[SnapshotSession, ...] = field(metadata=at_most(MAX_NODE_ITEMS))
    mutes: dict[str, float | None] = field(metadata=at_most(MAX_NODE_ITEMS))
    operators: tuple[str, ...] = field(metadata=at_most(MAX_NODE_ITEMS))


# ----- rooms' roles and rules -----


@dataclass(frozen=True, kw_only=True)
class RoomOwner(ClusterEvent):
    """A key claims a room without an owner: the first claim in the log's order wins."""

    kind = "room_owner"
    room: str
    fingerprint: str


@dataclass(frozen=True, kw_only=True)
class RoomMode(ConfirmedEvent):
    """Invite-only (``members``: the keys in it then), or open again."""

    kind = "room_mode"
    room: str
    invite_only: bool
    by: str
    members: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RoomKeyEvent(ConfirmedEvent):
    """A change to one key's standing in one room."""

    room: str
    fingerprint: str


@dataclass(frozen=True, kw_only=True)
class RoomOp(RoomKeyEvent):
    kind = "room_op"
    operator: bool
    text: str


@dataclass(frozen=True, kw_only=True)
class RoomInvite(RoomKeyEvent):
    kind = "room_invite"
    invited: bool
    text: str


@dataclass(frozen=True, kw_only=True)
class RoomKick(RoomKeyEvent):
    """``text`` to the key, ``leave`` (the reason) to the room."""

    kind = "room_kick"
    text: str
    leave: str


@dataclass(frozen=True, kw_only=True)
class RoomBan(RoomKeyEvent):
    """As a kick, and the ban; ``expired_bans``: the room's bans that had run out."""

    kind = "room_ban"
    until: float | None
    reason: str
    by: str
    text: str
    leave: str
    expired_bans: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class RoomUnban(RoomKeyEvent):
    kind = "room_unban"


@dataclass(frozen=True, kw_only=True)
class RoomMute(RoomKeyEvent):
    kind = "room_mute"
    until: float | None
    text: str
    expired_mutes: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class RoomUnmute(RoomKeyEvent):
    kind = "room_unmute"
    text: str


# ----- administration and invitations -----


@dataclass(frozen=True, kw_only=True)
class Allow(ConfirmedEvent):
    """/allow or /disallow (``text``: the ``bye`` of a disallowed key's sessions)."""

    kind = "allow"
    fingerprint: str
    allowed: bool
    text: str | None = None


@dataclass(frozen=True, kw_only=True)
class Release(ConfirmedEvent):
    """/release; while the owner is online, its sessions become ``fallback``, told ``text``."""

    kind = "release"
    nick: str
    fingerprint: str
    fallback: str | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        if (self.fallback is None) != (self.text is None):
            raise ValueError("'fallback' and 'text' come together")


@dataclass(frozen=True, kw_only=True)
class InvitationMade(NodeEvent):
    """An invitation kept (its secret's digest: the secret is in no event), made by an
    operator's session, or by ``tlschat invite`` (no ``sid``)."""

    kind = "invitation"
    sid: int | None = None
    id: str
    digest: str
    made_by: str
    made_at: float
    expires_at: float

    @property
    def origin(self) -> tuple[str, int] | None:
        return None if self.sid is None else (self.node, self.sid)


@dataclass(frozen=True, kw_only=True)
class InvitationUse(SessionEvent):
    kind = "invitation_use"
    id: str
    fingerprint: str
    at: float


@dataclass(frozen=True, kw_only=True)
class InvitationRevoke(ConfirmedEvent):
    kind = "invitation_revoke"
    id: str
    at: float


E = TypeVar("E", bound=ClusterEvent)
S = TypeVar("S")
R = TypeVar("R")


# Handlers by event class, each of which takes the server and an event of its class.
HandlerTable = dict[type[ClusterEvent], Callable[[S, ClusterEvent], R]]


def handler(
    kind: type[E], apply: Callable[[S, E], R]
) -> tuple[type[ClusterEvent], Callable[[S, ClusterEvent], R]]:
    """An entry of a table of handlers by event class, whose ``apply`` takes that class (a table
    is looked up by ``type(event)``)."""

    def checked(server: S, event: ClusterEvent) -> R:
        if not isinstance(event, kind):
            raise TypeError(f"a {kind.__name__} handler given a {type(event).__name__}")
        return apply(server, event)

    return kind, checked
