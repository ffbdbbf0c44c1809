"""The server's chat logic: sessions, rooms, private messages, history, moderation. Pure.

Time is passed in and every call returns the frames to send as ``(session_id, frame)`` pairs;
the asyncio glue only delivers them. A ``bye`` frame tells the glue to close that session after
sending it. Persistence goes through the :class:`~tlschat.store.base.Store` interface.

Every change that other sessions see — presence, messages, nicks, topics, moderation — is an
*event* handed to ``publish``. One server alone applies it at once (:meth:`ChatServer.apply`,
the default). In a cluster the broker commits it to the cluster's log and every server applies
it in the log's order, for its own sessions; the sessions of the other servers are known
through those events as :class:`RemoteSession`.
"""

from __future__ import annotations

from ...store.base import Ban, Store
from .cluster_events import (
    Allow,
    Away,
    ClusterEvent,
    ConfirmedEvent,
    Deop,
    Encrypt,
    HandlerTable,
    Join,
    Kick,
    Mute,
    Nick,
    NodeUp,
    Offline,
    Online,
    Op,
    Part,
    PresenceEvent,
    Release,
    Snapshot,
    SnapshotSession,
    Topic,
    Unban,
    Unmute,
    handler,
)
from .cluster_events import Ban as BanEvent
from .invitations import INVITATION_EVENTS
from .line_events import (
    CommittedLine,
    DeviceAck,
    DeviceKeys,
    DeviceRemove,
    E2EPrivate,
    KeysClaim,
    KeysUpload,
    Message,
    ToDevice,
)
from .model import (
    DEFAULT_ROOM,
    DEGRADED_NOTICE,
    RESTORED_NOTICE,
    RESYNCHRONISED_NOTICE,
    ChatSettings,
    Outgoing,
    Publish,
    RemoteSession,
)
from .replies import error_frame, notice_frame, sent_frame
from .room_roles import ROOM_EVENTS
from .sessions import ServerSessions
from .stored import event_tag, stored_message


class ChatServer(ServerSessions):
    """The chat logic of one server process: its sessions (:class:`ServerSessions` and the layers
    below it), and the events of every server of a cluster applied in the log's order."""

    def __init__(
        self,
        settings: ChatSettings,
        store: Store,
        node: str = "local",
        publish: Publish | None = None,
        *,
        network: str,
    ) -> None:
        # One server alone applies each event as it is published.
        super().__init__(
            settings, store, node, publish if publish is not None else self.apply, network=network
        )

    def apply(self, event: ClusterEvent) -> list[Outgoing]:
        """Apply one committed event; returns the frames for this server's sessions."""
        self._settled(event)
        out = EVENT_HANDLERS[type(event)](self, event)
        sender = self._sender_of(event)
        if isinstance(event, ConfirmedEvent) and sender in self.sessions:
            out.append((sender, notice_frame(event.confirm)))
        return out

    def rejected(self, event: ClusterEvent, reason: str) -> list[Outgoing]:
        """The broker refused ``event`` (the log knew better: a nick taken or a counter used
        meanwhile on another server, or the log was unreachable): tell the session it came from."""
        self._settled(event)
        if type(event) in INVITATION_EVENTS:
            return self._invitation_rejected(event, reason)
        session_id = self._sender_of(event)
        if session_id is None or session_id not in self.sessions:
            return []
        if isinstance(event, CommittedLine):
            message = event.message
            refusal = {**error_frame(reason), "counter": message.counter}
            self._remember_refused(message.sender, message.counter, event_tag(event), refusal)
            return [(session_id, refusal)]
        if isinstance(event, Online):
            session = self.sessions[session_id]
            if session.claiming:
                return self._claim_again(session, event.nick, reason)
            return self._bye(session_id, reason)
        if isinstance(event, DeviceKeys):
            text = f"device keys not stored: {reason}; this session has no end-to-end encryption"
            return [(session_id, error_frame(text))]
        return [(session_id, error_frame(reason))]

    def _settled(self, event: ClusterEvent) -> None:
        if isinstance(event, CommittedLine) and event.node == self.node:
            self.awaiting.discard((event.message.sender, event.message.counter))

    def snapshot(self) -> Snapshot:
        """Who is on this server, for a server that joins the cluster (or rejoins its log)."""
        return Snapshot(
            node=self.node,
            sessions=tuple(
                SnapshotSession(
                    sid=s.session_id,
                    nick=s.nick,
                    fingerprint=s.fingerprint,
                    away=s.away,
                    rooms=tuple(s.rooms),
                    connected_at=s.connected_at,
                    last_active=s.last_active,
                )
                for s in self.sessions.values()
                if s.said_hello
            ),
            mutes=dict(self.mutes),
            operators=tuple(sorted(self.runtime_operators)),
        )

    def node_lost(self, node: str) -> list[Outgoing]:
        """Another server stopped answering: its sessions are gone."""
        return self._replace_node(node, (), "server lost")

    def resynchronised(self) -> list[Outgoing]:
        """The cluster's log lost entries this server had not applied (Redis lost them, or
        trimmed them while this server was cut off): every session is sent its rooms' history
        again, of which its client shows the lines it missed, and its device's inbox."""
        out: list[Outgoing] = []
        for session in self.sessions.values():
            if session.said_hello:
                out.append((session.session_id, notice_frame(RESYNCHRONISED_NOTICE)))
                for room in session.rooms:
                    out += self._history(session.session_id, room)
                out += self._device_resynchronised(session)
        return out

    def set_degraded(self, degraded: bool) -> list[Outgoing]:
        """The cluster's log became unreachable (or reachable again): tell every session."""
        if degraded == self.degraded:
            return []
        self.degraded = degraded
        text = DEGRADED_NOTICE if degraded else RESTORED_NOTICE
        frame = {**notice_frame(text), "degraded": degraded}
        return [(s.session_id, frame) for s in self.sessions.values() if s.said_hello]

    def _remote_of(self, event: PresenceEvent) -> RemoteSession | None:
        """The other server's session named by ``event`` (made if its 'online' was missed)."""
        node, session_id = event.node, event.sid
        if node == self.node:
            return None
        remote = self.remote.get((node, session_id))
        if remote is None:
            remote = RemoteSession(
                node, session_id, event.fingerprint, event.nick, 0.0, 0.0, [], event.away
            )
            self.remote[(node, session_id)] = remote
        return remote

    def _apply_online(self, event: Online) -> list[Outgoing]:
        fingerprint, nick = event.fingerprint, event.nick
        address = (event.node, event.sid)
        out: list[Outgoing] = []
        if event.claim:
            self.store.register_nick(nick, fingerprint)
            # A key holds one nick at a time: if its other sessions hold another (a /nick or
            # another session's claim raced with this one), the log's order decides: this one.
            stale = [
                m.nick
                for m in self._online_of(fingerprint)
                if self._address(m) != address and m.nick != nick
            ]
            if stale:
                own = address[1] if address[0] == self.node else None
                renamed = self._renamed(fingerprint, stale[0], nick)
                out = [item for item in renamed if item[0] != own]
        remote = self._remote_of(event)
        if remote is not None:
            # A snapshot may have named the nick this session claimed before a refusal.
            remote.nick = nick
            remote.connected_at = remote.last_active = event.connected_at
            return out
        session = self.sessions.get(address[1])
        if session is None or not session.claiming:
            return out
        # Its nick is its key's now: it joins #general, then what it sent meanwhile is acted on.
        session.nick = nick
        session.claiming = False
        out += self._join(session, DEFAULT_ROOM)
        held, session.held = session.held, []
        for frame, now in held:
            out += self.receive(session.session_id, frame, now)
        return out

    def _apply_offline(self, event: Offline) -> list[Outgoing]:
        address = (event.node, event.sid)
        gone = self.remote.pop(address, None)
        if gone is not None:
            self._exit_all(gone)
        return self._left(event.describe(), event.reason, event.rooms, address)

    def _left(
        self, who: dict[str, str], reason: str, rooms: tuple[str, ...], address: tuple[str, int]
    ) -> list[Outgoing]:
        """Tell each of ``rooms`` that ``who`` (as ``describe`` has it) left, unless the key is
        still there elsewhere."""
        out: list[Outgoing] = []
        for room in rooms:
            if self._key_in_room(who["fingerprint"], room, address):
                continue
            leave = {"type": "leave", "room": room, **who, "reason": reason}
            out += self._announce(room, who["fingerprint"], leave)
        return out

    def _apply_join(self, event: Join) -> list[Outgoing]:
        turned_away = self._turned_away(event)
        if turned_away is not None:
            return turned_away
        room = event.room
        remote = self._remote_of(event)
        if remote is not None and room not in remote.rooms:
            self._enter(remote, room)
        # The joiner hears that it joined only now that every server can know it: a user it tells
        # to join too (on another server) finds it in the room.
        sender = self._sender_of(event)
        out: list[Outgoing] = []
        session = self.sessions.get(sender) if sender is not None else None
        if session is not None and room in session.joining:
            session.joining.remove(room)
            self._enter(session, room)
            out = self._joined(session.session_id, room)
        address = (event.node, event.sid)
        if self._key_in_room(event.fingerprint, room, address):
            return out
        join = {"type": "join", "room": room, **event.describe()}
        return out + self._announce(room, event.fingerprint, join)

    def _apply_part(self, event: Part) -> list[Outgoing]:
        self._parted_for_good(event)
        remote = self._remote_of(event)
        if remote is not None and event.room in remote.rooms:
            self._exit(remote, event.room)
        sender = self._sender_of(event)
        out: list[Outgoing] = []
        if sender in self.sessions:
            out.append((event.sid, {"type": "parted", "room": event.room}))
        address = (event.node, event.sid)
        return out + self._left(event.describe(), event.reason, (event.room,), address)

    def _apply_message(self, event: Message) -> list[Outgoing]:
        relayed = event.message
        room = relayed.target
        self._remember_committed(relayed, event_tag(event))
        self.store.append_message(stored_message(relayed))
        remote = self._remote_sender(event)
        if remote is not None:
            remote.last_active = relayed.ts / 1000
        sender = self._sender_of(event)
        speaker = self.sessions.get(sender) if sender is not None else remote
        out = self._seen_speaking(room, speaker) if speaker is not None else []
        out += self._to_room(room, relayed.frame(), exclude=sender)
        if sender in self.sessions:
            out.append((event.sid, sent_frame(room, relayed.counter)))
        return out

    def _apply_nick(self, event: Nick) -> list[Outgoing]:
        self.store.register_nick(event.new, event.fingerprint)
        return self._renamed(event.fingerprint, event.old, event.new)

    def _apply_away(self, event: Away) -> list[Outgoing]:
        """Mark every session of the key, and tell the people who share a room with it."""
        sessions = self._online_of(event.fingerprint)
        for each in sessions:
            each.away = event.away
        sender = self._sender_of(event)
        out: list[Outgoing] = []
        if sender in self.sessions:
            text = f"You are marked away: {event.away}" if event.away else "You are back"
            out.append((event.sid, notice_frame(text)))
        frame = {"type": "away", **event.describe()}
        rooms = {room for each in sessions for room in each.rooms}
        told = {s.session_id for room in rooms for s in self._members(room)}
        return out + [(target, frame) for target in sorted(told)]

    def _apply_topic(self, event: Topic) -> list[Outgoing]:
        room = event.room
        self.topics[room] = event.topic
        self.store.set_topic(room, event.topic)
        frame = {"type": "topic", "room": room, "topic": event.topic, "by": event.by}
        return self._to_room(room, frame)

    def _apply_kick(self, event: Kick) -> list[Outgoing]:
        return self._kick_key(event.fingerprint, event.text)

    def _kick_key(self, fingerprint: str, text: str) -> list[Outgoing]:
        out: list[Outgoing] = []
        for target in self._sessions_of(fingerprint):
            out += self._bye(target.session_id, text)
        return out

    def _apply_ban(self, event: BanEvent) -> list[Outgoing]:
        self.store.add_ban(Ban(event.fingerprint, event.until, event.reason, event.by))
        return self._kick_key(event.fingerprint, event.text)

    def _apply_unban(self, event: Unban) -> list[Outgoing]:
        self.store.remove_ban(event.fingerprint)
        return []

    def _tell(self, fingerprint: str, text: str) -> list[Outgoing]:
        return [(s.session_id, notice_frame(text)) for s in self._sessions_of(fingerprint)]

    def _apply_mute(self, event: Mute) -> list[Outgoing]:
        self.mutes[event.fingerprint] = event.until
        return self._tell(event.fingerprint, event.text)

    def _apply_unmute(self, event: Unmute) -> list[Outgoing]:
        self.mutes.pop(event.fingerprint, None)
        return self._tell(event.fingerprint, event.text)

    def _apply_op(self, event: Op) -> list[Outgoing]:
        self.runtime_operators.add(event.fingerprint)
        return self._tell(event.fingerprint, event.text)

    def _apply_deop(self, event: Deop) -> list[Outgoing]:
        self.runtime_operators.discard(event.fingerprint)
        return []

    def _apply_node_up(self, event: NodeUp) -> list[Outgoing]:
        """A server (re)joined the log: tell it who is here; its own snapshot follows."""
        if event.node == self.node:
            return []
        return self.publish(self.snapshot())

    def _apply_snapshot(self, event: Snapshot) -> list[Outgoing]:
        if event.node == self.node:
            return []
        for fingerprint, until in event.mutes.items():
            self.mutes.setdefault(fingerprint, until)
        self.runtime_operators.update(event.operators)
        return self._replace_node(event.node, event.sessions, "server lost")

    def _replace_node(
        self, node: str, sessions: tuple[SnapshotSession, ...], reason: str
    ) -> list[Outgoing]:
        """Make ``sessions`` the whole of ``node``'s; the ones that vanished have left."""
        listed = {s.sid for s in sessions}
        out: list[Outgoing] = []
        for (owner, session_id), remote in list(self.remote.items()):
            if owner == node and session_id not in listed:
                del self.remote[(owner, session_id)]
                self._exit_all(remote)
                rooms = tuple(remote.rooms)
                out += self._left(remote.describe(), reason, rooms, (owner, session_id))
        for item in sessions:
            replaced = self.remote.get((node, item.sid))
            if replaced is not None:
                self._exit_all(replaced)
            remote = RemoteSession(
                node, item.sid, item.fingerprint, item.nick, item.connected_at, item.last_active
            )
            self.remote[(node, item.sid)] = remote
            for room in item.rooms:
                self._enter(remote, room)
        return out


# The events, by class (the room and invitation events' handlers are in their layers).
EVENT_HANDLERS: HandlerTable[ChatServer, list[Outgoing]] = {
    **dict(
        (
            handler(Online, ChatServer._apply_online),
            handler(Offline, ChatServer._apply_offline),
            handler(Join, ChatServer._apply_join),
            handler(Part, ChatServer._apply_part),
            handler(Message, ChatServer._apply_message),
            handler(Nick, ChatServer._apply_nick),
            handler(Away, ChatServer._apply_away),
            handler(Topic, ChatServer._apply_topic),
            handler(Kick, ChatServer._apply_kick),
            handler(BanEvent, ChatServer._apply_ban),
            handler(Unban, ChatServer._apply_unban),
            handler(Mute, ChatServer._apply_mute),
            handler(Unmute, ChatServer._apply_unmute),
            handler(Op, ChatServer._apply_op),
            handler(Deop, ChatServer._apply_deop),
            handler(NodeUp, ChatServer._apply_node_up),
            handler(Snapshot, ChatServer._apply_snapshot),
            handler(DeviceKeys, ChatServer._apply_device),
            handler(KeysUpload, ChatServer._apply_keys_upload),
            handler(KeysClaim, ChatServer._apply_claim),
            handler(DeviceRemove, ChatServer._apply_device_remove),
            handler(ToDevice, ChatServer._apply_to_device),
            handler(DeviceAck, ChatServer._apply_device_ack),
            handler(E2EPrivate, ChatServer._apply_e2e_private),
            handler(Encrypt, ChatServer._apply_encrypt),
            handler(Allow, ChatServer._apply_allow),
            handler(Release, ChatServer._apply_release),
        )
    ),
    **ROOM_EVENTS,
    **INVITATION_EVENTS,
}
