"""Chat frames: one JSON object per application message.

Binary fields (signatures, public keys) travel as base64. Decoding checks the size before parsing
and every field's type and bound after; a bad frame raises :class:`FrameError`, which the server
answers with an error frame rather than a disconnect.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from .envelope import MAX_BODY_BYTES, MAX_COUNTER, MAX_NETWORK, MAX_TARGET, SignedMessage

MAX_FRAME = 64 * 1024
# The title of the server's 'info' answer to /help: one line per command, each starting with the
# command's usage ("/name ..."). The client leaves out those it answers itself.
HELP_TITLE = "Server commands"
NICK_PATTERN = re.compile(r"[A-Za-z0-9_\-\[\]{}|^`]{1,24}")
ROOM_PATTERN = re.compile(r"#[A-Za-z0-9_\-]{1,32}")
MAX_SIGNATURE_B64 = 2048
MAX_KEY_B64 = 4096


class FrameError(ValueError):
    """A frame that is not valid JSON of the expected shape; the text is shown to the sender."""


# One encoder for every frame: json.dumps with options builds a new one per call (a microsecond,
# twice for each line the server relays).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode_frame(frame: dict[str, Any]) -> bytes:
    return _ENCODER.encode(frame).encode("utf-8")


def decode_frame(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_FRAME:
        raise FrameError(f"frame of {len(data)} bytes exceeds {MAX_FRAME}")
    try:
        frame = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        # ValueError covers UnicodeDecodeError, JSONDecodeError and integers over Python's
        # digit limit; RecursionError covers deeply nested arrays or objects.
        raise FrameError("frame is not UTF-8 JSON") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise FrameError("frame is not an object with a string 'type'")
    return frame


def field_str(frame: dict[str, Any], name: str, max_length: int) -> str:
    value = frame.get(name)
    if not isinstance(value, str):
        raise FrameError(f"'{name}' must be a string")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate such as JSON "\ud800"
        raise FrameError(f"'{name}' is not valid Unicode") from None
    if size > max_length:
        raise FrameError(f"'{name}' is longer than {max_length} bytes")
    return value


def field_int(frame: dict[str, Any], name: str, maximum: int) -> int:
    value = frame.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise FrameError(f"'{name}' must be an integer in [0, {maximum}]")
    return value


def field_b64(frame: dict[str, Any], name: str, max_length: int) -> bytes:
    text = field_str(frame, name, max_length)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FrameError(f"'{name}' is not base64") from None


# Characters that would let a body rewrite the screen: C0/C1 controls (newline included) and the
# bidirectional overrides of "Trojan Source" (CVE-2021-42574). Tab is harmless. Lone surrogates
# (JSON "\ud800") cannot be printed at all: writing one to a UTF-8 terminal raises.
_UNSAFE_TEXT = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def has_unsafe_text(text: str) -> bool:
    return _UNSAFE_TEXT.search(text) is not None


# A message body may have several lines (section 21.1): newline is the one control it may carry.
_UNSAFE_BODY = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def has_unsafe_body(body: str) -> bool:
    return _UNSAFE_BODY.search(body) is not None


def neutralize(text: str) -> str:
    """``text`` with every screen-rewriting character replaced by U+FFFD."""
    return _UNSAFE_TEXT.sub("\ufffd", text)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def valid_nick(nick: str) -> bool:
    return NICK_PATTERN.fullmatch(nick) is not None


def valid_room(room: str) -> bool:
    return ROOM_PATTERN.fullmatch(room) is not None


def message_fields(message: SignedMessage) -> dict[str, Any]:
    """The envelope's fields as they appear in 'say' and 'message' frames."""
    return {
        "network": message.network,
        "target": message.target,
        "sender": message.sender,
        "counter": message.counter,
        "ts": message.timestamp_ms,
        "body": message.body,
        "sig": b64(message.signature),
    }


def say_frame(message: SignedMessage) -> dict[str, Any]:
    return {"type": "say", **message_fields(message)}


def parse_signed_message(frame: dict[str, Any]) -> SignedMessage:
    body = field_str(frame, "body", MAX_BODY_BYTES)
    return SignedMessage(
        network=field_str(frame, "network", MAX_NETWORK),
        target=field_str(frame, "target", MAX_TARGET),
        sender=field_str(frame, "sender", 64),
        counter=field_int(frame, "counter", MAX_COUNTER),
        timestamp_ms=field_int(frame, "ts", MAX_COUNTER),
        body=body,
        signature=field_b64(frame, "sig", MAX_SIGNATURE_B64),
    )
