"""The client's chat logic: commands, signed messages, and checking what arrives. Pure.

The glue feeds it typed lines (:meth:`ChatClient.user_input`) and received frames
(:meth:`ChatClient.handle`), shows the :class:`Line` objects they return, sends whatever
:meth:`ChatClient.take_outbox` hands back, and calls :meth:`ChatClient.tick` at
:attr:`ChatClient.wake_at` (the pace of the queued lines).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..protocol.identity import IdentityKey, fingerprints_equal
from .client_commands import ACTION_PREFIX, CLIENT_COMMANDS, error, notice
from .delivery import DeliveryQueue, Outgoing
from .envelope import MAX_BODY_BYTES, MAX_COUNTER, SignedMessage
from .frames import (
    MAX_FRAME,
    MAX_KEY_B64,
    FrameError,
    encode_frame,
    field_b64,
    field_int,
    field_str,
    parse_signed_message,
    say_frame,
)
from .lines import DELIVERED, PENDING, REFUSED, Line, describe_age
from .seen import SeenLedger
from .verify import Verifier

__all__ = ["CLIENT_COMMANDS", "ChatClient", "Line", "Member"]

DEFAULT_ROOM = "#general"
# Bounds a server-sent time or duration so that it converts and renders (year 5138 at most).
MAX_SECONDS = 10**11
# How the server refuses a message whose counter it has seen: for a re-sent one, the proof that
# the first sending was delivered before the connection was lost.
REPLAYED_COUNTER = "replayed or out-of-order counter"
MAX_RETRY_AFTER = 3600.0


@dataclass(frozen=True)
class Member:
    """Someone in a room, as the server last described them."""

    nick: str
    fingerprint: str
    away: str = ""


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
        # The first key seen for each nick this session; another key later is flagged loudly.
        self._nick_keys: dict[str, str] = {}
        self.directory: dict[str, str] = {}
        self.ignored: set[str] = set()
        self.last_private: tuple[str, str] | None = None
        self._rejoin: list[str] = []
        # Who is in each room we are in, by casefolded nick (for a member list).
        self.members: dict[str, dict[str, Member]] = {}
        # The round trip of the last ping/pong, in seconds (None before the first pong).
        self.latency: float | None = None
        self._ping_sent: float | None = None
        # The server said its cluster store is unreachable: messages are not being delivered.
        self.degraded = False
        self.verifier = Verifier(identity.fingerprint)
        self.queue = DeliveryQueue()
        # The lines refused or given up this session: what the user is told at the end.
        self.undelivered: list[Line] = []
        # Nothing queued goes out before the server's welcome and the rejoin of every room:
        # a message sent first could be refused for a room not yet rejoined.
        self._welcomed = False
        self._awaiting_rejoin: set[str] = set()
        # The nick whose key a 'whois' is asking for, so that a /msg can be signed for it.
        self._resolving = ""
        # When the glue should call tick(): the queue's pace allows the next message then.
        self.wake_at: float | None = None

    # ----- the glue's interface -----

    @property
    def network(self) -> str:
        return self.verifier.network

    def use_network(self, network: str, ledger: SeenLedger) -> None:
        """Connected to the server whose key is ``network``; ``ledger`` is what was shown on it
        before (the glue keeps it per network in the client's home)."""
        self.verifier.use_network(network, ledger)

    def hello_frame(self) -> dict[str, Any]:
        return {"type": "hello", "nick": self.wanted_nick}

    def prepare_reconnect(self) -> None:
        """Before a new session: ask for the same nick and rooms; keep keys, ignores, counters.

        Messages still in flight are sent again, unchanged, once the new session has rejoined,
        and the queued lines after them. Idempotent, since several attempts may fail before one
        gets through.
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
        self.degraded = False
        self._welcomed = False
        self._resolving = ""
        self._awaiting_rejoin.clear()
        self.queue.connection_lost()
        self.wake_at = None

    @property
    def outstanding(self) -> int:
        """Lines sent or queued that have no outcome yet."""
        return self.queue.outstanding

    @property
    def unacknowledged(self) -> list[dict[str, Any]]:
        """The 'say' frames signed and not yet acknowledged, oldest first."""
        items = sorted(
            (item for item in [*self.queue.waiting, *self.queue.in_flight.values()]),
            key=lambda item: item.ref,
        )
        return [item.frame for item in items if item.frame is not None and item.command is None]

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
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # undecodable input bytes, kept as surrogates by stdin
            return error("not sent: the line is not valid UTF-8", now)
        if text.startswith("/") and not text.startswith("//"):
            name, _, args = text[1:].partition(" ")
            command = CLIENT_COMMANDS.get(name.lower())
            if command is not None:
                return command.handler(self, args.strip(), now)
            frame = {"type": "command", "name": name.lower(), "args": args.strip()}
            return self.send_command(frame, text, now)
        return self.say(text[1:] if text.startswith("//") else text, now)

    def tick(self, now: float) -> list[Line]:
        """Send what the queue's order and pace allow now; sets :attr:`wake_at` for the rest."""
        lines: list[Line] = []
        self.wake_at = None
        for late in self.queue.overdue(now):
            assert late.frame is not None
            self.outbox.append(late.frame)
        while self._welcomed and not self._awaiting_rejoin:
            item = self.queue.head()
            if item is None:
                break
            if item.command is not None:
                wait = self.queue.may_send_command(str(item.command.get("name", "")), now)
                if wait > 0:
                    self.wake_at = now + max(wait, 0.001)
                    break
                self.outbox.append(item.command)
                self.queue.sent(item, now)
                continue
            if not item.target:
                if not self._resolve(item):
                    break
                continue
            wait = self.queue.may_send_message(now)
            if wait > 0:
                # At least a millisecond on: a float wait can round to ``now`` itself.
                self.wake_at = None if wait == float("inf") else now + max(wait, 0.001)
                break
            lines += self._sign_and_send(item, now)
        resend_at = self.queue.next_overdue()
        if resend_at is not None and (self.wake_at is None or resend_at < self.wake_at):
            self.wake_at = resend_at
        return lines

    def give_up(self, reason: str, now: float) -> list[Line]:
        """Every line still without an outcome is refused with ``reason`` (the client is ending)."""
        return [self._refuse(item, reason, now) for item in self.queue.drop_all()]

    def compose(self, body: str, now: float, target: str = "") -> dict[str, Any]:
        """A signed 'say' frame; the counter never repeats, even across restarts of the client."""
        self._counter = max(self._counter + 1, int(now * 1_000_000))
        message = SignedMessage.create(
            self.identity, self.network, target or self.room, self._counter, int(now * 1000), body
        )
        self.verifier.remember_own(message, now)
        return say_frame(message)

    def send_command(self, frame: dict[str, Any], text: str, now: float) -> list[Line]:
        """A server command waits its turn behind the lines typed before it."""
        item = Outgoing(self.queue.next_ref(), text, command=frame)
        size = len(encode_frame(frame))
        if size > MAX_FRAME:
            return [self._refuse(item, f"{size} bytes is more than one message carries", now)]
        if not self.queue.add(item):
            return [self._refuse(item, "too many lines waiting to be sent", now)]
        return self.tick(now)

    def say(self, body: str, now: float, target: str = "", recipient: str = "") -> list[Line]:
        """Queue a message, shown at once as pending: to the current room, to ``target``, or
        privately to the nick ``recipient`` (whose key is looked up first if ``target`` is
        empty)."""
        target = target or ("" if recipient else self.room)
        if not target and not recipient:  # everyone starts in #general; this is after parting
            return error("you are in no room; /join one to talk", now)
        shown_in = "@" + recipient if recipient else target
        kind, text = "private" if recipient else "message", body
        if body.startswith(ACTION_PREFIX) and not recipient:
            kind, text = "action", body[len(ACTION_PREFIX) :]
        ref = self.queue.next_ref()
        line = Line(
            kind,
            now,
            text,
            self.nick,
            self.identity.fingerprint,
            shown_in,
            ref=ref,
            delivery=PENDING,
        )
        item = Outgoing(ref, body, line, body=body, target=target, recipient=recipient)
        size = len(body.encode("utf-8"))
        if size > MAX_BODY_BYTES:  # no server takes it: refused here, at once
            return [self._refuse(item, f"longer than {MAX_BODY_BYTES} bytes ({size})", now)]
        if not self.queue.add(item):
            return [self._refuse(item, "too many lines waiting to be sent", now)]
        return [line, *self.tick(now)]

    def _resolve(self, item: Outgoing) -> bool:
        """A /msg waits for its recipient's key: ask the server once. True if it is known now."""
        fingerprint = self.directory.get(item.recipient.casefold())
        if fingerprint is not None:
            item.target = "@" + fingerprint
            return True
        if not self._resolving:
            self._resolving = item.recipient
            self.outbox.append({"type": "command", "name": "whois", "args": item.recipient})
        return False

    def _sign_and_send(self, item: Outgoing, now: float) -> list[Line]:
        if item.frame is None:
            frame = self.compose(item.body, now, item.target)
            # Checked here, not only by the connection, so that a frame too big to send is never
            # kept for re-sending (the connection's own check would raise on every reconnect).
            size = len(encode_frame(frame))
            if size > MAX_FRAME:
                self.queue.waiting.remove(item)
                return [self._refuse(item, f"{size} bytes is more than one message carries", now)]
            item.frame = frame
        self.outbox.append(item.frame)
        self.queue.sent(item, now)
        return []

    def _refuse(self, item: Outgoing, reason: str, now: float) -> Line:
        """``item`` will not be delivered: its line says so, and why."""
        if item.line is None:
            line = Line("error", now, f"not sent ({reason}): {item.text}", ref=item.ref)
        else:
            line = replace(
                item.line, nick=self.nick or item.line.nick, delivery=REFUSED, problem=reason
            )
        self.undelivered.append(line)
        return line

    def _deliver(self, item: Outgoing) -> list[Line]:
        if item.line is None:
            return []
        return [replace(item.line, nick=self.nick or item.line.nick, delivery=DELIVERED)]

    def _rejoined(self, now: float) -> list[Line]:
        if self._welcomed and not self._awaiting_rejoin:
            return self.tick(now)
        return []

    # ----- frames from the server -----

    def handle(self, frame: dict[str, Any], now: float) -> list[Line]:
        kind = frame["type"]
        handler = FRAME_HANDLERS.get(kind)
        if handler is None:
            return error(f"unknown frame type {kind!r} from server", now)
        try:
            return handler(self, frame, now)
        except FrameError as problem:
            return error(f"malformed {kind!r} frame from server: {problem}", now)

    def _learn(self, nick: str, fingerprint: str) -> None:
        self.directory[nick.casefold()] = fingerprint

    def _key_changed(self, nick: str, fingerprint: str) -> bool:
        first = self._nick_keys.setdefault(nick.casefold(), fingerprint)
        return not fingerprints_equal(first, fingerprint)

    def _on_welcome(self, frame: dict[str, Any], now: float) -> list[Line]:
        self.nick = field_str(frame, "nick", 64)
        server = field_str(frame, "server", 256)
        rate, burst = _number(frame.get("rate"), 0.001, 1e6), _number(frame.get("burst"), 1, 1e6)
        if rate is not None and burst is not None:
            self.queue.set_pace(rate, int(burst))
        work_rate = _number(frame.get("work_rate"), 0.001, 1e6)
        work_burst = _number(frame.get("work_burst"), 1, 1e6)
        if work_rate is not None and work_burst is not None:
            self.queue.set_work_pace(work_rate, int(work_burst))
        for room in self._rejoin:
            self.outbox.append({"type": "command", "name": "join", "args": room})
        self._awaiting_rejoin = set(self._rejoin)
        self._rejoin = []
        self._welcomed = True
        role = " (operator)" if frame.get("operator") is True else ""
        return notice(f"Welcome to {server}, {self.nick}{role}", now) + self._rejoined(now)

    def _on_joined(self, frame: dict[str, Any], now: float) -> list[Line]:
        room = field_str(frame, "room", 64)
        if room not in self.rooms:
            self.rooms.append(room)
        self.room = room
        self._awaiting_rejoin.discard(room)
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
        return lines + self._rejoined(now)

    def _on_parted(self, frame: dict[str, Any], now: float) -> list[Line]:
        room = field_str(frame, "room", 64)
        if room in self.rooms:
            self.rooms.remove(room)
        self.members.pop(room, None)
        if self.room == room:
            self.room = self.rooms[-1] if self.rooms else ""
        now_in = f"; now talking in {self.room}" if self.room else "; /join a room to talk"
        return notice(f"You left {room}{now_in}", now)

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
            return notice(f"You are now known as {new}", now)
        return [Line("nick", now, f"{old} is now known as {new}", new, fingerprint)]

    def _on_notice(self, frame: dict[str, Any], now: float) -> list[Line]:
        """A notice; in a cluster, one may say that delivery stopped or works again."""
        degraded = frame.get("degraded")
        if isinstance(degraded, bool):
            self.degraded = degraded
        return notice(field_str(frame, "text", 8192), now)

    def _on_error(self, frame: dict[str, Any], now: float) -> list[Line]:
        """An error; one naming a counter is the outcome of that message."""
        text = field_str(frame, "text", 8192)
        counter = frame.get("counter")
        if isinstance(counter, int) and not isinstance(counter, bool):
            item = self.queue.in_flight.get(counter)
            if item is None:
                return error(text, now)
            retry_after = _number(frame.get("retry_after"), 0, MAX_RETRY_AFTER)
            if retry_after is not None:
                # Flood control (another device of ours spent the tokens): it goes again later.
                self.queue.throttle(counter, retry_after, now)
                return self.tick(now)
            self.queue.settle(counter)
            if REPLAYED_COUNTER in text and item.throttled and not item.resent:
                # Never recorded, overtaken by a line of another device of ours: signed anew.
                item.frame = None
                self.queue.requeue(item)
                return self.tick(now)
            # Only 'sent' proves delivery: the server acknowledges a line it committed before
            # a lost connection when it comes again, so a refusal is one.
            return [self._refuse(item, text, now), *self.tick(now)]
        if self._awaiting_rejoin:
            # A rejoin was refused (a ban, say): wait no longer. The server handles a session's
            # frames in order, so the queued lines still come after every join.
            self._awaiting_rejoin.clear()
            return error(text, now) + self._rejoined(now)
        return error(text, now)

    def _on_sent(self, frame: dict[str, Any], now: float) -> list[Line]:
        """The server stored or relayed our message: delivered, never to be sent again."""
        field_str(frame, "target", 256)
        item = self.queue.settle(field_int(frame, "counter", MAX_COUNTER))
        if item is None:
            return []
        return self._deliver(item) + self.tick(now)

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
        # The answer a /msg waited for: the queued message is signed now, or refused.
        looked_up = bool(self._resolving) and query.casefold() == self._resolving.casefold()
        if looked_up:
            self._resolving = ""
        if frame.get("found") is False:
            if not looked_up:
                return error(f"no such nick: {query}", now)
            refused = [
                self._refuse(item, f"no such nick: {query}", now)
                for item in self.queue.unresolved(query)
            ]
            return refused + self.tick(now)
        fingerprint = field_str(frame, "fingerprint", 64)
        nick = field_str(frame, "nick", 64)
        self._learn(nick, fingerprint)
        self._learn(query, fingerprint)
        if looked_up:
            return self.tick(now)
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
        return error(f"Disconnected by the server: {self.dismissed}", now)

    def _on_history(self, frame: dict[str, Any], now: float) -> list[Line]:
        room = field_str(frame, "room", 64)
        messages = frame.get("messages")
        if not isinstance(messages, list):
            raise FrameError("'messages' must be a list")
        entries = [item for item in messages if isinstance(item, dict)]
        shown = self.verifier.was_shown
        missed = [item for item in entries if not shown(item.get("sender"), item.get("counter"))]
        if len(missed) == len(entries):
            lines = [Line("notice", now, f"Last {len(messages)} messages of {room}:", room=room)]
        elif missed:  # a rejoin after a reconnect: only what arrived while we were away
            noun = "message" if len(missed) == 1 else "messages"
            lines = [Line("notice", now, f"{len(missed)} missed {noun} of {room}:", room=room)]
        else:
            return []
        for item in missed:
            line = self._message_line(item, now, history_room=room)
            if line is not None:
                lines.append(replace(line, history=True))
        return lines

    def _on_message(self, frame: dict[str, Any], now: float) -> list[Line]:
        line = self._message_line(frame, now)
        return [] if line is None else [line]

    def _message_line(
        self, frame: dict[str, Any], now: float, history_room: str = ""
    ) -> Line | None:
        """The line to show for a received message, or None: ignored, or shown already."""
        message = parse_signed_message(frame)
        nick = field_str(frame, "from", 64)
        if message.sender in self.ignored:
            return None
        key_der = field_b64(frame, "key", MAX_KEY_B64)
        verdict = self.verifier.check(message, key_der, self.rooms, history_room, now)
        if verdict.duplicate:
            return None
        private = message.target.startswith("@")
        if private and verdict.verified:
            self.last_private = (nick, message.sender)
            self._learn(nick, message.sender)
        body = message.body
        kind = "private" if private else "message"
        if body.startswith(ACTION_PREFIX):
            kind, body = "action", body[len(ACTION_PREFIX) :]
        note = ""
        if verdict.late:
            age = describe_age(now - message.timestamp_ms / 1000)
            note = f"signed {age} ago; not new"
        return Line(
            kind,
            message.timestamp_ms / 1000,
            body,
            nick,
            message.sender,
            "" if private else message.target,
            verdict.verified,
            self._key_changed(nick, message.sender),
            history=True if verdict.late else None,
            problem=verdict.problem,
            note=note,
        )


def _number(value: object, low: float, high: float) -> float | None:
    """``value`` if it is a JSON number in [low, high], else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if low <= value <= high else None


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
