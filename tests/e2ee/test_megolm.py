"""Megolm: room keys shared and bound to room and sender, rotation, late keys, replays."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tlschat.e2e.device import Device
from tlschat.e2e.errors import UnreadablePickle
from tlschat.e2e.megolm import (
    DEFAULT_MAX_AGE,
    MalformedMegolmCiphertext,
    MegolmCiphertext,
    RoomSender,
    RotationDue,
)
from tlschat.e2e.room_keys import (
    MalformedRoomKey,
    MegolmUndecryptable,
    MessageIndexReused,
    MissingRoomKey,
    ReplayWindowPassed,
    RoomKeyMismatch,
    RoomKeys,
)

from .conftest import OTHER_PICKLE_KEY, PICKLE_KEY

ROOM = "#general"
OTHER_ROOM = "#random"
NOW = 1_700_000_000.0
ALICE = Device.create().curve25519_key
MALLORY = Device.create().curve25519_key


def lines(sender: RoomSender, count: int, now: float = NOW) -> list[MegolmCiphertext]:
    return [sender.encrypt(f"line {i}".encode(), now) for i in range(count)]


def receiver_of(sender: RoomSender, **options: int) -> RoomKeys:
    keys = RoomKeys(**options)
    assert keys.import_key(ALICE, sender.room_key())
    return keys


@pytest.fixture
def sender() -> RoomSender:
    return RoomSender.start(ROOM, NOW)


def test_shared_key_decrypts_in_order(sender: RoomSender) -> None:
    bob = receiver_of(sender)
    for index, ciphertext in enumerate(lines(sender, 4)):
        assert ciphertext.session_id == sender.session_id
        plain = bob.decrypt(ROOM, ALICE, ciphertext)
        assert (plain.plaintext, plain.message_index, plain.duplicate) == (
            f"line {index}".encode(),
            index,
            False,
        )


def test_shared_key_decrypts_out_of_order(sender: RoomSender) -> None:
    bob = receiver_of(sender)
    sent = lines(sender, 5)
    for index in (4, 0, 3, 1, 2):
        assert bob.decrypt(ROOM, ALICE, sent[index]).plaintext == f"line {index}".encode()


def test_a_key_shared_late_reads_only_what_follows(sender: RoomSender) -> None:
    before = lines(sender, 3)
    late = receiver_of(sender)
    after = sender.encrypt(b"after", NOW)
    assert late.decrypt(ROOM, ALICE, after).plaintext == b"after"
    with pytest.raises(MissingRoomKey, match="starts at index 3"):
        late.decrypt(ROOM, ALICE, before[0])


def test_a_key_reaching_further_back_replaces_the_one_held(sender: RoomSender) -> None:
    early_key = sender.room_key()
    first = lines(sender, 2)
    bob = receiver_of(sender)
    assert not bob.import_key(ALICE, sender.room_key())
    assert bob.import_key(ALICE, early_key)
    assert bob.decrypt(ROOM, ALICE, first[0]).plaintext == b"line 0"
    assert not bob.import_key(ALICE, sender.room_key())


def test_missing_key_then_the_key_arrives(sender: RoomSender) -> None:
    """The key was shared before the line, but the line reached Bob first."""
    key = sender.room_key()
    ciphertext = sender.encrypt(b"early line", NOW)
    bob = RoomKeys()
    with pytest.raises(MissingRoomKey):
        bob.decrypt(ROOM, ALICE, ciphertext)
    assert bob.import_key(ALICE, key)
    assert bob.decrypt(ROOM, ALICE, ciphertext).plaintext == b"early line"


@pytest.mark.parametrize("why", ["max_messages", "max_age", "member_left"])
def test_rotation_gives_a_new_session_the_old_key_cannot_read(why: str) -> None:
    sender = RoomSender.start(ROOM, NOW, max_messages=3)
    carol = receiver_of(sender)  # gets only the first key
    old_id = sender.session_id
    now = NOW
    if why == "max_messages":
        lines(sender, 3)
    elif why == "max_age":
        now = NOW + DEFAULT_MAX_AGE
    else:
        sender.member_left()
    assert sender.should_rotate(now)
    with pytest.raises(RotationDue):
        sender.encrypt(b"refused until rotated", now)

    new_key = sender.rotate(now)
    assert not sender.should_rotate(now)
    assert new_key.session_id == sender.session_id != old_id
    bob = receiver_of(sender)
    after = sender.encrypt(b"after rotation", now)
    assert bob.decrypt(ROOM, ALICE, after).plaintext == b"after rotation"
    with pytest.raises(MissingRoomKey):
        carol.decrypt(ROOM, ALICE, after)
    # Nor does the old key decrypt the new line if the line claims the old session.
    relabelled = dataclasses.replace(after, session_id=old_id)
    with pytest.raises(MegolmUndecryptable):
        carol.decrypt(ROOM, ALICE, relabelled)


def test_not_yet_due(sender: RoomSender) -> None:
    lines(sender, 99)
    assert not sender.should_rotate(NOW + DEFAULT_MAX_AGE - 1)
    sender.encrypt(b"the hundredth", NOW)
    assert sender.should_rotate(NOW)


def test_a_key_for_one_room_never_decrypts_another_rooms_line(sender: RoomSender) -> None:
    bob = receiver_of(sender)
    ciphertext = sender.encrypt(b"for #general", NOW)
    with pytest.raises(RoomKeyMismatch):
        bob.decrypt(OTHER_ROOM, ALICE, ciphertext)
    with pytest.raises(RoomKeyMismatch):
        bob.decrypt(ROOM, MALLORY, ciphertext)
    assert bob.decrypt(ROOM, ALICE, ciphertext).plaintext == b"for #general"


def test_a_key_cannot_be_rebound_to_another_room_or_sender(sender: RoomSender) -> None:
    bob = receiver_of(sender)
    key = sender.room_key()
    with pytest.raises(RoomKeyMismatch):
        bob.import_key(ALICE, dataclasses.replace(key, room=OTHER_ROOM))
    with pytest.raises(RoomKeyMismatch):
        bob.import_key(MALLORY, key)


def test_a_key_must_be_the_key_of_the_session_it_names(sender: RoomSender) -> None:
    other = RoomSender.start(ROOM, NOW)
    with pytest.raises(RoomKeyMismatch):
        RoomKeys().import_key(
            ALICE, dataclasses.replace(sender.room_key(), session_id=other.session_id)
        )
    with pytest.raises(MalformedRoomKey):
        RoomKeys().import_key(ALICE, dataclasses.replace(sender.room_key(), session_key="AAAA"))


def test_a_duplicate_is_reported_not_refused(sender: RoomSender) -> None:
    bob = receiver_of(sender)
    ciphertext = sender.encrypt(b"once", NOW)
    assert not bob.decrypt(ROOM, ALICE, ciphertext).duplicate
    again = bob.decrypt(ROOM, ALICE, ciphertext)
    assert again.duplicate and again.plaintext == b"once"


def test_same_index_with_another_ciphertext_is_refused(sender: RoomSender) -> None:
    # A sender restored from an old pickle encrypts again at an index it already used.
    snapshot = sender.pickle(PICKLE_KEY)
    bob = receiver_of(sender)
    original = sender.encrypt(b"the real line", NOW)
    rolled_back = RoomSender.from_pickle(snapshot, PICKLE_KEY).encrypt(b"another line", NOW)
    assert rolled_back.message_index == original.message_index
    assert bob.decrypt(ROOM, ALICE, original).plaintext == b"the real line"
    with pytest.raises(MessageIndexReused):
        bob.decrypt(ROOM, ALICE, rolled_back)


def test_a_claimed_index_must_be_the_messages(sender: RoomSender) -> None:
    bob = receiver_of(sender)
    ciphertext = sender.encrypt(b"line", NOW)
    with pytest.raises(MegolmUndecryptable, match="claims index 7"):
        bob.decrypt(ROOM, ALICE, dataclasses.replace(ciphertext, message_index=7))
    with pytest.raises(MegolmUndecryptable):
        bob.decrypt(ROOM, ALICE, dataclasses.replace(ciphertext, ciphertext="AAAA"))


def test_a_tampered_line_does_not_decrypt(sender: RoomSender) -> None:
    bob = receiver_of(sender)
    ciphertext = sender.encrypt(b"line", NOW)
    body = ciphertext.ciphertext
    tampered = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    with pytest.raises(MegolmUndecryptable):
        bob.decrypt(ROOM, ALICE, dataclasses.replace(ciphertext, ciphertext=tampered))


def test_replay_memory_is_bounded(sender: RoomSender) -> None:
    bob = receiver_of(sender, max_remembered=3)
    sent = lines(sender, 5)
    for ciphertext in sent[1:]:
        bob.decrypt(ROOM, ALICE, ciphertext)
    # Index 1 was forgotten to keep 2, 3 and 4: nothing below 2 can be checked any more.
    assert bob.decrypt(ROOM, ALICE, sent[4]).duplicate
    for forgotten in (sent[0], sent[1]):
        with pytest.raises(ReplayWindowPassed):
            bob.decrypt(ROOM, ALICE, forgotten)


def test_sender_pickle_round_trip(sender: RoomSender) -> None:
    bob = receiver_of(sender)
    sender.encrypt(b"before", NOW)
    sender.member_left()
    restored = RoomSender.from_pickle(sender.pickle(PICKLE_KEY), PICKLE_KEY)
    assert (restored.room, restored.session_id) == (ROOM, sender.session_id)
    assert restored.should_rotate(NOW)
    restored.rotate(NOW)
    bob.import_key(ALICE, restored.room_key())
    assert bob.decrypt(ROOM, ALICE, restored.encrypt(b"after", NOW)).plaintext == b"after"


def test_room_keys_pickle_round_trip_keeps_bindings_and_replay_memory(
    sender: RoomSender,
) -> None:
    bob = receiver_of(sender, max_remembered=2)
    sent = lines(sender, 3)
    for ciphertext in sent:
        bob.decrypt(ROOM, ALICE, ciphertext)
    restored = RoomKeys.from_pickle(bob.pickle(PICKLE_KEY), PICKLE_KEY)
    assert restored.decrypt(ROOM, ALICE, sent[2]).duplicate
    with pytest.raises(ReplayWindowPassed):
        restored.decrypt(ROOM, ALICE, sent[0])
    with pytest.raises(RoomKeyMismatch):
        restored.decrypt(OTHER_ROOM, ALICE, sent[2])
    assert restored.decrypt(ROOM, ALICE, sender.encrypt(b"new", NOW)).plaintext == b"new"


def test_pickles_need_their_key_and_kind(sender: RoomSender) -> None:
    keys_text = receiver_of(sender).pickle(PICKLE_KEY)
    sender_text = sender.pickle(PICKLE_KEY)
    with pytest.raises(UnreadablePickle):
        RoomKeys.from_pickle(keys_text, OTHER_PICKLE_KEY)
    with pytest.raises(UnreadablePickle):
        RoomSender.from_pickle(sender_text, OTHER_PICKLE_KEY)
    with pytest.raises(UnreadablePickle):
        RoomKeys.from_pickle(sender_text, PICKLE_KEY)
    with pytest.raises(UnreadablePickle):
        RoomSender.from_pickle(keys_text, PICKLE_KEY)


def test_ciphertext_dict_round_trip_and_refusals(sender: RoomSender) -> None:
    ciphertext = sender.encrypt(b"line", NOW)
    assert MegolmCiphertext.from_dict(ciphertext.to_dict()) == ciphertext
    good = ciphertext.to_dict()
    for change in (
        {"session": ""},
        {"session": "x" * 65},
        {"index": -1},
        {"index": 1 << 32},
        {"index": True},
        {"body": ""},
        {"body": None},
    ):
        with pytest.raises(MalformedMegolmCiphertext):
            MegolmCiphertext.from_dict({**good, **change})


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_any_permutation_decrypts_and_repeats_are_duplicates(data: st.DataObject) -> None:
    sender = RoomSender.start(ROOM, NOW)
    bob = receiver_of(sender)
    sent = lines(sender, data.draw(st.integers(min_value=1, max_value=12)))
    order = data.draw(st.permutations(range(len(sent))))
    repeats = data.draw(st.lists(st.sampled_from(range(len(sent))), max_size=4))
    for index in order:
        plain = bob.decrypt(ROOM, ALICE, sent[index])
        assert (plain.plaintext, plain.message_index, plain.duplicate) == (
            f"line {index}".encode(),
            index,
            False,
        )
    for index in repeats:
        assert bob.decrypt(ROOM, ALICE, sent[index]).duplicate
