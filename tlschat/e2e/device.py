"""This client home's device: a vodozemac account, and the keys others need to reach it.

A device has a Curve25519 key (Olm's identity key) and an Ed25519 key (it signs the device's
one-time keys). Its ``device_id`` is derived from the Curve25519 key: the first 10 bytes of
SHA-256(``b"tlschat v1 device id\\x00"`` || the 32 raw key bytes), in base32 without padding
(16 characters, A-Z and 2-7), so a directory cannot give one id to two keys.

The user's tlschat identity key signs ``DeviceKeys`` over these bytes (length prefixes are one
byte; keys are their 32 raw bytes):

    b"tlschat v1 device keys\\x00" || u8 len || user fingerprint (ASCII)
        || u8 len || device_id (ASCII) || u8 32 || Curve25519 key || u8 32 || Ed25519 key

with Ed25519 or RSA-PSS-SHA256 as the identity key's type says, as for chat messages.

The device's Ed25519 key signs each ``SignedOneTimeKey`` over:

    b"tlschat v1 one-time key\\x00" || u8 len || device_id (ASCII) || u8 len || key id (ASCII)
        || u8 (1 for the fallback key, else 0) || u8 32 || Curve25519 one-time key

Keys and signatures are vodozemac's unpadded base64 (``codec``), except the identity signature,
which is raw bytes as in the chat envelope.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import vodozemac

from ..protocol.alerts import ProtocolError
from ..protocol.buffer import Writer
from ..protocol.identity import (
    IdentityKey,
    PeerIdentity,
    fingerprints_equal,
    scheme_for,
    verify_signature,
)
from .codec import b64decode, check_pickle_key
from .errors import UnreadablePickle

DEVICE_ID_CONTEXT = b"tlschat v1 device id\x00"
DEVICE_KEYS_CONTEXT = b"tlschat v1 device keys\x00"
ONE_TIME_KEY_CONTEXT = b"tlschat v1 one-time key\x00"
DEVICE_ID_BYTES = 10
KEY_SIZE = 32


def raw_key(text: str) -> bytes:
    """The 32 bytes of a base64 Curve25519 or Ed25519 key; ValueError for anything else."""
    key = b64decode(text)
    if len(key) != KEY_SIZE:
        raise ValueError(f"a key is {KEY_SIZE} bytes, not {len(key)}")
    return key


def device_id_of(curve25519_key: str) -> str:
    digest = hashlib.sha256(DEVICE_ID_CONTEXT + raw_key(curve25519_key)).digest()
    return base64.b32encode(digest[:DEVICE_ID_BYTES]).decode("ascii")


def device_keys_signed_bytes(user: str, device_id: str, curve25519: str, ed25519: str) -> bytes:
    """The exact bytes the identity signature of ``DeviceKeys`` covers (see the module doc)."""
    return (
        Writer()
        .fixed(DEVICE_KEYS_CONTEXT)
        .vector(1, user.encode("ascii"))
        .vector(1, device_id.encode("ascii"))
        .vector(1, raw_key(curve25519))
        .vector(1, raw_key(ed25519))
        .getvalue()
    )


def one_time_key_signed_bytes(device_id: str, key_id: str, fallback: bool, key: str) -> bytes:
    """The exact bytes a device's signature of a ``SignedOneTimeKey`` covers."""
    return (
        Writer()
        .fixed(ONE_TIME_KEY_CONTEXT)
        .vector(1, device_id.encode("ascii"))
        .vector(1, key_id.encode("ascii"))
        .u8(1 if fallback else 0)
        .vector(1, raw_key(key))
        .getvalue()
    )


@dataclass(frozen=True)
class DeviceKeys:
    """A device's public keys as its user vouches for them. ``user`` is the fingerprint of the
    user's tlschat identity key; ``signature`` is that key's signature of the fields."""

    user: str
    device_id: str
    curve25519: str
    ed25519: str
    signature: bytes


@dataclass(frozen=True)
class SignedOneTimeKey:
    """A Curve25519 key that starts one Olm session (or, the fallback key, any number until it is
    replaced), signed by its device's Ed25519 key."""

    key_id: str
    key: str
    fallback: bool
    signature: str


class Device:
    """One client home's vodozemac account. After anything that changes it (keys generated or
    published, an inbound Olm session created), the caller pickles and stores it again."""

    def __init__(self, account: vodozemac.Account) -> None:
        self.account = account

    @classmethod
    def create(cls) -> Device:
        return cls(vodozemac.Account())

    @classmethod
    def from_pickle(cls, text: str, pickle_key: bytes) -> Device:
        check_pickle_key(pickle_key)
        try:
            return cls(vodozemac.Account.from_pickle(text, pickle_key))
        except ValueError:
            raise UnreadablePickle("the device pickle does not open with this key") from None

    def pickle(self, pickle_key: bytes) -> str:
        check_pickle_key(pickle_key)
        return self.account.pickle(pickle_key)

    @property
    def curve25519_key(self) -> str:
        return self.account.curve25519_key.to_base64()

    @property
    def ed25519_key(self) -> str:
        return self.account.ed25519_key.to_base64()

    @property
    def device_id(self) -> str:
        return device_id_of(self.curve25519_key)

    @property
    def max_one_time_keys(self) -> int:
        """How many one-time keys the directory should hold for this device."""
        return self.account.max_number_of_one_time_keys

    def generate_one_time_keys(self, count: int) -> None:
        if not 0 < count <= self.max_one_time_keys:
            raise ValueError(f"generate 1 to {self.max_one_time_keys} one-time keys, not {count}")
        self.account.generate_one_time_keys(count)

    def generate_fallback_key(self) -> None:
        """A new fallback key, used when the directory has no one-time key left. vodozemac keeps
        the previous one as well until the next call."""
        # vodozemac 0.10's type stub omits the fallback-key members its module has.
        self.account.generate_fallback_key()  # type: ignore[attr-defined]

    def unpublished_one_time_keys(self) -> list[SignedOneTimeKey]:
        keys = self.account.one_time_keys
        return [self._signed(key_id, keys[key_id], False) for key_id in sorted(keys)]

    def unpublished_fallback_key(self) -> SignedOneTimeKey | None:
        keys: dict[str, vodozemac.Curve25519PublicKey]
        keys = self.account.fallback_key  # type: ignore[attr-defined]
        return next((self._signed(key_id, key, True) for key_id, key in keys.items()), None)

    def mark_keys_as_published(self) -> None:
        """The unpublished one-time keys and fallback key are in the directory now."""
        self.account.mark_keys_as_published()

    def _signed(
        self, key_id: str, key: vodozemac.Curve25519PublicKey, fallback: bool
    ) -> SignedOneTimeKey:
        text = key.to_base64()
        payload = one_time_key_signed_bytes(self.device_id, key_id, fallback, text)
        return SignedOneTimeKey(key_id, text, fallback, self.account.sign(payload).to_base64())


def sign_device_keys(device: Device, identity: IdentityKey) -> DeviceKeys:
    """``device``'s public keys, vouched for by the user's identity key."""
    payload = device_keys_signed_bytes(
        identity.fingerprint, device.device_id, device.curve25519_key, device.ed25519_key
    )
    return DeviceKeys(
        identity.fingerprint,
        device.device_id,
        device.curve25519_key,
        device.ed25519_key,
        identity.sign(payload),
    )


def verify_device_keys(keys: DeviceKeys, owner: PeerIdentity) -> bool:
    """True if ``owner`` is the user ``keys`` names, signed exactly these keys, and the device id
    is the one derived from the Curve25519 key. Keys that fail here are never used."""
    if not fingerprints_equal(owner.fingerprint, keys.user):
        return False
    try:
        vodozemac.Curve25519PublicKey.from_base64(keys.curve25519)
        vodozemac.Ed25519PublicKey.from_base64(keys.ed25519)
        if device_id_of(keys.curve25519) != keys.device_id:
            return False
        payload = device_keys_signed_bytes(keys.user, keys.device_id, keys.curve25519, keys.ed25519)
        verify_signature(owner.public_key, scheme_for(owner.public_key), payload, keys.signature)
    except (ValueError, ProtocolError):
        return False
    return True


def verify_one_time_key(owner: DeviceKeys, key: SignedOneTimeKey) -> bool:
    """True if ``key`` is signed by the Ed25519 key of ``owner`` (device keys the caller has
    verified with ``verify_device_keys``) for that device. A key failing here is never used."""
    try:
        vodozemac.Curve25519PublicKey.from_base64(key.key)
        payload = one_time_key_signed_bytes(owner.device_id, key.key_id, key.fallback, key.key)
        vodozemac.Ed25519PublicKey.from_base64(owner.ed25519).verify_signature(
            payload, vodozemac.Ed25519Signature.from_base64(key.signature)
        )
    except ValueError:
        return False
    return True
