"""A session's life and its frames: connect, receive (within the connection's and the key's
budgets), disconnect, and time passing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...protocol.identity import PeerIdentity
from ..e2e_frames import is_encrypted
from ..frames import (
    FrameError,
    field_str,
)
from ..limits import frame_cost, work_cost
from ..presence import Announcement
from .cluster_events import Offline
from .commands import ServerCommands
from .durations import describe_duration
from .model import MAX_HELD, Outgoing, Session, TooFast
from .replies import error_frame

# Frames refused in a row by the connection's budget before it is closed: one told to slow down
# that does not is not answered error by error.
MAX_REFUSED_FRAMES = 50


# How often the keys' flood and work buckets that are full again are forgotten: a full bucket is
# what a key that comes back would start with, and keys cost nothing to make.
BUCKET_SWEEP_INTERVAL = 10.0


class ServerSessions(ServerCommands):
    """What the glue calls for each connection."""

    def connect(
        self, session_id: int, identity: PeerIdentity, address: str, now: float
    ) -> list[Outgoing]:
        """A handshake completed. Refuses banned keys; a key the allowlist does not admit is
        refused in answer to its hello, unless that brings an invitation."""
        self.now = max(self.now, now)
        session = Session(
            session_id, identity, address, now, now, frames=self.settings.connection_budget()
        )
        self.sessions[session_id] = session
        fingerprint = identity.fingerprint
        ban = self.store.active_ban(fingerprint, now)
        if ban is not None:
            until = "for good" if ban.until is None else f"for {describe_duration(ban.until - now)}"
            return self._bye(session_id, f"you are banned {until}: {ban.reason}")
        if not self.admits(fingerprint):
            return self._unlisted(session)
        return []

    def disconnect(self, session_id: int, reason: str) -> list[Outgoing]:
        session = self.sessions.pop(session_id, None)
        if session is None or not session.said_hello:
            return []
        self._exit_all(session)
        return self.publish(
            Offline(
                **self._presence(session),
                rooms=(*session.rooms, *session.joining),
                reason=reason,
            )
        )

    def tick(self, now: float) -> list[Outgoing]:
        """Time passed: the join and leave notices that waited for their rooms' budgets. The glue
        calls it often while ``presence_waiting``, and now and then anyway: rooms gone quiet and
        keys whose budgets are whole again are forgotten then."""
        self.now = max(self.now, now)
        if self.now - self.swept_at >= BUCKET_SWEEP_INTERVAL:
            self.swept_at = self.now
            for buckets in (self.buckets, self.work_buckets):
                for fingerprint in [f for f, b in buckets.items() if b.is_full(self.now)]:
                    del buckets[fingerprint]
        by_room: dict[str, list[Announcement]] = {}
        for announcement in self.presence.due(self.now):
            room, fingerprint = announcement.room, announcement.fingerprint
            if announcement.frame["type"] == "join":
                # As the key is now: a nick or away change since was told to fewer people.
                present = [m for m in self._cluster_members(room) if m.fingerprint == fingerprint]
                if not present:
                    continue
                frame = {**announcement.frame, **present[0].describe()}
                announcement = Announcement(room, fingerprint, frame)
            by_room.setdefault(room, []).append(announcement)
        out: list[Outgoing] = []
        for room, changes in by_room.items():
            out += self._tell_presence(room, changes)
        return out

    @property
    def presence_waiting(self) -> bool:
        return self.presence.waiting > 0

    def receive(self, session_id: int, frame: dict[str, Any], now: float) -> list[Outgoing]:
        session = self.sessions.get(session_id)
        if session is None or session.dismissed:
            return []
        self.now = max(self.now, now)
        refusal = self._over_budget(session, frame, now)
        if refusal is not None:
            return refusal
        kind = frame["type"]
        if kind == "pong":
            return []
        try:
            if kind == "ping":
                if session.said_hello:
                    self._charge(session, work_cost("ping"), now)
                return [(session_id, {"type": "pong"})]
            if kind == "hello":
                return self._on_hello(session, frame, now)
            if not session.said_hello:
                raise FrameError("say hello first")
            if session.claiming:
                # Acted on once its nick is settled (_apply_online), in the order it came.
                if len(session.held) >= MAX_HELD:
                    raise FrameError("too much sent before your nick was settled; send it again")
                session.held.append((frame, now))
                return []
            session.last_active = now
            if kind == "say":
                if is_encrypted(frame):
                    return self._on_encrypted_say(session, frame, now)
                return self._on_say(session, frame, now)
            handler = E2E_FRAMES.get(kind)
            if handler is not None:
                return handler(self, session, frame, now)
            if kind == "command":
                name = field_str(frame, "name", 32).lower()
                args = field_str(frame, "args", 8192) if "args" in frame else ""
                self._charge(session, work_cost(name), now)
                return self.run_command(session, name, args.strip(), now)
            raise FrameError(f"unknown frame type {kind!r}")
        except TooFast as error:
            return [(session_id, {**error_frame(str(error)), "retry_after": round(error.wait, 3)})]
        except FrameError as error:
            return [(session_id, error_frame(str(error)))]

    def refuse_frame(self, session_id: int, reason: str, now: float) -> list[Outgoing]:
        """A frame that could not be decoded: it costs its connection like any other."""
        session = self.sessions.get(session_id)
        if session is None or session.dismissed:
            return []
        refusal = self._over_budget(session, {}, now)
        return refusal if refusal is not None else [(session_id, error_frame(reason))]

    def _over_budget(
        self, session: Session, frame: dict[str, Any], now: float
    ) -> list[Outgoing] | None:
        """Charge ``frame`` to its connection's budget: None if it may go on, else the answer
        (a wait, or the end of a connection that kept sending while told to wait)."""
        wait = session.frames.take(now, frame_cost(frame))
        if wait == 0:
            session.refused_frames = 0
            return None
        session.refused_frames += 1
        if session.refused_frames > MAX_REFUSED_FRAMES:
            return self._bye(session.session_id, "too many frames: you were told to slow down")
        refusal = {**error_frame("slow down: this connection sends too much"), "retry_after": wait}
        counter = frame.get("counter")
        if frame.get("type") == "say" and isinstance(counter, int):
            refusal["counter"] = counter  # the sender's client sends that line again later
        return [(session.session_id, refusal)]


FrameHandler = Callable[[ServerSessions, Session, dict[str, Any], float], list[Outgoing]]


# The end-to-end layer's frames (docs/PROTOCOL.md, "End-to-end layer"), by type.
E2E_FRAMES: dict[str, FrameHandler] = {
    "keys_upload": ServerSessions._on_keys_upload,
    "keys_query": ServerSessions._on_keys_query,
    "keys_claim": ServerSessions._on_keys_claim,
    "device_remove": ServerSessions._on_device_remove,
    "to_device": ServerSessions._on_to_device,
    "device_ack": ServerSessions._on_device_ack,
}
