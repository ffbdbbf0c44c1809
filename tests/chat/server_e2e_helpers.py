"""Builders shared by the server's end-to-end tests: devices signed by a key, one-time keys, and
the frames of the end-to-end layer. The server cannot read ciphertext, so lines carry arbitrary
base64; device keys and one-time keys are real (vodozemac), since the server checks them."""

from __future__ import annotations

import base64
import itertools
from typing import Any

from tlschat.chat.e2e_frames import device_keys_fields, one_time_key_fields
from tlschat.chat.frames import b64
from tlschat.chat.server.events import ChatServer
from tlschat.e2e.device import Device, sign_device_keys
from tlschat.protocol.identity import IdentityKey

from .helpers import NETWORK, NOW, NOW_MS, Frames, connect

_unique = itertools.count(1)


def device_keys(key: IdentityKey, device: Device) -> dict[str, Any]:
    """``device``'s ``device_keys`` object, signed by ``key``, with that key."""
    return {**device_keys_fields(sign_device_keys(device, key)), "key": b64(key.spki_der)}


def hello_device(
    server: ChatServer,
    session_id: int,
    key: IdentityKey,
    nick: str,
    device: Device | None,
    now: float = NOW,
    **extra: Any,
) -> Frames:
    assert connect(server, session_id, key, now) == []
    frame: dict[str, Any] = {"type": "hello", "nick": nick, **extra}
    if device is not None:
        frame["device_keys"] = device_keys(key, device)
    return server.receive(session_id, frame, now)


def one_time_keys(device: Device, count: int) -> list[dict[str, Any]]:
    """``count`` new one-time keys of ``device``, signed by it, as uploaded."""
    device.generate_one_time_keys(count)
    keys = [one_time_key_fields(key) for key in device.unpublished_one_time_keys()]
    device.mark_keys_as_published()
    return keys


def fallback_key(device: Device) -> dict[str, Any]:
    device.generate_fallback_key()
    key = device.unpublished_fallback_key()
    assert key is not None
    device.mark_keys_as_published()
    return one_time_key_fields(key)


def ciphertext(size: int = 24) -> str:
    """Base64 that differs on every call: what the server sees of a ciphertext."""
    serial = next(_unique).to_bytes(8, "big")
    return base64.b64encode(serial + bytes(max(0, size - 8))).decode("ascii")


def olm(fingerprint: str, device: str, body: str | None = None, kind: int = 1) -> dict[str, Any]:
    return {
        "fingerprint": fingerprint,
        "device": device,
        "type": kind,
        "body": body or ciphertext(),
    }


def megolm_say(
    key: IdentityKey,
    counter: int,
    room: str = "#general",
    ct: str | None = None,
    ts: int = NOW_MS,
    session: str = "megolmsession",
    network: str = NETWORK,
) -> dict[str, Any]:
    return {
        "type": "say",
        "network": network,
        "target": room,
        "sender": key.fingerprint,
        "counter": counter,
        "ts": ts,
        "megolm": {"session": session, "ct": ct or ciphertext()},
    }


def private_say(
    key: IdentityKey,
    counter: int,
    recipient: str,
    keys: list[dict[str, Any]],
    ct: str | None = None,
    ts: int = NOW_MS,
) -> dict[str, Any]:
    return {
        "type": "say",
        "network": NETWORK,
        "target": "@" + recipient,
        "sender": key.fingerprint,
        "counter": counter,
        "ts": ts,
        "olm_private": {"ct": ct or ciphertext(), "keys": keys},
    }


def to(session_id: int, out: Frames, kind: str | None = None) -> list[dict[str, Any]]:
    """The frames of ``out`` for ``session_id`` (of type ``kind``, if given)."""
    return [f for sid, f in out if sid == session_id and (kind is None or f["type"] == kind)]
