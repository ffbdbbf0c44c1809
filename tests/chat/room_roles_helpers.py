"""Builders shared by the tests of private rooms and room roles (test_server_room_roles*.py)."""

from __future__ import annotations

from typing import Any, TypeVar

from tlschat.chat.server.cluster_events import ClusterEvent
from tlschat.chat.server.events import ChatServer
from tlschat.chat.server.model import Outgoing

from .helpers import ALICE, BOB, Frames, command

E = TypeVar("E", bound=ClusterEvent)

TEAM = "#team"
INVITE_ONLY = "#team is invite-only; ask one of its operators for an invitation"


def team(server: ChatServer, private: bool = True) -> ChatServer:
    """alice creates #team (so owns it) and bob joins it; with ``private``, alice then makes it
    invite-only."""
    command(server, ALICE, "join", TEAM)
    command(server, BOB, "join", TEAM)
    if private:
        command(server, ALICE, "private", TEAM)
    return server


def to(session_id: int, out: Frames, kind: str | None = None) -> list[dict[str, Any]]:
    """The frames of ``out`` for ``session_id`` (of type ``kind``, if given)."""
    return [f for sid, f in out if sid == session_id and (kind is None or f["type"] == kind)]


def texts(session_id: int, out: Frames) -> list[str]:
    """The texts of the notices and errors ``out`` has for ``session_id``."""
    return [str(f["text"]) for f in to(session_id, out) if f["type"] in ("notice", "error")]


def mentions(out: Frames, session_id: int, word: str) -> bool:
    """Whether any frame ``out`` has for ``session_id`` names ``word`` anywhere."""
    return any(word in repr(frame) for sid, frame in out if sid == session_id)


class Deferred:
    """Publishes into a list instead of applying: a test applies the events in the order a
    cluster's log might have put them."""

    def __init__(self) -> None:
        self.events: list[ClusterEvent] = []

    def __call__(self, event: ClusterEvent) -> list[Outgoing]:
        self.events.append(event)
        return []

    def take(self, kind: type[E]) -> E:
        found = next(e for e in self.events if isinstance(e, kind))
        self.events.remove(found)
        return found
