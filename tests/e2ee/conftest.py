"""Identities and devices for the end-to-end layer's tests. RSA keys are slow: once a session."""

from __future__ import annotations

import pytest

from tlschat.e2e.device import Device, DeviceKeys, sign_device_keys
from tlschat.protocol.identity import IdentityKey

PICKLE_KEY = bytes(range(32))
OTHER_PICKLE_KEY = bytes(range(1, 33))


@pytest.fixture(scope="session")
def alice_identity() -> IdentityKey:
    return IdentityKey.generate("ed25519")


@pytest.fixture(scope="session")
def bob_identity() -> IdentityKey:
    return IdentityKey.generate("rsa")


@pytest.fixture(scope="session")
def mallory_identity() -> IdentityKey:
    return IdentityKey.generate("ed25519")


@pytest.fixture
def alice_device() -> Device:
    return Device.create()


@pytest.fixture
def bob_device() -> Device:
    return Device.create()


@pytest.fixture
def alice_keys(alice_device: Device, alice_identity: IdentityKey) -> DeviceKeys:
    return sign_device_keys(alice_device, alice_identity)


@pytest.fixture
def bob_keys(bob_device: Device, bob_identity: IdentityKey) -> DeviceKeys:
    return sign_device_keys(bob_device, bob_identity)
