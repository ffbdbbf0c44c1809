"""Devices: keys vouched for by the identity key, one-time keys signed by the device, pickles."""

from __future__ import annotations

import base64
import dataclasses
import hashlib

import pytest

from tlschat.e2e.codec import b64decode
from tlschat.e2e.device import (
    Device,
    DeviceKeys,
    device_id_of,
    device_keys_signed_bytes,
    one_time_key_signed_bytes,
    sign_device_keys,
    verify_device_keys,
    verify_one_time_key,
)
from tlschat.e2e.errors import UnreadablePickle
from tlschat.protocol.identity import IdentityKey, PeerIdentity

from .conftest import OTHER_PICKLE_KEY, PICKLE_KEY


def peer(identity: IdentityKey) -> PeerIdentity:
    return PeerIdentity.from_spki(identity.spki_der)


def test_device_id_is_the_documented_hash_of_the_curve_key(alice_device: Device) -> None:
    raw = b64decode(alice_device.curve25519_key)
    digest = hashlib.sha256(b"tlschat v1 device id\x00" + raw).digest()
    assert alice_device.device_id == base64.b32encode(digest[:10]).decode()
    assert len(alice_device.device_id) == 16
    assert alice_device.device_id != Device.create().device_id


def test_device_keys_signed_bytes_layout() -> None:
    curve, ed = bytes(range(32)), bytes(range(32, 64))
    curve_text = base64.b64encode(curve).decode().rstrip("=")
    ed_text = base64.b64encode(ed).decode().rstrip("=")
    assert device_keys_signed_bytes("SHA256:abc", "DEVICE", curve_text, ed_text) == (
        b"tlschat v1 device keys\x00"
        + b"\x0aSHA256:abc"
        + b"\x06DEVICE"
        + b"\x20"
        + curve
        + b"\x20"
        + ed
    )


def test_one_time_key_signed_bytes_layout() -> None:
    key = bytes(range(32))
    key_text = base64.b64encode(key).decode().rstrip("=")
    assert one_time_key_signed_bytes("DEVICE", "AAAAAAAAAAE", True, key_text) == (
        b"tlschat v1 one-time key\x00" + b"\x06DEVICE" + b"\x0bAAAAAAAAAAE" + b"\x01\x20" + key
    )


@pytest.mark.parametrize("identity_name", ["alice_identity", "bob_identity"])
def test_device_keys_signed_by_the_identity_verify(
    identity_name: str, alice_device: Device, request: pytest.FixtureRequest
) -> None:
    identity: IdentityKey = request.getfixturevalue(identity_name)
    keys = sign_device_keys(alice_device, identity)
    assert keys.user == identity.fingerprint
    assert keys.device_id == alice_device.device_id
    assert keys.curve25519 == alice_device.curve25519_key
    assert keys.ed25519 == alice_device.ed25519_key
    assert verify_device_keys(keys, peer(identity))


def test_device_keys_signed_by_another_identity_are_refused(
    alice_device: Device, alice_identity: IdentityKey, mallory_identity: IdentityKey
) -> None:
    forged = dataclasses.replace(
        sign_device_keys(alice_device, mallory_identity), user=alice_identity.fingerprint
    )
    assert not verify_device_keys(forged, peer(alice_identity))
    # Mallory's own signature is good, but the keys name Alice: not Mallory's device either.
    assert not verify_device_keys(forged, peer(mallory_identity))


def test_device_keys_checked_against_another_identity_are_refused(
    alice_keys: DeviceKeys, mallory_identity: IdentityKey
) -> None:
    assert not verify_device_keys(alice_keys, peer(mallory_identity))


def test_a_directory_entry_with_a_swapped_key_is_refused(
    alice_keys: DeviceKeys, bob_device: Device, alice_identity: IdentityKey
) -> None:
    owner = peer(alice_identity)
    swapped_curve = dataclasses.replace(
        alice_keys, curve25519=bob_device.curve25519_key, device_id=bob_device.device_id
    )
    swapped_ed = dataclasses.replace(alice_keys, ed25519=bob_device.ed25519_key)
    assert not verify_device_keys(swapped_curve, owner)
    assert not verify_device_keys(swapped_ed, owner)
    assert not verify_device_keys(dataclasses.replace(alice_keys, curve25519="AAAA"), owner)
    assert not verify_device_keys(dataclasses.replace(alice_keys, user="SHA256:é"), owner)


def test_a_device_id_not_derived_from_the_curve_key_is_refused(
    alice_device: Device, alice_identity: IdentityKey
) -> None:
    """Even signed by the right identity: one id names one key."""
    payload = device_keys_signed_bytes(
        alice_identity.fingerprint,
        "AAAAAAAAAAAAAAAA",
        alice_device.curve25519_key,
        alice_device.ed25519_key,
    )
    keys = DeviceKeys(
        alice_identity.fingerprint,
        "AAAAAAAAAAAAAAAA",
        alice_device.curve25519_key,
        alice_device.ed25519_key,
        alice_identity.sign(payload),
    )
    assert not verify_device_keys(keys, peer(alice_identity))


def test_one_time_keys_are_signed_by_the_device_and_published_once(
    alice_device: Device, alice_keys: DeviceKeys
) -> None:
    alice_device.generate_one_time_keys(3)
    keys = alice_device.unpublished_one_time_keys()
    assert len(keys) == 3
    assert len({key.key for key in keys}) == 3
    assert all(not key.fallback and verify_one_time_key(alice_keys, key) for key in keys)
    alice_device.mark_keys_as_published()
    assert alice_device.unpublished_one_time_keys() == []


def test_the_fallback_key_is_signed_and_flagged(
    alice_device: Device, alice_keys: DeviceKeys
) -> None:
    assert alice_device.unpublished_fallback_key() is None
    alice_device.generate_fallback_key()
    fallback = alice_device.unpublished_fallback_key()
    assert fallback is not None and fallback.fallback
    assert verify_one_time_key(alice_keys, fallback)
    # The flag is signed: a fallback key offered as a one-time key does not verify.
    assert not verify_one_time_key(alice_keys, dataclasses.replace(fallback, fallback=False))
    alice_device.mark_keys_as_published()
    assert alice_device.unpublished_fallback_key() is None


def test_a_one_time_key_signed_by_another_device_is_refused(
    alice_keys: DeviceKeys, bob_device: Device, alice_device: Device
) -> None:
    bob_device.generate_one_time_keys(1)
    (bobs,) = bob_device.unpublished_one_time_keys()
    assert not verify_one_time_key(alice_keys, bobs)
    alice_device.generate_one_time_keys(1)
    (alices,) = alice_device.unpublished_one_time_keys()
    assert not verify_one_time_key(alice_keys, dataclasses.replace(alices, key=bobs.key))
    assert not verify_one_time_key(alice_keys, dataclasses.replace(alices, signature="AAAA"))


def test_generating_keys_is_bounded(alice_device: Device) -> None:
    with pytest.raises(ValueError):
        alice_device.generate_one_time_keys(0)
    with pytest.raises(ValueError):
        alice_device.generate_one_time_keys(alice_device.max_one_time_keys + 1)


def test_pickle_round_trip_keeps_the_keys(alice_device: Device) -> None:
    alice_device.generate_one_time_keys(2)
    restored = Device.from_pickle(alice_device.pickle(PICKLE_KEY), PICKLE_KEY)
    assert restored.device_id == alice_device.device_id
    assert restored.ed25519_key == alice_device.ed25519_key
    assert restored.unpublished_one_time_keys() == alice_device.unpublished_one_time_keys()


def test_a_pickle_needs_its_key(alice_device: Device) -> None:
    text = alice_device.pickle(PICKLE_KEY)
    with pytest.raises(UnreadablePickle):
        Device.from_pickle(text, OTHER_PICKLE_KEY)
    with pytest.raises(UnreadablePickle):
        Device.from_pickle("not a pickle", PICKLE_KEY)
    with pytest.raises(ValueError, match="32 bytes"):
        alice_device.pickle(b"short")


def test_device_id_of_refuses_what_is_not_a_key() -> None:
    with pytest.raises(ValueError):
        device_id_of("AAAA")
