"""This client home's end-to-end state (:class:`ClientCrypto`), built from and saved to the state
files the glue keeps, and the Olm exchanges with other devices. Pure.

The glue builds it once from the identity key, a 32-byte pickle key and the state files it read
(``{}`` on the first run: a new device with one-time keys and a fallback key), passes it to
``ChatClient(identity, nick, crypto=...)``, and after handling anything writes the files that
:meth:`ClientCrypto.take_dirty` returns (0600) before it sends what the client queued: an inbox
item is acknowledged only once the state it changed is on its way to disk.

Files, by name: ``device`` (the vodozemac account, pickled with the pickle key), ``olm_sessions``,
``room_keys`` and ``rooms`` (sealed with ``e2e.codec.seal``), and ``verified`` (the ledger of
verified users, ``verified.VerifiedKeys``: fingerprints and nicks, no keys).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ...e2e.codec import check_pickle_key
from ...e2e.device import Device, DeviceKeys, sign_device_keys
from ...e2e.olm import OlmCiphertext, OlmMessageType, OlmSessions
from ...e2e.payloads import (
    Envelope,
    ToDevicePayload,
    check_envelope,
    encode_payload,
    parse_payload,
)
from ...e2e.room_keys import RoomKeys
from ...protocol.identity import IdentityKey
from ..e2e_frames import (
    LOW_ONE_TIME_KEYS,
    MAX_SERVER_ONE_TIME_KEYS,
    MAX_UPLOAD_KEYS,
    OlmItem,
    device_keys_fields,
    one_time_key_fields,
)
from ..frames import b64
from .crypto_directory import DeviceDirectory
from .crypto_rooms import RoomCrypto
from .verified import VerifiedKeys

DEVICE = "device"
OLM_SESSIONS = "olm_sessions"
ROOM_KEYS = "room_keys"
ROOMS = "rooms"
VERIFIED = "verified"
STATE_FILES = (DEVICE, OLM_SESSIONS, ROOM_KEYS, ROOMS, VERIFIED)


class ClientCrypto:
    """Device, Olm sessions, room keys, encrypted rooms, the directory cache, verified users."""

    def __init__(self, identity: IdentityKey, pickle_key: bytes, files: dict[str, str]) -> None:
        """Raises ``e2e.errors.UnreadablePickle`` (or ``verified.DamagedVerifiedKeys``) for a
        state file that does not open with ``pickle_key``: a device is never silently replaced,
        since its peers would lose every session with it."""
        check_pickle_key(pickle_key)
        self.identity = identity
        self._pickle_key = pickle_key
        self._dirty: set[str] = set()
        if DEVICE in files:
            self.device = Device.from_pickle(files[DEVICE], pickle_key)
        else:
            self.device = Device.create()
            # One slot of the first upload is the fallback key's.
            self.device.generate_one_time_keys(MAX_UPLOAD_KEYS - 1)
            self.device.generate_fallback_key()
            self._dirty.update(STATE_FILES)
        self.own_keys: DeviceKeys = sign_device_keys(self.device, identity)
        self.olm = (
            OlmSessions.from_pickle(self.device, files[OLM_SESSIONS], pickle_key)
            if OLM_SESSIONS in files
            else OlmSessions(self.device)
        )
        self.room_keys = (
            RoomKeys.from_pickle(files[ROOM_KEYS], pickle_key) if ROOM_KEYS in files else RoomKeys()
        )
        self.rooms = (
            RoomCrypto.from_pickle(files[ROOMS], pickle_key) if ROOMS in files else RoomCrypto()
        )
        self.verified = (
            VerifiedKeys.from_text(files[VERIFIED]) if VERIFIED in files else VerifiedKeys()
        )
        self.directory = DeviceDirectory(identity, self.device.device_id)

    @property
    def fingerprint(self) -> str:
        return self.identity.fingerprint

    @property
    def device_id(self) -> str:
        return self.device.device_id

    def mark(self, *names: str) -> None:
        """These state files changed: the next ``take_dirty`` hands them out."""
        self._dirty.update(names)

    def take_dirty(self) -> dict[str, str]:
        """The state files changed since the last call, by name, ready to be written."""
        writers: dict[str, Callable[[], str]] = {
            DEVICE: lambda: self.device.pickle(self._pickle_key),
            OLM_SESSIONS: lambda: self.olm.pickle(self._pickle_key),
            ROOM_KEYS: lambda: self.room_keys.pickle(self._pickle_key),
            ROOMS: lambda: self.rooms.pickle(self._pickle_key),
            VERIFIED: self.verified.to_text,
        }
        dirty, self._dirty = self._dirty, set()
        return {name: writers[name]() for name in STATE_FILES if name in dirty}

    def device_keys_fields(self) -> dict[str, Any]:
        """This device's ``device_keys`` for ``hello``, with the identity key that signed them."""
        return {**device_keys_fields(self.own_keys), "key": b64(self.identity.spki_der)}

    def hello_keys(self) -> list[dict[str, Any]]:
        """The one-time keys (and fallback key) no server holds yet, for ``hello``: a new device
        is never listed without keys to start a session with. Marked published here; the
        caller writes the device state before sending them."""
        keys = self.device.unpublished_one_time_keys()[: MAX_UPLOAD_KEYS - 1]
        fallback = self.device.unpublished_fallback_key()
        if fallback is not None:
            keys.append(fallback)
        if not keys:
            return []
        self.device.mark_keys_as_published()
        self.mark(DEVICE)
        return [one_time_key_fields(key) for key in keys]

    def upload_frame(self, held: int, has_fallback: bool) -> dict[str, Any] | None:
        """A ``keys_upload`` topping the server's one-time keys up (and its fallback key), or
        None when it holds enough."""
        if held >= LOW_ONE_TIME_KEYS and has_fallback:
            return None
        if not has_fallback and self.device.unpublished_fallback_key() is None:
            self.device.generate_fallback_key()
        fallback = self.device.unpublished_fallback_key()
        slots = MAX_UPLOAD_KEYS - (1 if fallback is not None else 0)
        if held < LOW_ONE_TIME_KEYS:
            wanted = min(slots, MAX_SERVER_ONE_TIME_KEYS - max(0, held))
            extra = min(wanted - len(self.device.unpublished_one_time_keys()), slots)
            if extra > 0:
                self.device.generate_one_time_keys(extra)
        keys = self.device.unpublished_one_time_keys()[:slots]
        if fallback is not None:
            keys.append(fallback)
        if not keys:
            return None
        self.device.mark_keys_as_published()
        self.mark(DEVICE)
        return {"type": "keys_upload", "one_time_keys": [one_time_key_fields(k) for k in keys]}

    def needs_session(self, device: DeviceKeys) -> bool:
        """No Olm session with ``device`` and no claimed one-time key to start one."""
        return not self.olm.has_session(device.curve25519) and not self.directory.has_claimed(
            device
        )

    def encrypt_for(self, device: DeviceKeys, kind: str, fields: Mapping[str, object]) -> OlmItem:
        """A payload for ``device`` (verified keys), Olm-encrypted; raises ``OlmError`` when
        there is no session and no usable one-time key."""
        envelope = Envelope(self.fingerprint, self.device_id, device.user, device.device_id)
        plaintext = encode_payload(kind, envelope, dict(fields))
        one_time_key = None
        if not self.olm.has_session(device.curve25519):
            one_time_key = self.directory.take_claimed(device)
        ciphertext = self.olm.encrypt(device, one_time_key, plaintext)
        self.mark(OLM_SESSIONS)
        return OlmItem(
            device.user, device.device_id, int(ciphertext.message_type), ciphertext.ciphertext
        )

    def decrypt_from(self, sender: DeviceKeys, message_type: int, body: str) -> ToDevicePayload:
        """The payload ``sender`` (verified keys) sent this device; raises ``E2eError`` if it
        does not decrypt, is malformed, or names another sender or recipient."""
        plaintext = self.olm.decrypt(
            sender.curve25519, OlmCiphertext(OlmMessageType(message_type), body)
        )
        self.mark(OLM_SESSIONS)
        if message_type == OlmMessageType.PRE_KEY:
            self.mark(DEVICE)  # it may have used up one of our one-time keys
        payload = parse_payload(plaintext)
        check_envelope(
            payload, Envelope(sender.user, sender.device_id, self.fingerprint, self.device_id)
        )
        return payload
