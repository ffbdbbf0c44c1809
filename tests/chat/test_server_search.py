"""/search at the server (docs/PROTOCOL.md, section 22): the plain history of the caller's own
rooms, newest first, as stored 'message' frames; never a room the caller is not in, never an
end-to-end encrypted line; bounded."""

from __future__ import annotations

from typing import Any

from tlschat.chat.search_query import MAX_RESULTS
from tlschat.chat.server.events import ChatServer
from tlschat.chat.server.search import search_frames
from tlschat.protocol.identity import IdentityKey

from .helpers import ALICE, BOB, CAROL, NOW, NOW_MS, command, error, relayed, say
from .room_roles_helpers import TEAM, team
from .test_cluster import Log
from .test_cluster import hello as cluster_hello


def found(server: ChatServer, session_id: int, args: str) -> list[dict[str, Any]]:
    out = command(server, session_id, "search", args)
    assert len(out) == 1 and out[0][0] == session_id and out[0][1]["type"] == "search"
    messages: list[dict[str, Any]] = out[0][1]["messages"]
    return messages


def test_finds_plain_lines_of_the_callers_rooms_newest_first(
    room: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    first = say(ed_alice, 1, NOW_MS, "the deploy failed")
    second = say(ed_bob, 1, NOW_MS + 1, "deploy is green")
    room.receive(ALICE, first, NOW)
    room.receive(BOB, second, NOW)
    room.receive(ALICE, say(ed_alice, 2, NOW_MS + 2, "lunch"), NOW)
    out = command(room, CAROL, "search", "DEPLOY")
    want = [relayed(second, "bob", ed_bob), relayed(first, "alice", ed_alice)]
    assert out == [(CAROL, {"type": "search", "query": "DEPLOY", "messages": want})]
    assert found(room, CAROL, "deploy #general") == want
    assert found(room, CAROL, "nothing-like-it") == []


def test_a_room_the_caller_is_not_in_is_never_searched(
    room: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    command(room, ALICE, "join", "#ops")
    room.receive(ALICE, say(ed_alice, 1, NOW_MS, "ops secret", "#ops"), NOW)
    assert command(room, BOB, "search", "secret #ops") == error(BOB, "you are not in #ops")
    assert found(room, BOB, "secret") == []
    assert [m["body"] for m in found(room, ALICE, "secret")] == ["ops secret"]


def test_an_invite_only_room_is_searched_by_its_members_only(
    room: ChatServer, ed_alice: IdentityKey
) -> None:
    command(room, ALICE, "join", TEAM)
    room.receive(ALICE, say(ed_alice, 1, NOW_MS, "plan said in the open", TEAM), NOW)
    team(room)  # bob joins; alice makes #team invite-only
    assert command(room, CAROL, "search", f"plan {TEAM}") == error(CAROL, f"you are not in {TEAM}")
    assert found(room, CAROL, "plan") == []
    assert command(room, CAROL, "join", TEAM)[0][1]["type"] == "error"
    assert found(room, CAROL, "plan") == []
    assert [m["body"] for m in found(room, BOB, f"plan {TEAM}")] == ["plan said in the open"]


def test_plain_lines_from_before_a_room_was_encrypted_stay_searchable(
    room: ChatServer, ed_alice: IdentityKey
) -> None:
    room.receive(ALICE, say(ed_alice, 1, NOW_MS, "before encryption"), NOW)
    command(room, ALICE, "encrypt", "#general")
    assert [m["body"] for m in found(room, BOB, "encryption")] == ["before encryption"]


def test_bounds_and_usage(room: ChatServer, ed_alice: IdentityKey) -> None:
    for n in range(1, MAX_RESULTS + 10):
        room.receive(ALICE, say(ed_alice, n, NOW_MS + n * 1000, f"spam {n}"), NOW + n)
    messages = found(room, BOB, "spam")
    assert len(messages) == MAX_RESULTS
    assert messages[0]["body"] == f"spam {MAX_RESULTS + 9}"
    too_long = "x" * 201
    assert command(room, BOB, "search", too_long) == error(BOB, "a search is 200 bytes at most")
    assert command(room, BOB, "search", "") == error(BOB, "usage: /search TEXT [#room]")
    assert found(room, BOB, '" * NEAR( OR') == []


def test_an_answer_too_big_for_one_frame_is_a_run_of_every_line_newest_first() -> None:
    items = [{"type": "message", "body": "x" * 20000, "counter": n} for n in range(10, 0, -1)]
    frames = search_frames("x", items)
    assert len(frames) > 1
    assert all(frame["query"] == "x" for frame in frames)
    counters = [m["counter"] for frame in frames for m in frame["messages"]]
    assert counters == list(range(10, 0, -1))


def test_a_cluster_server_searches_its_replica_by_substring(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    log = Log(["a", "b"])
    cluster_hello(log, "a", 1, ed_alice, "alice")
    cluster_hello(log, "b", 1, ed_bob, "bob")
    log.pump()
    line = say(ed_bob, 7, NOW_MS, "Redeploying now")
    log.servers["b"].receive(1, line, NOW)
    log.pump()
    # On alice's server, from its replica of the history: "deploy" inside "Redeploying".
    out = command(log.servers["a"], 1, "search", "DEPLOY")
    want = [relayed(line, "bob", ed_bob)]
    assert out == [(1, {"type": "search", "query": "DEPLOY", "messages": want})]
