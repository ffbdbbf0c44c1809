"""The commands of rooms' owners and operators (docs/PROTOCOL.md, section 22, "Private rooms and
room roles"): invite-only rooms, invitations, room operators, and kicks, bans and mutes within a
room. Each checks who may do it here and publishes one event (``room_roles`` applies it); the
caller hears that it is done once it took effect."""

from __future__ import annotations

from ..frames import FrameError
from .cluster_events import (
    RoomBan,
    RoomInvite,
    RoomKick,
    RoomMode,
    RoomMute,
    RoomOp,
    RoomUnban,
    RoomUnmute,
)
from .durations import describe_duration, parse_duration
from .model import DEFAULT_ROOM, Outgoing, Session
from .room_book import (
    MAX_ROOM_ADMITTED,
    MAX_ROOM_BANS,
    MAX_ROOM_MUTES,
    MAX_ROOM_OPERATORS,
    OWNER,
    ROOM_OPERATOR,
    checked_reason,
    room_argument,
    split_room_target,
    title,
)
from .room_roles import ServerRoomRoles


class ServerRoomCommands(ServerRoomRoles):
    """/private, /public, /invite, /uninvite, /roomop, /deroomop, /rkick, /rban, /runban,
    /rmute and /runmute."""

    def _room_actor(self, session: Session, room: str, needed: int) -> int:
        """The caller's rank in ``room``, if it is at least ``needed``."""
        rank = self._room_rank(room, session.fingerprint)
        if rank < needed:
            who = f"the owner of {room}" if needed == OWNER else f"the operators of {room}"
            raise FrameError(f"only {who} (or a server operator) can do that")
        return rank

    def _room_target(
        self, session: Session, args: str, usage: str, needed: int
    ) -> tuple[str, str, str, str, int]:
        """'NICK|FP #room [rest]' from a caller of rank ``needed`` or more -> (room,
        fingerprint, shown name, rest, the caller's rank)."""
        room, who, rest = split_room_target(args, usage)
        rank = self._room_actor(session, room, needed)
        fingerprint = self._resolve(who)
        if fingerprint is None:
            raise FrameError(f"no such nick: {who}")
        return room, fingerprint, who, rest, rank

    def _outranked(self, room: str, fingerprint: str, who: str, rank: int) -> None:
        """Nobody acts on a key of their own rank or above within a room."""
        target = self._room_rank(room, fingerprint)
        if target >= rank:
            raise FrameError(f"{who} is {title(target, room)}")

    def _cmd_private(self, session: Session, args: str, now: float) -> list[Outgoing]:
        room = room_argument(args, "/private #room")
        if room == DEFAULT_ROOM:
            raise FrameError(f"{DEFAULT_ROOM} is open to everyone")
        self._room_actor(session, room, ROOM_OPERATOR)
        if self.room_book.invite_only(room):
            raise FrameError(f"{room} is invite-only already")
        # The keys in it now are its members: they come back after a lost connection.
        members = sorted({m.fingerprint for m in self._cluster_members(room)})
        sealed = "" if room in self.encrypted_rooms else ", and end-to-end encrypted for good"
        return self.publish(
            RoomMode(
                **self._confirmed(session, f"{room} is invite-only now{sealed}"),
                room=room,
                invite_only=True,
                members=tuple(members[:MAX_ROOM_ADMITTED]),
                by=session.nick,
            )
        )

    def _cmd_public(self, session: Session, args: str, now: float) -> list[Outgoing]:
        room = room_argument(args, "/public #room")
        self._room_actor(session, room, ROOM_OPERATOR)
        if not self.room_book.invite_only(room):
            raise FrameError(f"{room} is not invite-only")
        sealed = " (it stays end-to-end encrypted)" if room in self.encrypted_rooms else ""
        done = f"{room} is open to everyone now{sealed}"
        return self.publish(
            RoomMode(
                **self._confirmed(session, done), room=room, invite_only=False, by=session.nick
            )
        )

    def _cmd_invite(self, session: Session, args: str, now: float) -> list[Outgoing]:
        room, fingerprint, who, _, _ = self._room_target(
            session, args, "/invite NICK|FP #room", ROOM_OPERATOR
        )
        state = self.room_book.state(room)
        if state.active_ban(fingerprint, now) is not None:
            raise FrameError(f"{who} is banned from {room}; /runban first")
        if state.admits(fingerprint):
            raise FrameError(f"{who} may join {room} already")
        if len(state.admitted) >= MAX_ROOM_ADMITTED:
            raise FrameError(f"{room} has {MAX_ROOM_ADMITTED} invitations and members already")
        return self.publish(
            RoomInvite(
                **self._confirmed(session, f"invited {who} to {room}"),
                room=room,
                fingerprint=fingerprint,
                invited=True,
                text=f"{session.nick} invited you to {room}: /join {room}",
            )
        )

    def _cmd_uninvite(self, session: Session, args: str, now: float) -> list[Outgoing]:
        room, fingerprint, who, _, _ = self._room_target(
            session, args, "/uninvite NICK|FP #room", ROOM_OPERATOR
        )
        state = self.room_book.get(room)
        if state is None or fingerprint not in state.admitted:
            raise FrameError(f"{who} is not invited to {room}")
        return self.publish(
            RoomInvite(
                **self._confirmed(session, f"{who} may no longer join {room}"),
                room=room,
                fingerprint=fingerprint,
                invited=False,
                text="",
            )
        )

    def _cmd_roomop(self, session: Session, args: str, now: float) -> list[Outgoing]:
        room, fingerprint, who, _, _ = self._room_target(
            session, args, "/roomop NICK|FP #room", OWNER
        )
        rank = self._room_rank(room, fingerprint)
        if rank >= ROOM_OPERATOR:
            raise FrameError(f"{who} is {title(rank, room)} already")
        if len(self.room_book.state(room).operators) >= MAX_ROOM_OPERATORS:
            raise FrameError(f"{room} has {MAX_ROOM_OPERATORS} operators already")
        return self.publish(
            RoomOp(
                **self._confirmed(session, f"{who} is an operator of {room} now"),
                room=room,
                fingerprint=fingerprint,
                operator=True,
                text=f"{session.nick} made you an operator of {room}",
            )
        )

    def _cmd_deroomop(self, session: Session, args: str, now: float) -> list[Outgoing]:
        room, fingerprint, who, _, _ = self._room_target(
            session, args, "/deroomop NICK|FP #room", OWNER
        )
        state = self.room_book.get(room)
        if state is None or fingerprint not in state.operators:
            raise FrameError(f"{who} is not an operator of {room}")
        return self.publish(
            RoomOp(
                **self._confirmed(session, f"{who} is no longer an operator of {room}"),
                room=room,
                fingerprint=fingerprint,
                operator=False,
                text=f"{session.nick} took back your operator status in {room}",
            )
        )

    def _cmd_rkick(self, session: Session, args: str, now: float) -> list[Outgoing]:
        room, fingerprint, who, reason, rank = self._room_target(
            session, args, "/rkick NICK|FP #room [REASON]", ROOM_OPERATOR
        )
        self._outranked(room, fingerprint, who, rank)
        if not any(m.fingerprint == fingerprint for m in self._cluster_members(room)):
            raise FrameError(f"{who} is not in {room}")
        reason = checked_reason(reason)
        return self.publish(
            RoomKick(
                **self._confirmed(session, f"kicked {who} from {room}: {reason}"),
                room=room,
                fingerprint=fingerprint,
                text=f"you were kicked from {room} by {session.nick}: {reason}",
                leave=f"kicked by {session.nick}: {reason}",
            )
        )

    def _cmd_rban(self, session: Session, args: str, now: float) -> list[Outgoing]:
        room, fingerprint, who, rest, rank = self._room_target(
            session, args, "/rban NICK|FP #room [30m|2h|7d] [REASON]", ROOM_OPERATOR
        )
        if room == DEFAULT_ROOM:
            raise FrameError(f"{DEFAULT_ROOM} is everyone's: /ban bans a key from the server")
        self._outranked(room, fingerprint, who, rank)
        state = self.room_book.state(room)
        expired, _ = state.expired(now)
        others = [f for f in state.bans if f != fingerprint and f not in expired]
        if len(others) >= MAX_ROOM_BANS:
            raise FrameError(f"{room} has {MAX_ROOM_BANS} bans already; /runban some first")
        duration, reason = _split_duration(rest)
        reason = checked_reason(reason)
        how_long = "for good" if duration is None else f"for {describe_duration(duration)}"
        return self.publish(
            RoomBan(
                **self._confirmed(session, f"banned {who} ({fingerprint}) from {room} {how_long}"),
                room=room,
                fingerprint=fingerprint,
                until=None if duration is None else now + duration,
                reason=reason,
                by=session.fingerprint,
                text=f"you were banned from {room} {how_long} by {session.nick}: {reason}",
                leave=f"banned {how_long} by {session.nick}: {reason}",
                expired_bans=tuple(expired),
            )
        )

    def _cmd_runban(self, session: Session, args: str, now: float) -> list[Outgoing]:
        room, fingerprint, who, _, _ = self._room_target(
            session, args, "/runban NICK|FP #room", ROOM_OPERATOR
        )
        state = self.room_book.get(room)
        if state is None or state.active_ban(fingerprint, now) is None:
            raise FrameError(f"{who} is not banned from {room}")
        done = f"unbanned {who} ({fingerprint}) from {room}"
        return self.publish(
            RoomUnban(**self._confirmed(session, done), room=room, fingerprint=fingerprint)
        )

    def _cmd_rmute(self, session: Session, args: str, now: float) -> list[Outgoing]:
        room, fingerprint, who, rest, rank = self._room_target(
            session, args, "/rmute NICK|FP #room [DURATION]", ROOM_OPERATOR
        )
        self._outranked(room, fingerprint, who, rank)
        state = self.room_book.state(room)
        _, expired = state.expired(now)
        others = [f for f in state.mutes if f != fingerprint and f not in expired]
        if len(others) >= MAX_ROOM_MUTES:
            raise FrameError(f"{room} has {MAX_ROOM_MUTES} mutes already; /runmute some first")
        duration, _ = _split_duration(rest)
        how_long = "" if duration is None else f" for {describe_duration(duration)}"
        return self.publish(
            RoomMute(
                **self._confirmed(session, f"muted {who} in {room}{how_long}"),
                room=room,
                fingerprint=fingerprint,
                until=None if duration is None else now + duration,
                text=f"you were muted in {room}{how_long} by {session.nick}",
                expired_mutes=tuple(expired),
            )
        )

    def _cmd_runmute(self, session: Session, args: str, now: float) -> list[Outgoing]:
        room, fingerprint, who, _, _ = self._room_target(
            session, args, "/runmute NICK|FP #room", ROOM_OPERATOR
        )
        state = self.room_book.get(room)
        if state is None or state.muted_until(fingerprint, now) is None:
            raise FrameError(f"{who} is not muted in {room}")
        return self.publish(
            RoomUnmute(
                **self._confirmed(session, f"unmuted {who} in {room}"),
                room=room,
                fingerprint=fingerprint,
                text=f"you were unmuted in {room} by {session.nick}",
            )
        )


def _split_duration(rest: str) -> tuple[float | None, str]:
    """'[DURATION] [REASON]' -> (seconds or None, reason)."""
    first, _, remainder = rest.partition(" ")
    duration = parse_duration(first)
    if duration is None:
        return None, rest
    return duration, remainder.strip()
