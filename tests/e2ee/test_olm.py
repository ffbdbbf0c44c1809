"""Olm: pairwise sessions, one-time keys used once, replays refused, pickles that keep working."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tlschat.e2e.device import Device, DeviceKeys, SignedOneTimeKey, sign_device_keys
from tlschat.e2e.errors import UnreadablePickle
from tlschat.e2e.olm import (
    MAX_SESSIONS_PER_PEER,
    MalformedOlmCiphertext,
    NoOlmSession,
    OlmCiphertext,
    OlmMessageType,
    OlmReplay,
    OlmSessions,
    OlmUndecryptable,
    UntrustedOneTimeKey,
)
from tlschat.protocol.identity import IdentityKey

from .conftest import OTHER_PICKLE_KEY, PICKLE_KEY

IDENTITY = IdentityKey.generate("ed25519")


@dataclasses.dataclass
class Party:
    device: Device
    keys: DeviceKeys
    sessions: OlmSessions

    @classmethod
    def create(cls) -> Party:
        device = Device.create()
        return cls(device, sign_device_keys(device, IDENTITY), OlmSessions(device))

    def one_time_key(self) -> SignedOneTimeKey:
        self.device.generate_one_time_keys(1)
        (key,) = self.device.unpublished_one_time_keys()
        self.device.mark_keys_as_published()
        return key

    def fallback_key(self) -> SignedOneTimeKey:
        self.device.generate_fallback_key()
        key = self.device.unpublished_fallback_key()
        assert key is not None
        self.device.mark_keys_as_published()
        return key

    def send(self, to: Party, text: bytes, key: SignedOneTimeKey | None = None) -> OlmCiphertext:
        return self.sessions.encrypt(to.keys, key, text)

    def receive(self, sender: Party, ciphertext: OlmCiphertext) -> bytes:
        return self.sessions.decrypt(sender.keys.curve25519, ciphertext)


@pytest.fixture
def alice() -> Party:
    return Party.create()


@pytest.fixture
def bob() -> Party:
    return Party.create()


def test_first_message_is_pre_key_and_the_reply_normal(alice: Party, bob: Party) -> None:
    first = alice.send(bob, b"hello bob", bob.one_time_key())
    assert first.message_type is OlmMessageType.PRE_KEY
    assert bob.receive(alice, first) == b"hello bob"
    reply = bob.send(alice, b"hello alice")
    assert reply.message_type is OlmMessageType.NORMAL
    assert alice.receive(bob, reply) == b"hello alice"
    # Once Bob answered, Alice's messages are normal ones too.
    assert alice.send(bob, b"again").message_type is OlmMessageType.NORMAL


def test_several_messages_both_ways(alice: Party, bob: Party) -> None:
    assert bob.receive(alice, alice.send(bob, b"0", bob.one_time_key())) == b"0"
    for round_number in range(1, 6):
        outgoing = [alice.send(bob, f"a{round_number}.{i}".encode()) for i in range(3)]
        assert [bob.receive(alice, c) for c in outgoing] == [
            f"a{round_number}.{i}".encode() for i in range(3)
        ]
        reply = bob.send(alice, f"b{round_number}".encode())
        assert alice.receive(bob, reply) == f"b{round_number}".encode()


def test_out_of_order_messages_decrypt(alice: Party, bob: Party) -> None:
    bob.receive(alice, alice.send(bob, b"start", bob.one_time_key()))
    alice.receive(bob, bob.send(alice, b"ok"))
    first, second, third = (alice.send(bob, text) for text in (b"1", b"2", b"3"))
    assert [bob.receive(alice, c) for c in (third, first, second)] == [b"3", b"1", b"2"]


def test_no_session_and_no_one_time_key(alice: Party, bob: Party) -> None:
    assert not alice.sessions.has_session(bob.keys.curve25519)
    with pytest.raises(NoOlmSession):
        alice.send(bob, b"hello")


def test_a_one_time_key_signed_by_another_device_is_never_used(alice: Party, bob: Party) -> None:
    mallory = Party.create()
    with pytest.raises(UntrustedOneTimeKey):
        alice.send(bob, b"hello", mallory.one_time_key())
    forged = dataclasses.replace(bob.one_time_key(), key=mallory.one_time_key().key)
    with pytest.raises(UntrustedOneTimeKey):
        alice.send(bob, b"hello", forged)
    assert not alice.sessions.has_session(bob.keys.curve25519)


def test_a_one_time_key_starts_one_session_only(alice: Party, bob: Party) -> None:
    key = bob.one_time_key()
    assert bob.receive(alice, alice.send(bob, b"first", key)) == b"first"
    # The directory handed the same key out again, to another device of Alice.
    other = Party(alice.device, alice.keys, OlmSessions(alice.device))
    with pytest.raises(OlmUndecryptable, match="one-time key"):
        bob.receive(other, other.send(bob, b"second", key))


def test_the_fallback_key_starts_several_sessions(alice: Party, bob: Party) -> None:
    key = bob.fallback_key()
    carol = Party.create()
    assert bob.receive(alice, alice.send(bob, b"from alice", key)) == b"from alice"
    assert bob.receive(carol, carol.send(bob, b"from carol", key)) == b"from carol"


def test_a_replayed_normal_message_fails(alice: Party, bob: Party) -> None:
    bob.receive(alice, alice.send(bob, b"start", bob.one_time_key()))
    reply = bob.send(alice, b"once")
    assert alice.receive(bob, reply) == b"once"
    with pytest.raises(OlmReplay):
        alice.receive(bob, reply)


def test_a_replayed_pre_key_message_fails(alice: Party, bob: Party) -> None:
    first = alice.send(bob, b"once", bob.one_time_key())
    assert bob.receive(alice, first) == b"once"
    with pytest.raises(OlmReplay):
        bob.receive(alice, first)


def test_a_pre_key_replay_of_a_retired_session_is_refused(alice: Party, bob: Party) -> None:
    """Bob keeps a bounded number of sessions per peer; an evicted one's first message, replayed,
    must not start it again from the (reusable) fallback key."""
    key = bob.fallback_key()
    firsts = []
    for number in range(MAX_SESSIONS_PER_PEER + 1):
        sender = Party(alice.device, alice.keys, OlmSessions(alice.device))
        firsts.append(sender.send(bob, f"session {number}".encode(), key))
        assert bob.receive(alice, firsts[-1]) == f"session {number}".encode()
    with pytest.raises(OlmReplay, match="retired"):
        bob.receive(alice, firsts[0])


def test_a_message_from_another_sender_decrypts_under_no_session(alice: Party, bob: Party) -> None:
    bob.receive(alice, alice.send(bob, b"start", bob.one_time_key()))
    carol = Party.create()
    with pytest.raises(OlmUndecryptable):
        bob.receive(carol, alice.send(bob, b"claimed by carol"))
    # A pre-key message names its sender's key: claimed by another device, it starts nothing.
    with pytest.raises(OlmUndecryptable):
        bob.receive(carol, Party.create().send(bob, b"x", bob.one_time_key()))


def test_garbage_decrypts_under_no_session(alice: Party, bob: Party) -> None:
    bob.receive(alice, alice.send(bob, b"start", bob.one_time_key()))
    for ciphertext in ("AAAA", "not base64!"):
        for kind in OlmMessageType:
            with pytest.raises(OlmUndecryptable):
                bob.receive(alice, OlmCiphertext(kind, ciphertext))


def test_pickle_round_trip_keeps_sessions_working(alice: Party, bob: Party) -> None:
    bob.receive(alice, alice.send(bob, b"start", bob.one_time_key()))
    alice.receive(bob, bob.send(alice, b"ok"))
    in_flight = alice.send(bob, b"sent before the restart")

    def restored(party: Party) -> Party:
        device = Device.from_pickle(party.device.pickle(PICKLE_KEY), PICKLE_KEY)
        sessions = OlmSessions.from_pickle(device, party.sessions.pickle(PICKLE_KEY), PICKLE_KEY)
        return Party(device, party.keys, sessions)

    alice, bob = restored(alice), restored(bob)
    assert bob.sessions.has_session(alice.keys.curve25519)
    assert bob.receive(alice, in_flight) == b"sent before the restart"
    assert alice.receive(bob, bob.send(alice, b"after")) == b"after"
    assert bob.receive(alice, alice.send(bob, b"and back")) == b"and back"


def test_a_sessions_pickle_needs_its_key(alice: Party, bob: Party) -> None:
    alice.send(bob, b"start", bob.one_time_key())
    text = alice.sessions.pickle(PICKLE_KEY)
    with pytest.raises(UnreadablePickle):
        OlmSessions.from_pickle(alice.device, text, OTHER_PICKLE_KEY)
    with pytest.raises(UnreadablePickle):
        OlmSessions.from_pickle(alice.device, text[:-4], PICKLE_KEY)


def test_ciphertext_dict_round_trip_and_refusals() -> None:
    ciphertext = OlmCiphertext(OlmMessageType.NORMAL, "AwogAAAA")
    assert ciphertext.to_dict() == {"type": 1, "body": "AwogAAAA"}
    assert OlmCiphertext.from_dict(ciphertext.to_dict()) == ciphertext
    for bad in (
        {"type": 2, "body": "AA"},
        {"type": True, "body": "AA"},
        {"type": "0", "body": "AA"},
        {"type": 0, "body": ""},
        {"type": 0, "body": 5},
        {"type": 0},
    ):
        with pytest.raises(MalformedOlmCiphertext):
            OlmCiphertext.from_dict(bad)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=64)), min_size=1, max_size=12))
def test_any_exchange_decrypts_in_order(exchange: list[tuple[bool, bytes]]) -> None:
    alice, bob = Party.create(), Party.create()
    bob.receive(alice, alice.send(bob, b"start", bob.one_time_key()))
    for from_alice, text in exchange:
        sender, receiver = (alice, bob) if from_alice else (bob, alice)
        assert receiver.receive(sender, sender.send(receiver, text)) == text
