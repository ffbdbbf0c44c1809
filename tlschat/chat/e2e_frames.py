"""The end-to-end layer's values on the wire (docs/PROTOCOL.md, "End-to-end layer"). Pure.

Both sides read these shapes: the server to bound and route what it cannot read, the client to
check what it will decrypt. Every field is bounded here, before anything uses it; a bad value
raises :class:`~tlschat.chat.frames.FrameError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..e2e.device import DeviceKeys, SignedOneTimeKey
from ..protocol.buffer import DecodeError, Reader, Writer
from .envelope import (
    CHAT_SIGNATURE_CONTEXT,
    MAX_BODY_BYTES,
    MAX_NETWORK,
    MAX_TARGET,
    SignedMessage,
    signed_bytes,
)
from .frames import MAX_SIGNATURE_B64, FrameError, b64, field_b64, field_int, field_str

FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
DEVICE_ID = re.compile(r"[A-Z2-7]{16}")
# vodozemac's unpadded base64 of a 32-byte key is 43 characters.
VODOZEMAC_KEY = re.compile(r"[A-Za-z0-9+/]{43}")
KEY_ID = re.compile(r"[A-Za-z0-9+/=_\-]{1,64}")
SESSION_ID = re.compile(r"[A-Za-z0-9+/]{1,64}")
MAX_OTK_SIGNATURE = 128
MAX_OLM_BODY = 4096
MAX_MEGOLM_CT = 8192
MAX_PRIVATE_CT = 8192
MAX_PRIVATE_KEYS = 16
MAX_UPLOAD_KEYS = 50
MAX_QUERY = 32
MAX_CLAIMS = 32
MAX_TO_DEVICE = 128
MAX_DEVICES_PER_KEY = 8
MAX_SERVER_ONE_TIME_KEYS = 100
# A client tops up its one-time keys when the server holds fewer than this.
LOW_ONE_TIME_KEYS = 25
MAX_SEALED_SIGNATURE = 1024


def field_fingerprint(frame: dict[str, Any], name: str) -> str:
    value = field_str(frame, name, 64)
    if not FINGERPRINT.fullmatch(value):
        raise FrameError(f"'{name}' is not a fingerprint")
    return value


def field_device(frame: dict[str, Any], name: str = "device") -> str:
    value = field_str(frame, name, 32)
    if not DEVICE_ID.fullmatch(value):
        raise FrameError(f"'{name}' is not a device id")
    return value


def field_list(frame: dict[str, Any], name: str, maximum: int) -> list[dict[str, Any]]:
    """A list of at most ``maximum`` JSON objects."""
    value = frame.get(name)
    if not isinstance(value, list):
        raise FrameError(f"'{name}' must be a list")
    if len(value) > maximum:
        raise FrameError(f"'{name}' has more than {maximum} items")
    if not all(isinstance(item, dict) for item in value):
        raise FrameError(f"'{name}' must hold objects")
    return value


def field_object(frame: dict[str, Any], name: str) -> dict[str, Any]:
    value = frame.get(name)
    if not isinstance(value, dict):
        raise FrameError(f"'{name}' must be an object")
    return value


def _vodozemac_key(frame: dict[str, Any], name: str) -> str:
    value = field_str(frame, name, 64)
    if not VODOZEMAC_KEY.fullmatch(value):
        raise FrameError(f"'{name}' is not a 32-byte key")
    return value


def parse_device_keys(frame: dict[str, Any]) -> DeviceKeys:
    """A ``device_keys`` object, bounded; its signature is not checked here."""
    return DeviceKeys(
        user=field_fingerprint(frame, "fingerprint"),
        device_id=field_device(frame),
        curve25519=_vodozemac_key(frame, "curve25519"),
        ed25519=_vodozemac_key(frame, "ed25519"),
        signature=field_b64(frame, "sig", MAX_SIGNATURE_B64),
    )


def device_keys_fields(keys: DeviceKeys) -> dict[str, Any]:
    return {
        "fingerprint": keys.user,
        "device": keys.device_id,
        "curve25519": keys.curve25519,
        "ed25519": keys.ed25519,
        "sig": b64(keys.signature),
    }


def parse_one_time_key(frame: dict[str, Any]) -> SignedOneTimeKey:
    key_id = field_str(frame, "id", 64)
    if not KEY_ID.fullmatch(key_id):
        raise FrameError("'id' is not a key id")
    fallback = frame.get("fallback")
    if not isinstance(fallback, bool):
        raise FrameError("'fallback' must be true or false")
    signature = field_str(frame, "sig", MAX_OTK_SIGNATURE)
    return SignedOneTimeKey(key_id, _vodozemac_key(frame, "key"), fallback, signature)


def one_time_key_fields(key: SignedOneTimeKey) -> dict[str, Any]:
    return {"id": key.key_id, "key": key.key, "fallback": key.fallback, "sig": key.signature}


@dataclass(frozen=True)
class OlmItem:
    """One Olm ciphertext for one device: an item of ``to_device`` or of ``olm_private.keys``."""

    fingerprint: str
    device: str
    message_type: int
    body: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "device": self.device,
            "type": self.message_type,
            "body": self.body,
        }


def parse_olm_body(frame: dict[str, Any]) -> tuple[int, str]:
    """The ``type`` and ``body`` of an Olm ciphertext."""
    message_type = field_int(frame, "type", 1)
    body = field_str(frame, "body", MAX_OLM_BODY)
    if not body or not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", body):
        raise FrameError("'body' is not base64")
    return message_type, body


def parse_olm_item(frame: dict[str, Any]) -> OlmItem:
    message_type, body = parse_olm_body(frame)
    return OlmItem(field_fingerprint(frame, "fingerprint"), field_device(frame), message_type, body)


@dataclass(frozen=True)
class MegolmLine:
    """The ``megolm`` field of an encrypted room line."""

    session: str
    ciphertext: str

    def to_dict(self) -> dict[str, Any]:
        return {"session": self.session, "ct": self.ciphertext}


def parse_megolm(frame: dict[str, Any]) -> MegolmLine:
    field = field_object(frame, "megolm")
    session = field_str(field, "session", 64)
    if not SESSION_ID.fullmatch(session):
        raise FrameError("'session' is not a Megolm session id")
    ciphertext = field_str(field, "ct", MAX_MEGOLM_CT)
    if not re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", ciphertext):
        raise FrameError("'ct' is not base64")
    return MegolmLine(session, ciphertext)


@dataclass(frozen=True)
class PrivateLine:
    """The ``olm_private`` field of an encrypted private message: the line under a one-time key,
    and that key over Olm for each device (``keys``; empty in what one device receives)."""

    ciphertext: str
    keys: tuple[OlmItem, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"ct": self.ciphertext, "keys": [item.to_dict() for item in self.keys]}


def parse_private(frame: dict[str, Any], *, with_keys: bool = True) -> PrivateLine:
    field = field_object(frame, "olm_private")
    ciphertext = field_str(field, "ct", MAX_PRIVATE_CT)
    if not re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", ciphertext):
        raise FrameError("'ct' is not base64")
    if not with_keys:
        return PrivateLine(ciphertext, ())
    items = tuple(parse_olm_item(item) for item in field_list(field, "keys", MAX_PRIVATE_KEYS))
    if len({(item.fingerprint, item.device) for item in items}) != len(items):
        raise FrameError("'keys' names a device twice")
    return PrivateLine(ciphertext, items)


@dataclass(frozen=True)
class EncryptedSay:
    """The outer, readable fields of an encrypted ``say`` (or ``message``): everything but the
    text, which is sealed in ``megolm`` (a room line) or ``olm_private`` (a private message)."""

    network: str
    target: str
    sender: str
    counter: int
    timestamp_ms: int
    megolm: MegolmLine | None
    private: PrivateLine | None

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "network": self.network,
            "target": self.target,
            "sender": self.sender,
            "counter": self.counter,
            "ts": self.timestamp_ms,
        }
        if self.megolm is not None:
            out["megolm"] = self.megolm.to_dict()
        if self.private is not None:
            out["olm_private"] = self.private.to_dict()
        return out


def is_encrypted(frame: dict[str, Any]) -> bool:
    return "megolm" in frame or "olm_private" in frame


def parse_encrypted_say(frame: dict[str, Any], *, with_keys: bool = True) -> EncryptedSay:
    """An encrypted ``say``/``message``: exactly one of ``megolm`` (room) or ``olm_private``
    (private), matching the target, and neither ``body`` nor ``sig``."""
    if "body" in frame or "sig" in frame:
        raise FrameError("an encrypted message carries no 'body' or 'sig'")
    target = field_str(frame, "target", MAX_TARGET)
    private = target.startswith("@")
    if ("olm_private" in frame) != private or ("megolm" in frame) == private:
        raise FrameError("a private message is 'olm_private', a room line 'megolm'")
    return EncryptedSay(
        network=field_str(frame, "network", MAX_NETWORK),
        target=target,
        sender=field_fingerprint(frame, "sender"),
        counter=field_int(frame, "counter", (1 << 64) - 1),
        timestamp_ms=field_int(frame, "ts", (1 << 64) - 1),
        megolm=None if private else parse_megolm(frame),
        private=parse_private(frame, with_keys=with_keys) if private else None,
    )


def seal_line(message: SignedMessage) -> bytes:
    """What is encrypted for a line: its signature, then the exact bytes it signs."""
    return (
        Writer()
        .vector(2, message.signature)
        .fixed(
            signed_bytes(
                message.network,
                message.target,
                message.sender,
                message.counter,
                message.timestamp_ms,
                message.body,
            )
        )
        .getvalue()
    )


def open_sealed_line(data: bytes) -> SignedMessage:
    """The signed line inside ``data`` (every length checked); FrameError if it is not one."""
    try:
        reader = Reader(data)
        signature = reader.vector(2, 1, MAX_SEALED_SIGNATURE, "signature")
        if reader.fixed(len(CHAT_SIGNATURE_CONTEXT)) != CHAT_SIGNATURE_CONTEXT:
            raise FrameError("the sealed line is not a signed chat line")
        network = reader.vector(1, 1, MAX_NETWORK, "network").decode("utf-8")
        target = reader.vector(1, 1, MAX_TARGET, "target").decode("utf-8")
        sender = reader.vector(1, 1, 64, "sender").decode("ascii")
        counter = reader.u64()
        timestamp_ms = reader.u64()
        body = reader.vector(4, 0, MAX_BODY_BYTES, "body").decode("utf-8")
        if reader.remaining:
            raise FrameError("the sealed line has bytes after its body")
    except (DecodeError, UnicodeDecodeError) as error:
        raise FrameError(f"the sealed line does not parse: {error}") from None
    return SignedMessage(network, target, sender, counter, timestamp_ms, body, signature)
