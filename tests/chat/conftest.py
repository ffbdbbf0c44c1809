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
