"""What the server sends, checked and turned into lines to show; :class:`ChatClient`, the whole
of the client's chat logic."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ...protocol.identity import IdentityKey, fingerprints_equal
from ..envelope import MAX_COUNTER
from ..frames import HELP_TITLE, FrameError, field_int, field_str
from ..lines import Line
from .base import REPLAYED_COUNTER
from .commands import command_name, error, notice, own_commands
from .crypto import ClientCrypto
from .invitations import on_invitation
from .run_feed import RunFeed
from .scrollback import ClientScrollback

# Bounds a server-sent time or duration so that it converts and renders (year 5138 at most).
MAX_SECONDS = 10**11


MAX_RETRY_AFTER = 3600.0


class ChatClient(ClientScrollback):
    """The client's chat logic: what the user sends (``sending``, ``encrypting``) and what the
    server sends (here, ``decrypting``, ``inbox``, ``rosters``, ``scrollback``), and verification
    (``verifying``)."""

    def __init__(
        self, identity: IdentityKey, nick: str = "", crypto: ClientCrypto | None = None
    ) -> None:
        super().__init__(identity, nick, crypto)
        self.runs = RunFeed()

    def prepare_reconnect(self) -> None:
        super().prepare_reconnect()
        self.runs = RunFeed()  # a run is one connection's

    def handle(self, frame: dict[str, Any], now: float) -> list[Line]:
        """One frame from the server: the lines to show. A reply that comes as a run is acted
        on once whole; a run that another frame breaks is dropped, with an error line."""
        kind = frame["type"]
        try:
            fed = self.runs.feed(frame)
        except FrameError as problem:
            return error(f"malformed {kind!r} frame from server: {problem}", now)
        lines = error(fed.dropped, now) if fed.dropped else []
        if fed.frame is None:
            return lines
        return lines + self._act_on(fed.frame, now)

    def _act_on(self, frame: dict[str, Any], now: float) -> list[Line]:
        kind = frame["type"]
        handler = FRAME_HANDLERS.get(kind)
        if handler is None:
            return error(f"unknown frame type {kind!r} from server", now)
        try:
            lines = handler(self, frame, now)
        except FrameError as problem:
            return error(f"malformed {kind!r} frame from server: {problem}", now)
        self.decrypted.keep(lines)  # for /search: what the end-to-end layer decrypted
        self._hold(lines)
        return lines

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
        text = field_str(frame, "text", 8192)
        return [] if self._quiet_answer(text) else notice(text, now)

    def _on_error(self, frame: dict[str, Any], now: float) -> list[Line]:
        """An error; one naming a counter is the outcome of that message."""
        text = field_str(frame, "text", 8192)
        counter = frame.get("counter")
        if isinstance(counter, int) and not isinstance(counter, bool):
            item = self.queue.in_flight.get(counter)
            if item is None:
                return error(text, now)
            rebuilt = self._rebuild_stale(frame, text, now)
            if rebuilt is not None:
                return rebuilt
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
        self._page_refused(text)
        if self._quiet_answer(text):
            return []
        self.joins.refused()
        if self._awaiting_rejoin:
            # A rejoin was refused (a ban, say): wait no longer. The server handles a session's
            # frames in order, so the queued lines still come after every join.
            self._awaiting_rejoin.clear()
            self.rejoining.clear()
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
        """A message of the day may have several lines (--motd-file): one Line each. It comes
        after the welcome, before the server's join of #general: it belongs to the room the user
        lands in, where the full-screen client shows it, not to its server buffer."""
        text = field_str(frame, "text", 8192)
        parts = text.replace("\r\n", "\n").split("\n")
        return [Line("motd", now, part, room=self.room) for part in parts]

    def _on_info(self, frame: dict[str, Any], now: float) -> list[Line]:
        title = field_str(frame, "title", 256)
        rows = frame.get("lines")
        texts = [row for row in rows if isinstance(row, str)] if isinstance(rows, list) else []
        if title == HELP_TITLE:
            # /help listed the client's own commands already, with the client's syntax.
            own = own_commands(self.ui_commands)
            texts = [text for text in texts if command_name(text) not in own]
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

    def _on_message(self, frame: dict[str, Any], now: float) -> list[Line]:
        line = self._message_line(frame, now)
        return [] if line is None else [line]


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
    "members": ChatClient._on_members,
    "join": ChatClient._on_presence,
    "leave": ChatClient._on_presence,
    "presence": ChatClient._on_presence_batch,
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
    "keys": ChatClient._on_keys,
    "claimed": ChatClient._on_claimed,
    "keys_changed": ChatClient._on_keys_changed,
    "keys_uploaded": ChatClient._on_keys_uploaded,
    "encrypted": ChatClient._on_encrypted,
    "device_messages": ChatClient._on_device_messages,
    "search": ChatClient._on_search,
    "invitation": on_invitation,
}
