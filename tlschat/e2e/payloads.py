"""What one device says to another inside Olm: the to-device payload (docs/PROTOCOL.md,
"To-device payloads").

The Olm plaintext is a UTF-8 JSON object of at most ``MAX_PAYLOAD_BYTES``: ``type``, the
envelope (``sender``, ``sender_device``, ``recipient``, ``recipient_device``) and the type's
fields. Olm proves which Curve25519 key sent it, not which user or device that key belongs to,
nor whom it was meant for: the envelope says so, and the receiver checks it against what it
knows (:func:`check_envelope`) before it acts on anything else. Everything here is bounded
before use; a bad payload raises :class:`PayloadError`.
"""

from __future__ import annotations

import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

from .codec import b64decode, b64encode
from .errors import E2eError
from .private import PRIVATE_KEY_SIZE

MAX_PAYLOAD_BYTES = 2048
ROOM_KEY = "room_key"
PRIVATE = "private"
VERIFY_TYPES = frozenset(
    {"verify_request", "verify_accept", "verify_key", "verify_mac", "verify_cancel"}
)
PAYLOAD_TYPES = frozenset({ROOM_KEY, PRIVATE, *VERIFY_TYPES})
ENVELOPE_FIELDS = ("type", "sender", "sender_device", "recipient", "recipient_device")

FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
DEVICE_ID = re.compile(r"[A-Z2-7]{16}")
ROOM = re.compile(r"#[A-Za-z0-9_\-]{1,32}")
SESSION_ID = re.compile(r"[A-Za-z0-9+/]{1,64}")
# vodozemac's exported Megolm session key is 229 bytes: 306 characters of unpadded base64.
SESSION_KEY = re.compile(r"[A-Za-z0-9+/]{1,512}")
PRIVATE_KEY = re.compile(r"[A-Za-z0-9+/]{43}=?")


class PayloadError(E2eError):
    """A to-device payload of the wrong shape, or not for us, or not from whom Olm says."""


@dataclass(frozen=True)
class Envelope:
    """Who says it to whom: user fingerprints and device ids."""

    sender: str
    sender_device: str
    recipient: str
    recipient_device: str

    def fields(self) -> dict[str, str]:
        return {
            "sender": self.sender,
            "sender_device": self.sender_device,
            "recipient": self.recipient,
            "recipient_device": self.recipient_device,
        }


@dataclass(frozen=True)
class ToDevicePayload:
    kind: str
    envelope: Envelope
    # The type's own fields, unchecked here beyond the payload's size: each type's reader bounds
    # its fields (``parse_room_key``, ``parse_private_key``, the verification payloads).
    fields: dict[str, Any]


@dataclass(frozen=True)
class SharedRoomKey:
    """A ``room_key`` payload: the key of the sender device's Megolm session for a room."""

    network: str
    room: str
    session_id: str
    session_key: str


def encode_payload(kind: str, envelope: Envelope, fields: dict[str, Any]) -> bytes:
    if kind not in PAYLOAD_TYPES:
        raise ValueError(f"not a to-device payload type: {kind!r}")
    if any(name in fields for name in ENVELOPE_FIELDS):
        raise ValueError("a payload's fields cannot replace its envelope")
    data = json.dumps(
        {"type": kind, **envelope.fields(), **fields}, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    if len(data) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"a to-device payload is at most {MAX_PAYLOAD_BYTES} bytes")
    return data


def parse_payload(data: bytes) -> ToDevicePayload:
    """The payload in an Olm plaintext; PayloadError for anything but a well-formed one."""
    if len(data) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"a to-device payload is at most {MAX_PAYLOAD_BYTES} bytes")
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise PayloadError("a to-device payload is UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise PayloadError("a to-device payload is a JSON object")
    kind = value.get("type")
    if not isinstance(kind, str) or kind not in PAYLOAD_TYPES:
        raise PayloadError("unknown to-device payload type")
    envelope = Envelope(
        _matching(value, "sender", FINGERPRINT),
        _matching(value, "sender_device", DEVICE_ID),
        _matching(value, "recipient", FINGERPRINT),
        _matching(value, "recipient_device", DEVICE_ID),
    )
    fields = {name: item for name, item in value.items() if name not in ENVELOPE_FIELDS}
    return ToDevicePayload(kind, envelope, fields)


def check_envelope(payload: ToDevicePayload, expected: Envelope) -> None:
    """Raise PayloadError unless ``payload`` names exactly the expected sender and recipient:
    the sender that Olm authenticated, and our own user and device."""
    pairs = zip(payload.envelope.fields().values(), expected.fields().values(), strict=True)
    # Every field is compared, whatever the first mismatch, so the time says nothing.
    matches = [hmac.compare_digest(got.encode(), want.encode()) for got, want in pairs]
    if not all(matches):
        raise PayloadError("the payload names another sender or recipient than it came from or to")


def room_key_fields(network: str, room: str, session_id: str, session_key: str) -> dict[str, str]:
    return {"network": network, "room": room, "session": session_id, "key": session_key}


def parse_room_key(payload: ToDevicePayload) -> SharedRoomKey:
    if payload.kind != ROOM_KEY:
        raise PayloadError("not a room key")
    fields = payload.fields
    return SharedRoomKey(
        _matching(fields, "network", FINGERPRINT),
        _matching(fields, "room", ROOM),
        _matching(fields, "session", SESSION_ID),
        _matching(fields, "key", SESSION_KEY),
    )


def private_key_fields(key: bytes) -> dict[str, str]:
    if len(key) != PRIVATE_KEY_SIZE:
        raise ValueError(f"a private message key is {PRIVATE_KEY_SIZE} bytes")
    return {"key": b64encode(key)}


def parse_private_key(payload: ToDevicePayload) -> bytes:
    if payload.kind != PRIVATE:
        raise PayloadError("not a private message key")
    key = b64decode(_matching(payload.fields, "key", PRIVATE_KEY))
    if len(key) != PRIVATE_KEY_SIZE:
        raise PayloadError(f"a private message key is {PRIVATE_KEY_SIZE} bytes")
    return key


def _matching(fields: dict[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise PayloadError(f"'{name}' is missing or not well formed")
    return value
