"""Shared identities for the chat-domain tests. RSA keys are slow to generate: once per session."""

from __future__ import annotations

import pytest

from tlschat.protocol.identity import IdentityKey


@pytest.fixture(scope="session")
def rsa_alice() -> IdentityKey:
    return IdentityKey.generate("rsa")


@pytest.fixture(scope="session")
def rsa_mallory() -> IdentityKey:
    return IdentityKey.generate("rsa")


@pytest.fixture(scope="session")
def ed_bob() -> IdentityKey:
    return IdentityKey.generate("ed25519")


@pytest.fixture(scope="session")
def ed_carol() -> IdentityKey:
    return IdentityKey.generate("ed25519")
