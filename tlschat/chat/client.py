"""The client's chat logic: commands, signed messages, and checking what arrives. Pure.

The glue feeds it typed lines (:meth:`ChatClient.user_input`) and received frames
(:meth:`ChatClient.handle`), shows the :class:`Line` objects they return, and sends whatever
:meth:`ChatClient.take_outbox` hands back.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..protocol.alerts import ProtocolError
from ..protocol.identity import IdentityKey, PeerIdentity, fingerprints_equal
from .envelope import MAX_COUNTER, SignedMessage
from .frames import (
    MAX_FRAME,
    MAX_KEY_B64,
    FrameError,
    encode_frame,
    field_b64,
    field_int,
    field_str,
    neutralize,
    parse_signed_message,
    say_frame,
)

DEFAULT_ROOM = "#general"
ACTION_PREFIX = "/me "
# Bounds a server-sent time or duration so that it converts and renders (year 5138 at most).
MAX_SECONDS = 10**11
_SURROGATES = re.compile("[\ud800-\udfff]")
# Sent messages are kept until the server acknowledges them ('sent'), to be re-sent after a
# reconnect. Past this many the oldest is given up, so that a server that never acknowledges
# (an older one) cannot make the client hoard every message of the session.
MAX_UNACKNOWLEDGED = 256
# (sender, counter) of the messages shown lately, so that a history replay after a reconnect
# shows only what was missed.
MAX_REMEMBERED_SHOWN = 10_000
# How the server refuses a message whose counter it has seen: for a re-sent one, the proof that
# the first sending was delivered before the connection was lost.
REPLAYED_COUNTER = "replayed or out-of-order counter"


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
    history: bool | None = None

    def render(self, current_room: str = "") -> str:
        """One terminal line; nothing from the network can add lines or escape sequences.

        Room lines from a room other than ``current_room`` name their room.
        """
        clock = time.strftime("%H:%M:%S", time.localtime(self.timestamp))
        text, nick = neutralize(self.text), neutralize(self.nick)
        room = self.room
        where = f"{neutralize(room)} " if room.startswith("#") and room != current_room else ""
        if self.kind in ("message", "action", "private"):
            mark = "✓" if self.verified else "✗ UNVERIFIED"
            if self.kind == "message":
                shown = f"<{nick}> {text}"
            elif self.kind == "action":
                shown = f"* {nick} {text}"
            else:
                shown = f"*{nick}* {text}"
            line = f"[{clock}] {where}{mark} {shown}"
            if self.key_changed:
                line += f" [WARNING: {nick} now has key {neutralize(self.fingerprint)}]"
            return line
        if self.kind == "error":
            return f"[{clock}] !!! {text}"
        return f"[{clock}] {where}*** {text}"

    def to_json(self) -> dict[str, Any]:
        # A lone surrogate from the network (JSON "\ud800") would make printing the JSON raise.
        return {
            key: _SURROGATES.sub("\ufffd", value) if isinstance(value, str) else value
            for key, value in asdict(self).items()
            if value not in ("", None)
        }


@dataclass(frozen=True)
class Member:
    """Someone in a room, as the server last described them."""

    nick: str
    fingerprint: str
    away: str = ""


@dataclass(frozen=True)
class ClientCommand:
    name: str
    usage: str
    summary: str
    handler: Callable[[ChatClient, str, float], list[Line]]


class ChatClient:
    """One user's view: who they are, where they talk, whom they ignore, what verified."""

    def __init__(self, identity: IdentityKey, nick: str = "") -> None:
        self.identity = identity
        self.wanted_nick = nick
        self.nick = ""
        self.rooms: list[str] = []
        self.room = DEFAULT_ROOM
        self.quit_requested = False
        self.dismissed = ""
        self.outbox: list[dict[str, Any]] = []
        self._counter = 0
        self._last_seen: dict[str, int] = {}
        # The first key seen for each nick this session; another key later is flagged loudly.
        self._nick_keys: dict[str, str] = {}
        self.directory: dict[str, str] = {}
        self.ignored: set[str] = set()
        self.last_private: tuple[str, str] | None = None
        self._pending_private: dict[str, list[str]] = {}
        self._rejoin: list[str] = []
        # Who is in each room we are in, by casefolded nick (for a member list).
        self.members: dict[str, dict[str, Member]] = {}
        # The round trip of the last ping/pong, in seconds (None before the first pong).
        self.latency: float | None = None
        self._ping_sent: float | None = None
        # The server said its cluster store is unreachable: messages are not being delivered.
        self.degraded = False
        # Sent 'say' frames by counter (counters only grow, so oldest first), until acknowledged.
        self._unacknowledged: dict[int, dict[str, Any]] = {}
        # Counters of unacknowledged messages sent on an earlier connection: a replay error for
        # one of those means it was delivered then.
        self._sent_before_reconnect: set[int] = set()
        # Between a lost connection and the rejoin of the new session, new messages wait with the
        # unacknowledged ones: sent first, a higher counter would make the server refuse those.
        self._holding_messages = False
        self._awaiting_rejoin: set[str] = set()
        self._shown: dict[tuple[str, int], None] = {}

    # ----- the glue's interface -----

    def hello_frame(self) -> dict[str, Any]:
        return {"type": "hello", "nick": self.wanted_nick}

    def prepare_reconnect(self) -> None:
        """Before a new session: ask for the same nick and rooms; keep keys, ignores, counters.

        Unacknowledged messages are re-sent, unchanged, once the new session has rejoined.
        Idempotent, since several attempts may fail before one gets through.
        """
        if self.rooms:
            current = self.room
            self._rejoin = [room for room in self.rooms if room not in (DEFAULT_ROOM, current)]
            if current and (self._rejoin or current != DEFAULT_ROOM):
                self._rejoin.append(current)
        self.wanted_nick = self.nick or self.wanted_nick
        self.rooms, self.room = [], DEFAULT_ROOM
        self.members.clear()
        self._ping_sent = None
        self.outbox.clear()
        self._pending_private.clear()
        self.degraded = False
        if not self._holding_messages:  # else nothing went out since the last attempt
            self._sent_before_reconnect.update(self._unacknowledged)
        self._holding_messages = True
        self._awaiting_rejoin.clear()

    @property
    def unacknowledged(self) -> list[dict[str, Any]]:
        """The 'say' frames sent (or waiting to be) that the server has not acknowledged."""
        return list(self._unacknowledged.values())

    def ping(self, now: float) -> None:
        """Queue a ping; the pong that answers it sets :attr:`latency`."""
        self._ping_sent = now
        self.outbox.append({"type": "ping"})

    def take_outbox(self) -> list[dict[str, Any]]:
        frames, self.outbox = self.outbox, []
        return frames

    def user_input(self, text: str, now: float) -> list[Line]:
        """One line the user typed: a command, or a message to the current room."""
        text = text.rstrip("\r\n")
        if not text.strip():
            return []
        if text.startswith("/") and not text.startswith("//"):
            name, _, args = text[1:].partition(" ")
            command = CLIENT_COMMANDS.get(name.lower())
            if command is not None:
                return command.handler(self, args.strip(), now)
            self.outbox.append({"type": "command", "name": name.lower(), "args": args.strip()})
            return []
        if not self.room:  # everyone starts in #general; this is after parting every room
            return self._error("you are in no room; /join one to talk", now)
        self._say(text[1:] if text.startswith("//") else text, now)
        return []

    def compose(self, body: str, now: float, target: str = "") -> dict[str, Any]:
        """A signed 'say' frame; the counter never repeats, even across restarts of the client."""
        self._counter = max(self._counter + 1, int(now * 1_000_000))
        message = SignedMessage.create(
            self.identity, target or self.room, self._counter, int(now * 1000), body
        )
        return say_frame(message)

    def _say(self, body: str, now: float, target: str = "") -> None:
        """Send a signed message, and keep it until the server acknowledges it."""
        frame = self.compose(body, now, target)
        # Checked here, not only by the connection, so that a frame too big to send is never
        # kept for re-sending (the connection's own check would raise again on every reconnect).
        size = len(encode_frame(frame))
        if size > MAX_FRAME:
            raise ValueError(f"message of {size} bytes exceeds {MAX_FRAME}")
        self._unacknowledged[frame["counter"]] = frame
        if len(self._unacknowledged) > MAX_UNACKNOWLEDGED:
            oldest = next(iter(self._unacknowledged))
            del self._unacknowledged[oldest]
            self._sent_before_reconnect.discard(oldest)
        # Our own messages come back only in a history replay, where they are nothing new.
        self._remember_shown(frame["sender"], frame["counter"])
        if not self._holding_messages:
            self.outbox.append(frame)

    def _resend_once_rejoined(self) -> None:
        if self._holding_messages and not self._awaiting_rejoin:
            self._holding_messages = False
            self.outbox.extend(self._unacknowledged.values())

    def _remember_shown(self, sender: str, counter: int) -> None:
        self._shown[(sender, counter)] = None
        if len(self._shown) > MAX_REMEMBERED_SHOWN:
            del self._shown[next(iter(self._shown))]

    def _was_shown(self, item: dict[str, Any]) -> bool:
        sender, counter = item.get("sender"), item.get("counter")
        return (
            isinstance(sender, str)
            and isinstance(counter, int)
            and not isinstance(counter, bool)
            and (sender, counter) in self._shown
        )

    # ----- client commands -----

    def _notice(self, text: str, now: float) -> list[Line]:
        return [Line("notice", now, text)]

    def _error(self, text: str, now: float) -> list[Line]:
        return [Line("error", now, text)]

    def _cmd_help(self, args: str, now: float) -> list[Line]:
        lines = [Line("info", now, "Client commands:")]
        lines += [
            Line("info", now, f"  {c.usage:<26} {c.summary}") for c in CLIENT_COMMANDS.values()
        ]
        self.outbox.append({"type": "command", "name": "help", "args": ""})
        return lines

    def _cmd_me(self, args: str, now: float) -> list[Line]:
        if not args:
            return self._error("usage: /me ACTION", now)
        self._say(ACTION_PREFIX + args, now)
        return []

    def _cmd_msg(self, args: str, now: float) -> list[Line]:
        nick, _, body = args.partition(" ")
        if not nick or not body.strip():
            return self._error("usage: /msg NICK TEXT", now)
        fingerprint = self.directory.get(nick.casefold())
        if fingerprint is None:
            # Learn the key first: the message is signed for its recipient's fingerprint.
            self._pending_private.setdefault(nick.casefold(), []).append(body)
            self.outbox.append({"type": "command", "name": "whois", "args": nick})
            return []
        self._say(body, now, "@" + fingerprint)
        return []

    def _cmd_reply(self, args: str, now: float) -> list[Line]:
        if self.last_private is None:
            return self._error("nobody has sent you a private message yet", now)
        if not args:
            return self._error("usage: /reply TEXT", now)
        _, fingerprint = self.last_private
        self._say(args, now, "@" + fingerprint)
        return []

    def _cmd_ignore(self, args: str, now: float) -> list[Line]:
        if not args:
            shown = ", ".join(sorted(self.ignored)) or "nobody"
            return self._notice(f"Ignoring: {shown}", now)
        fingerprint = self.directory.get(
            args.casefold(), args if args.startswith("SHA256:") else ""
        )
        if not fingerprint:
            return self._error(f"unknown nick {args}; /whois it first", now)
        self.ignored.add(fingerprint)
        return self._notice(f"Ignoring {args} ({fingerprint})", now)

    def _cmd_unignore(self, args: str, now: float) -> list[Line]:
        fingerprint = self.directory.get(args.casefold(), args)
        if fingerprint not in self.ignored:
            return self._error(f"you are not ignoring {args}", now)
        self.ignored.discard(fingerprint)
        return self._notice(f"No longer ignoring {args}", now)

    def _cmd_part(self, args: str, now: float) -> list[Line]:
        self.outbox.append({"type": "command", "name": "part", "args": args or self.room})
        return []

    def _cmd_topic(self, args: str, now: float) -> list[Line]:
        room_given = args.startswith("#")
        full = args if room_given else f"{self.room} {args}".strip()
        self.outbox.append({"type": "command", "name": "topic", "args": full})
        return []

    def _cmd_names(self, args: str, now: float) -> list[Line]:
        self.outbox.append({"type": "command", "name": "names", "args": args or self.room})
        return []

    def _cmd_quit(self, args: str, now: float) -> list[Line]:
        self.quit_requested = True
        return []

    # ----- frames from the server -----

    def handle(self, frame: dict[str, Any], now: float) -> list[Line]:
        kind = frame["type"]
        handler = FRAME_HANDLERS.get(kind)
        if handler is None:
            return self._error(f"unknown frame type {kind!r} from server", now)
        try:
            return handler(self, frame, now)
        except FrameError as error:
            return self._error(f"malformed {kind!r} frame from server: {error}", now)

    def _learn(self, nick: str, fingerprint: str) -> None:
        self.directory[nick.casefold()] = fingerprint

    def _key_changed(self, nick: str, fingerprint: str) -> bool:
        first = self._nick_keys.setdefault(nick.casefold(), fingerprint)
        return not fingerprints_equal(first, fingerprint)

    def _on_welcome(self, frame: dict[str, Any], now: float) -> list[Line]:
        self.nick = field_str(frame, "nick", 64)
        server = field_str(frame, "server", 256)
        for room in self._rejoin:
            self.outbox.append({"type": "command", "name": "join", "args": room})
        self._awaiting_rejoin = set(self._rejoin)
        self._rejoin = []
        self._resend_once_rejoined()
        role = " (operator)" if frame.get("operator") is True else ""
        return self._notice(f"Welcome to {server}, {self.nick}{role}", now)

    def _on_joined(self, frame: dict[str, Any], now: float) -> list[Line]:
        room = field_str(frame, "room", 64)
        if room not in self.rooms:
            self.rooms.append(room)
        self.room = room
        self._awaiting_rejoin.discard(room)
        self._resend_once_rejoined()
        members = frame.get("members")
        others = []
        present: dict[str, Member] = {}
        for member in members if isinstance(members, list) else []:
            if isinstance(member, dict):
                nick, fingerprint = member.get("nick"), member.get("fingerprint")
                if isinstance(nick, str) and isinstance(fingerprint, str):
                    away = member.get("away")
                    present[nick.casefold()] = Member(
                        nick, fingerprint, away if isinstance(away, str) else ""
                    )
                    self._learn(nick, fingerprint)
                    self._key_changed(nick, fingerprint)
                    if nick != self.nick:
                        others.append(nick)
        self.members[room] = present
        company = f"with {', '.join(others)}" if others else "(nobody else is here)"
        text = f"You are {self.nick} in {room} {company}"
        lines = [Line("joined", now, text, self.nick, room=room)]
        topic = frame.get("topic")
        if isinstance(topic, str) and topic:
            lines.append(Line("topic", now, f"Topic of {room}: {topic}", room=room))
        return lines

    def _on_parted(self, frame: dict[str, Any], now: float) -> list[Line]:
        room = field_str(frame, "room", 64)
        if room in self.rooms:
            self.rooms.remove(room)
        self.members.pop(room, None)
        if self.room == room:
            self.room = self.rooms[-1] if self.rooms else ""
        now_in = f"; now talking in {self.room}" if self.room else "; /join a room to talk"
        return self._notice(f"You left {room}{now_in}", now)

    def _on_presence(self, frame: dict[str, Any], now: float) -> list[Line]:
        kind = frame["type"]
        nick, room = field_str(frame, "nick", 64), field_str(frame, "room", 64)
        fingerprint = field_str(frame, "fingerprint", 64)
        verb = "joined" if kind == "join" else "left"
        reason = frame.get("reason")
        suffix = f" ({reason})" if kind == "leave" and isinstance(reason, str) else ""
        present = self.members.get(room)
        if present is not None:
            if kind == "join":
                away = frame.get("away")
                away = away if isinstance(away, str) else ""
                present[nick.casefold()] = Member(nick, fingerprint, away)
            else:
                present.pop(nick.casefold(), None)
        if kind == "join":
            self._learn(nick, fingerprint)
            if self._key_changed(nick, fingerprint):
                suffix = f" [WARNING: not the key {nick} had before; now {fingerprint}]"
        return [Line(kind, now, f"{nick} {verb} {room}{suffix}", nick, fingerprint, room)]

    def _on_nick(self, frame: dict[str, Any], now: float) -> list[Line]:
        old, new = field_str(frame, "old", 64), field_str(frame, "new", 64)
        fingerprint = field_str(frame, "fingerprint", 64)
        self._learn(new, fingerprint)
        for present in self.members.values():
            member = present.pop(old.casefold(), None)
            if member is not None:
                present[new.casefold()] = replace(member, nick=new)
        if fingerprints_equal(fingerprint, self.identity.fingerprint):
            self.nick = new
            return self._notice(f"You are now known as {new}", now)
        return [Line("nick", now, f"{old} is now known as {new}", new, fingerprint)]

    def _on_notice(self, frame: dict[str, Any], now: float) -> list[Line]:
        """A notice; in a cluster, one may say that delivery stopped or works again."""
        degraded = frame.get("degraded")
        if isinstance(degraded, bool):
            self.degraded = degraded
        return self._notice(field_str(frame, "text", 8192), now)

    def _on_error(self, frame: dict[str, Any], now: float) -> list[Line]:
        """An error; one naming a counter refuses that message, which is not kept any longer."""
        text = field_str(frame, "text", 8192)
        counter = frame.get("counter")
        if isinstance(counter, int) and not isinstance(counter, bool):
            self._unacknowledged.pop(counter, None)
            if counter in self._sent_before_reconnect:
                self._sent_before_reconnect.discard(counter)
                if REPLAYED_COUNTER in text:
                    return []  # delivered before the connection was lost: nothing to report
        elif self._awaiting_rejoin:
            # A rejoin was refused (a ban, say): wait no longer. The server handles a session's
            # frames in order, so the re-sent messages still come after every join.
            self._awaiting_rejoin.clear()
            self._resend_once_rejoined()
        return self._error(text, now)

    def _on_sent(self, frame: dict[str, Any], now: float) -> list[Line]:
        """The server stored or relayed our message: it need never be re-sent."""
        field_str(frame, "target", 256)
        counter = field_int(frame, "counter", MAX_COUNTER)
        self._unacknowledged.pop(counter, None)
        self._sent_before_reconnect.discard(counter)
        return []

    def _on_motd(self, frame: dict[str, Any], now: float) -> list[Line]:
        """A message of the day may have several lines (--motd-file): one Line each."""
        text = field_str(frame, "text", 8192)
        return [Line("motd", now, part) for part in text.replace("\r\n", "\n").split("\n")]

    def _on_info(self, frame: dict[str, Any], now: float) -> list[Line]:
        title = field_str(frame, "title", 256)
        rows = frame.get("lines")
        texts = [row for row in rows if isinstance(row, str)] if isinstance(rows, list) else []
        return [Line("info", now, f"{title}:")] + [Line("info", now, f"  {t}") for t in texts]

    def _on_topic(self, frame: dict[str, Any], now: float) -> list[Line]:
        room, topic = field_str(frame, "room", 64), field_str(frame, "topic", 1024)
        by = field_str(frame, "by", 64)
        return [Line("topic", now, f"{by} set the topic of {room}: {topic}", by, room=room)]

    def _on_whois(self, frame: dict[str, Any], now: float) -> list[Line]:
        query = field_str(frame, "query", 64)
        pending = self._pending_private.pop(query.casefold(), [])
        if frame.get("found") is False:
            lines = self._error(f"no such nick: {query}", now)
            if pending:
                lines += self._error(f"{len(pending)} private message(s) to {query} not sent", now)
            return lines
        fingerprint = field_str(frame, "fingerprint", 64)
        nick = field_str(frame, "nick", 64)
        self._learn(nick, fingerprint)
        self._learn(query, fingerprint)
        for body in pending:
            self._say(body, now, "@" + fingerprint)
        if pending:
            return []
        texts = [f"{nick} is {fingerprint}"]
        if frame.get("online") is True:
            since = time.strftime(
                "%Y-%m-%d %H:%M:%S", time.localtime(_seconds(frame, "connected_since"))
            )
            idle = _seconds(frame, "idle")
            rooms = frame.get("rooms")
            shown_rooms = (
                ", ".join(r for r in rooms if isinstance(r, str)) if isinstance(rooms, list) else ""
            )
            texts += [
                f"  online since {since}, idle {int(idle)} s",
                f"  rooms: {shown_rooms or '-'}",
            ]
            away = frame.get("away")
            if isinstance(away, str) and away:
                texts.append(f"  away: {away}")
            if frame.get("operator") is True:
                texts.append("  is an operator")
        else:
            texts.append("  offline")
        return [Line("info", now, text, nick, fingerprint) for text in texts]

    def _on_away(self, frame: dict[str, Any], now: float) -> list[Line]:
        """Someone in a room of ours went away or came back: only the member lists change."""
        nick, away = field_str(frame, "nick", 64), field_str(frame, "away", 256)
        for present in self.members.values():
            member = present.get(nick.casefold())
            if member is not None:
                present[nick.casefold()] = replace(member, away=away)
        return []

    def _on_ping(self, frame: dict[str, Any], now: float) -> list[Line]:
        self.outbox.append({"type": "pong"})
        return []

    def _on_pong(self, frame: dict[str, Any], now: float) -> list[Line]:
        if self._ping_sent is not None:
            self.latency = max(0.0, now - self._ping_sent)
            self._ping_sent = None
        return []

    def _on_bye(self, frame: dict[str, Any], now: float) -> list[Line]:
        self.dismissed = field_str(frame, "reason", 1024)
        return self._error(f"Disconnected by the server: {self.dismissed}", now)

    def _on_history(self, frame: dict[str, Any], now: float) -> list[Line]:
        room = field_str(frame, "room", 64)
        messages = frame.get("messages")
        if not isinstance(messages, list):
            raise FrameError("'messages' must be a list")
        entries = [item for item in messages if isinstance(item, dict)]
        missed = [item for item in entries if not self._was_shown(item)]
        if len(missed) == len(entries):
            lines = [Line("notice", now, f"Last {len(messages)} messages of {room}:", room=room)]
        elif missed:  # a rejoin after a reconnect: only what arrived while we were away
            noun = "message" if len(missed) == 1 else "messages"
            lines = [Line("notice", now, f"{len(missed)} missed {noun} of {room}:", room=room)]
        else:
            return []
        for item in missed:
            line = self._message_line(item, history_room=room)
            if line is not None:
                lines.append(replace(line, history=True))
        return lines

    def _on_message(self, frame: dict[str, Any], now: float) -> list[Line]:
        line = self._message_line(frame)
        return [] if line is None else [line]

    def _message_line(self, frame: dict[str, Any], history_room: str = "") -> Line | None:
        message = parse_signed_message(frame)
        nick = field_str(frame, "from", 64)
        if message.sender in self.ignored:
            return None
        verified = self._verify(message, field_b64(frame, "key", MAX_KEY_B64), history_room)
        private = message.target.startswith("@")
        if private and verified:
            self.last_private = (nick, message.sender)
            self._learn(nick, message.sender)
        body = message.body
        kind = "private" if private else "message"
        if body.startswith(ACTION_PREFIX):
            kind, body = "action", body[len(ACTION_PREFIX) :]
        return Line(
            kind,
            message.timestamp_ms / 1000,
            body,
            nick,
            message.sender,
            "" if private else message.target,
            verified,
            self._key_changed(nick, message.sender),
        )

    def _verify(self, message: SignedMessage, key_der: bytes, history_room: str) -> bool:
        """Signed by the key named as sender, for where it is shown, and not a replay.

        History is old by nature, so its counters are not checked against live ones; its room
        must still be the room it was signed for.
        """
        if message.target.startswith("@"):
            if not fingerprints_equal(message.target[1:], self.identity.fingerprint):
                return False
        elif history_room:
            if message.target != history_room:
                return False
        elif message.target not in self.rooms:
            return False
        try:
            key = PeerIdentity.from_spki(key_der)
        except ProtocolError:
            return False
        if not history_room and message.counter <= self._last_seen.get(message.sender, -1):
            return False
        if not message.verify(key):
            return False
        if not history_room:
            self._last_seen[message.sender] = message.counter
        self._remember_shown(message.sender, message.counter)
        return True


def _seconds(frame: dict[str, Any], name: str) -> float:
    """A time or duration from the server (0 if absent); anything else is a malformed frame."""
    value = frame.get(name, 0)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not -MAX_SECONDS <= value <= MAX_SECONDS
    ):
        raise FrameError(f"'{name}' must be a number of seconds")
    return float(value)


CLIENT_COMMANDS: dict[str, ClientCommand] = {
    c.name: c
    for c in (
        ClientCommand(
            "help", "/help", "this help, then the server's commands", ChatClient._cmd_help
        ),
        ClientCommand("me", "/me ACTION", "say that you do something", ChatClient._cmd_me),
        ClientCommand(
            "msg", "/msg NICK TEXT", "a private message, signed for NICK's key", ChatClient._cmd_msg
        ),
        ClientCommand(
            "reply", "/reply TEXT", "answer the last private message", ChatClient._cmd_reply
        ),
        ClientCommand(
            "ignore",
            "/ignore [NICK]",
            "hide someone's messages (list if no NICK)",
            ChatClient._cmd_ignore,
        ),
        ClientCommand(
            "unignore", "/unignore NICK", "show someone's messages again", ChatClient._cmd_unignore
        ),
        ClientCommand(
            "part",
            "/part [#room]",
            "leave a room (the current one by default)",
            ChatClient._cmd_part,
        ),
        ClientCommand(
            "topic", "/topic [#room] [TEXT]", "show or set a topic", ChatClient._cmd_topic
        ),
        ClientCommand("names", "/names [#room]", "who is in a room", ChatClient._cmd_names),
        ClientCommand(
            "quit", "/quit", "leave (also Ctrl-D, or end of input)", ChatClient._cmd_quit
        ),
    )
}

FRAME_HANDLERS: dict[str, Callable[[ChatClient, dict[str, Any], float], list[Line]]] = {
    "welcome": ChatClient._on_welcome,
    "joined": ChatClient._on_joined,
    "parted": ChatClient._on_parted,
    "join": ChatClient._on_presence,
    "leave": ChatClient._on_presence,
    "nick": ChatClient._on_nick,
    "notice": ChatClient._on_notice,
    "motd": ChatClient._on_motd,
    "error": ChatClient._on_error,
    "sent": ChatClient._on_sent,
    "info": ChatClient._on_info,
    "topic": ChatClient._on_topic,
    "whois": ChatClient._on_whois,
    "bye": ChatClient._on_bye,
    "history": ChatClient._on_history,
    "message": ChatClient._on_message,
    "away": ChatClient._on_away,
    "ping": ChatClient._on_ping,
    "pong": ChatClient._on_pong,
}
