"""Private rooms and room roles (docs/PROTOCOL.md, section 22, "Private rooms and room roles"): who
may join a room, see it and talk in it, and the events that change a room's roles and rules.

A room's first key owns it; its owner and operators make it invite-only (and so end-to-end
encrypted, for good), invite keys, and kick, ban and mute keys within it. An invite-only room
shows nothing of itself (members, topic, that a key is in it) to keys it does not admit.
"""

from __future__ import annotations

from typing import Any

from ...store.base import Ban, Store
from ...store.room_state import Grant
from ..frames import FrameError
from .cluster_events import (
    HandlerTable,
    Join,
    Part,
    RoomBan,
    RoomInvite,
    RoomKick,
    RoomMode,
    RoomMute,
    RoomOp,
    RoomOwner,
    RoomUnban,
    RoomUnmute,
    handler,
)
from .durations import describe_duration
from .messages import ServerMessages
from .model import (
    DEFAULT_ROOM,
    MAX_ROOMS_PER_USER,
    ChatSettings,
    Outgoing,
    Publish,
    Session,
)
from .replies import error_frame, notice_frame
from .room_book import INVITE_ONLY_REFUSAL, MAX_OWNED_ROOMS, OWNER, ROOM_OPERATOR, RoomBook


class ServerRoomRoles(ServerMessages):
    """What rooms' roles and rules decide, and the events that change them."""

    def __init__(
        self,
        settings: ChatSettings,
        store: Store,
        node: str,
        publish: Publish,
        *,
        network: str,
    ) -> None:
        super().__init__(settings, store, node, publish, network=network)
        self.room_book = RoomBook(store.room_states())

    # ----- what the rest of the chat logic asks -----

    def _room_rank(self, room: str, fingerprint: str) -> int:
        return self.room_book.rank(room, fingerprint, self.is_operator(fingerprint))

    def _may_see_room(self, fingerprint: str, room: str) -> bool:
        """An invite-only room is seen by the keys it admits, the keys in it and server
        operators only; any other room by everyone."""
        state = self.room_book.get(room)
        if state is None or not state.invite_only:
            return True
        if self.is_operator(fingerprint) or state.admits(fingerprint):
            return True
        return any(m.fingerprint == fingerprint for m in self._cluster_members(room))

    def _refuse_unseen_room(self, fingerprint: str, room: str, what: str) -> None:
        if not self._may_see_room(fingerprint, room):
            raise FrameError(f"{room} is invite-only; only its members see {what}")

    def _room_marks(self, room: str) -> str:
        """How /rooms describes the room beside its member count."""
        return ", invite-only" if self.room_book.invite_only(room) else ""

    def _role_mark(self, room: str, fingerprint: str) -> str:
        """How /names shows a member's role in the room."""
        rank = self.room_book.rank(room, fingerprint, False)
        if rank == OWNER:
            return " (owner)"
        return " (room operator)" if rank == ROOM_OPERATOR else ""

    def _room_mute(self, fingerprint: str, room: str, now: float) -> str | None:
        """'you are muted in ROOM [for D]' while the key is muted in the room, else None."""
        state = self.room_book.get(room)
        until = state.muted_until(fingerprint, now) if state is not None else None
        if until is None:
            return None
        how_long = "" if until == float("inf") else f" for {describe_duration(until - now)}"
        return f"you are muted in {room}{how_long}"

    def _refuse_if_room_muted(self, session: Session, room: str, now: float) -> None:
        muted = self._room_mute(session.fingerprint, room, now)
        if muted is not None:
            raise FrameError(muted)

    def _check_may_join(self, fingerprint: str, room: str, now: float) -> None:
        """A room's ban, and an invite-only room's invitation; never for a server operator."""
        state = self.room_book.get(room)
        if state is None or self.is_operator(fingerprint):
            return
        ban = state.active_ban(fingerprint, now)
        if ban is not None:
            how_long = (
                "for good" if ban.until is None else f"for {describe_duration(ban.until - now)}"
            )
            raise FrameError(f"you are banned from {room} {how_long}: {ban.reason}")
        if state.invite_only and not state.admits(fingerprint):
            raise FrameError(INVITE_ONLY_REFUSAL.format(room=room))

    # ----- the layers below, with rooms' roles and rules -----

    def _join(self, session: Session, room: str) -> list[Outgoing]:
        """A room's bans and invitations decide first; the first key to join a room without an
        owner claims it, before its join (so that its 'joined' names it)."""
        unchanged = room in session.rooms or room in session.joining
        full = len(session.rooms) + len(session.joining) >= MAX_ROOMS_PER_USER
        if room == DEFAULT_ROOM or unchanged or full:
            return super()._join(session, room)  # #general is everyone's; the rest as before
        self._check_may_join(session.fingerprint, room, self.now)
        return self._claim_room(session, room) + super()._join(session, room)

    def _claim_room(self, session: Session, room: str) -> list[Outgoing]:
        state = self.room_book.get(room)
        if (
            (state is not None and state.owner is not None)
            or self.degraded
            or self.room_book.owned_by(session.fingerprint) >= MAX_OWNED_ROOMS
        ):
            return []
        return self.publish(RoomOwner(room=room, fingerprint=session.fingerprint))

    def _room_state(self, room: str) -> dict[str, Any]:
        """'joined' also names the room's owner and operators, and says it is invite-only."""
        state = super()._room_state(room)
        roles = self.room_book.get(room)
        if roles is not None:
            if roles.owner is not None:
                state["owner"] = roles.owner
            if roles.operators:
                state["operators"] = sorted(roles.operators)
            if roles.invite_only:
                state["invite_only"] = True
        return state

    def _check_room(self, session: Session, room: str) -> None:
        """A key muted in a room says nothing there (plain or encrypted)."""
        super()._check_room(session, room)
        muted = self._room_mute(session.fingerprint, room, self.now)
        if muted is not None:
            raise FrameError(f"message rejected: {muted}")

    # ----- presence events that rooms' rules see too -----

    def _turned_away(self, event: Join) -> list[Outgoing] | None:
        """A join that reached the log after its room was closed to the key (made invite-only,
        or the key banned from it, on another server meanwhile) does not take effect: what the
        joining session is told; None for a join that goes ahead."""
        room, fingerprint = event.room, event.fingerprint
        try:
            if room != DEFAULT_ROOM:
                self._check_may_join(fingerprint, room, self.now)
            return None
        except FrameError as refusal:
            session = self._sender_of_event(event)
            if session is None or room not in session.joining:
                return []
            session.joining.remove(room)
            return [(session.session_id, error_frame(str(refusal)))]

    def _parted_for_good(self, event: Part) -> None:
        """A key that parts an invite-only room needs a new invitation to come back."""
        self._grant(event.room, event.fingerprint, "admitted", False)

    # ----- events -----

    def _grant(self, room: str, fingerprint: str, grant: Grant, granted: bool) -> None:
        """Give (the room gets a state if it had none) or take back a grant."""
        state = self.room_book.state(room) if granted else self.room_book.get(room)
        if state is None or (fingerprint in state.granted(grant)) == granted:
            return
        if granted:
            state.granted(grant).add(fingerprint)
        else:
            state.granted(grant).discard(fingerprint)
        self.store.set_room_grant(room, fingerprint, grant, granted)

    def _lift_expired(
        self, room: str, bans: tuple[str, ...] = (), mutes: tuple[str, ...] = ()
    ) -> None:
        """Sanctions that had run out when the event was made (named in it, so that every
        replica and Redis forget the same ones)."""
        state = self.room_book.state(room)
        for fingerprint in bans:
            state.bans.pop(fingerprint, None)
            self.store.lift_room_ban(room, fingerprint)
        for fingerprint in mutes:
            state.mutes.pop(fingerprint, None)
            self.store.lift_room_mute(room, fingerprint)

    def _tell_room(self, room: str, text: str, exclude: int | None) -> list[Outgoing]:
        return self._to_room(room, notice_frame(text), exclude)

    def _apply_room_owner(self, event: RoomOwner) -> list[Outgoing]:
        room, fingerprint = event.room, event.fingerprint
        if self.room_book.take(room, fingerprint):
            self.store.set_room_owner(room, fingerprint)
        return []

    def _apply_room_mode(self, event: RoomMode) -> list[Outgoing]:
        """Invite-only (with the keys in it then as its members, and end-to-end encrypted for
        good), or open again (still encrypted)."""
        room, invite_only, by = event.room, event.invite_only, event.by
        self.room_book.state(room).invite_only = invite_only
        self.store.set_invite_only(room, invite_only)
        actor = self._sender_of_event(event)
        exclude = actor.session_id if actor is not None else None
        if not invite_only:
            return self._tell_room(room, f"{by} opened {room} to everyone", exclude)
        for fingerprint in event.members:
            self._grant(room, fingerprint, "admitted", True)
        out = self._tell_room(room, f"{by} made {room} invite-only", exclude)
        if room not in self.encrypted_rooms:
            self.encrypted_rooms.add(room)
            self.store.set_encrypted(room)
            out += self._to_room(room, {"type": "encrypted", "room": room, "by": by})
        return out

    def _apply_room_op(self, event: RoomOp) -> list[Outgoing]:
        self._grant(event.room, event.fingerprint, "operator", event.operator)
        return self._tell_key(event.fingerprint, event.text)

    def _apply_room_invite(self, event: RoomInvite) -> list[Outgoing]:
        self._grant(event.room, event.fingerprint, "admitted", event.invited)
        return self._tell_key(event.fingerprint, event.text) if event.invited else []

    def _apply_room_kick(self, event: RoomKick) -> list[Outgoing]:
        self._grant(event.room, event.fingerprint, "admitted", False)
        return self._remove_from_room(event)

    def _apply_room_ban(self, event: RoomBan) -> list[Outgoing]:
        room, fingerprint = event.room, event.fingerprint
        self._lift_expired(room, bans=event.expired_bans)
        ban = Ban(fingerprint, event.until, event.reason, event.by)
        self.room_book.state(room).bans[fingerprint] = ban
        self.store.set_room_ban(room, ban)
        self._grant(room, fingerprint, "admitted", False)
        self._grant(room, fingerprint, "operator", False)
        return self._remove_from_room(event)

    def _apply_room_unban(self, event: RoomUnban) -> list[Outgoing]:
        room, fingerprint = event.room, event.fingerprint
        self.room_book.state(room).bans.pop(fingerprint, None)
        self.store.lift_room_ban(room, fingerprint)
        return []

    def _apply_room_mute(self, event: RoomMute) -> list[Outgoing]:
        room, fingerprint = event.room, event.fingerprint
        self._lift_expired(room, mutes=event.expired_mutes)
        self.room_book.state(room).mutes[fingerprint] = event.until
        self.store.set_room_mute(room, fingerprint, event.until)
        return self._tell_key(fingerprint, event.text)

    def _apply_room_unmute(self, event: RoomUnmute) -> list[Outgoing]:
        room, fingerprint = event.room, event.fingerprint
        self.room_book.state(room).mutes.pop(fingerprint, None)
        self.store.lift_room_mute(room, fingerprint)
        return self._tell_key(fingerprint, event.text)

    def _tell_key(self, fingerprint: str, text: str) -> list[Outgoing]:
        return [(s.session_id, notice_frame(text)) for s in self._sessions_of(fingerprint)]

    def _remove_from_room(self, event: RoomKick | RoomBan) -> list[Outgoing]:
        """Every session of the key leaves the room (a join of it on its way is turned away when
        it comes: ``_turned_away``); the others in it are told it left, and why."""
        room, fingerprint = event.room, event.fingerprint
        out: list[Outgoing] = []
        gone: dict[str, str] = {}
        for session in self._sessions_of(fingerprint):
            if room in session.rooms:
                self._exit(session, room)
                gone = session.describe()
                out.append((session.session_id, notice_frame(event.text)))
                out.append((session.session_id, {"type": "parted", "room": room}))
        for remote in self.remote.values():
            if remote.fingerprint == fingerprint and room in remote.rooms:
                self._exit(remote, room)
                gone = remote.describe()
        if gone:
            leave = {"type": "leave", "room": room, **gone, "reason": event.leave}
            out += self._announce(room, fingerprint, leave)
        return out


# The room events, by class (in the events layer's table: ``events.EVENT_HANDLERS``).
ROOM_EVENTS: HandlerTable[ServerRoomRoles, list[Outgoing]] = dict(
    (
        handler(RoomOwner, ServerRoomRoles._apply_room_owner),
        handler(RoomMode, ServerRoomRoles._apply_room_mode),
        handler(RoomOp, ServerRoomRoles._apply_room_op),
        handler(RoomInvite, ServerRoomRoles._apply_room_invite),
        handler(RoomKick, ServerRoomRoles._apply_room_kick),
        handler(RoomBan, ServerRoomRoles._apply_room_ban),
        handler(RoomUnban, ServerRoomRoles._apply_room_unban),
        handler(RoomMute, ServerRoomRoles._apply_room_mute),
        handler(RoomUnmute, ServerRoomRoles._apply_room_unmute),
    )
)
