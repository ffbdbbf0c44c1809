"""ChatServer: sessions, nicks, and relaying only messages that are exactly what was signed."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from tlschat.chat.envelope import SignedMessage, signed_bytes
from tlschat.chat.frames import say_frame
from tlschat.chat.server import DEFAULT_ROOM, MAX_CLOCK_SKEW_MS, ChatServer
from tlschat.protocol.identity import IdentityKey

from .helpers import NOW, NOW_MS, peer_of

ALICE, BOB, CAROL = 1, 2, 3


def member(nick: str, key: IdentityKey) -> dict[str, str]:
    return {"nick": nick, "fingerprint": key.fingerprint}


def error(session_id: int, text: str) -> list[tuple[int, dict[str, Any]]]:
    return [(session_id, {"type": "error", "text": text})]


def hello(
    server: ChatServer, session_id: int, key: IdentityKey, nick: object
) -> list[tuple[int, dict[str, Any]]]:
    server.connect(session_id, peer_of(key), f"127.0.0.1:{40000 + session_id}", NOW)
    return server.receive(session_id, {"type": "hello", "nick": nick}, NOW)


def say(
    key: IdentityKey,
    counter: int = 1,
    ts: int = NOW_MS,
    body: str = "hello",
    target: str = DEFAULT_ROOM,
) -> dict[str, Any]:
    return say_frame(SignedMessage.create(key, target, counter, ts, body))


def fingerprint_tag(key: IdentityKey) -> str:
    return "".join(c for c in key.fingerprint.removeprefix("SHA256:") if c.isalnum())[:6].lower()


@pytest.fixture
def server() -> ChatServer:
    return ChatServer(server_name="testsrv")


@pytest.fixture
def room(
    server: ChatServer, rsa_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> ChatServer:
    hello(server, ALICE, rsa_alice, "alice")
    hello(server, BOB, ed_bob, "bob")
    hello(server, CAROL, ed_carol, "carol")
    return server


# --- connect and hello -----------------------------------------------------------------------


def test_connect_records_session(server: ChatServer, rsa_alice: IdentityKey) -> None:
    server.connect(ALICE, peer_of(rsa_alice), "10.0.0.1:5555", NOW)
    session = server.sessions[ALICE]
    assert session.identity.fingerprint == rsa_alice.fingerprint
    assert session.address == "10.0.0.1:5555"
    assert session.connected_at == NOW
    assert session.nick == ""
    assert session.room == ""
    assert session.joined is False


def test_first_hello_gets_welcome_only(server: ChatServer, rsa_alice: IdentityKey) -> None:
    out = hello(server, ALICE, rsa_alice, "alice")
    assert out == [
        (
            ALICE,
            {
                "type": "welcome",
                "server": "testsrv",
                "nick": "alice",
                "fingerprint": rsa_alice.fingerprint,
                "room": "#general",
                "members": [member("alice", rsa_alice)],
            },
        )
    ]
    assert server.sessions[ALICE].joined is True
    assert server.sessions[ALICE].room == "#general"


def test_second_hello_welcome_and_join_to_others_only(
    server: ChatServer, rsa_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    hello(server, ALICE, rsa_alice, "alice")
    # Carol is connected but has not said hello: she is not a member and hears nothing.
    server.connect(CAROL, peer_of(ed_carol), "127.0.0.1:3", NOW)
    out = hello(server, BOB, ed_bob, "bob")
    assert out == [
        (
            BOB,
            {
                "type": "welcome",
                "server": "testsrv",
                "nick": "bob",
                "fingerprint": ed_bob.fingerprint,
                "room": "#general",
                "members": [member("alice", rsa_alice), member("bob", ed_bob)],
            },
        ),
        (
            ALICE,
            {
                "type": "join",
                "room": "#general",
                "nick": "bob",
                "fingerprint": ed_bob.fingerprint,
            },
        ),
    ]


def test_join_goes_to_every_other_member(room: ChatServer, rsa_mallory: IdentityKey) -> None:
    out = hello(room, 4, rsa_mallory, "dave")
    assert [sid for sid, _ in out] == [4, ALICE, BOB, CAROL]
    join = {
        "type": "join",
        "room": "#general",
        "nick": "dave",
        "fingerprint": rsa_mallory.fingerprint,
    }
    assert out[1:] == [(ALICE, join), (BOB, join), (CAROL, join)]


def test_motd_follows_welcome(rsa_alice: IdentityKey) -> None:
    server = ChatServer(server_name="testsrv", motd="Be nice.")
    out = hello(server, ALICE, rsa_alice, "alice")
    assert [frame["type"] for _, frame in out] == ["welcome", "motd"]
    assert out[1] == (ALICE, {"type": "motd", "text": "Be nice."})


def test_hello_twice_is_refused(room: ChatServer) -> None:
    out = room.receive(ALICE, {"type": "hello", "nick": "again"}, NOW)
    assert out == error(ALICE, "already said hello")
    assert room.sessions[ALICE].nick == "alice"


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "say", "body": "hi"},
        {"type": "nick", "nick": "alice"},
    ],
)
def test_anything_but_hello_before_hello_is_refused(
    server: ChatServer, rsa_alice: IdentityKey, ed_bob: IdentityKey, frame: dict[str, Any]
) -> None:
    hello(server, BOB, ed_bob, "bob")
    server.connect(ALICE, peer_of(rsa_alice), "127.0.0.1:1", NOW)
    assert server.receive(ALICE, frame, NOW) == error(ALICE, "say hello first")


def test_signed_say_before_hello_is_refused(
    server: ChatServer, rsa_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    hello(server, BOB, ed_bob, "bob")
    server.connect(ALICE, peer_of(rsa_alice), "127.0.0.1:1", NOW)
    assert server.receive(ALICE, say(rsa_alice), NOW) == error(ALICE, "say hello first")
    assert server.last_counter == {}


# --- nick fallback on hello ------------------------------------------------------------------


def test_taken_nick_is_case_insensitive(
    server: ChatServer, rsa_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    hello(server, ALICE, rsa_alice, "alice")
    out = hello(server, BOB, ed_bob, "ALICE")
    assert server.sessions[BOB].nick == "ALICE_2"
    assert out[0][1]["nick"] == "ALICE_2"
    assert out[1] == (BOB, {"type": "notice", "text": "'ALICE' is taken; you are ALICE_2"})
    assert out[2] == (
        ALICE,
        {"type": "join", "room": "#general", "nick": "ALICE_2", "fingerprint": ed_bob.fingerprint},
    )
    # "alice_2" is taken too (by "ALICE_2", case-insensitively), so the next is "_3".
    out = hello(server, CAROL, ed_carol, "alice")
    assert server.sessions[CAROL].nick == "alice_3"
    assert out[1] == (CAROL, {"type": "notice", "text": "'alice' is taken; you are alice_3"})


def test_fallback_of_long_nick_is_truncated(
    server: ChatServer, rsa_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    long = "n" * 24
    hello(server, ALICE, rsa_alice, long)
    hello(server, BOB, ed_bob, long)
    assert server.sessions[BOB].nick == "n" * 20 + "_2"


@pytest.mark.parametrize("nick", ["bad nick!", "x" * 25, "#general", "héllo"])
def test_invalid_nick_falls_back_with_notice(
    server: ChatServer, ed_bob: IdentityKey, nick: str
) -> None:
    out = hello(server, BOB, ed_bob, nick)
    expected = "user-" + fingerprint_tag(ed_bob)
    assert re.fullmatch(r"user-[a-z0-9]{6}", expected)
    assert server.sessions[BOB].nick == expected
    assert out == [
        (
            BOB,
            {
                "type": "welcome",
                "server": "testsrv",
                "nick": expected,
                "fingerprint": ed_bob.fingerprint,
                "room": "#general",
                "members": [member(expected, ed_bob)],
            },
        ),
        (BOB, {"type": "notice", "text": f"{nick!r} is not a valid nick; you are {expected}"}),
    ]


@pytest.mark.parametrize("nick", ["", None, 42, ["alice"]])
def test_missing_or_non_string_nick_falls_back_silently(
    server: ChatServer, ed_bob: IdentityKey, nick: object
) -> None:
    out = hello(server, BOB, ed_bob, nick)
    expected = "user-" + fingerprint_tag(ed_bob)
    assert server.sessions[BOB].nick == expected
    assert [frame["type"] for _, frame in out] == ["welcome"]


def test_same_key_twice_gets_distinct_fallback(server: ChatServer, ed_bob: IdentityKey) -> None:
    hello(server, BOB, ed_bob, "")
    hello(server, CAROL, ed_bob, "")
    base = "user-" + fingerprint_tag(ed_bob)
    assert server.sessions[BOB].nick == base
    assert server.sessions[CAROL].nick == base + "_2"


# --- /nick -----------------------------------------------------------------------------------


def test_nick_change_is_broadcast_to_everyone(room: ChatServer, rsa_alice: IdentityKey) -> None:
    out = room.receive(ALICE, {"type": "nick", "nick": "alicia"}, NOW)
    event = {
        "type": "nick",
        "old": "alice",
        "new": "alicia",
        "fingerprint": rsa_alice.fingerprint,
    }
    assert out == [(ALICE, event), (BOB, event), (CAROL, event)]
    assert room.sessions[ALICE].nick == "alicia"


def test_nick_change_of_own_case_is_allowed(room: ChatServer) -> None:
    out = room.receive(ALICE, {"type": "nick", "nick": "ALICE"}, NOW)
    assert out[0][1]["new"] == "ALICE"
    assert room.sessions[ALICE].nick == "ALICE"


def test_freed_nick_can_be_taken(room: ChatServer) -> None:
    room.receive(ALICE, {"type": "nick", "nick": "alicia"}, NOW)
    out = room.receive(BOB, {"type": "nick", "nick": "Alice"}, NOW)
    assert out[0][1]["old"] == "bob"
    assert room.sessions[BOB].nick == "Alice"


@pytest.mark.parametrize(
    ("frame", "text"),
    [
        (
            {"type": "nick", "nick": "no spaces"},
            "'no spaces' is not a valid nick (1-24 of letters, digits, _-[]{}|^`)",
        ),
        (
            {"type": "nick", "nick": ""},
            "'' is not a valid nick (1-24 of letters, digits, _-[]{}|^`)",
        ),
        ({"type": "nick", "nick": "BOB"}, "'BOB' is taken"),
        ({"type": "nick", "nick": "carol"}, "'carol' is taken"),
        ({"type": "nick"}, "'nick' must be a string"),
        ({"type": "nick", "nick": 5}, "'nick' must be a string"),
        ({"type": "nick", "nick": "x" * 65}, "'nick' is longer than 64 bytes"),
    ],
)
def test_nick_refusals(room: ChatServer, frame: dict[str, Any], text: str) -> None:
    assert room.receive(ALICE, frame, NOW) == error(ALICE, text)
    assert room.sessions[ALICE].nick == "alice"


# --- relaying signed messages ----------------------------------------------------------------


def test_valid_message_relays_to_every_other_member(
    room: ChatServer, rsa_alice: IdentityKey
) -> None:
    frame = say(rsa_alice, counter=5, body="héllo ✓")
    out = room.receive(ALICE, frame, NOW)
    relayed = {
        "type": "message",
        "from": "alice",
        "key": base64.b64encode(rsa_alice.spki_der).decode("ascii"),
        "target": "#general",
        "sender": rsa_alice.fingerprint,
        "counter": 5,
        "ts": NOW_MS,
        "body": "héllo ✓",
        "sig": frame["sig"],
    }
    assert out == [(BOB, relayed), (CAROL, relayed)]
    assert room.last_counter == {rsa_alice.fingerprint: 5}


def test_relayed_envelope_still_verifies(room: ChatServer, ed_bob: IdentityKey) -> None:
    out = room.receive(BOB, say(ed_bob, counter=9, body="from bob"), NOW)
    assert [sid for sid, _ in out] == [ALICE, CAROL]
    relayed = out[0][1]
    assert relayed["from"] == "bob"
    assert base64.b64decode(relayed["key"]) == ed_bob.spki_der
    message = SignedMessage(
        relayed["target"],
        relayed["sender"],
        relayed["counter"],
        relayed["ts"],
        relayed["body"],
        base64.b64decode(relayed["sig"]),
    )
    assert message.verify(peer_of(ed_bob)) is True


def test_relay_uses_current_nick(room: ChatServer, rsa_alice: IdentityKey) -> None:
    room.receive(ALICE, {"type": "nick", "nick": "alicia"}, NOW)
    out = room.receive(ALICE, say(rsa_alice), NOW)
    assert out[0][1]["from"] == "alicia"


def test_alone_in_room_relays_to_nobody(server: ChatServer, rsa_alice: IdentityKey) -> None:
    hello(server, ALICE, rsa_alice, "alice")
    assert server.receive(ALICE, say(rsa_alice), NOW) == []
    assert server.last_counter == {rsa_alice.fingerprint: 1}


def test_increasing_counters_are_accepted(room: ChatServer, rsa_alice: IdentityKey) -> None:
    for counter in (0, 1, 7, 1 << 40):
        assert len(room.receive(ALICE, say(rsa_alice, counter=counter), NOW)) == 2
    assert room.last_counter[rsa_alice.fingerprint] == 1 << 40


def test_counters_are_per_sender(
    room: ChatServer, rsa_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    assert len(room.receive(ALICE, say(rsa_alice, counter=100), NOW)) == 2
    assert len(room.receive(BOB, say(ed_bob, counter=1), NOW)) == 2


@pytest.mark.parametrize("skew", [MAX_CLOCK_SKEW_MS, -MAX_CLOCK_SKEW_MS, 0, 1])
def test_timestamp_within_ten_minutes_accepted(
    room: ChatServer, rsa_alice: IdentityKey, skew: int
) -> None:
    assert MAX_CLOCK_SKEW_MS == 600_000
    assert len(room.receive(ALICE, say(rsa_alice, ts=NOW_MS + skew), NOW)) == 2


# --- refusals --------------------------------------------------------------------------------


def _assert_refused(server: ChatServer, session_id: int, frame: dict[str, Any], text: str) -> None:
    before = dict(server.last_counter)
    assert server.receive(session_id, frame, NOW) == error(session_id, text)
    assert server.last_counter == before


def test_bad_signature_refused(room: ChatServer, rsa_alice: IdentityKey) -> None:
    frame = say(rsa_alice, counter=3)
    signature = bytearray(base64.b64decode(frame["sig"]))
    signature[10] ^= 0x01
    frame["sig"] = base64.b64encode(bytes(signature)).decode()
    _assert_refused(room, ALICE, frame, "message rejected: bad signature")
    # The refused counter was not consumed: the genuine message with it is accepted.
    assert len(room.receive(ALICE, say(rsa_alice, counter=3), NOW)) == 2


def test_tampered_body_refused(room: ChatServer, rsa_alice: IdentityKey) -> None:
    frame = say(rsa_alice, body="pay alice 1")
    frame["body"] = "pay alice 1000"
    _assert_refused(room, ALICE, frame, "message rejected: bad signature")


@pytest.mark.parametrize("field", ["counter", "ts"])
def test_tampered_number_refused(room: ChatServer, rsa_alice: IdentityKey, field: str) -> None:
    frame = say(rsa_alice, counter=3)
    frame[field] += 1
    _assert_refused(room, ALICE, frame, "message rejected: bad signature")


def test_signed_by_another_key_refused(
    room: ChatServer, rsa_alice: IdentityKey, rsa_mallory: IdentityKey
) -> None:
    payload = signed_bytes("#general", rsa_alice.fingerprint, 1, NOW_MS, "hi")
    forged = SignedMessage(
        "#general", rsa_alice.fingerprint, 1, NOW_MS, "hi", rsa_mallory.sign(payload)
    )
    _assert_refused(room, ALICE, say_frame(forged), "message rejected: bad signature")


def test_message_naming_another_sender_refused(
    room: ChatServer, rsa_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    # Alice forwards a message genuinely signed by Bob.
    _assert_refused(room, ALICE, say(ed_bob), "message rejected: it names another sender")
    # Alice signs a message but names Bob as the sender.
    payload = signed_bytes("#general", ed_bob.fingerprint, 1, NOW_MS, "hi")
    claimed = SignedMessage(
        "#general", ed_bob.fingerprint, 1, NOW_MS, "hi", rsa_alice.sign(payload)
    )
    _assert_refused(room, ALICE, say_frame(claimed), "message rejected: it names another sender")


def test_message_for_another_room_refused(room: ChatServer, rsa_alice: IdentityKey) -> None:
    _assert_refused(
        room,
        ALICE,
        say(rsa_alice, target="#other"),
        "message rejected: you are in #general, not #other",
    )


def test_message_retargeted_after_signing_refused(room: ChatServer, rsa_alice: IdentityKey) -> None:
    # Signed for #other, then relabelled #general: the target check passes, the signature fails.
    frame = say(rsa_alice, target="#other")
    frame["target"] = "#general"
    _assert_refused(room, ALICE, frame, "message rejected: bad signature")


def test_replayed_message_refused(room: ChatServer, rsa_alice: IdentityKey) -> None:
    frame = say(rsa_alice, counter=42)
    assert len(room.receive(ALICE, frame, NOW)) == 2
    _assert_refused(room, ALICE, frame, "message rejected: replayed or out-of-order counter")


def test_lower_counter_refused(room: ChatServer, rsa_alice: IdentityKey) -> None:
    assert len(room.receive(ALICE, say(rsa_alice, counter=10), NOW)) == 2
    _assert_refused(
        room, ALICE, say(rsa_alice, counter=9), "message rejected: replayed or out-of-order counter"
    )
    _assert_refused(
        room,
        ALICE,
        say(rsa_alice, counter=10, body="different"),
        "message rejected: replayed or out-of-order counter",
    )


def test_replay_after_reconnect_refused(room: ChatServer, rsa_alice: IdentityKey) -> None:
    frame = say(rsa_alice, counter=42)
    room.receive(ALICE, frame, NOW)
    room.disconnect(ALICE, "quit")
    hello(room, 10, rsa_alice, "alice")
    _assert_refused(room, 10, frame, "message rejected: replayed or out-of-order counter")


@pytest.mark.parametrize("skew", [MAX_CLOCK_SKEW_MS + 1, -(MAX_CLOCK_SKEW_MS + 1), 3_600_000])
def test_timestamp_skew_refused(room: ChatServer, rsa_alice: IdentityKey, skew: int) -> None:
    _assert_refused(
        room,
        ALICE,
        say(rsa_alice, ts=NOW_MS + skew),
        "message rejected: timestamp too far from the server's clock",
    )


def test_timestamp_is_checked_against_now(room: ChatServer, rsa_alice: IdentityKey) -> None:
    frame = say(rsa_alice, ts=NOW_MS)
    later = NOW + MAX_CLOCK_SKEW_MS / 1000 + 1
    assert room.receive(ALICE, frame, later) == error(
        ALICE, "message rejected: timestamp too far from the server's clock"
    )


@pytest.mark.parametrize("body", ["", " ", " \t\n "])
def test_empty_body_refused(room: ChatServer, rsa_alice: IdentityKey, body: str) -> None:
    _assert_refused(room, ALICE, say(rsa_alice, body=body), "message rejected: empty message")


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
    room: ChatServer, rsa_alice: IdentityKey, change: dict[str, Any], text: str
) -> None:
    frame = {**say(rsa_alice), **change}
    _assert_refused(room, ALICE, frame, text)


def test_bare_say_refused(room: ChatServer) -> None:
    _assert_refused(room, ALICE, {"type": "say"}, "'body' must be a string")


@pytest.mark.parametrize("joined", [True, False])
def test_unknown_frame_type(server: ChatServer, rsa_alice: IdentityKey, joined: bool) -> None:
    if joined:
        hello(server, ALICE, rsa_alice, "alice")
    else:
        server.connect(ALICE, peer_of(rsa_alice), "127.0.0.1:1", NOW)
    assert server.receive(ALICE, {"type": "dance"}, NOW) == error(
        ALICE, "unknown frame type 'dance'"
    )
    assert server.receive(ALICE, {"type": "message"}, NOW) == error(
        ALICE, "unknown frame type 'message'"
    )


# --- disconnect ------------------------------------------------------------------------------


def test_disconnect_before_hello_sends_nothing(room: ChatServer, rsa_mallory: IdentityKey) -> None:
    room.connect(4, peer_of(rsa_mallory), "127.0.0.1:4", NOW)
    assert room.disconnect(4, "quit") == []
    assert 4 not in room.sessions


def test_disconnect_unknown_session_sends_nothing(room: ChatServer) -> None:
    assert room.disconnect(99, "quit") == []
    assert sorted(room.sessions) == [ALICE, BOB, CAROL]


def test_disconnect_after_hello_sends_leave_to_others(
    room: ChatServer, rsa_alice: IdentityKey
) -> None:
    out = room.disconnect(ALICE, "connection lost")
    leave = {
        "type": "leave",
        "room": "#general",
        "nick": "alice",
        "fingerprint": rsa_alice.fingerprint,
        "reason": "connection lost",
    }
    assert out == [(BOB, leave), (CAROL, leave)]
    assert ALICE not in room.sessions
    # A second disconnect is a no-op, and the nick is free again.
    assert room.disconnect(ALICE, "quit") == []
    assert room.receive(BOB, {"type": "nick", "nick": "alice"}, NOW)[0][1]["new"] == "alice"


def test_messages_after_disconnect_skip_departed(room: ChatServer, ed_bob: IdentityKey) -> None:
    room.disconnect(ALICE, "quit")
    out = room.receive(BOB, say(ed_bob), NOW)
    assert [sid for sid, _ in out] == [CAROL]


def test_refused_message_does_not_touch_other_sessions(
    room: ChatServer, rsa_alice: IdentityKey
) -> None:
    def snapshot() -> dict[int, tuple[str, str, str]]:
        return {sid: (s.nick, s.room, s.identity.fingerprint) for sid, s in room.sessions.items()}

    before = snapshot()
    out = room.receive(ALICE, say(rsa_alice, target="#other"), NOW)
    assert [sid for sid, _ in out] == [ALICE]
    assert snapshot() == before
    assert room.last_counter == {}


@pytest.mark.parametrize("body", ["two\nlines", "bell\x07", "esc\x1b[2J", "rtl\u202eoverride"])
def test_body_with_control_characters_is_refused(
    room: ChatServer, rsa_alice: IdentityKey, body: str
) -> None:
    out = room.receive(ALICE, say(rsa_alice, body=body), NOW)
    assert out == error(ALICE, "message rejected: control characters are not allowed")
    assert room.last_counter == {}
