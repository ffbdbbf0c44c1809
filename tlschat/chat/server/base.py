"""The server's state and the lookups every part of it uses: who is where, what a room is."""

from __future__ import annotations

from typing import Any

from ...store.base import Store, StoredMessage
from ..frames import (
    FrameError,
)
from ..limits import TokenBucket
from ..presence import Announcement, PresenceLimiter, presence_frames
from ..runs import split_run
from .cluster_events import ClusterEvent, ConfirmedOrigin, Origin, PresenceOrigin, SessionEvent
from .model import (
    FINGERPRINT_PATTERN,
    ChatSettings,
    Member,
    Outgoing,
    Publish,
    RemoteSession,
    Session,
    TooFast,
)
from .replies import bye_frame
from .room_index import RoomIndex
from .stored import relayed_frame


class ServerBase:
    """Everyone connected to this server process, and the rooms they share (with the sessions of
    the other servers of a cluster)."""

    def __init__(
        self,
        settings: ChatSettings,
        store: Store,
        node: str,
        publish: Publish,
        *,
        network: str,
    ) -> None:
        self.settings = settings
        self.store = store
        # The fingerprint of the server's key, shared by every server of a cluster: the network
        # every chat line must be signed for.
        self.network = network
        self.node = node
        self.publish = publish
        self.sessions: dict[int, Session] = {}
        self.remote: dict[tuple[str, int], RemoteSession] = {}
        self.topics: dict[str, str] = store.topics()
        # The rooms made end-to-end encrypted (for good), as the store has them.
        self.encrypted_rooms: set[str] = store.encrypted_rooms()
        self.runtime_operators: set[str] = set()
        self.mutes: dict[str, float | None] = {}
        self.buckets: dict[str, TokenBucket] = {}
        self.work_buckets: dict[str, TokenBucket] = {}
        # (sender, counter) -> (target, tag) of the messages committed lately, oldest first: the
        # same message sent again after a lost connection is acknowledged, not refused as a
        # replay. The tag is the signature, or an encrypted line's digest (``stored``).
        self.recently_committed: dict[tuple[str, int], tuple[str, str]] = {}
        # (sender, counter) of the messages published and not yet applied or refused: a copy
        # sent again meanwhile (a client tired of waiting) waits for the first one's outcome.
        self.awaiting: set[tuple[str, int]] = set()
        # (sender, counter, tag) -> refusal of the messages refused lately for good (not by flood
        # control): a copy sent again gets the same answer, whatever changed since. By tag, as a
        # line refused and encrypted again keeps its counter: each version keeps its answer.
        self.recently_refused: dict[tuple[str, int, str], dict[str, Any]] = {}
        # Set while a cluster's broker cannot reach its log: nothing said can be delivered.
        self.degraded = False
        self.presence = PresenceLimiter(settings.presence_rate, settings.presence_burst)
        # Sessions of each key in each room, for every session of the cluster: kept by
        # _enter and _exit, which every change of a session's rooms goes through.
        self.room_index: RoomIndex[Session] = RoomIndex()
        # Of each large room, the keys its members saw speak (and so were told of): their leaves
        # are told to every member (``_tell_presence``).
        self.visible: dict[str, set[str]] = {}
        # The latest time passed in: events applied from a cluster's log carry none.
        self.now = 0.0
        self.swept_at = 0.0

    def is_operator(self, fingerprint: str) -> bool:
        return fingerprint in self.settings.operators or fingerprint in self.runtime_operators

    def _members(self, room: str) -> list[Session]:
        """This server's sessions in ``room``: the ones it delivers to."""
        return self.room_index.local(room)

    def _everyone(self) -> list[Member]:
        """Every session of the cluster that said hello: this server's, then the others'."""
        local: list[Member] = [s for s in self.sessions.values() if s.said_hello]
        return local + list(self.remote.values())

    def _cluster_members(self, room: str) -> list[Member]:
        return [m for m in self._everyone() if room in m.rooms]

    def _to_room(
        self, room: str, frame: dict[str, Any], exclude: int | None = None
    ) -> list[Outgoing]:
        return [(s.session_id, frame) for s in self._members(room) if s.session_id != exclude]

    def _announce(self, room: str, fingerprint: str, frame: dict[str, Any]) -> list[Outgoing]:
        """A join or leave of ``fingerprint``'s key, told to the room's other members now or
        once the room's presence budget allows (``tick``)."""
        if not self.presence.announce(room, fingerprint, frame, self.now):
            return []
        return self._tell_presence(room, [Announcement(room, fingerprint, frame)])

    def _tell_presence(self, room: str, changes: list[Announcement]) -> list[Outgoing]:
        """Tell ``room``'s members of ``changes``: one change as its own 'join' or 'leave' frame
        (not to the key's own sessions), several as a 'presence' run. In a large room only the
        changes of keys its members saw speak go to all; the others only to its watchers."""
        large = self._is_large(room)
        visible = self.visible.setdefault(room, set())
        shown = [c for c in changes if not large or c.fingerprint in visible]
        full, partial = presence_frames(room, changes), presence_frames(room, shown)
        out: list[Outgoing] = []
        for session in self._members(room):
            told = changes if not large or room in session.watching else shown
            if len(told) == 1 and told[0].fingerprint == session.fingerprint:
                continue
            out += [(session.session_id, frame) for frame in (full if told is changes else partial)]
        for change in changes:
            if change.frame["type"] == "leave":
                visible.discard(change.fingerprint)
        if not visible:
            del self.visible[room]
        return out

    def _seen_speaking(self, room: str, member: Member) -> list[Outgoing]:
        """A key speaks in a large room its members were not told it joined (IRC's delayed
        join): they are told now, before its line."""
        if member.fingerprint in self.visible.get(room, ()):
            return []
        if not self._is_large(room):
            return []
        self.visible.setdefault(room, set()).add(member.fingerprint)
        join = {"type": "join", "room": room, **member.describe()}
        return [
            (s.session_id, join)
            for s in self._members(room)
            if room not in s.watching and s.fingerprint != member.fingerprint
        ]

    def _is_large(self, room: str) -> bool:
        """Whether more than ``large_room`` keys are in ``room``. An end-to-end encrypted room
        never is: its members' clients share its keys with every member's devices, so each
        needs the whole list."""
        if room in self.encrypted_rooms:
            return False
        return self.room_index.keys(room) > self.settings.large_room

    def _sessions_of(self, fingerprint: str) -> list[Session]:
        return [s for s in self.sessions.values() if s.said_hello and s.fingerprint == fingerprint]

    def _online_of(self, fingerprint: str) -> list[Member]:
        """The sessions of ``fingerprint`` anywhere in the cluster."""
        return [m for m in self._everyone() if m.fingerprint == fingerprint]

    def _online_by_nick(self, nick: str) -> list[Member]:
        folded = nick.casefold()
        return [m for m in self._everyone() if m.nick.casefold() == folded]

    def _resolve(self, who: str) -> str | None:
        """A nick (online or registered) or a fingerprint -> fingerprint."""
        if FINGERPRINT_PATTERN.fullmatch(who):
            return who
        online = self._online_by_nick(who)
        if online:
            return online[0].fingerprint
        return self.store.nick_owner(who)

    def _bye(self, session_id: int, reason: str) -> list[Outgoing]:
        if session_id in self.sessions:
            self.sessions[session_id].dismissed = True
        return [(session_id, bye_frame(reason))]

    def _joined(self, session_id: int, room: str) -> list[Outgoing]:
        """What a session is told when its join took effect: the room, then its history."""
        return self._room_told(session_id, room) + self._history(session_id, room)

    def _room_told(self, session_id: int, room: str) -> list[Outgoing]:
        """'joined': the room and its members, over as many frames as they need; of a large
        room only how many they are (the client asks for the list when it shows it)."""
        head = {"type": "joined", **self._room_state(room)}
        if self._is_large(room):
            lazy = {**head, "member_count": self.room_index.keys(room), "members": [], "lazy": True}
            return [(session_id, lazy)]
        members = self._room_members(room)
        head["member_count"] = len(members)
        frames = split_run(head, "members", members, ("room",), continuation="members")
        return [(session_id, frame) for frame in frames]

    def _room_members(self, room: str) -> list[dict[str, str]]:
        """A room's members, one entry per key."""
        return list({m.fingerprint: m.describe() for m in self._cluster_members(room)}.values())

    def _history(self, session_id: int, room: str) -> list[Outgoing]:
        """The room's newest lines, with whether older ones are stored (scrollback)."""
        limit = self.settings.history_limit
        if limit <= 0:
            return []
        history = self.store.recent_messages(room, limit + 1)
        if not history:
            return []
        return self._history_run(session_id, room, history[-limit:], len(history) > limit)

    def _history_run(
        self,
        session_id: int,
        room: str,
        messages: list[StoredMessage],
        older: bool,
        before: str = "",
    ) -> list[Outgoing]:
        head: dict[str, Any] = {"type": "history", "room": room}
        if before:
            head["before"] = before
        if older:
            head["older"] = True
        lines = [self._stored_frame(m) for m in messages]
        return [(session_id, frame) for frame in split_run(head, "messages", lines, ("room",))]

    def _key_in_room(self, fingerprint: str, room: str, exclude: tuple[str, int]) -> bool:
        """Whether a session of ``fingerprint`` other than ``exclude`` (node, session id) is in
        ``room``: presence is per key, so a second device joining or leaving is not news."""
        excluded = self._member_at(exclude)
        inside = excluded is not None and room in excluded.rooms
        return self.room_index.sessions(room, fingerprint) > (1 if inside else 0)

    def _member_at(self, address: tuple[str, int]) -> Member | None:
        if address[0] == self.node:
            return self.sessions.get(address[1])
        return self.remote.get(address)

    def _enter(self, member: Member, room: str) -> None:
        member.rooms.append(room)
        self.room_index.enter(room, member.fingerprint)
        if isinstance(member, Session):
            self.room_index.enter_local(room, member.session_id, member)

    def _exit(self, member: Member, room: str) -> None:
        member.rooms.remove(room)
        self.room_index.leave(room, member.fingerprint)
        if isinstance(member, Session):
            self.room_index.leave_local(room, member.session_id)

    def _exit_all(self, member: Member) -> None:
        """``member`` is gone (disconnected, or its server said so): out of every room."""
        for room in member.rooms:
            self.room_index.leave(room, member.fingerprint)
            if isinstance(member, Session):
                self.room_index.leave_local(room, member.session_id)

    def _sender_of(self, event: ClusterEvent) -> int | None:
        """The session id of this server's session that caused ``event``, if any."""
        origin = event.origin
        return origin[1] if origin is not None and origin[0] == self.node else None

    def _remote_sender(self, event: SessionEvent) -> RemoteSession | None:
        """The other server's session that caused ``event``, if known."""
        if event.node == self.node:
            return None
        return self.remote.get((event.node, event.sid))

    def _origin(self, session: Session) -> Origin:
        """The origin of an event ``session`` causes."""
        return {"node": self.node, "sid": session.session_id}

    def _confirmed(self, session: Session, done: str) -> ConfirmedOrigin:
        """The origin of an operator's change: ``done`` is what the operator hears once it took
        effect."""
        return {**self._origin(session), "confirm": done}

    def _presence(self, session: Session) -> PresenceOrigin:
        """The origin of a presence event of ``session``: also who it is."""
        return {
            **self._origin(session),
            "nick": session.nick,
            "fingerprint": session.fingerprint,
            "away": session.away,
        }

    def _address(self, member: Member) -> tuple[str, int]:
        node = member.node if isinstance(member, RemoteSession) else self.node
        return node, member.session_id

    def _room_state(self, room: str) -> dict[str, Any]:
        """What 'joined' says of a room besides its members."""
        state: dict[str, Any] = {"room": room, "topic": self.topics.get(room, "")}
        if room in self.encrypted_rooms:
            state["encrypted"] = True
        return state

    def _stored_frame(self, message: StoredMessage) -> dict[str, Any]:
        return relayed_frame(message, self.network)

    def _refuse_if_muted(self, session: Session, now: float) -> None:
        """A muted key is silent to others: no topic, nick or away text from it either."""
        if self._muted_until(session.fingerprint, now) is not None:
            raise FrameError("you are muted")

    def _muted_until(self, fingerprint: str, now: float) -> float | None:
        if fingerprint not in self.mutes:
            return None
        until = self.mutes[fingerprint]
        if until is None:
            return float("inf")
        if until <= now:
            del self.mutes[fingerprint]
            return None
        return until

    def _charge(self, session: Session, cost: int, now: float) -> None:
        """Take ``cost`` from the key's work budget (shared by its sessions), or refuse."""
        bucket = self.work_buckets.setdefault(
            session.fingerprint, TokenBucket(self.settings.work_rate, self.settings.work_burst)
        )
        wait = bucket.take(now, cost)
        if wait > 0:
            raise TooFast(wait)
