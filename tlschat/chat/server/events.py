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

from collections.abc import Callable

from ...store.base import Ban, Store
from .invitations import INVITATION_EVENTS
from .model import (
    DEFAULT_ROOM,
    DEGRADED_NOTICE,
    RESTORED_NOTICE,
    RESYNCHRONISED_NOTICE,
    ChatSettings,
    Event,
    Outgoing,
    Publish,
    RemoteSession,
)
from .replies import error_frame, notice_frame, sent_frame
from .room_roles import ROOM_EVENTS
from .sessions import ServerSessions
from .stored import event_tag, stored_message

# The events that commit a chat line: a copy of one is answered by its outcome.
LINES = ("message", "e2e_private")


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

    def apply(self, event: Event) -> list[Outgoing]:
        """Apply one committed event; returns the frames for this server's sessions."""
        self._settled(event)
        handler = EVENT_HANDLERS.get(str(event.get("type")))
        out = handler(self, event) if handler is not None else []
        sender = self._sender_of(event)
        if "confirm" in event and sender in self.sessions:
            out.append((sender, notice_frame(str(event["confirm"]))))
        return out

    def rejected(self, event: Event, reason: str) -> list[Outgoing]:
        """The broker refused ``event`` (the log knew better: a nick taken or a counter used
        meanwhile on another server, or the log was unreachable): tell the session it came from."""
        self._settled(event)
        if event.get("type") in INVITATION_EVENTS:
            return self._invitation_rejected(event, reason)
        session_id = event.get("sid")
        if event.get("node") != self.node or session_id not in self.sessions:
            return []
        assert isinstance(session_id, int)
        if event["type"] in LINES:
            message = event["message"]
            refusal = {**error_frame(reason), "counter": message["counter"]}
            self._remember_refused(message["sender"], message["counter"], event_tag(event), refusal)
            return [(session_id, refusal)]
        if event["type"] == "online":
            session = self.sessions[session_id]
            if session.claiming:
                return self._claim_again(session, str(event["nick"]), reason)
            return self._bye(session_id, reason)
        if event["type"] == "device":
            text = f"device keys not stored: {reason}; this session has no end-to-end encryption"
            return [(session_id, error_frame(text))]
        return [(session_id, error_frame(reason))]

    def _settled(self, event: Event) -> None:
        if event.get("type") in LINES and event.get("node") == self.node:
            message = event["message"]
            self.awaiting.discard((message["sender"], message["counter"]))

    def snapshot(self) -> Event:
        """Who is on this server, for a server that joins the cluster (or rejoins its log)."""
        return {
            "type": "snapshot",
            "node": self.node,
            "sessions": [
                {
                    "sid": s.session_id,
                    **s.describe(),
                    "rooms": list(s.rooms),
                    "connected_at": s.connected_at,
                    "last_active": s.last_active,
                }
                for s in self.sessions.values()
                if s.said_hello
            ],
            "mutes": dict(self.mutes),
            "operators": sorted(self.runtime_operators),
        }

    def node_lost(self, node: str) -> list[Outgoing]:
        """Another server stopped answering: its sessions are gone."""
        return self._replace_node(node, [], "server lost")

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

    def _sender_of(self, event: Event) -> int | None:
        """The session id of this server's session that caused ``event``, if any."""
        session_id = event.get("sid")
        if event.get("node") == self.node and isinstance(session_id, int):
            return session_id
        return None

    def _remote_of(self, event: Event) -> RemoteSession | None:
        """The other server's session named by ``event`` (made if its 'online' was missed)."""
        node, session_id = str(event["node"]), int(event["sid"])
        if node == self.node:
            return None
        remote = self.remote.get((node, session_id))
        if remote is None:
            remote = RemoteSession(
                node, session_id, event["fingerprint"], event["nick"], 0.0, 0.0, [], event["away"]
            )
            self.remote[(node, session_id)] = remote
        return remote

    def _apply_online(self, event: Event) -> list[Outgoing]:
        fingerprint, nick = event["fingerprint"], event["nick"]
        address = (str(event["node"]), int(event["sid"]))
        out: list[Outgoing] = []
        if event.get("claim"):
            self.store.register_nick(nick, fingerprint)
            # A key holds one nick at a time: if its other sessions hold another (a /nick or
            # another session's claim raced with this one), the log's order decides: this one.
            stale = [
                m.nick
                for m in self._online_of(fingerprint)
                if self._address(m) != address and m.nick != nick
            ]
            if stale:
                renamed = {"fingerprint": fingerprint, "old": stale[0], "new": nick}
                own = address[1] if address[0] == self.node else None
                out = [item for item in self._apply_nick(renamed) if item[0] != own]
        remote = self._remote_of(event)
        if remote is not None:
            # A snapshot may have named the nick this session claimed before a refusal.
            remote.nick = nick
            remote.connected_at = remote.last_active = float(event["connected_at"])
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

    def _apply_offline(self, event: Event) -> list[Outgoing]:
        node, session_id = str(event["node"]), int(event["sid"])
        self.remote.pop((node, session_id), None)
        return self._left(event, event["rooms"], (node, session_id))

    def _left(self, who: Event, rooms: list[str], address: tuple[str, int]) -> list[Outgoing]:
        """Tell each of ``rooms`` that ``who`` left, unless the key is still there elsewhere."""
        out: list[Outgoing] = []
        for room in rooms:
            if self._key_in_room(who["fingerprint"], room, address):
                continue
            leave = {
                "type": "leave",
                "room": room,
                "nick": who["nick"],
                "fingerprint": who["fingerprint"],
                "away": who["away"],
                "reason": who["reason"],
            }
            out += self._announce(room, who["fingerprint"], leave)
        return out

    def _apply_join(self, event: Event) -> list[Outgoing]:
        turned_away = self._turned_away(event)
        if turned_away is not None:
            return turned_away
        room = event["room"]
        remote = self._remote_of(event)
        if remote is not None and room not in remote.rooms:
            remote.rooms.append(room)
        # The joiner hears that it joined only now that every server can know it: a user it tells
        # to join too (on another server) finds it in the room.
        sender = self._sender_of(event)
        out: list[Outgoing] = []
        session = self.sessions.get(sender) if sender is not None else None
        if session is not None and room in session.joining:
            session.joining.remove(room)
            session.rooms.append(room)
            out = self._joined(session.session_id, room)
        address = (str(event["node"]), int(event["sid"]))
        if self._key_in_room(event["fingerprint"], room, address):
            return out
        join = {
            "type": "join",
            "room": room,
            "nick": event["nick"],
            "fingerprint": event["fingerprint"],
            "away": event["away"],
        }
        return out + self._announce(room, event["fingerprint"], join)

    def _apply_part(self, event: Event) -> list[Outgoing]:
        self._parted_for_good(event)
        remote = self._remote_of(event)
        if remote is not None and event["room"] in remote.rooms:
            remote.rooms.remove(event["room"])
        sender = self._sender_of(event)
        out: list[Outgoing] = []
        if sender in self.sessions:
            out.append((sender, {"type": "parted", "room": event["room"]}))
        address = (str(event["node"]), int(event["sid"]))
        return out + self._left(event, [event["room"]], address)

    def _apply_message(self, event: Event) -> list[Outgoing]:
        relayed = event["message"]
        room = relayed["target"]
        self._remember_committed(relayed, event_tag(event))
        self.store.append_message(stored_message(relayed))
        remote = self._remote_sender(event)
        if remote is not None:
            remote.last_active = relayed["ts"] / 1000
        sender = self._sender_of(event)
        out = self._to_room(room, relayed, exclude=sender)
        if sender in self.sessions:
            out.append((sender, sent_frame(room, relayed["counter"])))
        return out

    def _apply_nick(self, event: Event) -> list[Outgoing]:
        fingerprint, new = event["fingerprint"], event["new"]
        self.store.register_nick(new, fingerprint)
        return self._renamed(fingerprint, event["old"], new)

    def _apply_away(self, event: Event) -> list[Outgoing]:
        """Mark every session of the key, and tell the people who share a room with it."""
        sessions = self._online_of(event["fingerprint"])
        for each in sessions:
            each.away = event["away"]
        sender = self._sender_of(event)
        out: list[Outgoing] = []
        if sender in self.sessions:
            text = f"You are marked away: {event['away']}" if event["away"] else "You are back"
            out.append((sender, notice_frame(text)))
        frame = {
            "type": "away",
            "nick": event["nick"],
            "fingerprint": event["fingerprint"],
            "away": event["away"],
        }
        rooms = {room for each in sessions for room in each.rooms}
        told = {s.session_id for room in rooms for s in self._members(room)}
        return out + [(target, frame) for target in sorted(told)]

    def _apply_topic(self, event: Event) -> list[Outgoing]:
        room = event["room"]
        self.topics[room] = event["topic"]
        self.store.set_topic(room, event["topic"])
        frame = {"type": "topic", "room": room, "topic": event["topic"], "by": event["by"]}
        return self._to_room(room, frame)

    def _apply_kick(self, event: Event) -> list[Outgoing]:
        out: list[Outgoing] = []
        for target in self._sessions_of(event["fingerprint"]):
            out += self._bye(target.session_id, event["text"])
        return out

    def _apply_ban(self, event: Event) -> list[Outgoing]:
        ban = Ban(event["fingerprint"], event["until"], event["reason"], event["by"])
        self.store.add_ban(ban)
        return self._apply_kick(event)

    def _apply_unban(self, event: Event) -> list[Outgoing]:
        self.store.remove_ban(event["fingerprint"])
        return []

    def _tell(self, fingerprint: str, text: str) -> list[Outgoing]:
        return [(s.session_id, notice_frame(text)) for s in self._sessions_of(fingerprint)]

    def _apply_mute(self, event: Event) -> list[Outgoing]:
        self.mutes[event["fingerprint"]] = event["until"]
        return self._tell(event["fingerprint"], event["text"])

    def _apply_unmute(self, event: Event) -> list[Outgoing]:
        self.mutes.pop(event["fingerprint"], None)
        return self._tell(event["fingerprint"], event["text"])

    def _apply_op(self, event: Event) -> list[Outgoing]:
        self.runtime_operators.add(event["fingerprint"])
        return self._tell(event["fingerprint"], event["text"])

    def _apply_deop(self, event: Event) -> list[Outgoing]:
        self.runtime_operators.discard(event["fingerprint"])
        return []

    def _apply_node_up(self, event: Event) -> list[Outgoing]:
        """A server (re)joined the log: tell it who is here; its own snapshot follows."""
        if event["node"] == self.node:
            return []
        return self.publish(self.snapshot())

    def _apply_snapshot(self, event: Event) -> list[Outgoing]:
        node = str(event["node"])
        if node == self.node:
            return []
        for fingerprint, until in event["mutes"].items():
            self.mutes.setdefault(fingerprint, until)
        self.runtime_operators.update(event["operators"])
        return self._replace_node(node, event["sessions"], "server lost")

    def _replace_node(self, node: str, sessions: list[Event], reason: str) -> list[Outgoing]:
        """Make ``sessions`` the whole of ``node``'s; the ones that vanished have left."""
        listed = {int(s["sid"]) for s in sessions}
        out: list[Outgoing] = []
        for (owner, session_id), remote in list(self.remote.items()):
            if owner == node and session_id not in listed:
                del self.remote[(owner, session_id)]
                who = {**remote.describe(), "reason": reason}
                out += self._left(who, remote.rooms, (owner, session_id))
        for item in sessions:
            self.remote[(node, int(item["sid"]))] = RemoteSession(
                node,
                int(item["sid"]),
                item["fingerprint"],
                item["nick"],
                float(item["connected_at"]),
                float(item["last_active"]),
                list(item["rooms"]),
                item["away"],
            )
        return out


EVENT_HANDLERS: dict[str, Callable[[ChatServer, Event], list[Outgoing]]] = {
    "online": ChatServer._apply_online,
    "offline": ChatServer._apply_offline,
    "join": ChatServer._apply_join,
    "part": ChatServer._apply_part,
    "message": ChatServer._apply_message,
    "nick": ChatServer._apply_nick,
    "away": ChatServer._apply_away,
    "topic": ChatServer._apply_topic,
    "kick": ChatServer._apply_kick,
    "ban": ChatServer._apply_ban,
    "unban": ChatServer._apply_unban,
    "mute": ChatServer._apply_mute,
    "unmute": ChatServer._apply_unmute,
    "op": ChatServer._apply_op,
    "deop": ChatServer._apply_deop,
    "node_up": ChatServer._apply_node_up,
    "snapshot": ChatServer._apply_snapshot,
    "device": ChatServer._apply_device,
    "keys_upload": ChatServer._apply_keys_upload,
    "keys_claim": ChatServer._apply_claim,
    "device_remove": ChatServer._apply_device_remove,
    "to_device": ChatServer._apply_to_device,
    "device_ack": ChatServer._apply_device_ack,
    "e2e_private": ChatServer._apply_e2e_private,
    "encrypt": ChatServer._apply_encrypt,
    **ROOM_EVENTS,
    "allow": ChatServer._apply_allow,
    "release": ChatServer._apply_release,
    **INVITATION_EVENTS,
}
