"""Constants and small builders shared by the chat-domain tests."""

from __future__ import annotations

from tlschat.protocol.identity import IdentityKey, PeerIdentity

NOW = 1_700_000_000.0
NOW_MS = 1_700_000_000_000


def peer_of(key: IdentityKey) -> PeerIdentity:
    return PeerIdentity.from_spki(key.spki_der)
