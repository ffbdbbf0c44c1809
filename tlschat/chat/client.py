"""The client's chat logic: composing signed messages and checking the ones received. Pure."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from ..protocol.alerts import ProtocolError
from ..protocol.identity import IdentityKey, PeerIdentity, fingerprints_equal
from .envelope import SignedMessage
from .frames import (
    MAX_KEY_B64,
    FrameError,
    field_b64,
    field_str,
    neutralize,
    parse_signed_message,
    say_frame,
)

DEFAULT_ROOM = "#general"


@dataclass(frozen=True)
class Line:
    """One thing to show the user. ``verified`` is None for lines that carry no signature."""

    kind: str
    timestamp: float
    text: str
    nick: str = ""
    fingerprint: str = ""
    room: str = ""
    verified: bool | None = None
    key_changed: bool | None = None

    def render(self) -> str:
        """One terminal line; nothing from the network can add lines or escape sequences."""
        clock = time.strftime("%H:%M:%S", time.localtime(self.timestamp))
        text = neutralize(self.text)
        if self.kind == "message":
            mark = "✓" if self.verified else "✗ UNVERIFIED"
            line = f"[{clock}] {mark} <{neutralize(self.nick)}> {text}"
            if self.key_changed:
                line += f" [WARNING: {neutralize(self.nick)} now has key {self.fingerprint}]"
            return line
        if self.kind == "error":
            return f"[{clock}] !!! {text}"
        return f"[{clock}] *** {text}"

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value not in ("", None)}


class ChatClient:
    """One user's view: who they are, where they talk, and what has been verified."""

    def __init__(self, identity: IdentityKey, nick: str = "") -> None:
        self.identity = identity
        self.wanted_nick = nick
        self.nick = ""
        self.room = DEFAULT_ROOM
        self._counter = 0
        self._last_seen: dict[str, int] = {}
        # The first key seen for each nick this session; another key later is flagged loudly.
        self._nick_keys: dict[str, str] = {}

    def hello_frame(self) -> dict[str, Any]:
        return {"type": "hello", "nick": self.wanted_nick}

    def compose(self, body: str, now: float) -> dict[str, Any]:
        """A signed 'say' frame; the counter never repeats, even across restarts of the client."""
        self._counter = max(self._counter + 1, int(now * 1_000_000))
        message = SignedMessage.create(
            self.identity, self.room, self._counter, int(now * 1000), body
        )
        return say_frame(message)

    def handle(self, frame: dict[str, Any], now: float) -> list[Line]:
        kind = frame["type"]
        try:
            if kind == "message":
                return [self._message(frame)]
            if kind == "welcome":
                self.nick = field_str(frame, "nick", 64)
                self.room = field_str(frame, "room", 64)
                members = frame.get("members")
                others = [
                    str(member.get("nick"))
                    for member in (members if isinstance(members, list) else [])
                    if isinstance(member, dict) and member.get("nick") != self.nick
                ]
                company = f"with {', '.join(others)}" if others else "(nobody else is here)"
                text = f"You are {self.nick} in {self.room} {company}"
                return [Line("welcome", now, text, self.nick, room=self.room)]
            if kind in ("join", "leave"):
                nick, room = field_str(frame, "nick", 64), field_str(frame, "room", 64)
                verb = "joined" if kind == "join" else "left"
                reason = frame.get("reason")
                suffix = f" ({reason})" if kind == "leave" and isinstance(reason, str) else ""
                fingerprint = field_str(frame, "fingerprint", 64)
                if kind == "join" and self._key_changed(nick, fingerprint):
                    suffix = f" [WARNING: not the key {nick} had before; now {fingerprint}]"
                return [Line(kind, now, f"{nick} {verb} {room}{suffix}", nick, fingerprint, room)]
            if kind == "nick":
                old, new = field_str(frame, "old", 64), field_str(frame, "new", 64)
                if fingerprints_equal(
                    field_str(frame, "fingerprint", 64), self.identity.fingerprint
                ):
                    self.nick = new
                return [Line("nick", now, f"{old} is now known as {new}", new)]
            if kind in ("notice", "motd", "error"):
                return [Line(kind, now, field_str(frame, "text", 8192))]
        except FrameError as error:
            return [Line("error", now, f"malformed {kind!r} frame from server: {error}")]
        return [Line("error", now, f"unknown frame type {kind!r} from server")]

    def _key_changed(self, nick: str, fingerprint: str) -> bool:
        first = self._nick_keys.setdefault(nick.casefold(), fingerprint)
        return not fingerprints_equal(first, fingerprint)

    def _message(self, frame: dict[str, Any]) -> Line:
        message = parse_signed_message(frame)
        nick = field_str(frame, "from", 64)
        verified = self._verify(message, field_b64(frame, "key", MAX_KEY_B64))
        return Line(
            "message",
            message.timestamp_ms / 1000,
            message.body,
            nick,
            message.sender,
            message.target,
            verified,
            self._key_changed(nick, message.sender),
        )

    def _verify(self, message: SignedMessage, key_der: bytes) -> bool:
        """The signature is by the key named as sender, for the room shown, and not a replay."""
        if message.target != self.room:
            return False
        try:
            key = PeerIdentity.from_spki(key_der)
        except ProtocolError:
            return False
        if message.counter <= self._last_seen.get(message.sender, -1):
            return False
        if not message.verify(key):
            return False
        self._last_seen[message.sender] = message.counter
        return True
