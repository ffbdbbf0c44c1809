"""What the chat client keeps for the full-screen UI: each room's members and the latency."""

from __future__ import annotations

from tlschat.chat.client.base import Member
from tlschat.chat.client.receiving import ChatClient

from .scene import ALICE, BOB, CAROL, member


def test_members_follow_joins_leaves_nick_changes_and_parts() -> None:
    chat = ChatClient(ALICE, "alice")
    chat.handle({"type": "welcome", "server": "t", "nick": "alice"}, 0)
    chat.handle(
        {
            "type": "joined",
            "room": "#general",
            "members": [member("alice", ALICE), member("bob", BOB, "lunch")],
        },
        0,
    )
    assert chat.members["#general"] == {
        "alice": Member("alice", ALICE.fingerprint),
        "bob": Member("bob", BOB.fingerprint, "lunch"),
    }
    chat.handle({"type": "join", "room": "#general", **member("Carol", CAROL)}, 0)
    assert chat.members["#general"]["carol"] == Member("Carol", CAROL.fingerprint)
    chat.handle({"type": "nick", "old": "Carol", "new": "caz", "fingerprint": CAROL.fingerprint}, 0)
    assert "carol" not in chat.members["#general"]
    assert chat.members["#general"]["caz"] == Member("caz", CAROL.fingerprint)
    chat.handle({"type": "leave", "room": "#general", **member("bob", BOB), "reason": "quit"}, 0)
    assert set(chat.members["#general"]) == {"alice", "caz"}
    # Presence in a room we are not in changes nothing.
    chat.handle({"type": "join", "room": "#other", **member("bob", BOB)}, 0)
    assert "#other" not in chat.members
    chat.handle({"type": "parted", "room": "#general"}, 0)
    assert chat.members == {}


def test_members_are_forgotten_before_a_reconnect() -> None:
    chat = ChatClient(ALICE, "alice")
    chat.handle({"type": "welcome", "server": "t", "nick": "alice"}, 0)
    chat.handle({"type": "joined", "room": "#general", "members": [member("alice", ALICE)]}, 0)
    chat.prepare_reconnect()
    assert chat.members == {}


def test_latency_is_the_round_trip_of_our_ping() -> None:
    chat = ChatClient(ALICE, "alice")
    assert chat.latency is None
    chat.handle({"type": "pong"}, 5.0)  # a pong we did not ask for measures nothing
    assert chat.latency is None
    chat.ping(10.0)
    assert chat.take_outbox() == [{"type": "ping"}]
    chat.handle({"type": "pong"}, 10.025)
    assert chat.latency is not None and abs(chat.latency - 0.025) < 1e-9
    chat.handle({"type": "pong"}, 11.0)
    assert chat.latency is not None and abs(chat.latency - 0.025) < 1e-9
