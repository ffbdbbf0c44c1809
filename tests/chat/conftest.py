"""Shared identities for the chat-domain tests. RSA keys are slow to generate: once per session."""

from __future__ import annotations

import pytest

from tlschat.chat.server.events import ChatServer
from tlschat.protocol.identity import IdentityKey

from .helpers import ALICE, BOB, CAROL, hello, make_server


@pytest.fixture(scope="session")
def rsa_alice() -> IdentityKey:
    return IdentityKey.generate("rsa")


@pytest.fixture(scope="session")
def rsa_mallory() -> IdentityKey:
    return IdentityKey.generate("rsa")


@pytest.fixture(scope="session")
def ed_alice() -> IdentityKey:
    return IdentityKey.generate("ed25519")


@pytest.fixture(scope="session")
def ed_bob() -> IdentityKey:
    return IdentityKey.generate("ed25519")


@pytest.fixture(scope="session")
def ed_carol() -> IdentityKey:
    return IdentityKey.generate("ed25519")


@pytest.fixture(scope="session")
def ed_dave() -> IdentityKey:
    return IdentityKey.generate("ed25519")


@pytest.fixture
def server() -> ChatServer:
    """A server with default settings and an in-memory store; modules may override it."""
    return make_server()


@pytest.fixture
def room(
    server: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> ChatServer:
    hello(server, ALICE, ed_alice, "alice")
    hello(server, BOB, ed_bob, "bob")
    hello(server, CAROL, ed_carol, "carol")
    return server


def _counted(server: ChatServer) -> dict[str, dict[str, int]]:
    """What the room index must hold: every room of every session of the cluster, per key."""
    counts: dict[str, dict[str, int]] = {}
    for member in server._everyone():
        for room in member.rooms:
            keys = counts.setdefault(room, {})
            keys[member.fingerprint] = keys.get(member.fingerprint, 0) + 1
    return counts


def _local(server: ChatServer) -> dict[str, set[int]]:
    """Which of the server's own sessions each room must list."""
    rooms: dict[str, set[int]] = {}
    for session in server.sessions.values():
        for room in session.rooms:
            rooms.setdefault(room, set()).add(session.session_id)
    return rooms


@pytest.fixture(autouse=True)
def room_index_follows_every_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """After every call that can move a session in or out of a room, in every test of the chat
    domain, the server's room index says what a pass over the sessions says."""
    for name in ("apply", "receive", "disconnect", "tick", "rejected", "node_lost"):
        original = getattr(ChatServer, name)

        def checked(self: ChatServer, *args: object, _original: object = original) -> object:
            result = _original(self, *args)  # type: ignore[operator]
            assert self.room_index.snapshot() == _counted(self)
            assert self.room_index.local_snapshot() == _local(self)
            return result

        monkeypatch.setattr(ChatServer, name, checked)
