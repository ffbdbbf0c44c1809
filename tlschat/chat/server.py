"""The server's chat logic: sessions, the room, relaying verified messages. Pure: time is passed in.

Every call returns the frames to send as ``(session_id, frame)`` pairs; the asyncio glue only
delivers them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..protocol.identity import PeerIdentity, fingerprints_equal
from .envelope import SignedMessage
from .frames import (
    FrameError,
    b64,
    field_str,
    has_unsafe_text,
    message_fields,
    parse_signed_message,
    valid_nick,
)

DEFAULT_ROOM = "#general"
MAX_CLOCK_SKEW_MS = 10 * 60 * 1000

Outgoing = tuple[int, dict[str, Any]]


@dataclass
class Session:
    session_id: int
    identity: PeerIdentity
    address: str
    connected_at: float
    nick: str = ""
    room: str = ""

    @property
    def joined(self) -> bool:
        return bool(self.room)

    def describe(self) -> dict[str, str]:
        return {"nick": self.nick, "fingerprint": self.identity.fingerprint}


def error_frame(text: str) -> dict[str, Any]:
    return {"type": "error", "text": text}


def notice_frame(text: str) -> dict[str, Any]:
    return {"type": "notice", "text": text}


@dataclass
class ChatServer:
    """All connected sessions and the one room they share."""

    server_name: str = "tlschat"
    motd: str = ""
    sessions: dict[int, Session] = field(default_factory=dict)
    last_counter: dict[str, int] = field(default_factory=dict)

    def connect(self, session_id: int, identity: PeerIdentity, address: str, now: float) -> None:
        """A handshake completed; the session joins once it says hello."""
        self.sessions[session_id] = Session(session_id, identity, address, now)

    def disconnect(self, session_id: int, reason: str) -> list[Outgoing]:
        session = self.sessions.pop(session_id, None)
        if session is None or not session.joined:
            return []
        event = {"type": "leave", "room": session.room, **session.describe(), "reason": reason}
        return self._to_room(session.room, event, exclude=session_id)

    def receive(self, session_id: int, frame: dict[str, Any], now: float) -> list[Outgoing]:
        session = self.sessions[session_id]
        handler = _HANDLERS.get(frame["type"])
        try:
            if handler is None:
                raise FrameError(f"unknown frame type {frame['type']!r}")
            if frame["type"] != "hello" and not session.joined:
                raise FrameError("say hello first")
            return handler(self, session, frame, now)
        except FrameError as error:
            return [(session_id, error_frame(str(error)))]

    def _members(self, room: str) -> list[Session]:
        return [s for s in self.sessions.values() if s.room == room]

    def _to_room(
        self, room: str, frame: dict[str, Any], exclude: int | None = None
    ) -> list[Outgoing]:
        return [(s.session_id, frame) for s in self._members(room) if s.session_id != exclude]

    def _nick_taken(self, nick: str, session_id: int) -> bool:
        folded = nick.casefold()
        return any(
            s.nick.casefold() == folded
            for s in self.sessions.values()
            if s.session_id != session_id
        )

    def _free_nick(self, wanted: str, session: Session) -> str:
        base = wanted if valid_nick(wanted) else "user-" + _fingerprint_tag(session.identity)
        if not self._nick_taken(base, session.session_id):
            return base
        suffix = 2
        while self._nick_taken(f"{base[:20]}_{suffix}", session.session_id):
            suffix += 1
        return f"{base[:20]}_{suffix}"

    def _on_hello(self, session: Session, frame: dict[str, Any], now: float) -> list[Outgoing]:
        if session.joined:
            raise FrameError("already said hello")
        wanted = frame.get("nick")
        wanted = wanted if isinstance(wanted, str) else ""
        session.nick = self._free_nick(wanted, session)
        session.room = DEFAULT_ROOM
        out: list[Outgoing] = [
            (
                session.session_id,
                {
                    "type": "welcome",
                    "server": self.server_name,
                    **session.describe(),
                    "room": session.room,
                    "members": [s.describe() for s in self._members(session.room)],
                },
            )
        ]
        if wanted and session.nick != wanted:
            reason = "is taken" if valid_nick(wanted) else "is not a valid nick"
            out.append(
                (session.session_id, notice_frame(f"{wanted!r} {reason}; you are {session.nick}"))
            )
        if self.motd:
            out.append((session.session_id, {"type": "motd", "text": self.motd}))
        join = {"type": "join", "room": session.room, **session.describe()}
        return out + self._to_room(session.room, join, exclude=session.session_id)

    def _on_nick(self, session: Session, frame: dict[str, Any], now: float) -> list[Outgoing]:
        wanted = field_str(frame, "nick", 64)
        if not valid_nick(wanted):
            raise FrameError(
                f"{wanted!r} is not a valid nick (1-24 of letters, digits, _-[]{{}}|^`)"
            )
        if self._nick_taken(wanted, session.session_id):
            raise FrameError(f"{wanted!r} is taken")
        old, session.nick = session.nick, wanted
        event = {
            "type": "nick",
            "old": old,
            "new": wanted,
            "fingerprint": session.identity.fingerprint,
        }
        return [(s.session_id, event) for s in self._members(session.room)]

    def _on_say(self, session: Session, frame: dict[str, Any], now: float) -> list[Outgoing]:
        message = parse_signed_message(frame)
        self.check_message(session, message, now)
        self.last_counter[message.sender] = message.counter
        relayed = {
            "type": "message",
            "from": session.nick,
            "key": b64(session.identity.spki_der),
            **message_fields(message),
        }
        return self._to_room(session.room, relayed, exclude=session.session_id)

    def check_message(self, session: Session, message: SignedMessage, now: float) -> None:
        """Refuse, with the reason, any message that is not exactly what its sender signed here."""
        if not fingerprints_equal(message.sender, session.identity.fingerprint):
            raise FrameError("message rejected: it names another sender")
        if message.target != session.room:
            raise FrameError(f"message rejected: you are in {session.room}, not {message.target}")
        if not message.body.strip():
            raise FrameError("message rejected: empty message")
        if has_unsafe_text(message.body):
            raise FrameError("message rejected: control characters are not allowed")
        if not message.verify(session.identity):
            raise FrameError("message rejected: bad signature")
        if message.counter <= self.last_counter.get(message.sender, -1):
            raise FrameError("message rejected: replayed or out-of-order counter")
        if abs(message.timestamp_ms - int(now * 1000)) > MAX_CLOCK_SKEW_MS:
            raise FrameError("message rejected: timestamp too far from the server's clock")


def _fingerprint_tag(identity: PeerIdentity) -> str:
    return "".join(c for c in identity.fingerprint[7:] if c.isalnum())[:6].lower()


_HANDLERS = {
    "hello": ChatServer._on_hello,
    "nick": ChatServer._on_nick,
    "say": ChatServer._on_say,
}
