"""``/search TEXT [#room]``: the stored history of the caller's rooms, searched by the store.
Pure.

The answer is a ``search`` frame carrying the matching lines as stored ``message`` frames, as
``history`` does, so the client checks each one's signature itself. End-to-end encrypted lines
are never searched here: the server holds only their ciphertext (the client searches what it
decrypted)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..frames import FrameError
from ..runs import split_run
from ..search_query import MAX_QUERY_BYTES, MAX_RESULTS, USAGE, split_search
from .model import Outgoing, Session
from .replies import to_session

if TYPE_CHECKING:
    from .commands import ServerCommands


def search_frames(query: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The answer, newest first: a run of as many frames as the lines need."""
    return split_run({"type": "search", "query": query}, "messages", messages, ("query",))


def cmd_search(server: ServerCommands, session: Session, args: str, now: float) -> list[Outgoing]:
    query, room = split_search(args)
    if not query:
        raise FrameError(USAGE)
    if len(query.encode()) > MAX_QUERY_BYTES:
        raise FrameError(f"a search is {MAX_QUERY_BYTES} bytes at most")
    # Only rooms the session is in (joined, not joining): never another room's history, and an
    # invite-only room only while the key is still admitted to it.
    rooms = [r for r in session.rooms if server._may_see_room(session.fingerprint, r)]
    if room:
        if room not in rooms:
            raise FrameError(f"you are not in {room}")
        rooms = [room]
    found = server.store.search_messages(rooms, query, MAX_RESULTS)
    frames = search_frames(query, [server._stored_frame(m) for m in found])
    return to_session(session.session_id, frames)
