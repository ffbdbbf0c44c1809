"""SAS verification: the same emoji on both sides, MACs that bind the keys, a MITM exposed."""

from __future__ import annotations

import base64
import dataclasses
import hashlib

import pytest

from tlschat.e2e.device import Device, DeviceKeys
from tlschat.e2e.sas import (
    SasCommitmentMismatch,
    SasError,
    SasMacMismatch,
    SasMacs,
    SasRole,
    SasStateError,
    SasVerification,
    sas_bytes_info,
    sas_commitment,
    sas_mac_info,
)
from tlschat.e2e.sas_emoji import SAS_EMOJI
from tlschat.protocol.identity import IdentityKey

FLOW = "flow-1"


def exchange_keys(starter: SasVerification, accepter: SasVerification) -> None:
    starter.receive_commitment(accepter.commitment)
    accepter.receive_public_key(starter.public_key)
    starter.receive_public_key(accepter.public_key)


@pytest.fixture
def pair(alice_keys: DeviceKeys, bob_keys: DeviceKeys) -> tuple[SasVerification, SasVerification]:
    alice = SasVerification(alice_keys, bob_keys, FLOW, SasRole.STARTER)
    bob = SasVerification(bob_keys, alice_keys, FLOW, SasRole.ACCEPTER)
    exchange_keys(alice, bob)
    return alice, bob


def test_both_sides_see_the_same_emoji_and_decimals(
    pair: tuple[SasVerification, SasVerification],
) -> None:
    alice, bob = pair
    assert len(alice.emoji()) == 7
    assert all(emoji in SAS_EMOJI for emoji in alice.emoji())
    assert alice.emoji() == bob.emoji()
    assert alice.decimals() == bob.decimals()
    assert all(1000 <= number <= 9191 for number in alice.decimals())


def test_macs_verify_once_both_confirmed(pair: tuple[SasVerification, SasVerification]) -> None:
    alice, bob = pair
    alice_macs = alice.confirm()
    bob.receive_mac(alice_macs)  # before Bob's user confirmed: not verified yet
    assert not bob.verified
    bob_macs = bob.confirm()
    assert bob.verified
    assert not alice.verified
    alice.receive_mac(bob_macs)
    assert alice.verified


def test_a_man_in_the_middle_shows_other_emoji_and_his_macs_are_refused(
    alice_keys: DeviceKeys, bob_keys: DeviceKeys
) -> None:
    alice = SasVerification(alice_keys, bob_keys, FLOW, SasRole.STARTER)
    bob = SasVerification(bob_keys, alice_keys, FLOW, SasRole.ACCEPTER)
    # Mallory plays Bob to Alice and Alice to Bob, with his own ephemeral keys.
    as_bob = SasVerification(bob_keys, alice_keys, FLOW, SasRole.ACCEPTER)
    as_alice = SasVerification(alice_keys, bob_keys, FLOW, SasRole.STARTER)
    exchange_keys(alice, as_bob)
    exchange_keys(as_alice, bob)
    assert alice.emoji() != bob.emoji()
    assert alice.decimals() != bob.decimals()
    # Were the users careless, the MACs relayed from one side to the other still fail.
    with pytest.raises(SasMacMismatch):
        bob.receive_mac(alice.confirm())
    assert bob.cancelled and not bob.verified
    with pytest.raises(SasStateError):
        bob.confirm()


def test_macs_swapped_between_keys_are_refused(
    pair: tuple[SasVerification, SasVerification],
) -> None:
    alice, bob = pair
    macs = bob.confirm()
    with pytest.raises(SasMacMismatch):
        alice.receive_mac(dataclasses.replace(macs, identity=macs.device_keys))
    assert alice.cancelled


@pytest.fixture
def bob_keys_under_mallory(bob_keys: DeviceKeys, mallory_identity: IdentityKey) -> DeviceKeys:
    """Bob's device keys as a lying directory shows them: under Mallory's identity."""
    return dataclasses.replace(bob_keys, user=mallory_identity.fingerprint)


def test_a_forged_directory_entry_fails_the_macs(
    alice_keys: DeviceKeys, bob_keys: DeviceKeys, bob_keys_under_mallory: DeviceKeys
) -> None:
    """Alice was shown Mallory's identity for Bob; Bob's MACs are of his real one."""
    alice = SasVerification(alice_keys, bob_keys_under_mallory, FLOW, SasRole.STARTER)
    bob = SasVerification(bob_keys, alice_keys, FLOW, SasRole.ACCEPTER)
    exchange_keys(alice, bob)
    with pytest.raises(SasMacMismatch):
        alice.receive_mac(bob.confirm())


def test_a_key_other_than_the_one_committed_to_is_refused(
    alice_keys: DeviceKeys, bob_keys: DeviceKeys
) -> None:
    alice = SasVerification(alice_keys, bob_keys, FLOW, SasRole.STARTER)
    bob = SasVerification(bob_keys, alice_keys, FLOW, SasRole.ACCEPTER)
    other = SasVerification(bob_keys, alice_keys, FLOW, SasRole.ACCEPTER)
    alice.receive_commitment(bob.commitment)
    other.receive_public_key(alice.public_key)
    with pytest.raises(SasCommitmentMismatch):
        alice.receive_public_key(other.public_key)
    assert alice.cancelled


def test_steps_out_of_order_are_refused(alice_keys: DeviceKeys, bob_keys: DeviceKeys) -> None:
    alice = SasVerification(alice_keys, bob_keys, FLOW, SasRole.STARTER)
    bob = SasVerification(bob_keys, alice_keys, FLOW, SasRole.ACCEPTER)
    with pytest.raises(SasStateError):
        _ = alice.public_key  # not before the commitment
    with pytest.raises(SasStateError):
        _ = bob.public_key  # not before the starter's key
    with pytest.raises(SasStateError):
        _ = alice.commitment
    with pytest.raises(SasStateError):
        alice.emoji()
    with pytest.raises(SasStateError):
        bob.confirm()
    with pytest.raises(SasStateError):
        bob.receive_mac(SasMacs("AAAA", "AAAA"))
    assert not bob.cancelled  # asking too early is our mistake, not the peer's
    with pytest.raises(SasStateError):
        bob.receive_commitment(bob.commitment)  # a message the accepter never gets
    assert bob.cancelled


def test_a_key_before_the_commitment_cancels(alice_keys: DeviceKeys, bob_keys: DeviceKeys) -> None:
    alice = SasVerification(alice_keys, bob_keys, FLOW, SasRole.STARTER)
    with pytest.raises(SasStateError):
        alice.receive_public_key(Device.create().curve25519_key)
    assert alice.cancelled


def test_a_cancelled_verification_goes_no_further(
    pair: tuple[SasVerification, SasVerification],
) -> None:
    alice, bob = pair
    alice.cancel()
    with pytest.raises(SasStateError):
        alice.confirm()
    with pytest.raises(SasStateError):
        alice.receive_mac(bob.confirm())
    assert not alice.verified


def test_flow_ids_and_fields_are_checked(alice_keys: DeviceKeys, bob_keys: DeviceKeys) -> None:
    for flow in ("", "a|b", "x" * 65, "é"):
        with pytest.raises(ValueError):
            SasVerification(alice_keys, bob_keys, flow, SasRole.STARTER)
    with pytest.raises(ValueError):
        SasVerification(
            alice_keys, dataclasses.replace(bob_keys, device_id="A|B"), FLOW, SasRole.STARTER
        )


def test_info_strings_and_commitment_are_as_documented(
    alice_keys: DeviceKeys, bob_keys: DeviceKeys
) -> None:
    a, b = alice_keys, bob_keys
    assert sas_bytes_info(a, "KA", b, "KB", FLOW) == (
        f"TLSCHAT_V1_SAS|{a.user}|{a.device_id}|KA|{b.user}|{b.device_id}|KB|{FLOW}"
    )
    assert sas_mac_info(a, b, FLOW, "identity") == (
        f"TLSCHAT_V1_SAS_MAC|{a.user}|{a.device_id}|{b.user}|{b.device_id}|{FLOW}|identity"
    )
    key = bytes(range(32))
    key_text = base64.b64encode(key).decode().rstrip("=")
    digest = hashlib.sha256(b"tlschat v1 sas commitment\x00" + b"\x06flow-1" + b"\x20" + key)
    assert sas_commitment(FLOW, key_text) == base64.b64encode(digest.digest()).decode().rstrip("=")


def test_the_emoji_table_is_the_matrix_one() -> None:
    assert len(SAS_EMOJI) == 64
    assert len({entry.emoji for entry in SAS_EMOJI}) == 64
    assert (SAS_EMOJI[0].emoji, SAS_EMOJI[0].name) == ("🐶", "Dog")
    assert (SAS_EMOJI[29].emoji, SAS_EMOJI[29].name) == ("❤️", "Heart")
    assert (SAS_EMOJI[63].emoji, SAS_EMOJI[63].name) == ("📌", "Pin")


def test_an_unusable_public_key_cancels(alice_keys: DeviceKeys, bob_keys: DeviceKeys) -> None:
    for key in ("AAAA", base64.b64encode(bytes(32)).decode().rstrip("=")):
        bob = SasVerification(bob_keys, alice_keys, FLOW, SasRole.ACCEPTER)
        with pytest.raises(SasError):
            bob.receive_public_key(key)
        assert bob.cancelled
