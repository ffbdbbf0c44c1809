"""The signed chat-message envelope: exact signed bytes, and what a signature binds."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from tlschat.chat.envelope import CHAT_SIGNATURE_CONTEXT, SignedMessage, signed_bytes
from tlschat.protocol.alerts import ProtocolError
from tlschat.protocol.identity import IdentityKey, verify_signature

from .helpers import NETWORK, NOW_MS, OTHER_NETWORK, peer_of


@pytest.fixture(params=["rsa", "ed25519"])
def signer(request: pytest.FixtureRequest) -> IdentityKey:
    return request.getfixturevalue("rsa_alice" if request.param == "rsa" else "ed_bob")


@pytest.fixture(params=["rsa", "ed25519"])
def other(request: pytest.FixtureRequest) -> IdentityKey:
    return request.getfixturevalue("rsa_mallory" if request.param == "rsa" else "ed_carol")


def test_context_constant() -> None:
    assert CHAT_SIGNATURE_CONTEXT == b"tlschat v2 chat message\x00"


def test_signed_bytes_layout() -> None:
    expected = (
        b"tlschat v2 chat message\x00"
        + b"\x32"
        + NETWORK.encode()
        + b"\x08#general"
        + b"\x0aSHA256:abc"
        + b"\x01\x02\x03\x04\x05\x06\x07\x08"
        + b"\x11\x22\x33\x44\x55\x66\x77\x88"
        + b"\x00\x00\x00\x06h\xc3\xa9llo"
    )
    actual = signed_bytes(
        NETWORK, "#general", "SHA256:abc", 0x0102030405060708, 0x1122334455667788, "héllo"
    )
    assert actual == expected


def test_signed_bytes_empty_fields_and_extremes() -> None:
    expected = (
        b"tlschat v2 chat message\x00"
        + b"\x00"
        + b"\x00"
        + b"\x00"
        + b"\x00" * 8
        + b"\xff" * 8
        + b"\x00\x00\x00\x00"
    )
    assert signed_bytes("", "", "", 0, (1 << 64) - 1, "") == expected


def test_signed_bytes_utf8_target_length_counts_bytes() -> None:
    # "#é" is 2 characters but 3 UTF-8 bytes.
    data = signed_bytes(NETWORK, "#é", "S", 0, 0, "x")
    prefix = len(CHAT_SIGNATURE_CONTEXT) + 1 + len(NETWORK)
    assert data[prefix : prefix + 4] == b"\x03#\xc3\xa9"
    assert data[prefix + 4 : prefix + 6] == b"\x01S"


def test_signed_bytes_distinguishes_field_boundaries() -> None:
    # Moving bytes between adjacent fields must change the encoding.
    assert signed_bytes(NETWORK, "#ab", "c", 1, 2, "x") != signed_bytes(
        NETWORK, "#a", "bc", 1, 2, "x"
    )
    assert signed_bytes("N#", "a", "c", 1, 2, "x") != signed_bytes("N", "#a", "c", 1, 2, "x")


def test_a_line_signed_for_one_network_does_not_verify_for_another(signer: IdentityKey) -> None:
    message = SignedMessage.create(signer, NETWORK, "#general", 7, NOW_MS, "hello")
    assert message.verify(peer_of(signer)) is True
    moved = dataclasses.replace(message, network=OTHER_NETWORK)
    assert moved.verify(peer_of(signer)) is False


def test_sender_must_be_ascii() -> None:
    with pytest.raises(UnicodeEncodeError):
        signed_bytes(NETWORK, "#general", "SHA256:é", 0, 0, "x")


def test_create_fields_and_signature(signer: IdentityKey) -> None:
    message = SignedMessage.create(signer, NETWORK, "#general", 7, NOW_MS, "hello, world")
    assert message.target == "#general"
    assert message.sender == signer.fingerprint
    assert message.counter == 7
    assert message.timestamp_ms == NOW_MS
    assert message.body == "hello, world"
    # The signature covers exactly signed_bytes(NETWORK, ...): check it independently of verify().
    payload = signed_bytes(NETWORK, "#general", signer.fingerprint, 7, NOW_MS, "hello, world")
    verify_signature(signer.public_key, signer.scheme, payload, message.signature)


def test_signature_length(signer: IdentityKey) -> None:
    message = SignedMessage.create(signer, NETWORK, "#general", 1, NOW_MS, "x")
    expected = 64 if isinstance(signer.public_key, ed25519.Ed25519PublicKey) else 256
    assert len(message.signature) == expected


def test_round_trip_verifies(signer: IdentityKey) -> None:
    message = SignedMessage.create(signer, NETWORK, "#general", 1, NOW_MS, "héllo ✓")
    assert message.verify(peer_of(signer)) is True


@pytest.mark.parametrize(
    "change",
    [
        {"target": "#other"},
        {"target": "@SHA256:someone"},
        {"body": "hello, world!"},
        {"body": ""},
        {"counter": 8},
        {"counter": 6},
        {"timestamp_ms": NOW_MS + 1},
        {"timestamp_ms": NOW_MS - 1},
    ],
    ids=lambda c: f"{next(iter(c))}={next(iter(c.values()))!r}",
)
def test_any_changed_field_fails(signer: IdentityKey, change: dict[str, object]) -> None:
    message = SignedMessage.create(signer, NETWORK, "#general", 7, NOW_MS, "hello, world")
    assert message.verify(peer_of(signer)) is True
    tampered = dataclasses.replace(message, **change)
    assert tampered.verify(peer_of(signer)) is False


def test_changed_sender_fails_with_either_key(signer: IdentityKey, other: IdentityKey) -> None:
    message = SignedMessage.create(signer, NETWORK, "#general", 7, NOW_MS, "hello")
    tampered = dataclasses.replace(message, sender=other.fingerprint)
    assert tampered.verify(peer_of(signer)) is False  # fingerprint no longer matches the key
    assert tampered.verify(peer_of(other)) is False  # fingerprint matches, signature does not


def test_changed_signature_fails(signer: IdentityKey) -> None:
    message = SignedMessage.create(signer, NETWORK, "#general", 7, NOW_MS, "hello")
    flipped = bytes([message.signature[0] ^ 1]) + message.signature[1:]
    assert dataclasses.replace(message, signature=flipped).verify(peer_of(signer)) is False
    assert dataclasses.replace(message, signature=b"").verify(peer_of(signer)) is False


def test_signature_by_another_key_fails(signer: IdentityKey, other: IdentityKey) -> None:
    # Claims signer as sender, but the bytes are signed by another key.
    payload = signed_bytes(NETWORK, "#general", signer.fingerprint, 7, NOW_MS, "hello")
    forged = SignedMessage(
        NETWORK, "#general", signer.fingerprint, 7, NOW_MS, "hello", other.sign(payload)
    )
    assert forged.verify(peer_of(signer)) is False


def test_presented_key_must_match_sender_fingerprint(
    signer: IdentityKey, other: IdentityKey
) -> None:
    # The signature is genuinely valid for `other` over exactly these bytes, so only the
    # fingerprint comparison can refuse it.
    payload = signed_bytes(NETWORK, "#general", signer.fingerprint, 7, NOW_MS, "hello")
    message = SignedMessage(
        NETWORK, "#general", signer.fingerprint, 7, NOW_MS, "hello", other.sign(payload)
    )
    verify_signature(other.public_key, other.scheme, payload, message.signature)
    assert message.verify(peer_of(other)) is False


def test_properly_signed_message_presented_with_wrong_key(
    signer: IdentityKey, other: IdentityKey
) -> None:
    message = SignedMessage.create(signer, NETWORK, "#general", 7, NOW_MS, "hello")
    assert message.verify(peer_of(other)) is False


def test_rsa_signature_presented_with_ed25519_key_fails(
    rsa_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    # A signature of the wrong scheme for the key must be a clean False, not an exception.
    payload = signed_bytes(NETWORK, "#general", ed_bob.fingerprint, 1, NOW_MS, "x")
    message = SignedMessage(
        NETWORK, "#general", ed_bob.fingerprint, 1, NOW_MS, "x", rsa_alice.sign(payload)
    )
    assert message.verify(peer_of(ed_bob)) is False
    with pytest.raises(ProtocolError):
        verify_signature(ed_bob.public_key, ed_bob.scheme, payload, message.signature)
