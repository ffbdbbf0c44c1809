"""ChatServer messages: room isolation, private messages, history, persisted counters, flood."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.frames import b64, decode_frame, encode_frame
from tlschat.chat.lines import Line
from tlschat.chat.server.events import ChatServer
from tlschat.chat.server.messages import HOLD_LIMIT
from tlschat.chat.server.model import PLAIN_PRIVATE_REJECTION
from tlschat.protocol.identity import IdentityKey
from tlschat.store import SQLiteStore, StoredMessage

from .helpers import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    NOW,
    NOW_MS,
    OTHER_NETWORK,
    Frames,
    client_on,
    command,
    hello,
    make_server,
    rejected,
    relayed,
    say,
    sent,
    throttled,
)


def feed(client: ChatClient, session_id: int, out: Frames, now: float = NOW) -> list[Line]:
    """Hand ``client`` the frames addressed to ``session_id``, through the wire encoding."""
    lines: list[Line] = []
    for target, frame in out:
        if target == session_id:
            lines += client.handle(decode_frame(encode_frame(frame)), now)
    return lines


# --- rooms -----------------------------------------------------------------------------------


def test_room_message_reaches_only_that_room(room: ChatServer, ed_alice: IdentityKey) -> None:
    command(room, ALICE, "join", "#rust")
    command(room, BOB, "join", "#rust")
    frame = say(ed_alice, target="#rust", body="borrow checker")
    assert room.receive(ALICE, frame, NOW) == [
        (BOB, relayed(frame, "alice", ed_alice)),
        sent(ALICE, "#rust", 1),
    ]
    # And a #general message still reaches all of #general.
    general = say(ed_alice, counter=2)
    out = room.receive(ALICE, general, NOW)
    assert [sid for sid, _ in out] == [BOB, CAROL, ALICE]
    assert out[-1] == sent(ALICE, "#general", 2)


def test_say_to_a_room_you_are_not_in_is_refused(room: ChatServer, ed_carol: IdentityKey) -> None:
    command(room, ALICE, "join", "#rust")
    assert room.receive(CAROL, say(ed_carol, target="#rust"), NOW) == rejected(
        CAROL, "message rejected: you are not in #rust", 1
    )


def test_other_sessions_of_the_sender_hear_its_room_messages(
    room: ChatServer, ed_alice: IdentityKey
) -> None:
    hello(room, 10, ed_alice, "alice")
    out = room.receive(ALICE, say(ed_alice), NOW)
    assert [sid for sid, _ in out] == [BOB, CAROL, 10, ALICE]
    assert out[-1] == sent(ALICE, "#general", 1)


# --- private messages ------------------------------------------------------------------------
# Private messages are end-to-end encrypted: the server's part in them is tested with encrypted
# ones (test_server_e2e_lines.py, test_server_e2e_private.py). A plain one is refused.


@pytest.mark.parametrize("online", [True, False])
def test_a_plain_private_message_is_refused_and_nothing_is_relayed_or_stored(
    room: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey, online: bool
) -> None:
    hello(room, 10, ed_bob, "bob")
    if not online:
        room.disconnect(BOB, "quit")
        room.disconnect(10, "quit")
    target = "@" + ed_bob.fingerprint
    assert room.receive(ALICE, say(ed_alice, target=target, body="psst"), NOW) == rejected(
        ALICE, PLAIN_PRIVATE_REJECTION, 1
    )
    assert room.store.recent_messages("#general", 10) == []
    assert room.store.recent_messages(target, 10) == []
    # Nor counted: the counter is still free for a room line.
    assert room.store.last_counter(ed_alice.fingerprint) == -1
    assert room.receive(ALICE, say(ed_alice), NOW)[-1] == sent(ALICE, "#general", 1)


def test_a_plain_private_message_is_refused_for_good(
    room: ChatServer, ed_alice: IdentityKey, ed_dave: IdentityKey
) -> None:
    frame = say(ed_alice, counter=3, target="@" + ed_dave.fingerprint, body="psst")
    refusal = rejected(ALICE, PLAIN_PRIVATE_REJECTION, 3)
    assert room.receive(ALICE, frame, NOW) == refusal
    # A copy gets the same refusal, whatever changed since, and from another session too.
    hello(room, DAVE, ed_dave, "dave")
    hello(room, 10, ed_alice, "alice")
    assert room.receive(ALICE, frame, NOW + 1) == refusal
    assert room.receive(10, frame, NOW + 1) == rejected(10, PLAIN_PRIVATE_REJECTION, 3)
    assert [sid for sid, _ in room.receive(ALICE, say(ed_alice, counter=4), NOW + 1)] == [
        BOB,
        CAROL,
        DAVE,
        10,
        ALICE,
    ]


@pytest.mark.parametrize(
    ("change", "degraded"),
    [
        ({"target": "@bob"}, False),
        ({"network": OTHER_NETWORK}, False),
        ({"sig": b64(bytes(64))}, False),
        ({"body": " "}, False),
        ({"ts": NOW_MS + 10**9}, False),
        ({}, True),
    ],
    ids=["malformed target", "other network", "bad signature", "empty", "stale", "degraded"],
)
def test_a_plain_private_message_is_refused_before_any_other_check(
    room: ChatServer,
    ed_alice: IdentityKey,
    ed_bob: IdentityKey,
    change: dict[str, Any],
    degraded: bool,
) -> None:
    frame = say(ed_alice, counter=5, target="@" + ed_bob.fingerprint) | change
    room.set_degraded(degraded)
    assert room.receive(ALICE, frame, NOW) == rejected(ALICE, PLAIN_PRIVATE_REJECTION, 5)


def test_a_plain_private_message_naming_another_sender_is_refused_the_same_way(
    room: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    frame = say(ed_alice, counter=5, target="@" + ed_bob.fingerprint)
    assert room.receive(BOB, frame, NOW) == rejected(BOB, PLAIN_PRIVATE_REJECTION, 5)


# --- acknowledgements ------------------------------------------------------------------------


def test_ack_goes_only_to_the_sending_session(
    room: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    hello(room, 10, ed_alice, "alice")
    hello(room, 11, ed_bob, "bob")
    # Alice's other session hears her room message as a message, not as an acknowledgement.
    first = say(ed_alice, counter=1, body="from the desktop")
    message = relayed(first, "alice", ed_alice)
    assert room.receive(ALICE, first, NOW) == [
        (BOB, message),
        (CAROL, message),
        (10, message),
        (11, message),
        sent(ALICE, "#general", 1),
    ]
    # The same key from the other session: that session is the one acknowledged.
    second = say(ed_alice, counter=2, body="from the laptop")
    message = relayed(second, "alice", ed_alice)
    assert room.receive(10, second, NOW) == [
        (ALICE, message),
        (BOB, message),
        (CAROL, message),
        (11, message),
        sent(10, "#general", 2),
    ]


def test_ack_names_the_target_and_counter_of_the_message(
    room: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    command(room, ALICE, "join", "#rust")
    command(room, BOB, "join", "#rust")
    rust = say(ed_alice, counter=7, target="#rust", body="in rust")
    assert room.receive(ALICE, rust, NOW) == [
        (BOB, relayed(rust, "alice", ed_alice)),
        sent(ALICE, "#rust", 7),
    ]
    # Counters may skip: the ack names the message's own counter.
    general = say(ed_alice, counter=1_000, body="in general")
    message = relayed(general, "alice", ed_alice)
    assert room.receive(ALICE, general, NOW) == [
        (BOB, message),
        (CAROL, message),
        sent(ALICE, "#general", 1_000),
    ]


def test_replayed_message_gets_an_error_with_its_counter_and_no_ack(
    room: ChatServer, ed_alice: IdentityKey
) -> None:
    hello(room, 10, ed_alice, "alice")
    frame = say(ed_alice, counter=5)
    assert room.receive(ALICE, frame, NOW)[-1] == sent(ALICE, "#general", 5)
    replay = "message rejected: replayed or out-of-order counter"
    # Sent again by the same session or by another session of the key: only that session hears
    # of it, acknowledged again, and nothing is relayed or stored. (Private messages:
    # test_server_e2e_private.py.)
    for session_id in (ALICE, 10):
        assert room.receive(session_id, frame, NOW) == [sent(session_id, "#general", 5)]
    # Another message under a used counter is a replay: an error with its counter.
    for session_id in (ALICE, 10):
        altered = say(ed_alice, counter=5, body="altered")
        assert room.receive(session_id, altered, NOW) == rejected(session_id, replay, 5)
    assert len(room.store.recent_messages("#general", 10)) == 1
    assert room.store.last_counter(ed_alice.fingerprint) == 5


# --- history ---------------------------------------------------------------------------------


def test_room_message_is_stored(room: ChatServer, ed_alice: IdentityKey) -> None:
    frame = say(ed_alice, counter=7, body="for the record")
    room.receive(ALICE, frame, NOW)
    [stored] = room.store.recent_messages("#general", 10)
    assert stored == StoredMessage(
        "#general",
        ed_alice.fingerprint,
        "alice",
        ed_alice.spki_der,
        7,
        NOW_MS,
        "for the record",
        stored.signature,
    )
    assert relayed(frame, "alice", ed_alice)["sig"] == b64(stored.signature)


class FailingStore(SQLiteStore):
    def append_message(self, message: StoredMessage) -> None:
        raise OSError("disk full")


def test_room_message_is_stored_before_it_is_relayed(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    server = make_server(FailingStore(":memory:"))
    hello(server, ALICE, ed_alice, "alice")
    hello(server, BOB, ed_bob, "bob")
    # If storing fails nothing is handed back to relay.
    with pytest.raises(OSError, match="disk full"):
        server.receive(ALICE, say(ed_alice), NOW)


def test_history_is_sent_on_join_oldest_first(
    room: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey, ed_dave: IdentityKey
) -> None:
    frames = [say(ed_alice, counter=1, body="one"), say(ed_bob, counter=1, body="two")]
    room.receive(ALICE, frames[0], NOW)
    room.receive(BOB, frames[1], NOW)
    out = hello(room, DAVE, ed_dave, "dave")
    assert [(sid, frame["type"]) for sid, frame in out] == [
        (DAVE, "welcome"),
        (DAVE, "joined"),
        (DAVE, "history"),
        (ALICE, "join"),
        (BOB, "join"),
        (CAROL, "join"),
    ]
    assert out[2] == (
        DAVE,
        {
            "type": "history",
            "room": "#general",
            "messages": [
                relayed(frames[0], "alice", ed_alice),
                relayed(frames[1], "bob", ed_bob),
            ],
        },
    )


def test_history_keeps_the_nick_of_the_time(
    room: ChatServer, ed_alice: IdentityKey, ed_dave: IdentityKey
) -> None:
    room.receive(ALICE, say(ed_alice), NOW)
    command(room, ALICE, "nick", "alicia")
    out = hello(room, DAVE, ed_dave, "dave")
    assert out[2][1]["messages"][0]["from"] == "alice"


def test_history_limit(ed_alice: IdentityKey, ed_dave: IdentityKey) -> None:
    server = make_server(history_limit=2)
    hello(server, ALICE, ed_alice, "alice")
    frames = [say(ed_alice, counter=n, body=f"message {n}") for n in (1, 2, 3)]
    for frame in frames:
        server.receive(ALICE, frame, NOW)
    out = hello(server, DAVE, ed_dave, "dave")
    assert (
        out[2]
        == (
            DAVE,
            {
                "type": "history",
                "room": "#general",
                "older": True,  # the first line is stored: scrollback reaches it
                "messages": [relayed(frame, "alice", ed_alice) for frame in frames[1:]],
            },
        )
    )


def test_history_per_room_on_join_command(
    room: ChatServer, ed_alice: IdentityKey, ed_carol: IdentityKey
) -> None:
    command(room, ALICE, "join", "#rust")
    rust = say(ed_alice, counter=1, target="#rust", body="in rust")
    room.receive(ALICE, rust, NOW)
    room.receive(ALICE, say(ed_alice, counter=2, body="in general"), NOW)
    out = command(room, CAROL, "join", "#rust")
    assert out[1] == (
        CAROL,
        {"type": "history", "room": "#rust", "messages": [relayed(rust, "alice", ed_alice)]},
    )


def test_no_history_frame_for_an_empty_room(room: ChatServer) -> None:
    assert [frame["type"] for _, frame in command(room, BOB, "join", "#new")] == ["joined"]


def test_history_limit_zero_sends_no_history(ed_alice: IdentityKey, ed_dave: IdentityKey) -> None:
    server = make_server(history_limit=0)
    hello(server, ALICE, ed_alice, "alice")
    server.receive(ALICE, say(ed_alice), NOW)
    # Messages are still stored; they are just not replayed.
    assert len(server.store.recent_messages("#general", 10)) == 1
    out = hello(server, DAVE, ed_dave, "dave")
    assert [frame["type"] for _, frame in out] == ["welcome", "joined", "join"]


def test_history_survives_a_restart(
    tmp_path: Path, ed_alice: IdentityKey, ed_dave: IdentityKey
) -> None:
    store = SQLiteStore(tmp_path / "chat.db")
    server = make_server(store)
    hello(server, ALICE, ed_alice, "alice")
    frame = say(ed_alice, body="still here")
    server.receive(ALICE, frame, NOW)
    store.close()
    restarted = make_server(SQLiteStore(tmp_path / "chat.db"))
    out = hello(restarted, DAVE, ed_dave, "dave")
    assert out[2][1]["messages"] == [relayed(frame, "alice", ed_alice)]


def test_history_verifies_in_a_client_even_after_later_messages(
    room: ChatServer, ed_alice: IdentityKey, ed_dave: IdentityKey
) -> None:
    command(room, ALICE, "join", "#rust")
    old = say(ed_alice, counter=5, target="#rust", body="old news")
    room.receive(ALICE, old, NOW)

    dave = client_on(ed_dave, "dave")
    feed(dave, DAVE, hello(room, DAVE, ed_dave, "dave"))  # nothing said in #general yet
    assert dave.rooms == ["#general"]
    # A later live message from alice raises the counter dave has seen from her.
    live = feed(dave, DAVE, room.receive(ALICE, say(ed_alice, counter=10, body="new"), NOW))
    assert [(line.text, line.verified) for line in live] == [("new", True)]

    lines = feed(dave, DAVE, command(room, DAVE, "join", "#rust"))
    assert lines[-1] == Line(
        "message",
        NOW_MS / 1000,
        "old news",
        "alice",
        ed_alice.fingerprint,
        "#rust",
        verified=True,
        key_changed=False,
        history=True,
        id=f"{ed_alice.fingerprint}:5",
    )
    assert lines[-2] == Line("notice", NOW, "Last 1 messages of #rust:", room="#rust")


# --- counters survive a restart --------------------------------------------------------------


def test_replay_refused_by_a_restarted_server(
    tmp_path: Path, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    store = SQLiteStore(tmp_path / "chat.db")
    server = make_server(store)
    hello(server, ALICE, ed_alice, "alice")
    hello(server, BOB, ed_bob, "bob")
    frame = say(ed_alice, counter=42)
    assert server.receive(ALICE, frame, NOW) == [
        (BOB, relayed(frame, "alice", ed_alice)),
        sent(ALICE, "#general", 42),
    ]
    store.close()

    restarted = make_server(SQLiteStore(tmp_path / "chat.db"))
    hello(restarted, ALICE, ed_alice, "alice")
    hello(restarted, BOB, ed_bob, "bob")
    # The room line is in the stored history: acknowledged again; another line under its counter
    # is a replay. (A private message, kept in inboxes, not history: test_server_e2e_private.py.)
    assert restarted.receive(ALICE, frame, NOW) == [sent(ALICE, "#general", 42)]
    assert restarted.receive(ALICE, say(ed_alice, counter=42, body="other"), NOW) == rejected(
        ALICE, "message rejected: replayed or out-of-order counter", 42
    )
    fresh = say(ed_alice, counter=43)
    assert restarted.receive(ALICE, fresh, NOW) == [
        (BOB, relayed(fresh, "alice", ed_alice)),
        sent(ALICE, "#general", 43),
    ]


# --- flood control ---------------------------------------------------------------------------


@pytest.fixture
def flood(ed_alice: IdentityKey, ed_bob: IdentityKey) -> ChatServer:
    server = make_server(rate_per_second=1, burst=3)
    hello(server, ALICE, ed_alice, "alice")
    hello(server, BOB, ed_bob, "bob")
    return server


def _send(server: ChatServer, key: IdentityKey, counter: int, now: float) -> Frames:
    ts = NOW_MS + int((now - NOW) * 1000)
    return server.receive(ALICE, say(key, counter=counter, ts=ts, body=f"#{counter}"), now)


def test_flood_control_burst_then_rate(flood: ChatServer, ed_alice: IdentityKey) -> None:
    for counter in (1, 2, 3):
        out = _send(flood, ed_alice, counter, NOW)
        assert [sid for sid, _ in out] == [BOB, ALICE]
        assert out[-1] == sent(ALICE, "#general", counter)
    assert _send(flood, ed_alice, 4, NOW) == throttled(ALICE, 1.0, 4)
    # Nothing relayed, stored or counted for the refused message.
    assert len(flood.store.recent_messages("#general", 10)) == 3
    assert flood.store.last_counter(ed_alice.fingerprint) == 3
    # A second later one token is back: one more message, not two.
    out = _send(flood, ed_alice, 4, NOW + 1)
    assert [sid for sid, _ in out] == [BOB, ALICE]
    assert out[-1] == sent(ALICE, "#general", 4)
    assert _send(flood, ed_alice, 5, NOW + 1) == throttled(ALICE, 1.0, 5)


def test_after_flood_control_later_messages_wait_for_the_refused_one(
    flood: ChatServer, ed_alice: IdentityKey
) -> None:
    for counter in (1, 2, 3):
        _send(flood, ed_alice, counter, NOW)
    assert _send(flood, ed_alice, 4, NOW) == throttled(ALICE, 1.0, 4)
    # Two seconds later there are tokens, but 5 was typed after 4: held back until 4 comes.
    later = _send(flood, ed_alice, 5, NOW + 2)
    [(_, refusal)] = later
    assert (refusal["counter"], refusal["retry_after"]) == (5, 0.0)
    assert _send(flood, ed_alice, 4, NOW + 2)[-1] == sent(ALICE, "#general", 4)
    assert _send(flood, ed_alice, 5, NOW + 2)[-1] == sent(ALICE, "#general", 5)
    bodies = [m.body for m in flood.store.recent_messages("#general", 10)]
    assert bodies == ["#1", "#2", "#3", "#4", "#5"]


def test_the_hold_lapses_when_the_refused_message_never_comes_again(
    flood: ChatServer, ed_alice: IdentityKey
) -> None:
    for counter in (1, 2, 3):
        _send(flood, ed_alice, counter, NOW)
    _send(flood, ed_alice, 4, NOW)
    assert _send(flood, ed_alice, 5, NOW + 30)[0][1]["counter"] == 5  # held back
    assert _send(flood, ed_alice, 6, NOW + HOLD_LIMIT + 1)[-1] == sent(ALICE, "#general", 6)


def test_flood_control_reports_the_wait(flood: ChatServer, ed_alice: IdentityKey) -> None:
    for counter in (1, 2, 3):
        _send(flood, ed_alice, counter, NOW)
    assert _send(flood, ed_alice, 4, NOW + 0.5) == throttled(ALICE, 0.5, 4)


def test_flood_control_is_per_key(
    flood: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    for counter in (1, 2, 3):
        _send(flood, ed_alice, counter, NOW)
    out = flood.receive(BOB, say(ed_bob), NOW)
    assert [sid for sid, _ in out] == [ALICE, BOB]
    assert out[-1] == sent(BOB, "#general", 1)


def test_a_plain_private_message_spends_no_token_and_waits_for_no_hold(
    flood: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    # (Encrypted private messages are held to flood control: test_server_e2e_private.py.)
    target = "@" + ed_bob.fingerprint
    for counter in (1, 2, 3, 4):
        assert flood.receive(ALICE, say(ed_alice, counter=counter, target=target), NOW) == (
            rejected(ALICE, PLAIN_PRIVATE_REJECTION, counter)
        )
    for counter in (5, 6, 7):
        assert _send(flood, ed_alice, counter, NOW)[-1] == sent(ALICE, "#general", counter)
    assert _send(flood, ed_alice, 8, NOW) == throttled(ALICE, 1.0, 8)
    # Held behind 8, a plain private message is still refused for what it is.
    assert flood.receive(ALICE, say(ed_alice, counter=9, target=target), NOW + 2) == rejected(
        ALICE, PLAIN_PRIVATE_REJECTION, 9
    )
    assert _send(flood, ed_alice, 8, NOW + 2)[-1] == sent(ALICE, "#general", 8)


def test_refused_messages_do_not_use_up_tokens(flood: ChatServer, ed_alice: IdentityKey) -> None:
    for _ in range(5):
        bad = say(ed_alice, counter=1, target="#nowhere")
        assert flood.receive(ALICE, bad, NOW) == rejected(
            ALICE, "message rejected: you are not in #nowhere", 1
        )
    for counter in (1, 2, 3):
        out = _send(flood, ed_alice, counter, NOW)
        assert [sid for sid, _ in out] == [BOB, ALICE]
        assert out[-1] == sent(ALICE, "#general", counter)


# --- size ------------------------------------------------------------------------------------


def test_max_body_bytes(ed_alice: IdentityKey, ed_bob: IdentityKey) -> None:
    server = make_server(max_body_bytes=10)
    hello(server, ALICE, ed_alice, "alice")
    hello(server, BOB, ed_bob, "bob")
    fits = say(ed_alice, counter=1, body="x" * 10)
    assert server.receive(ALICE, fits, NOW) == [
        (BOB, relayed(fits, "alice", ed_alice)),
        sent(ALICE, "#general", 1),
    ]
    for counter, body in ((2, "x" * 11), (3, "é" * 6)):
        assert server.receive(ALICE, say(ed_alice, counter=counter, body=body), NOW) == rejected(
            ALICE, "message rejected: longer than 10 bytes", counter
        )
