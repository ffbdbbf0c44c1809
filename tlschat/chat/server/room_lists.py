"""A room's lists on demand (docs/PROTOCOL.md, "Runs" and "Large rooms"). Pure.

``members #room`` answers the room's member list as a run of ``members`` frames (a large room's
``joined`` carries only how many they are); ``watch #room`` answers it too, and from then on the
session hears every join and leave of the room however large it is, until ``unwatch #room``;
``history #room BEFORE`` answers the page of lines stored before the line whose id is BEFORE
(scrollback). An answer of many frames costs its sender PAGE_WORK for each frame past the first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..frames import FrameError, valid_room
from ..limits import PAGE_WORK
from ..operations import parse_id
from ..runs import split_run
from .model import HISTORY_PAGE, MAX_WATCHED_ROOMS, Outgoing, Session
from .replies import notice_frame, to_session

if TYPE_CHECKING:
    from .commands import ServerCommands

HISTORY_USAGE = "usage: /history #room SENDER:COUNTER (the id of the oldest line you have)"


def _room_of(server: ServerCommands, session: Session, args: str, usage: str) -> str:
    room = args.split(" ", 1)[0]
    if not valid_room(room):
        raise FrameError(usage)
    if room not in session.rooms:
        raise FrameError(f"you are not in {room}")
    server._refuse_unseen_room(session.fingerprint, room, "who is in it")
    return room


def _charged(
    server: ServerCommands, session: Session, out: list[Outgoing], now: float
) -> list[Outgoing]:
    """``out``, an answer to ``session`` alone, once its frames past the first are paid for."""
    if len(out) > 1:
        server._charge(session, PAGE_WORK * (len(out) - 1), now)
    return out


def members_frames(server: ServerCommands, room: str) -> list[dict[str, Any]]:
    members = server._room_members(room)
    head = {"type": "members", "room": room, "member_count": len(members)}
    return split_run(head, "members", members, ("room",))


def cmd_members(server: ServerCommands, session: Session, args: str, now: float) -> list[Outgoing]:
    room = _room_of(server, session, args, "usage: /members #room")
    return _charged(
        server, session, to_session(session.session_id, members_frames(server, room)), now
    )


def cmd_watch(server: ServerCommands, session: Session, args: str, now: float) -> list[Outgoing]:
    room = _room_of(server, session, args, "usage: /watch #room")
    session.watching &= set(session.rooms)
    if room not in session.watching and len(session.watching) >= MAX_WATCHED_ROOMS:
        raise FrameError(f"you watch {MAX_WATCHED_ROOMS} rooms already; /unwatch one first")
    session.watching.add(room)
    return _charged(
        server, session, to_session(session.session_id, members_frames(server, room)), now
    )


def cmd_unwatch(server: ServerCommands, session: Session, args: str, now: float) -> list[Outgoing]:
    room = args.split(" ", 1)[0]
    if not valid_room(room):
        raise FrameError("usage: /unwatch #room")
    if room not in session.watching:
        raise FrameError(f"you do not watch {room}")
    session.watching.discard(room)
    return [(session.session_id, notice_frame(f"no longer watching who comes and goes in {room}"))]


def cmd_history(server: ServerCommands, session: Session, args: str, now: float) -> list[Outgoing]:
    room = _room_of(server, session, args, HISTORY_USAGE)
    words = args.split(" ")
    before = words[1] if len(words) == 2 else ""
    anchor = parse_id(before)
    if anchor is None:
        raise FrameError(HISTORY_USAGE)
    page = server.store.messages_before(room, anchor, HISTORY_PAGE + 1)
    if page is None:
        raise FrameError(f"{room} holds no line {before} (any more)")
    older = len(page) > HISTORY_PAGE
    out = server._history_run(session.session_id, room, page[-HISTORY_PAGE:], older, before)
    return _charged(server, session, out, now)
