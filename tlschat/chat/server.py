"""The server's chat logic: sessions, rooms, private messages, history, moderation. Pure.

Time is passed in and every call returns the frames to send as ``(session_id, frame)`` pairs;
the asyncio glue only delivers them. A ``bye`` frame tells the glue to close that session after
sending it. Persistence goes through the :class:`~tlschat.store.base.Store` interface.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..protocol.identity import PeerIdentity, fingerprints_equal
from ..store.base import Ban, Store, StoredMessage
from .envelope import SignedMessage
from .frames import (
    MAX_FRAME,
    FrameError,
    b64,
    encode_frame,
    field_str,
    has_unsafe_text,
    message_fields,
    parse_signed_message,
    valid_nick,
    valid_room,
)
from .limits import TokenBucket

DEFAULT_ROOM = "#general"
MAX_CLOCK_SKEW_MS = 10 * 60 * 1000
MAX_TOPIC_BYTES = 300
MAX_AWAY_BYTES = 200
MAX_ROOMS_PER_USER = 20
FINGERPRINT_PATTERN = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
DURATION_PATTERN = re.compile(r"(\d+)([smhd])")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

Outgoing = tuple[int, dict[str, Any]]


@dataclass
class ChatSettings:
    server_name: str = "tlschat"
    motd: str = ""
    history_limit: int = 50
    operators: frozenset[str] = frozenset()
    allowlist: frozenset[str] | None = None
    rate_per_second: float = 2.0
    burst: int = 10
    max_body_bytes: int = 4096


@dataclass
class Session:
    session_id: int
    identity: PeerIdentity
    address: str
    connected_at: float
    last_active: float
    nick: str = ""
    rooms: list[str] = field(default_factory=list)
    away: str = ""
    said_hello: bool = False
    # Sent a bye: the glue is closing it, and nothing more it sends is acted on.
    dismissed: bool = False

    @property
    def fingerprint(self) -> str:
        return self.identity.fingerprint

    def describe(self) -> dict[str, str]:
        return {"nick": self.nick, "fingerprint": self.fingerprint, "away": self.away}


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    summary: str
    handler: Callable[[ChatServer, Session, str, float], list[Outgoing]]
    operator_only: bool = False


def error_frame(text: str) -> dict[str, Any]:
    return {"type": "error", "text": text}


def notice_frame(text: str) -> dict[str, Any]:
    return {"type": "notice", "text": text}


def bye_frame(reason: str) -> dict[str, Any]:
    return {"type": "bye", "reason": reason}


# Room for what is added to a fitted frame: its "type", and the "... and N more" line.
FIT_MARGIN = 256


def fit_list(frame: dict[str, Any], key: str, items: list[Any], newest_last: bool = False) -> int:
    """Set ``frame[key]`` to as many ``items`` as keep the frame within one application message
    (MAX_FRAME, which the channel enforces): the first ones, or the last with ``newest_last``.
    Lists that grow with what users stored (history, rooms, members) would otherwise make a reply
    no connection can carry. Returns how many were left out."""
    budget = MAX_FRAME - FIT_MARGIN - len(encode_frame({**frame, key: []}))
    kept: list[Any] = []
    for item in reversed(items) if newest_last else items:
        budget -= len(encode_frame(item)) + 1  # the item and its comma
        if budget < 0:
            break
        kept.append(item)
    frame[key] = kept[::-1] if newest_last else kept
    return len(items) - len(kept)


def info_frame(title: str, lines: list[str]) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "info", "title": title}
    left_out = fit_list(frame, "lines", lines)
    if left_out:
        frame["lines"].append(f"… and {left_out} more")
    return frame


def parse_duration(text: str) -> float | None:
    """'90s', '10m', '2h', '7d' -> seconds; None if ``text`` is not a duration."""
    match = DURATION_PATTERN.fullmatch(text)
    if match is None:
        return None
    return int(match.group(1)) * DURATION_UNITS[match.group(2)]


def describe_duration(seconds: float) -> str:
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            rest = seconds % size
            return f"{seconds // size}{unit}" + (describe_duration(rest) if rest else "")
    return f"{seconds}s"


class ChatServer:
    """Everyone connected to this server process, and the rooms they share."""

    def __init__(self, settings: ChatSettings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.sessions: dict[int, Session] = {}
        self.topics: dict[str, str] = store.topics()
        self.runtime_operators: set[str] = set()
        self.mutes: dict[str, float | None] = {}
        self.buckets: dict[str, TokenBucket] = {}

    # ----- lifecycle -----

    def connect(
        self, session_id: int, identity: PeerIdentity, address: str, now: float
    ) -> list[Outgoing]:
        """A handshake completed. Refuses banned and (in allowlist mode) unlisted keys."""
        self.sessions[session_id] = Session(session_id, identity, address, now, now)
        fingerprint = identity.fingerprint
        ban = self.store.active_ban(fingerprint, now)
        if ban is not None:
            until = "for good" if ban.until is None else f"for {describe_duration(ban.until - now)}"
            return self._bye(session_id, f"you are banned {until}: {ban.reason}")
        allowlist = self.settings.allowlist
        if (
            allowlist is not None
            and fingerprint not in allowlist
            and not self.is_operator(fingerprint)
        ):
            return self._bye(
                session_id, f"this server admits listed keys only; yours is {fingerprint}"
            )
        return []

    def disconnect(self, session_id: int, reason: str) -> list[Outgoing]:
        session = self.sessions.pop(session_id, None)
        if session is None:
            return []
        out: list[Outgoing] = []
        for room in session.rooms:
            out += self._leave(session, room, reason)
        return out

    def receive(self, session_id: int, frame: dict[str, Any], now: float) -> list[Outgoing]:
        session = self.sessions.get(session_id)
        if session is None or session.dismissed:
            return []
        kind = frame["type"]
        if kind == "pong":
            return []
        if kind == "ping":
            return [(session_id, {"type": "pong"})]
        try:
            if kind == "hello":
                return self._on_hello(session, frame, now)
            if not session.said_hello:
                raise FrameError("say hello first")
            session.last_active = now
            if kind == "say":
                return self._on_say(session, frame, now)
            if kind == "command":
                name = field_str(frame, "name", 32).lower()
                args = field_str(frame, "args", 8192) if "args" in frame else ""
                return self.run_command(session, name, args.strip(), now)
            raise FrameError(f"unknown frame type {kind!r}")
        except FrameError as error:
            return [(session_id, error_frame(str(error)))]

    # ----- lookups -----

    def is_operator(self, fingerprint: str) -> bool:
        return fingerprint in self.settings.operators or fingerprint in self.runtime_operators

    def _members(self, room: str) -> list[Session]:
        return [s for s in self.sessions.values() if room in s.rooms]

    def _to_room(
        self, room: str, frame: dict[str, Any], exclude: int | None = None
    ) -> list[Outgoing]:
        return [(s.session_id, frame) for s in self._members(room) if s.session_id != exclude]

    def _sessions_of(self, fingerprint: str) -> list[Session]:
        return [s for s in self.sessions.values() if s.said_hello and s.fingerprint == fingerprint]

    def _online_by_nick(self, nick: str) -> list[Session]:
        folded = nick.casefold()
        return [s for s in self.sessions.values() if s.said_hello and s.nick.casefold() == folded]

    def _resolve(self, who: str) -> str | None:
        """A nick (online or registered) or a fingerprint -> fingerprint."""
        if FINGERPRINT_PATTERN.fullmatch(who):
            return who
        online = self._online_by_nick(who)
        if online:
            return online[0].fingerprint
        return self.store.nick_owner(who)

    def _nick_in_use_by_other(self, nick: str, fingerprint: str) -> bool:
        owner = self.store.nick_owner(nick)
        if owner is not None and owner != fingerprint:
            return True
        return any(s.fingerprint != fingerprint for s in self._online_by_nick(nick))

    def _fallback_nick(self, session: Session) -> str:
        tag = "".join(c for c in session.fingerprint[7:] if c.isalnum())[:6].lower()
        return f"user-{tag}"

    def _bye(self, session_id: int, reason: str) -> list[Outgoing]:
        if session_id in self.sessions:
            self.sessions[session_id].dismissed = True
        return [(session_id, bye_frame(reason))]

    # ----- hello, rooms -----

    def _on_hello(self, session: Session, frame: dict[str, Any], now: float) -> list[Outgoing]:
        if session.said_hello:
            raise FrameError("already said hello")
        wanted = frame.get("nick")
        wanted = wanted if isinstance(wanted, str) else ""
        registered = self.store.nick_of(session.fingerprint)
        notice = ""
        already_online = self._sessions_of(session.fingerprint)
        if already_online:
            # All sessions of a key share its nick; /nick changes it for all of them.
            session.nick = already_online[0].nick
            if wanted and wanted != session.nick:
                notice = f"{wanted!r} not taken: your key is online already as {session.nick}"
        elif (
            wanted
            and valid_nick(wanted)
            and not self._nick_in_use_by_other(wanted, session.fingerprint)
        ):
            session.nick = wanted
            self.store.register_nick(wanted, session.fingerprint)
        else:
            if wanted and not valid_nick(wanted):
                notice = f"{wanted!r} is not a valid nick"
            elif wanted:
                notice = f"{wanted!r} belongs to another key"
            session.nick = registered or self._fallback_nick(session)
            if notice:
                notice += f"; you are {session.nick}"
        session.said_hello = True
        out: list[Outgoing] = [
            (
                session.session_id,
                {
                    "type": "welcome",
                    "server": self.settings.server_name,
                    "nick": session.nick,
                    "fingerprint": session.fingerprint,
                    "operator": self.is_operator(session.fingerprint),
                },
            )
        ]
        if notice:
            out.append((session.session_id, notice_frame(notice)))
        if self.settings.motd:
            out.append((session.session_id, {"type": "motd", "text": self.settings.motd}))
        return out + self._join(session, DEFAULT_ROOM)

    def _join(self, session: Session, room: str) -> list[Outgoing]:
        if room in session.rooms:
            return [(session.session_id, {"type": "joined", **self._room_state(room)})]
        if len(session.rooms) >= MAX_ROOMS_PER_USER:
            raise FrameError(f"you are in {MAX_ROOMS_PER_USER} rooms already; /part one first")
        session.rooms.append(room)
        out: list[Outgoing] = [(session.session_id, {"type": "joined", **self._room_state(room)})]
        if self.settings.history_limit > 0:
            history = self.store.recent_messages(room, self.settings.history_limit)
            if history:
                frame: dict[str, Any] = {"type": "history", "room": room}
                fit_list(frame, "messages", [self._stored_frame(m) for m in history], True)
                out.append((session.session_id, frame))
        if self._key_in_room(session, room):
            return out  # another device of this key is here already: nobody new joined
        join = {"type": "join", "room": room, **session.describe()}
        return out + self._to_room(room, join, exclude=session.session_id)

    def _key_in_room(self, session: Session, room: str) -> bool:
        """Whether another session of ``session``'s key is in ``room``: presence is per key."""
        return any(
            other.fingerprint == session.fingerprint and other is not session
            for other in self._members(room)
        )

    def _leave(self, session: Session, room: str, reason: str) -> list[Outgoing]:
        """Tell ``room`` that ``session`` left it, unless the key is still there on another."""
        if self._key_in_room(session, room):
            return []
        event = {"type": "leave", "room": room, **session.describe(), "reason": reason}
        return self._to_room(room, event, exclude=session.session_id)

    def _room_state(self, room: str) -> dict[str, Any]:
        """A room's topic and members, one entry per key, cut to fit one frame."""
        members = {s.fingerprint: s.describe() for s in self._members(room)}
        state: dict[str, Any] = {"room": room, "topic": self.topics.get(room, "")}
        fit_list(state, "members", list(members.values()))
        return state

    @staticmethod
    def _stored_frame(message: StoredMessage) -> dict[str, Any]:
        return {
            "type": "message",
            "from": message.nick,
            "key": b64(message.key_der),
            "target": message.room,
            "sender": message.sender,
            "counter": message.counter,
            "ts": message.timestamp_ms,
            "body": message.body,
            "sig": b64(message.signature),
        }

    # ----- messages -----

    def _on_say(self, session: Session, frame: dict[str, Any], now: float) -> list[Outgoing]:
        message = parse_signed_message(frame)
        self.check_message(session, message, now)
        relayed = {
            "type": "message",
            "from": session.nick,
            "key": b64(session.identity.spki_der),
            **message_fields(message),
        }
        if message.target.startswith("@"):
            return self._private(session, message, relayed)
        self.store.append_message(
            StoredMessage(
                message.target,
                message.sender,
                session.nick,
                session.identity.spki_der,
                message.counter,
                message.timestamp_ms,
                message.body,
                message.signature,
            )
        )
        return self._to_room(message.target, relayed, exclude=session.session_id)

    def _private(
        self, session: Session, message: SignedMessage, relayed: dict[str, Any]
    ) -> list[Outgoing]:
        recipients = self._sessions_of(message.target[1:])
        if not recipients:
            raise FrameError("message not delivered: that user is not online")
        self.store.set_last_counter(message.sender, message.counter)
        out: list[Outgoing] = [(r.session_id, relayed) for r in recipients]
        if recipients[0].away:
            out.append(
                (
                    session.session_id,
                    notice_frame(f"{recipients[0].nick} is away: {recipients[0].away}"),
                )
            )
        return out

    def check_message(self, session: Session, message: SignedMessage, now: float) -> None:
        """Refuse, with the reason, any message that is not exactly what its sender signed here."""
        if not fingerprints_equal(message.sender, session.fingerprint):
            raise FrameError("message rejected: it names another sender")
        if message.target.startswith("@"):
            if not FINGERPRINT_PATTERN.fullmatch(message.target[1:]):
                raise FrameError("message rejected: a private message names a fingerprint")
        elif message.target not in session.rooms:
            raise FrameError(f"message rejected: you are not in {message.target}")
        if not message.body.strip():
            raise FrameError("message rejected: empty message")
        if len(message.body.encode("utf-8")) > self.settings.max_body_bytes:
            raise FrameError(f"message rejected: longer than {self.settings.max_body_bytes} bytes")
        if has_unsafe_text(message.body):
            raise FrameError("message rejected: control characters are not allowed")
        muted_until = self._muted_until(session.fingerprint, now)
        if muted_until is not None and not message.target.startswith("@"):
            how_long = (
                ""
                if muted_until == float("inf")
                else f" for {describe_duration(muted_until - now)}"
            )
            raise FrameError(f"message rejected: you are muted{how_long}")
        if not message.verify(session.identity):
            raise FrameError("message rejected: bad signature")
        if message.counter <= self.store.last_counter(message.sender):
            raise FrameError("message rejected: replayed or out-of-order counter")
        if abs(message.timestamp_ms - int(now * 1000)) > MAX_CLOCK_SKEW_MS:
            raise FrameError("message rejected: timestamp too far from the server's clock")
        bucket = self.buckets.setdefault(
            session.fingerprint, TokenBucket(self.settings.rate_per_second, self.settings.burst)
        )
        wait = bucket.take(now)
        if wait > 0:
            raise FrameError(f"flood control: message not sent; you can send again in {wait:.1f} s")

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

    # ----- commands -----

    def run_command(self, session: Session, name: str, args: str, now: float) -> list[Outgoing]:
        command = COMMANDS.get(name)
        if command is None:
            raise FrameError(f"unknown command /{name}; try /help")
        if command.operator_only and not self.is_operator(session.fingerprint):
            raise FrameError(f"/{name} is for operators")
        return command.handler(self, session, args, now)

    def _cmd_help(self, session: Session, args: str, now: float) -> list[Outgoing]:
        operator = self.is_operator(session.fingerprint)
        lines = [
            f"{c.usage:<28} {c.summary}"
            for c in COMMANDS.values()
            if operator or not c.operator_only
        ]
        return [(session.session_id, info_frame("Server commands", lines))]

    def _cmd_nick(self, session: Session, args: str, now: float) -> list[Outgoing]:
        wanted = args
        if not valid_nick(wanted):
            raise FrameError(
                f"{wanted!r} is not a valid nick (1-24 of letters, digits, _-[]{{}}|^`)"
            )
        if self._nick_in_use_by_other(wanted, session.fingerprint):
            raise FrameError(f"{wanted!r} belongs to another key")
        old = session.nick
        self.store.register_nick(wanted, session.fingerprint)
        changed = self._sessions_of(session.fingerprint)
        for own in changed:
            own.nick = wanted
        event = {"type": "nick", "old": old, "new": wanted, "fingerprint": session.fingerprint}
        targets = {
            s.session_id for own in changed for room in own.rooms for s in self._members(room)
        }
        targets |= {own.session_id for own in changed}
        return [(target, event) for target in sorted(targets)]

    def _cmd_join(self, session: Session, args: str, now: float) -> list[Outgoing]:
        room = args if args.startswith("#") else f"#{args}"
        if not valid_room(room):
            raise FrameError(
                f"{args!r} is not a valid room name (#, then 1-32 letters, digits, _-)"
            )
        return self._join(session, room)

    def _cmd_part(self, session: Session, args: str, now: float) -> list[Outgoing]:
        room = args.split(" ", 1)[0] if args else ""
        if not room:
            raise FrameError("usage: /part #room")
        if room not in session.rooms:
            raise FrameError(f"you are not in {room}")
        out = [
            (session.session_id, {"type": "parted", "room": room}),
            *self._leave(session, room, "part"),
        ]
        session.rooms.remove(room)
        return out

    def _cmd_rooms(self, session: Session, args: str, now: float) -> list[Outgoing]:
        keys_in: dict[str, set[str]] = {}
        for other in self.sessions.values():
            for room in other.rooms:
                keys_in.setdefault(room, set()).add(other.fingerprint)
        counts = {room: len(keys) for room, keys in keys_in.items()}
        lines = [
            f"{room} ({count} {'member' if count == 1 else 'members'})"
            + (f": {self.topics[room]}" if self.topics.get(room) else "")
            for room, count in sorted(counts.items())
        ]
        return [(session.session_id, info_frame("Rooms", lines))]

    def _cmd_names(self, session: Session, args: str, now: float) -> list[Outgoing]:
        room = args or (session.rooms[0] if session.rooms else DEFAULT_ROOM)
        members = self._members(room)
        if not members:
            raise FrameError(f"nobody is in {room}")
        lines = [
            f"{'@' if self.is_operator(m.fingerprint) else ''}{m.nick} {m.fingerprint}"
            + (f" (away: {m.away})" if m.away else "")
            for m in sorted(members, key=lambda m: m.nick.casefold())
        ]
        return [(session.session_id, info_frame(f"Members of {room}", lines))]

    def _cmd_whois(self, session: Session, args: str, now: float) -> list[Outgoing]:
        if not args:
            raise FrameError("usage: /whois NICK")
        fingerprint = self._resolve(args)
        online = self._sessions_of(fingerprint) if fingerprint is not None else []
        if fingerprint is None or (not online and self.store.nick_of(fingerprint) is None):
            return [(session.session_id, {"type": "whois", "query": args, "found": False})]
        reply: dict[str, Any] = {
            "type": "whois",
            "query": args,
            "found": True,
            "fingerprint": fingerprint,
        }
        if online:
            first = min(online, key=lambda s: s.connected_at)
            reply |= {
                "nick": first.nick,
                "online": True,
                "connected_since": first.connected_at,
                "idle": now - max(s.last_active for s in online),
                "away": first.away,
                "operator": self.is_operator(fingerprint),
            }
            fit_list(reply, "rooms", sorted({room for s in online for room in s.rooms}))
        else:
            reply |= {"nick": self.store.nick_of(fingerprint) or args, "online": False}
        return [(session.session_id, reply)]

    def _cmd_topic(self, session: Session, args: str, now: float) -> list[Outgoing]:
        room, _, topic = args.partition(" ")
        if not room.startswith("#"):
            raise FrameError("usage: /topic #room [new topic]")
        if not topic:
            current = self.topics.get(room, "")
            text = f"Topic of {room}: {current}" if current else f"{room} has no topic"
            return [(session.session_id, notice_frame(text))]
        if room not in session.rooms:
            raise FrameError(f"you are not in {room}")
        if len(topic.encode()) > MAX_TOPIC_BYTES or has_unsafe_text(topic):
            raise FrameError(f"a topic is at most {MAX_TOPIC_BYTES} bytes of plain text")
        if self._muted_until(session.fingerprint, now) is not None:
            raise FrameError("you are muted")
        self.topics[room] = topic
        self.store.set_topic(room, topic)
        event = {"type": "topic", "room": room, "topic": topic, "by": session.nick}
        return self._to_room(room, event)

    def _cmd_away(self, session: Session, args: str, now: float) -> list[Outgoing]:
        text = args or "away"
        if len(text.encode()) > MAX_AWAY_BYTES or has_unsafe_text(text):
            raise FrameError(f"an away message is at most {MAX_AWAY_BYTES} bytes of plain text")
        return [
            (session.session_id, notice_frame(f"You are marked away: {text}")),
            *self._set_away(session, text),
        ]

    def _cmd_back(self, session: Session, args: str, now: float) -> list[Outgoing]:
        return [(session.session_id, notice_frame("You are back")), *self._set_away(session, "")]

    def _set_away(self, session: Session, text: str) -> list[Outgoing]:
        """Mark every session of the key, and tell the people who share a room with it."""
        own = self._sessions_of(session.fingerprint)
        for each in own:
            each.away = text
        event = {"type": "away", **session.describe()}
        rooms = {room for each in own for room in each.rooms}
        told = {s.session_id for room in rooms for s in self._members(room)}
        return [(target, event) for target in sorted(told)]

    # ----- moderation -----

    def _target_of(self, args: str) -> tuple[str, str, str]:
        """'NICK|FINGERPRINT [rest]' -> (fingerprint, shown name, rest)."""
        who, _, rest = args.partition(" ")
        if not who:
            raise FrameError("name a nick or a fingerprint")
        fingerprint = self._resolve(who)
        if fingerprint is None:
            raise FrameError(f"no such nick: {who}")
        return fingerprint, who, rest.strip()

    def _cmd_op(self, session: Session, args: str, now: float) -> list[Outgoing]:
        fingerprint, who, _ = self._target_of(args)
        self.runtime_operators.add(fingerprint)
        out = [
            (s.session_id, notice_frame(f"{session.nick} made you an operator"))
            for s in self._sessions_of(fingerprint)
        ]
        return [*out, (session.session_id, notice_frame(f"{who} is now an operator"))]

    def _cmd_deop(self, session: Session, args: str, now: float) -> list[Outgoing]:
        fingerprint, who, _ = self._target_of(args)
        if fingerprint in self.settings.operators:
            raise FrameError(f"{who} is an operator in the server's configuration")
        self.runtime_operators.discard(fingerprint)
        return [(session.session_id, notice_frame(f"{who} is no longer an operator"))]

    def _cmd_kick(self, session: Session, args: str, now: float) -> list[Outgoing]:
        fingerprint, who, reason = self._target_of(args)
        targets = self._sessions_of(fingerprint)
        if not targets:
            raise FrameError(f"{who} is not online")
        reason = reason or "no reason given"
        out: list[Outgoing] = []
        for target in targets:
            out += self._bye(target.session_id, f"kicked by {session.nick}: {reason}")
        return [*out, (session.session_id, notice_frame(f"kicked {who}: {reason}"))]

    def _split_duration(self, rest: str) -> tuple[float | None, str]:
        first, _, remainder = rest.partition(" ")
        duration = parse_duration(first)
        if duration is None:
            return None, rest
        return duration, remainder.strip()

    def _cmd_ban(self, session: Session, args: str, now: float) -> list[Outgoing]:
        fingerprint, who, rest = self._target_of(args)
        if self.is_operator(fingerprint):
            raise FrameError(f"{who} is an operator; /deop first")
        duration, reason = self._split_duration(rest)
        reason = reason or "no reason given"
        until = None if duration is None else now + duration
        self.store.add_ban(Ban(fingerprint, until, reason, session.fingerprint))
        how_long = "for good" if duration is None else f"for {describe_duration(duration)}"
        out: list[Outgoing] = []
        for target in self._sessions_of(fingerprint):
            out += self._bye(target.session_id, f"banned {how_long} by {session.nick}: {reason}")
        return [
            *out,
            (session.session_id, notice_frame(f"banned {who} ({fingerprint}) {how_long}")),
        ]

    def _cmd_unban(self, session: Session, args: str, now: float) -> list[Outgoing]:
        fingerprint, who, _ = self._target_of(args)
        if not self.store.remove_ban(fingerprint):
            raise FrameError(f"{who} is not banned")
        return [(session.session_id, notice_frame(f"unbanned {who} ({fingerprint})"))]

    def _cmd_mute(self, session: Session, args: str, now: float) -> list[Outgoing]:
        fingerprint, who, rest = self._target_of(args)
        duration, _ = self._split_duration(rest)
        self.mutes[fingerprint] = None if duration is None else now + duration
        how_long = "" if duration is None else f" for {describe_duration(duration)}"
        out = [
            (s.session_id, notice_frame(f"you were muted{how_long} by {session.nick}"))
            for s in self._sessions_of(fingerprint)
        ]
        return [*out, (session.session_id, notice_frame(f"muted {who}{how_long}"))]

    def _cmd_unmute(self, session: Session, args: str, now: float) -> list[Outgoing]:
        fingerprint, who, _ = self._target_of(args)
        if self._muted_until(fingerprint, now) is None:
            raise FrameError(f"{who} is not muted")
        del self.mutes[fingerprint]
        out = [
            (s.session_id, notice_frame(f"you were unmuted by {session.nick}"))
            for s in self._sessions_of(fingerprint)
        ]
        return [*out, (session.session_id, notice_frame(f"unmuted {who}"))]


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command("help", "/help", "list the server's commands", ChatServer._cmd_help),
        Command(
            "nick",
            "/nick NAME",
            "change your nick (the first key to take one owns it)",
            ChatServer._cmd_nick,
        ),
        Command("join", "/join #room", "join a room (created if new)", ChatServer._cmd_join),
        Command("part", "/part #room", "leave a room", ChatServer._cmd_part),
        Command(
            "rooms", "/rooms", "list rooms with member counts and topics", ChatServer._cmd_rooms
        ),
        Command("names", "/names [#room]", "list a room's members", ChatServer._cmd_names),
        Command(
            "whois",
            "/whois NICK",
            "fingerprint, online since, idle time, away, rooms",
            ChatServer._cmd_whois,
        ),
        Command(
            "topic", "/topic #room [TEXT]", "show or set a room's topic", ChatServer._cmd_topic
        ),
        Command("away", "/away [MESSAGE]", "mark yourself away", ChatServer._cmd_away),
        Command("back", "/back", "clear your away mark", ChatServer._cmd_back),
        Command(
            "op", "/op NICK|FP", "make someone an operator until restart", ChatServer._cmd_op, True
        ),
        Command("deop", "/deop NICK|FP", "take operator status back", ChatServer._cmd_deop, True),
        Command("kick", "/kick NICK [REASON]", "disconnect a user", ChatServer._cmd_kick, True),
        Command(
            "ban",
            "/ban NICK|FP [30m|2h|7d] [REASON]",
            "ban a key, for good or for a while",
            ChatServer._cmd_ban,
            True,
        ),
        Command("unban", "/unban NICK|FP", "lift a ban", ChatServer._cmd_unban, True),
        Command(
            "mute",
            "/mute NICK|FP [DURATION]",
            "stop a key from talking in rooms",
            ChatServer._cmd_mute,
            True,
        ),
        Command(
            "unmute", "/unmute NICK|FP", "let a muted key talk again", ChatServer._cmd_unmute, True
        ),
    )
}
