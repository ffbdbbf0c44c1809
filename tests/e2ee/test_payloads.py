"""To-device payloads: the envelope, room keys and private message keys, bounded and checked;
and the one-time AES key of a private message."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tlschat.e2e.codec import b64encode
from tlschat.e2e.megolm import RoomSender
from tlschat.e2e.payloads import (
    MAX_PAYLOAD_BYTES,
    PAYLOAD_TYPES,
    PRIVATE,
    ROOM_KEY,
    Envelope,
    PayloadError,
    SharedRoomKey,
    check_envelope,
    encode_payload,
    parse_payload,
    parse_private_key,
    parse_room_key,
    private_key_fields,
    room_key_fields,
)
from tlschat.e2e.private import (
    PRIVATE_AAD,
    PrivateUndecryptable,
    new_private_key,
    open_private,
    seal_private,
)

ALICE = "SHA256:" + "a" * 43
BOB = "SHA256:" + "b" * 43
NETWORK = "SHA256:" + "n" * 43
ENVELOPE = Envelope(ALICE, "AAAAAAAAAAAAAAAA", BOB, "BBBBBBBBBBBBBBBB")


def test_a_room_key_goes_through() -> None:
    key = RoomSender.start("#general", 0.0).room_key()
    fields = room_key_fields(NETWORK, "#general", key.session_id, key.session_key)
    payload = parse_payload(encode_payload(ROOM_KEY, ENVELOPE, fields))
    assert (payload.kind, payload.envelope) == (ROOM_KEY, ENVELOPE)
    check_envelope(payload, ENVELOPE)
    assert parse_room_key(payload) == SharedRoomKey(
        NETWORK, "#general", key.session_id, key.session_key
    )
    with pytest.raises(PayloadError):
        parse_private_key(payload)


def test_a_private_key_goes_through() -> None:
    key = new_private_key()
    payload = parse_payload(encode_payload(PRIVATE, ENVELOPE, private_key_fields(key)))
    assert parse_private_key(payload) == key
    with pytest.raises(PayloadError):
        parse_room_key(payload)


@pytest.mark.parametrize("field", ["sender", "sender_device", "recipient", "recipient_device"])
def test_an_envelope_naming_anyone_else_is_refused(field: str) -> None:
    payload = parse_payload(encode_payload(PRIVATE, ENVELOPE, private_key_fields(bytes(32))))
    other = {
        "sender": BOB,
        "recipient": ALICE,
        "sender_device": "CCCCCCCCCCCCCCCC",
        "recipient_device": "CCCCCCCCCCCCCCCC",
    }
    expected = Envelope(**{**ENVELOPE.fields(), field: other[field]})
    with pytest.raises(PayloadError):
        check_envelope(payload, expected)


@pytest.mark.parametrize(
    "data",
    [
        b"\xff",
        b"[]",
        b'{"type": "room_key"}',
        b'{"type": "nothing", "sender": "x"}',
        json.dumps({"type": "private", **ENVELOPE.fields(), "sender": "alice"}).encode(),
        json.dumps({"type": "private", **ENVELOPE.fields(), "recipient_device": "abc"}).encode(),
        b"[" * 100_000,
        b'{"type": "private", "x": "' + b"a" * MAX_PAYLOAD_BYTES + b'"}',
    ],
)
def test_malformed_payloads_are_refused(data: bytes) -> None:
    with pytest.raises(PayloadError):
        parse_payload(data)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"network": NETWORK, "room": "general", "session": "abc", "key": "abc"},
        {"network": "n", "room": "#general", "session": "abc", "key": "abc"},
        {"network": NETWORK, "room": "#general", "session": "a-b", "key": "abc"},
        {"network": NETWORK, "room": "#general", "session": "abc", "key": "a" * 513},
        {"network": NETWORK, "room": "#general", "session": "abc", "key": 5},
    ],
)
def test_malformed_room_keys_are_refused(fields: dict[str, object]) -> None:
    payload = parse_payload(encode_payload(ROOM_KEY, ENVELOPE, fields))
    with pytest.raises(PayloadError):
        parse_room_key(payload)


@pytest.mark.parametrize("key", ["", "a" * 42, "a" * 44, b64encode(bytes(31)), 7])
def test_malformed_private_keys_are_refused(key: object) -> None:
    payload = parse_payload(encode_payload(PRIVATE, ENVELOPE, {"key": key}))
    with pytest.raises(PayloadError):
        parse_private_key(payload)


def test_encoding_refuses_what_no_receiver_takes() -> None:
    with pytest.raises(ValueError):
        encode_payload("unknown", ENVELOPE, {})
    with pytest.raises(ValueError):
        encode_payload(PRIVATE, ENVELOPE, {"sender": BOB})
    with pytest.raises(ValueError):
        encode_payload(PRIVATE, ENVELOPE, {"key": "a" * MAX_PAYLOAD_BYTES})


@given(st.binary(max_size=3000))
def test_any_bytes_parse_or_raise_payload_error(data: bytes) -> None:
    with contextlib.suppress(PayloadError):
        payload = parse_payload(data)
        assert payload.kind in PAYLOAD_TYPES and len(data) <= MAX_PAYLOAD_BYTES


def test_a_private_message_opens_under_its_key_only() -> None:
    key = new_private_key()
    sealed = seal_private(key, b"the line")
    assert open_private(key, sealed) == b"the line"
    assert seal_private(key, b"the line") != sealed  # a fresh nonce each time
    for wrong_key, data in [
        (new_private_key(), sealed),
        (key, sealed[:-1] + bytes([sealed[-1] ^ 1])),
        (key, sealed[:12]),
        (bytes(31), sealed),
    ]:
        with pytest.raises(PrivateUndecryptable):
            open_private(wrong_key, data)
    assert PRIVATE_AAD == b"tlschat v3 private message\x00"
    with pytest.raises(ValueError):
        seal_private(bytes(16), b"x")
