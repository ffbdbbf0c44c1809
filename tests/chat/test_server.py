"""ChatServer: sessions, hello, and relaying only messages that are exactly what was signed."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from tlschat.chat.envelope import SignedMessage, signed_bytes
from tlschat.chat.frames import say_frame
from tlschat.chat.server.events import ChatServer
from tlschat.chat.server.model import DEFAULT_ROOM, MAX_CLOCK_SKEW_MS
from tlschat.protocol.identity import IdentityKey

from .helpers import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    NETWORK,
    NOW,
    NOW_MS,
    command,
    connect,
    error,
    fallback_nick,
    hello,
    joined,
    make_server,
    member,
    notice,
    peer_of,
    rejected,
    relayed,
    say,
    sent,
    welcome,
)


def last_counter(server: ChatServer, key: IdentityKey) -> int:
    return server.store.last_counter(key.fingerprint)


# --- connect and hello -----------------------------------------------------------------------


def test_connect_records_session_and_admits(server: ChatServer, ed_alice: IdentityKey) -> None:
    assert server.connect(ALICE, peer_of(ed_alice), "10.0.0.1:5555", NOW) == []
    session = server.sessions[ALICE]
    assert session.fingerprint == ed_alice.fingerprint
    assert session.address == "10.0.0.1:5555"
    assert session.connected_at == NOW
    assert session.last_active == NOW
    assert session.nick == ""
    assert session.rooms == []
    assert session.said_hello is False


def test_first_hello_gets_welcome_and_joined(server: ChatServer, ed_alice: IdentityKey) -> None:
    out = hello(server, ALICE, ed_alice, "alice")
    assert out == [
        (ALICE, welcome("alice", ed_alice)),
        (ALICE, joined("#general", [member("alice", ed_alice)])),
    ]
    session = server.sessions[ALICE]
    assert session.said_hello is True
    assert session.rooms == ["#general"]
    # The nick is registered to the key.
    assert server.store.nick_owner("ALICE") == ed_alice.fingerprint


def test_operator_is_told_so_in_welcome(ed_alice: IdentityKey) -> None:
    server = make_server(operators=frozenset({ed_alice.fingerprint}))
    assert hello(server, ALICE, ed_alice, "alice")[0] == (
        ALICE,
        welcome("alice", ed_alice, operator=True),
    )


def test_second_hello_joined_to_joiner_and_join_to_others_only(
    server: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    hello(server, ALICE, ed_alice, "alice")
    # Carol is connected but has not said hello: she is not a member and hears nothing.
    connect(server, CAROL, ed_carol)
    out = hello(server, BOB, ed_bob, "bob")
    assert out == [
        (BOB, welcome("bob", ed_bob)),
        (BOB, joined("#general", [member("alice", ed_alice), member("bob", ed_bob)])),
        (ALICE, {"type": "join", "room": "#general", **member("bob", ed_bob)}),
    ]


def test_join_goes_to_every_other_member(room: ChatServer, ed_dave: IdentityKey) -> None:
    out = hello(room, DAVE, ed_dave, "dave")
    assert [sid for sid, _ in out] == [DAVE, DAVE, ALICE, BOB, CAROL]
    join = {"type": "join", "room": "#general", **member("dave", ed_dave)}
    assert out[2:] == [(ALICE, join), (BOB, join), (CAROL, join)]


def test_motd_between_welcome_and_joined(ed_alice: IdentityKey) -> None:
    server = make_server(motd="Be nice.")
    out = hello(server, ALICE, ed_alice, "alice")
    assert out == [
        (ALICE, welcome("alice", ed_alice)),
        (ALICE, {"type": "motd", "text": "Be nice."}),
        (ALICE, joined("#general", [member("alice", ed_alice)])),
    ]


def test_notice_then_motd_then_joined(ed_alice: IdentityKey, ed_bob: IdentityKey) -> None:
    server = make_server(motd="Be nice.")
    hello(server, ALICE, ed_alice, "alice")
    out = hello(server, BOB, ed_bob, "alice")
    bob = fallback_nick(ed_bob)
    assert [frame["type"] for _, frame in out] == ["welcome", "notice", "motd", "joined", "join"]
    assert out[1] == notice(BOB, f"'alice' belongs to another key; you are {bob}")


def test_joined_carries_the_topic(server: ChatServer, ed_alice: IdentityKey) -> None:
    server.store.set_topic("#general", "stored before start")
    restarted = make_server(server.store)
    out = hello(restarted, ALICE, ed_alice, "alice")
    assert out[1] == (
        ALICE,
        joined("#general", [member("alice", ed_alice)], topic="stored before start"),
    )


def test_hello_twice_is_refused(room: ChatServer) -> None:
    out = room.receive(ALICE, {"type": "hello", "nick": "again"}, NOW)
    assert out == error(ALICE, "already said hello")
    assert room.sessions[ALICE].nick == "alice"


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "say", "body": "hi"},
        {"type": "command", "name": "nick", "args": "alice"},
        {"type": "command", "name": "help", "args": ""},
        {"type": "nick", "nick": "alice"},
    ],
)
def test_anything_but_hello_before_hello_is_refused(
    server: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey, frame: dict[str, Any]
) -> None:
    hello(server, BOB, ed_bob, "bob")
    connect(server, ALICE, ed_alice)
    assert server.receive(ALICE, frame, NOW) == error(ALICE, "say hello first")


def test_signed_say_before_hello_is_refused(
    server: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    hello(server, BOB, ed_bob, "bob")
    connect(server, ALICE, ed_alice)
    assert server.receive(ALICE, say(ed_alice), NOW) == error(ALICE, "say hello first")
    assert last_counter(server, ed_alice) == -1


def test_frames_from_unknown_session_are_ignored(room: ChatServer) -> None:
    assert room.receive(99, {"type": "hello", "nick": "ghost"}, NOW) == []


# --- nick on hello ---------------------------------------------------------------------------


def test_nick_of_another_key_falls_back_case_insensitively(
    server: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    hello(server, ALICE, ed_alice, "alice")
    out = hello(server, BOB, ed_bob, "ALICE")
    bob = fallback_nick(ed_bob)
    assert server.sessions[BOB].nick == bob
    assert out == [
        (BOB, welcome(bob, ed_bob)),
        notice(BOB, f"'ALICE' belongs to another key; you are {bob}"),
        (BOB, joined("#general", [member("alice", ed_alice), member(bob, ed_bob)])),
        (ALICE, {"type": "join", "room": "#general", **member(bob, ed_bob)}),
    ]
    # The fallback is registered: the key owns it, as any nick it holds.
    assert server.store.nick_of(ed_bob.fingerprint) == bob
    assert server.store.nick_owner(bob) == ed_bob.fingerprint


def test_registered_nick_is_refused_even_while_its_owner_is_offline(
    server: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    hello(server, ALICE, ed_alice, "alice")
    server.disconnect(ALICE, "quit")
    out = hello(server, BOB, ed_bob, "alice")
    assert out[1] == notice(BOB, f"'alice' belongs to another key; you are {fallback_nick(ed_bob)}")


def test_owner_gets_the_nick_back_after_reconnect(
    server: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    hello(server, ALICE, ed_alice, "alice")
    server.disconnect(ALICE, "quit")
    hello(server, BOB, ed_bob, "alice")
    out = hello(server, 10, ed_alice, "alice")
    assert out[0] == (10, welcome("alice", ed_alice))
    assert [frame["type"] for _, frame in out] == ["welcome", "joined", "join"]


def test_registered_nick_is_used_when_hello_names_none(
    server: ChatServer, ed_alice: IdentityKey
) -> None:
    hello(server, ALICE, ed_alice, "alice")
    server.disconnect(ALICE, "quit")
    out = hello(server, 10, ed_alice, "")
    assert out[0] == (10, welcome("alice", ed_alice))
    assert [frame["type"] for _, frame in out] == ["welcome", "joined"]


def test_registered_nick_is_used_when_hello_names_an_invalid_one(
    server: ChatServer, ed_alice: IdentityKey
) -> None:
    hello(server, ALICE, ed_alice, "alice")
    server.disconnect(ALICE, "quit")
    out = hello(server, 10, ed_alice, "not valid!")
    assert out[:2] == [
        (10, welcome("alice", ed_alice)),
        notice(10, "'not valid!' is not a valid nick; you are alice"),
    ]


@pytest.mark.parametrize("nick", ["bad nick!", "x" * 25, "#general", "héllo"])
def test_invalid_nick_falls_back_with_notice(
    server: ChatServer, ed_bob: IdentityKey, nick: str
) -> None:
    out = hello(server, BOB, ed_bob, nick)
    expected = fallback_nick(ed_bob)
    assert re.fullmatch(r"user-[a-z0-9]{6}", expected)
    assert server.sessions[BOB].nick == expected
    assert out == [
        (BOB, welcome(expected, ed_bob)),
        notice(BOB, f"{nick!r} is not a valid nick; you are {expected}"),
        (BOB, joined("#general", [member(expected, ed_bob)])),
    ]


@pytest.mark.parametrize("nick", ["", None, 42, ["alice"]])
def test_missing_or_non_string_nick_falls_back_silently(
    server: ChatServer, ed_bob: IdentityKey, nick: object
) -> None:
    out = hello(server, BOB, ed_bob, nick)
    assert server.sessions[BOB].nick == fallback_nick(ed_bob)
    assert [frame["type"] for _, frame in out] == ["welcome", "joined"]


def test_hello_without_nick_field(server: ChatServer, ed_bob: IdentityKey) -> None:
    connect(server, BOB, ed_bob)
    out = server.receive(BOB, {"type": "hello"}, NOW)
    assert out[0] == (BOB, welcome(fallback_nick(ed_bob), ed_bob))


def test_same_key_twice_shares_its_nick(server: ChatServer, ed_alice: IdentityKey) -> None:
    hello(server, ALICE, ed_alice, "alice")
    out = hello(server, 10, ed_alice, "alice")
    assert out[0] == (10, welcome("alice", ed_alice))
    assert server.sessions[10].nick == "alice"


def test_second_session_asking_another_nick_shares_the_keys_nick(
    server: ChatServer, ed_alice: IdentityKey
) -> None:
    hello(server, ALICE, ed_alice, "alice")
    out = hello(server, 10, ed_alice, "laptop")
    assert out[:2] == [
        (10, welcome("alice", ed_alice)),
        notice(10, "'laptop' not taken: your key is online already as alice"),
    ]
    assert server.sessions[10].nick == server.sessions[ALICE].nick == "alice"
    assert server.store.nick_of(ed_alice.fingerprint) == "alice"
    assert server.store.nick_owner("laptop") is None


def test_second_session_shares_a_fallback_nick(
    server: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    hello(server, ALICE, ed_alice, "alice")
    hello(server, BOB, ed_bob, "alice")
    out = hello(server, 10, ed_bob, "")
    assert out[0] == (10, welcome(fallback_nick(ed_bob), ed_bob))
    # Presence is per key: bob's second device joining #general is news to nobody.
    assert [frame["type"] for _, frame in out] == ["welcome", "joined"]


def test_only_the_last_session_of_a_key_leaving_is_announced(
    server: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    hello(server, ALICE, ed_alice, "alice")
    hello(server, BOB, ed_bob, "bob")
    hello(server, 10, ed_bob, "bob")
    assert server.disconnect(10, "quit") == []
    assert command(server, BOB, "join", "#rust")[-1][1]["type"] == "joined"
    hello(server, 11, ed_bob, "bob")
    command(server, 11, "join", "#rust")
    assert command(server, 11, "part", "#rust") == [(11, {"type": "parted", "room": "#rust"})]
    # bob's first session leaves #rust (nobody else there) and #general (11 is still there).
    assert server.disconnect(BOB, "quit") == []
    out = server.disconnect(11, "quit")
    assert [(target, frame["type"], frame["room"], frame["reason"]) for target, frame in out] == [
        (ALICE, "leave", "#general", "quit")
    ]


def test_online_fallback_nick_is_not_given_to_another_key(
    server: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    hello(server, BOB, ed_bob, "")
    taken = fallback_nick(ed_bob)
    out = hello(server, ALICE, ed_alice, taken)
    assert out[1] == notice(
        ALICE, f"{taken!r} belongs to another key; you are {fallback_nick(ed_alice)}"
    )


# --- relaying signed messages ----------------------------------------------------------------


def test_valid_message_relays_to_every_other_member(
    room: ChatServer, ed_alice: IdentityKey
) -> None:
    frame = say(ed_alice, counter=5, body="héllo ✓")
    out = room.receive(ALICE, frame, NOW)
    expected = {
        "type": "message",
        "from": "alice",
        "key": base64.b64encode(ed_alice.spki_der).decode("ascii"),
        "network": NETWORK,
        "target": "#general",
        "sender": ed_alice.fingerprint,
        "counter": 5,
        "ts": NOW_MS,
        "body": "héllo ✓",
        "sig": frame["sig"],
    }
    assert out == [(BOB, expected), (CAROL, expected), sent(ALICE, "#general", 5)]
    assert last_counter(room, ed_alice) == 5


def test_rsa_signed_message_relays_and_verifies(room: ChatServer, rsa_alice: IdentityKey) -> None:
    hello(room, DAVE, rsa_alice, "ralice")
    frame = say(rsa_alice, counter=3, body="from an RSA key")
    out = room.receive(DAVE, frame, NOW)
    assert out == [
        *[(sid, relayed(frame, "ralice", rsa_alice)) for sid in (ALICE, BOB, CAROL)],
        sent(DAVE, "#general", 3),
    ]


def test_relayed_envelope_still_verifies(room: ChatServer, ed_bob: IdentityKey) -> None:
    out = room.receive(BOB, say(ed_bob, counter=9, body="from bob"), NOW)
    assert [sid for sid, _ in out] == [ALICE, CAROL, BOB]
    assert out[1][1] == out[0][1]
    assert out[2] == sent(BOB, "#general", 9)
    frame = out[0][1]
    assert frame["from"] == "bob"
    assert base64.b64decode(frame["key"]) == ed_bob.spki_der
    message = SignedMessage(
        NETWORK,
        frame["target"],
        frame["sender"],
        frame["counter"],
        frame["ts"],
        frame["body"],
        base64.b64decode(frame["sig"]),
    )
    assert message.verify(peer_of(ed_bob)) is True


def test_relay_uses_current_nick(room: ChatServer, ed_alice: IdentityKey) -> None:
    command(room, ALICE, "nick", "alicia")
    out = room.receive(ALICE, say(ed_alice), NOW)
    assert out[0][1]["from"] == "alicia"


def test_alone_in_room_relays_to_nobody(server: ChatServer, ed_alice: IdentityKey) -> None:
    hello(server, ALICE, ed_alice, "alice")
    assert server.receive(ALICE, say(ed_alice), NOW) == [sent(ALICE, "#general", 1)]
    assert last_counter(server, ed_alice) == 1


def test_increasing_counters_are_accepted(room: ChatServer, ed_alice: IdentityKey) -> None:
    for counter in (0, 1, 7, 1 << 40):
        out = room.receive(ALICE, say(ed_alice, counter=counter), NOW)
        assert [sid for sid, _ in out] == [BOB, CAROL, ALICE]
        assert out[-1] == sent(ALICE, "#general", counter)
    assert last_counter(room, ed_alice) == 1 << 40


def test_counters_are_per_sender(
    room: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    out = room.receive(ALICE, say(ed_alice, counter=100), NOW)
    assert [sid for sid, _ in out] == [BOB, CAROL, ALICE]
    assert out[-1] == sent(ALICE, "#general", 100)
    out = room.receive(BOB, say(ed_bob, counter=1), NOW)
    assert [sid for sid, _ in out] == [ALICE, CAROL, BOB]
    assert out[-1] == sent(BOB, "#general", 1)


@pytest.mark.parametrize("skew", [MAX_CLOCK_SKEW_MS, -MAX_CLOCK_SKEW_MS, 0, 1])
def test_timestamp_within_ten_minutes_accepted(
    room: ChatServer, ed_alice: IdentityKey, skew: int
) -> None:
    assert MAX_CLOCK_SKEW_MS == 600_000
    out = room.receive(ALICE, say(ed_alice, ts=NOW_MS + skew), NOW)
    assert [sid for sid, _ in out] == [BOB, CAROL, ALICE]
    assert out[-1] == sent(ALICE, "#general", 1)


def test_say_updates_last_active(room: ChatServer, ed_alice: IdentityKey) -> None:
    room.receive(ALICE, say(ed_alice, ts=NOW_MS + 30_000), NOW + 30)
    assert room.sessions[ALICE].last_active == NOW + 30
    assert room.sessions[BOB].last_active == NOW


# --- refusals --------------------------------------------------------------------------------


def _assert_refused(
    server: ChatServer,
    session_id: int,
    frame: dict[str, Any],
    text: str,
    counter: int | None = None,
) -> None:
    """``frame`` is refused with ``text``: with the message's ``counter`` if it parsed as a
    signed message (None: it did not parse, and the error names no counter)."""
    before = {
        fp: server.store.last_counter(fp)
        for fp in {s.fingerprint for s in server.sessions.values()}
    }
    expected = error(session_id, text) if counter is None else rejected(session_id, text, counter)
    assert server.receive(session_id, frame, NOW) == expected
    after = {fp: server.store.last_counter(fp) for fp in before}
    assert after == before
    assert server.store.recent_messages(DEFAULT_ROOM, 10) == []


def test_bad_signature_refused(room: ChatServer, ed_alice: IdentityKey) -> None:
    frame = say(ed_alice, counter=3)
    signature = bytearray(base64.b64decode(frame["sig"]))
    signature[10] ^= 0x01
    frame["sig"] = base64.b64encode(bytes(signature)).decode()
    _assert_refused(room, ALICE, frame, "message rejected: bad signature", 3)
    # The refused counter was not consumed: the genuine message with it is accepted.
    out = room.receive(ALICE, say(ed_alice, counter=3), NOW)
    assert [sid for sid, _ in out] == [BOB, CAROL, ALICE]
    assert out[-1] == sent(ALICE, "#general", 3)


def test_tampered_body_refused(room: ChatServer, ed_alice: IdentityKey) -> None:
    frame = say(ed_alice, body="pay alice 1")
    frame["body"] = "pay alice 1000"
    _assert_refused(room, ALICE, frame, "message rejected: bad signature", 1)


@pytest.mark.parametrize("field", ["counter", "ts"])
def test_tampered_number_refused(room: ChatServer, ed_alice: IdentityKey, field: str) -> None:
    frame = say(ed_alice, counter=3)
    frame[field] += 1
    # The error names the counter of the frame as received, tampered with or not.
    counter = 4 if field == "counter" else 3
    _assert_refused(room, ALICE, frame, "message rejected: bad signature", counter)


def test_signed_by_another_key_refused(
    server: ChatServer, rsa_alice: IdentityKey, rsa_mallory: IdentityKey, ed_bob: IdentityKey
) -> None:
    hello(server, ALICE, rsa_alice, "alice")
    hello(server, BOB, ed_bob, "bob")
    payload = signed_bytes(NETWORK, "#general", rsa_alice.fingerprint, 1, NOW_MS, "hi")
    forged = SignedMessage(
        NETWORK, "#general", rsa_alice.fingerprint, 1, NOW_MS, "hi", rsa_mallory.sign(payload)
    )
    _assert_refused(server, ALICE, say_frame(forged), "message rejected: bad signature", 1)


def test_message_naming_another_sender_refused(
    room: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    # Alice forwards a message genuinely signed by Bob.
    _assert_refused(room, ALICE, say(ed_bob), "message rejected: it names another sender", 1)
    # Alice signs a message but names Bob as the sender.
    payload = signed_bytes(NETWORK, "#general", ed_bob.fingerprint, 1, NOW_MS, "hi")
    claimed = SignedMessage(
        NETWORK, "#general", ed_bob.fingerprint, 1, NOW_MS, "hi", ed_alice.sign(payload)
    )
    _assert_refused(room, ALICE, say_frame(claimed), "message rejected: it names another sender", 1)


def test_message_for_a_room_the_sender_is_not_in_refused(
    room: ChatServer, ed_alice: IdentityKey
) -> None:
    _assert_refused(
        room, ALICE, say(ed_alice, target="#other"), "message rejected: you are not in #other", 1
    )


def test_message_retargeted_after_signing_refused(room: ChatServer, ed_alice: IdentityKey) -> None:
    # Signed for #other, then relabelled #general: the target check passes, the signature fails.
    frame = say(ed_alice, target="#other")
    frame["target"] = "#general"
    _assert_refused(room, ALICE, frame, "message rejected: bad signature", 1)


def test_the_same_message_again_is_acknowledged_not_relayed_twice(
    room: ChatServer, ed_alice: IdentityKey
) -> None:
    frame = say(ed_alice, counter=42)
    out = room.receive(ALICE, frame, NOW)
    assert [sid for sid, _ in out] == [BOB, CAROL, ALICE]
    assert out[-1] == sent(ALICE, "#general", 42)
    # A client re-sends what it had no answer for: 'sent' is the proof it was delivered.
    assert room.receive(ALICE, frame, NOW) == [sent(ALICE, "#general", 42)]
    # The same signature over another body is not the same message.
    altered = {**frame, "body": "not what was said"}
    assert room.receive(ALICE, altered, NOW) == rejected(
        ALICE, "message rejected: bad signature", 42
    )
    assert len(room.store.recent_messages(DEFAULT_ROOM, 10)) == 1


def test_lower_or_equal_counter_refused(room: ChatServer, ed_alice: IdentityKey) -> None:
    out = room.receive(ALICE, say(ed_alice, counter=10), NOW)
    assert [sid for sid, _ in out] == [BOB, CAROL, ALICE]
    assert out[-1] == sent(ALICE, "#general", 10)
    for frame in (say(ed_alice, counter=9), say(ed_alice, counter=10, body="different")):
        assert room.receive(ALICE, frame, NOW) == rejected(
            ALICE, "message rejected: replayed or out-of-order counter", frame["counter"]
        )
    assert last_counter(room, ed_alice) == 10


def test_replay_after_reconnect_refused(room: ChatServer, ed_alice: IdentityKey) -> None:
    frame = say(ed_alice, counter=42)
    room.receive(ALICE, frame, NOW)
    room.disconnect(ALICE, "quit")
    hello(room, 10, ed_alice, "alice")
    assert room.receive(10, frame, NOW) == [sent(10, "#general", 42)]
    # Another message under a committed counter is a replay.
    other = say(ed_alice, counter=42, body="not what was said")
    assert room.receive(10, other, NOW) == rejected(
        10, "message rejected: replayed or out-of-order counter", 42
    )


@pytest.mark.parametrize("skew", [MAX_CLOCK_SKEW_MS + 1, -(MAX_CLOCK_SKEW_MS + 1), 3_600_000])
def test_timestamp_skew_refused(room: ChatServer, ed_alice: IdentityKey, skew: int) -> None:
    _assert_refused(
        room,
        ALICE,
        say(ed_alice, ts=NOW_MS + skew),
        "message rejected: timestamp too far from the server's clock",
        1,
    )


def test_timestamp_is_checked_against_now(room: ChatServer, ed_alice: IdentityKey) -> None:
    frame = say(ed_alice, ts=NOW_MS)
    later = NOW + MAX_CLOCK_SKEW_MS / 1000 + 1
    assert room.receive(ALICE, frame, later) == rejected(
        ALICE, "message rejected: timestamp too far from the server's clock", 1
    )


@pytest.mark.parametrize("body", ["", " ", " \t "])
def test_empty_body_refused(room: ChatServer, ed_alice: IdentityKey, body: str) -> None:
    _assert_refused(room, ALICE, say(ed_alice, body=body), "message rejected: empty message", 1)


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"body": None}, "'body' must be a string"),
        ({"body": "x" * 4097}, "'body' is longer than 4096 bytes"),
        ({"target": None}, "'target' must be a string"),
        ({"sender": 1}, "'sender' must be a string"),
        ({"counter": "1"}, "'counter' must be an integer in [0, 18446744073709551615]"),
        ({"counter": True}, "'counter' must be an integer in [0, 18446744073709551615]"),
        ({"counter": -1}, "'counter' must be an integer in [0, 18446744073709551615]"),
        ({"ts": 1.0}, "'ts' must be an integer in [0, 18446744073709551615]"),
        ({"sig": "***"}, "'sig' is not base64"),
        ({"sig": None}, "'sig' must be a string"),
        ({"body": "\ud800"}, "'body' is not valid Unicode"),
    ],
    ids=lambda v: repr(v)[:30] if isinstance(v, dict) else "",
)
def test_malformed_say_fields_refused(
    room: ChatServer, ed_alice: IdentityKey, change: dict[str, Any], text: str
) -> None:
    frame = {**say(ed_alice), **change}
    _assert_refused(room, ALICE, frame, text)


def test_bare_say_refused(room: ChatServer) -> None:
    _assert_refused(room, ALICE, {"type": "say"}, "'body' must be a string")


@pytest.mark.parametrize(
    ("frame", "text"),
    [
        ({"type": "command"}, "'name' must be a string"),
        ({"type": "command", "name": 3}, "'name' must be a string"),
        ({"type": "command", "name": "x" * 33}, "'name' is longer than 32 bytes"),
        ({"type": "command", "name": "help", "args": 1}, "'args' must be a string"),
    ],
)
def test_malformed_command_frames_refused(
    room: ChatServer, frame: dict[str, Any], text: str
) -> None:
    assert room.receive(ALICE, frame, NOW) == error(ALICE, text)


def test_command_without_args_field_runs(room: ChatServer) -> None:
    out = room.receive(ALICE, {"type": "command", "name": "back"}, NOW)
    assert out[0] == notice(ALICE, "You are back")


def test_command_name_is_case_insensitive(room: ChatServer) -> None:
    assert command(room, ALICE, "BACK")[0] == notice(ALICE, "You are back")


@pytest.mark.parametrize("said_hello", [True, False])
def test_unknown_frame_type(server: ChatServer, ed_alice: IdentityKey, said_hello: bool) -> None:
    if said_hello:
        hello(server, ALICE, ed_alice, "alice")
        expected = "unknown frame type 'dance'"
    else:
        connect(server, ALICE, ed_alice)
        expected = "say hello first"
    assert server.receive(ALICE, {"type": "dance"}, NOW) == error(ALICE, expected)


def test_message_frame_from_a_client_is_unknown(room: ChatServer) -> None:
    assert room.receive(ALICE, {"type": "message"}, NOW) == error(
        ALICE, "unknown frame type 'message'"
    )


@pytest.mark.parametrize(
    "body",
    [
        "carriage\rreturn",
        "two\n\rlines",
        "bell\x07",
        "esc\x1b[2J",
        "next\x85line",
        "vertical\x0btab",
        "rtl\u202eoverride",
    ],
)
def test_body_with_control_characters_is_refused(
    room: ChatServer, ed_alice: IdentityKey, body: str
) -> None:
    out = room.receive(ALICE, say(ed_alice, body=body), NOW)
    assert out == rejected(ALICE, "message rejected: control characters are not allowed", 1)
    assert last_counter(room, ed_alice) == -1


def test_newline_in_body_is_allowed_and_relayed_as_signed(
    room: ChatServer, ed_alice: IdentityKey
) -> None:
    frame = say(ed_alice, body="def f():\n\treturn 1\n")
    out = room.receive(ALICE, frame, NOW)
    assert [sid for sid, _ in out] == [BOB, CAROL, ALICE]
    assert out[0][1]["body"] == "def f():\n\treturn 1\n"
    assert last_counter(room, ed_alice) == 1


def test_tab_in_body_is_allowed(room: ChatServer, ed_alice: IdentityKey) -> None:
    out = room.receive(ALICE, say(ed_alice, body="a\tb"), NOW)
    assert [sid for sid, _ in out] == [BOB, CAROL, ALICE]
    assert out[-1] == sent(ALICE, "#general", 1)


def test_refused_message_does_not_touch_other_sessions(
    room: ChatServer, ed_alice: IdentityKey
) -> None:
    def snapshot() -> dict[int, tuple[str, list[str], str]]:
        return {
            sid: (s.nick, list(s.rooms), s.identity.fingerprint) for sid, s in room.sessions.items()
        }

    before = snapshot()
    out = room.receive(ALICE, say(ed_alice, target="#other"), NOW)
    assert [sid for sid, _ in out] == [ALICE]
    assert snapshot() == before
    assert last_counter(room, ed_alice) == -1


# --- disconnect ------------------------------------------------------------------------------


def test_disconnect_before_hello_sends_nothing(room: ChatServer, ed_dave: IdentityKey) -> None:
    connect(room, DAVE, ed_dave)
    assert room.disconnect(DAVE, "quit") == []
    assert DAVE not in room.sessions


def test_disconnect_unknown_session_sends_nothing(room: ChatServer) -> None:
    assert room.disconnect(99, "quit") == []
    assert sorted(room.sessions) == [ALICE, BOB, CAROL]


def test_disconnect_sends_leave_to_every_room_of_the_session(
    room: ChatServer, ed_alice: IdentityKey
) -> None:
    command(room, ALICE, "join", "#rust")
    command(room, BOB, "join", "#rust")
    out = room.disconnect(ALICE, "connection lost")
    leave = {"type": "leave", **member("alice", ed_alice), "reason": "connection lost"}
    assert out == [
        (BOB, {**leave, "room": "#general"}),
        (CAROL, {**leave, "room": "#general"}),
        (BOB, {**leave, "room": "#rust"}),
    ]
    assert ALICE not in room.sessions
    # A second disconnect is a no-op; the nick stays registered to alice's key.
    assert room.disconnect(ALICE, "quit") == []
    assert command(room, BOB, "nick", "alice") == error(BOB, "'alice' belongs to another key")


def test_messages_after_disconnect_skip_departed(room: ChatServer, ed_bob: IdentityKey) -> None:
    room.disconnect(ALICE, "quit")
    out = room.receive(BOB, say(ed_bob), NOW)
    assert [sid for sid, _ in out] == [CAROL, BOB]
    assert out[-1] == sent(BOB, "#general", 1)


def test_leave_reports_away(room: ChatServer, ed_alice: IdentityKey) -> None:
    command(room, ALICE, "away", "lunch")
    out = room.disconnect(ALICE, "quit")
    assert out[0] == (
        BOB,
        {
            "type": "leave",
            "room": "#general",
            **member("alice", ed_alice, "lunch"),
            "reason": "quit",
        },
    )


def test_ping_and_pong(room: ChatServer) -> None:
    assert room.receive(ALICE, {"type": "ping"}, NOW) == [(ALICE, {"type": "pong"})]
    assert room.receive(ALICE, {"type": "pong"}, NOW) == []
