"""Chat lines from a session: checked, held in order, committed once, answered once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...protocol.identity import fingerprints_equal
from ..envelope import SignedMessage
from ..frames import (
    FrameError,
    b64,
    has_unsafe_body,
    parse_signed_message,
)
from ..limits import TokenBucket
from .durations import describe_duration
from .hello import ServerHello
from .line_events import CommittedLine, Message, RelayedLine
from .model import (
    DEGRADED_REJECTION,
    MAX_CLOCK_SKEW_MS,
    PLAIN_PRIVATE_REJECTION,
    REPLAY_REJECTION,
    Outgoing,
    Session,
    Throttled,
)
from .replies import error_frame, sent_frame
from .stored import stored_tag

MAX_REMEMBERED_COMMITTED = 10_000


HOLD_LIMIT = 60.0


@dataclass(frozen=True)
class Line:
    """What tells a chat line from another: its sender, counter and target, and its tag (the
    signature, or an encrypted line's digest: ``stored``)."""

    sender: str
    counter: int
    target: str
    tag: str


class StaleDevices(FrameError):
    """An encrypted private message not encrypted for exactly the devices the directory lists:
    ``stale`` names the keys whose devices the sender must query again."""

    def __init__(self, text: str, stale: list[str]) -> None:
        super().__init__(text)
        self.stale = stale


class ServerMessages(ServerHello):
    """A session's 'say' frames."""

    def _on_say(self, session: Session, frame: dict[str, Any], now: float) -> list[Outgoing]:
        message = parse_signed_message(frame)
        line = Line(message.sender, message.counter, message.target, b64(message.signature))
        if message.target.startswith("@"):
            # Private messages are end-to-end encrypted (docs/PROTOCOL.md, section 23): a plain
            # one is refused for good before anything else, whatever the state of the chat.
            refusal = {**error_frame(PLAIN_PRIVATE_REJECTION), "counter": line.counter}
            self._remember_refused(line.sender, line.counter, line.tag, refusal)
            return [(session.session_id, refusal)]
        # The same signature over other fields is not the same message.
        if self._committed(session, line) and message.verify(session.identity):
            return [(session.session_id, sent_frame(message.target, message.counter))]
        return self._take_line(session, line, now, lambda: self._plain_event(session, message, now))

    def _plain_event(self, session: Session, message: SignedMessage, now: float) -> Message:
        self.check_message(session, message, now)
        relayed = RelayedLine(
            nick=session.nick,
            key=b64(session.identity.spki_der),
            network=message.network,
            target=message.target,
            sender=message.sender,
            counter=message.counter,
            ts=message.timestamp_ms,
            body=message.body,
            sig=b64(message.signature),
        )
        return Message(**self._origin(session), message=relayed)

    def _take_line(
        self, session: Session, line: Line, now: float, checked: Callable[[], CommittedLine]
    ) -> list[Outgoing]:
        """One outcome per line however often it comes: a copy of one on its way waits for it,
        a copy of one refused for good gets the same refusal; else ``checked`` refuses it
        (FrameError) or gives the event that commits it. (A copy of a committed line was
        answered 'sent' before this.)"""
        key = (line.sender, line.counter)
        if key in self.awaiting:
            return []  # the first copy's outcome is on its way
        refused = self.recently_refused.get((line.sender, line.counter, line.tag))
        if refused is not None:
            return [(session.session_id, refused)]
        try:
            if self.degraded:
                raise FrameError(DEGRADED_REJECTION)
            self._hold_order(session, line.counter, now)
            event = checked()
        except FrameError as error:
            refusal = {**error_frame(str(error)), "counter": line.counter}
            if isinstance(error, StaleDevices):
                refusal["stale"] = error.stale
            if isinstance(error, Throttled):
                refusal["retry_after"] = round(error.wait, 3)
                if session.held_counter is None:
                    session.held_counter, session.held_since = line.counter, now
            else:
                self._remember_refused(line.sender, line.counter, line.tag, refusal)
                if line.counter == session.held_counter:
                    session.held_counter = None
            return [(session.session_id, refusal)]
        if line.counter == session.held_counter:
            session.held_counter = None
        self.awaiting.add(key)
        return self.publish(event)

    def _committed(self, session: Session, line: Line) -> bool:
        """``line`` is one of the session's key's that this network committed already."""
        if not fingerprints_equal(line.sender, session.fingerprint):
            return False
        key = (line.sender, line.counter)
        if key in self.recently_committed:
            return self.recently_committed[key] == (line.target, line.tag)
        if line.target.startswith("@") or line.counter > self.store.last_counter(line.sender):
            return False
        history = self.store.recent_messages(line.target, self.settings.history_limit)
        return any((m.sender, m.counter) == key and stored_tag(m) == line.tag for m in history)

    def _hold_order(self, session: Session, counter: int, now: float) -> None:
        """After flood control refused a session's message, its later ones are refused the same
        way until that one comes again: a line that was in flight behind it must not be stored
        ahead of it. The hold lapses after HOLD_LIMIT (a client that gave the line up)."""
        held = session.held_counter
        if held is None or counter == held:
            return
        if now - session.held_since > HOLD_LIMIT:
            session.held_counter = None
            return
        raise Throttled(self._bucket(session.fingerprint).wait(now))

    def _bucket(self, fingerprint: str) -> TokenBucket:
        return self.buckets.setdefault(
            fingerprint, TokenBucket(self.settings.rate_per_second, self.settings.burst)
        )

    def _remember_refused(
        self, sender: str, counter: int, tag: str, refusal: dict[str, Any]
    ) -> None:
        self.recently_refused[(sender, counter, tag)] = refusal
        if len(self.recently_refused) > MAX_REMEMBERED_COMMITTED:
            del self.recently_refused[next(iter(self.recently_refused))]

    def forget_lines(self, lines: tuple[tuple[str, int], ...]) -> None:
        """Lines (sender, counter) that the store could not keep after all: a retry of one is
        taken in again, not confirmed as committed."""
        for line in lines:
            self.recently_committed.pop(line, None)

    def _remember_committed(self, relayed: RelayedLine, tag: str) -> None:
        self.recently_committed[(relayed.sender, relayed.counter)] = (relayed.target, tag)
        if len(self.recently_committed) > MAX_REMEMBERED_COMMITTED:
            del self.recently_committed[next(iter(self.recently_committed))]

    def check_message(self, session: Session, message: SignedMessage, now: float) -> None:
        """Refuse, with the reason, any room line that is not exactly what its sender signed
        here."""
        if not fingerprints_equal(message.sender, session.fingerprint):
            raise FrameError("message rejected: it names another sender")
        if message.network != self.network:
            raise FrameError("message rejected: signed for another network")
        self._check_room(session, message.target)
        if message.target in self.encrypted_rooms:
            raise FrameError(f"message rejected: {message.target} is end-to-end encrypted")
        if not message.body.strip():
            raise FrameError("message rejected: empty message")
        if len(message.body.encode("utf-8")) > self.settings.max_body_bytes:
            raise FrameError(f"message rejected: longer than {self.settings.max_body_bytes} bytes")
        if has_unsafe_body(message.body):
            raise FrameError("message rejected: control characters are not allowed")
        self._check_not_muted(session, now)
        if not message.verify(session.identity):
            raise FrameError("message rejected: bad signature")
        self._check_counter_time_flood(session, message.counter, message.timestamp_ms, now)

    def _check_room(self, session: Session, room: str) -> None:
        # (A line sent while its room's join is on its way follows the join in the log.)
        if room not in session.rooms and room not in session.joining:
            raise FrameError(f"message rejected: you are not in {room}")

    def _check_not_muted(self, session: Session, now: float) -> None:
        """Check 8: a muted key says nothing in rooms (private messages still pass)."""
        muted_until = self._muted_until(session.fingerprint, now)
        if muted_until is not None:
            how_long = (
                ""
                if muted_until == float("inf")
                else f" for {describe_duration(muted_until - now)}"
            )
            raise FrameError(f"message rejected: you are muted{how_long}")

    def _check_counter_time_flood(
        self, session: Session, counter: int, timestamp_ms: int, now: float
    ) -> None:
        """Checks 10 to 12: a counter above the persisted last, a time near the server's, and
        a token of the key's flood control (taken last: only a line that passes everything else
        spends one)."""
        if counter <= self.store.last_counter(session.fingerprint):
            raise FrameError(REPLAY_REJECTION)
        if abs(timestamp_ms - int(now * 1000)) > MAX_CLOCK_SKEW_MS:
            raise FrameError("message rejected: timestamp too far from the server's clock")
        wait = self._bucket(session.fingerprint).take(now)
        if wait > 0:
            raise Throttled(wait)
