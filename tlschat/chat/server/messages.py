"""Chat lines from a session: checked, held in order, committed once, answered once."""

from __future__ import annotations

from typing import Any

from ...protocol.identity import fingerprints_equal
from ..envelope import SignedMessage
from ..frames import (
    FrameError,
    b64,
    has_unsafe_text,
    message_fields,
    parse_signed_message,
)
from ..limits import TokenBucket
from .durations import describe_duration
from .hello import ServerHello
from .model import (
    DEGRADED_REJECTION,
    FINGERPRINT_PATTERN,
    MAX_CLOCK_SKEW_MS,
    REPLAY_REJECTION,
    Outgoing,
    Session,
    Throttled,
)
from .replies import error_frame, sent_frame

MAX_REMEMBERED_COMMITTED = 10_000


HOLD_LIMIT = 60.0


class ServerMessages(ServerHello):
    """A session's 'say' frames."""

    def _on_say(self, session: Session, frame: dict[str, Any], now: float) -> list[Outgoing]:
        message = parse_signed_message(frame)
        if self._committed(session, message):
            # Sent again after a lost connection: it was delivered then, and is acknowledged
            # again rather than refused, so that "sent" is the only proof of delivery.
            return [(session.session_id, sent_frame(message.target, message.counter))]
        key = (message.sender, message.counter)
        if key in self.awaiting:
            return []  # the first copy's outcome is on its way
        refused = self.recently_refused.get(key)
        if refused is not None and refused[0] == b64(message.signature):
            return [(session.session_id, refused[1])]
        try:
            if self.degraded:
                raise FrameError(DEGRADED_REJECTION)
            self._hold_order(session, message, now)
            self.check_message(session, message, now)
            relayed = {
                "type": "message",
                "from": session.nick,
                "key": b64(session.identity.spki_der),
                **message_fields(message),
            }
            origin = {"node": self.node, "sid": session.session_id}
            kind = "message"
            if message.target.startswith("@"):
                if not self._online_of(message.target[1:]):
                    raise FrameError("message not delivered: that user is not online")
                kind = "private"
        except FrameError as error:
            refusal = {**error_frame(str(error)), "counter": message.counter}
            if isinstance(error, Throttled):
                refusal["retry_after"] = round(error.wait, 3)
                if session.held_counter is None:
                    session.held_counter, session.held_since = message.counter, now
            else:
                self._remember_refused(message.sender, message.counter, message.signature, refusal)
                if message.counter == session.held_counter:
                    session.held_counter = None
            return [(session.session_id, refusal)]
        if message.counter == session.held_counter:
            session.held_counter = None
        self.awaiting.add((message.sender, message.counter))
        return self.publish({"type": kind, **origin, "message": relayed})

    def _committed(self, session: Session, message: SignedMessage) -> bool:
        """``message`` is one of the session's key's that this network committed already."""
        if not fingerprints_equal(message.sender, session.fingerprint):
            return False
        key = (message.sender, message.counter)
        if key in self.recently_committed:
            committed = self.recently_committed[key] == (message.target, b64(message.signature))
        elif message.target.startswith("@") or message.counter > self.store.last_counter(
            message.sender
        ):
            return False
        else:
            history = self.store.recent_messages(message.target, self.settings.history_limit)
            signed = (message.sender, message.counter, message.signature)
            committed = any((m.sender, m.counter, m.signature) == signed for m in history)
        # The same signature over other fields is not the same message.
        return committed and message.verify(session.identity)

    def _hold_order(self, session: Session, message: SignedMessage, now: float) -> None:
        """After flood control refused a session's message, its later ones are refused the same
        way until that one comes again: a line that was in flight behind it must not be stored
        ahead of it. The hold lapses after HOLD_LIMIT (a client that gave the line up)."""
        held = session.held_counter
        if held is None or message.counter == held:
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
        self, sender: str, counter: int, signature: bytes, refusal: dict[str, Any]
    ) -> None:
        self.recently_refused[(sender, counter)] = (b64(signature), refusal)
        if len(self.recently_refused) > MAX_REMEMBERED_COMMITTED:
            del self.recently_refused[next(iter(self.recently_refused))]

    def _remember_committed(self, relayed: dict[str, Any]) -> None:
        key = (relayed["sender"], relayed["counter"])
        self.recently_committed[key] = (relayed["target"], relayed["sig"])
        if len(self.recently_committed) > MAX_REMEMBERED_COMMITTED:
            del self.recently_committed[next(iter(self.recently_committed))]

    def check_message(self, session: Session, message: SignedMessage, now: float) -> None:
        """Refuse, with the reason, any message that is not exactly what its sender signed here."""
        if not fingerprints_equal(message.sender, session.fingerprint):
            raise FrameError("message rejected: it names another sender")
        if message.network != self.network:
            raise FrameError("message rejected: signed for another network")
        if message.target.startswith("@"):
            if not FINGERPRINT_PATTERN.fullmatch(message.target[1:]):
                raise FrameError("message rejected: a private message names a fingerprint")
        elif message.target not in session.rooms and message.target not in session.joining:
            # (A line sent while its room's join is on its way follows the join in the log.)
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
            raise FrameError(REPLAY_REJECTION)
        if abs(message.timestamp_ms - int(now * 1000)) > MAX_CLOCK_SKEW_MS:
            raise FrameError("message rejected: timestamp too far from the server's clock")
        wait = self._bucket(session.fingerprint).take(now)
        if wait > 0:
            raise Throttled(wait)
