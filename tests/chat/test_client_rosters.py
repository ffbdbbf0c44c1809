"""The chat client's member lists: ``joined`` (lazy for a large room), ``members`` answers,
``presence`` batches, and the watch the full-screen client keeps on the room it shows."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.lines import Line, PresenceChange
from tlschat.protocol.identity import IdentityKey

from .helpers import NOW, Net, client_on, hello, make_server, say

ROOM = "#general"


def member(nick: str, away: str = "") -> dict[str, str]:
    return {"nick": nick, "fingerprint": f"SHA256:{nick}", "away": away}


def change(kind: str, nick: str, **extra: str) -> dict[str, Any]:
    return {"type": kind, **member(nick), **extra}


def batch(*changes: object, room: str = ROOM) -> dict[str, Any]:
    return {"type": "presence", "room": room, "changes": list(changes)}


def client_in(key: IdentityKey, joined: dict[str, Any]) -> ChatClient:
    client = client_on(key, "bob")
    client.handle({"type": "welcome", "server": "s", "nick": "bob"}, NOW)
    client.handle(joined, NOW)
    client.take_outbox()
    return client


@pytest.fixture
def small(ed_bob: IdentityKey) -> ChatClient:
    joined = {"type": "joined", "room": ROOM, "topic": "", "member_count": 2}
    return client_in(ed_bob, {**joined, "members": [member("bob"), member("alice")]})


@pytest.fixture
def large(ed_bob: IdentityKey) -> ChatClient:
    joined = {"type": "joined", "room": ROOM, "topic": "", "member_count": 1500}
    return client_in(ed_bob, {**joined, "members": [], "lazy": True})


def nicks(client: ChatClient, room: str = ROOM) -> set[str]:
    return {m.nick for m in client.members.get(room, {}).values()}


# --- joined and members -----------------------------------------------------------------------


def test_a_large_rooms_joined_gives_its_count_and_no_list(large: ChatClient) -> None:
    assert large.lazy_rooms == {ROOM}
    assert large.member_count(ROOM) == 1500 and nicks(large) == set()


def test_a_large_room_is_said_to_be_one(ed_bob: IdentityKey) -> None:
    client = client_on(ed_bob, "bob")
    client.handle({"type": "welcome", "server": "s", "nick": "bob"}, NOW)
    joined = {"type": "joined", "room": "#big", "member_count": 1500, "members": [], "lazy": True}
    [line] = client.handle(joined, NOW)
    assert line.text == "You are bob in #big, a large room of 1500 members (/names lists them)"


def test_a_members_answer_replaces_the_list(small: ChatClient) -> None:
    answer = {"type": "members", "room": ROOM, "member_count": 3, "members": []}
    answer["members"] = [member("bob"), member("carol"), member("dave")]
    [line] = small.handle(answer, NOW)
    assert nicks(small) == {"bob", "carol", "dave"}
    # Not asked for by the client itself: the user hears of it.
    assert line == Line("notice", NOW, "#general has 3 members; /names lists them")


def test_a_members_answer_for_a_room_you_are_not_in_is_dropped(small: ChatClient) -> None:
    [line] = small.handle({"type": "members", "room": "#other", "members": [member("eve")]}, NOW)
    assert line.kind == "error" and "#other, a room you are not in" in line.text
    assert "#other" not in small.members


def test_members_that_are_not_members_are_skipped(small: ChatClient) -> None:
    entries: list[Any] = [member("ok"), "x", {"nick": 5}, {"nick": "n" * 65, "fingerprint": "f"}]
    entries.append({"nick": "\ud800", "fingerprint": "SHA256:s"})
    small.handle({"type": "members", "room": ROOM, "members": entries}, NOW)
    assert nicks(small) == {"ok"}


def test_a_rejoin_replaces_the_list_rather_than_adding_to_it(small: ChatClient) -> None:
    small.prepare_reconnect()
    small.handle({"type": "welcome", "server": "s", "nick": "bob"}, NOW)
    small.handle({"type": "joined", "room": ROOM, "members": [member("bob"), member("zoe")]}, NOW)
    assert nicks(small) == {"bob", "zoe"}


# --- presence -------------------------------------------------------------------------------


def test_a_small_batch_shows_each_change(small: ChatClient) -> None:
    lines = small.handle(
        batch(change("join", "carol"), change("leave", "alice", reason="quit")), NOW
    )
    assert [line.text for line in lines] == ["carol joined #general", "alice left #general (quit)"]
    assert [line.kind for line in lines] == ["join", "leave"]
    assert nicks(small) == {"bob", "carol"}


def test_a_big_batch_is_one_summary_line(small: ChatClient) -> None:
    joins = [change("join", f"n{index}") for index in range(27)]
    leaves = [change("leave", "alice", reason="quit")]
    [line] = small.handle(batch(*joins, *leaves), NOW)
    assert (line.kind, line.room) == ("presence", ROOM)
    assert line.text == "27 joined and 1 left #general"
    assert line.render(ROOM).endswith("*** 27 joined and 1 left #general")
    assert len(line.changes) == 28
    assert line.changes[-1] == PresenceChange("leave", "alice", "SHA256:alice", "quit")
    assert nicks(small) == {"bob"} | {f"n{index}" for index in range(27)}
    event = json.loads(json.dumps(line.to_json()))
    assert event["changes"][0] == {"kind": "join", "nick": "n0", "fingerprint": "SHA256:n0"}
    assert event["changes"][-1]["reason"] == "quit"


def test_only_leaves_or_only_joins_say_so(small: ChatClient) -> None:
    [line] = small.handle(batch(*(change("join", f"j{n}") for n in range(4))), NOW)
    assert line.text == "4 joined #general"
    [line] = small.handle(batch(*(change("leave", f"j{n}") for n in range(4))), NOW)
    assert line.text == "4 left #general"


def test_a_join_of_a_key_listed_already_changes_nothing(small: ChatClient) -> None:
    assert small.handle(batch(change("join", "alice")), NOW) == []
    assert small.handle(change("join", "alice", room=ROOM), NOW) == []
    assert nicks(small) == {"bob", "alice"}


def test_a_batch_naming_our_own_key_does_not_change_us(small: ChatClient) -> None:
    own = {"type": "leave", "nick": "bob", "fingerprint": small.identity.fingerprint}
    assert small.handle(batch(own), NOW) == []
    assert "bob" in nicks(small)


def test_a_key_change_in_a_big_batch_stays_loud(small: ChatClient) -> None:
    impostor = {**change("join", "alice"), "fingerprint": "SHA256:impostor"}
    lines = small.handle(batch(impostor, *(change("join", f"n{n}") for n in range(5))), NOW)
    assert [line.kind for line in lines] == ["presence", "join"]
    assert "WARNING: not the key alice had before" in lines[1].text


def test_malformed_changes_are_counted_once(small: ChatClient) -> None:
    lines = small.handle(
        batch(change("join", "carol"), {"type": "wave"}, "x", {"type": "join"}), NOW
    )
    assert [line.text for line in lines] == [
        "carol joined #general",
        "ignored 3 malformed joins or leaves of #general",
    ]


def test_a_batch_for_a_room_you_are_not_in_is_dropped(small: ChatClient) -> None:
    [line] = small.handle(batch(change("join", "eve"), room="#other"), NOW)
    assert line.kind == "error" and "#other, a room you are not in" in line.text


def test_presence_batches_from_a_real_server_keep_the_list_right(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    keys = [IdentityKey.generate("ed25519") for _ in range(12)]
    server = make_server(presence_rate=1.0, presence_burst=1)
    net = Net(server)
    net.add(1, client_on(ed_alice, "alice"))
    hello(server, 2, ed_bob, "bob")  # the room's budget is spent: later arrivals wait
    for index, key in enumerate(keys):
        hello(server, 10 + index, key, f"n{index}")
    [line] = net.deliver(server.tick(NOW + 1.0))[1]
    assert line.text == "13 joined #general"
    assert nicks(net.clients[1]) == {"alice", "bob"} | {f"n{n}" for n in range(12)}


# --- large rooms ----------------------------------------------------------------------------


def test_a_lazy_list_is_what_was_seen_speaking_minus_leaves(large: ChatClient) -> None:
    large.handle(change("join", "talker", room=ROOM), NOW)  # before its first line
    assert nicks(large) == {"talker"} and large.member_count(ROOM) == 1500
    large.handle(change("leave", "talker", room=ROOM), NOW)
    assert nicks(large) == set() and large.member_count(ROOM) == 1499


def test_a_watched_large_room_counts_arrivals(large: ChatClient) -> None:
    [frame] = (large.watch_only(ROOM, NOW), large.take_outbox())[1]
    assert frame == {"type": "command", "name": "watch", "args": ROOM}
    answer = {"type": "members", "room": ROOM, "member_count": 3}
    assert large.handle({**answer, "members": [member(n) for n in ("a", "b", "bob")]}, NOW) == []
    assert large.member_count(ROOM) == 3
    large.handle(change("join", "c", room=ROOM), NOW)
    assert large.member_count(ROOM) == 4
    large.handle(batch(*(change("join", f"x{n}") for n in range(5))), NOW)
    assert large.member_count(ROOM) == 9 and len(nicks(large)) == 9


def test_watch_only_watches_one_large_room_and_lets_go_of_the_others(large: ChatClient) -> None:
    assert large.watch_only("", NOW) == [] and large.take_outbox() == []
    large.watch_only(ROOM, NOW)
    assert large.take_outbox() == [{"type": "command", "name": "watch", "args": ROOM}]
    large.watch_only(ROOM, NOW)  # watched already: nothing goes out
    assert large.take_outbox() == []
    large.watch_only("#small", NOW)  # not a large room: nothing to watch there
    assert large.take_outbox() == [{"type": "command", "name": "unwatch", "args": ROOM}]
    assert large.watching == set()
    # The answer to an unwatch this client sent by itself is nobody's news, once.
    text = "no longer watching who comes and goes in #general"
    assert large.handle({"type": "notice", "text": text}, NOW) == []
    assert large.handle({"type": "notice", "text": text}, NOW) == [Line("notice", NOW, text)]


def test_an_unwatch_refused_is_quiet_too(large: ChatClient) -> None:
    large.watch_only(ROOM, NOW)
    large.watch_only("", NOW)
    assert large.handle({"type": "error", "text": "you do not watch #general"}, NOW) == []


def test_a_lost_connection_forgets_watches_and_unsent_commands(large: ChatClient) -> None:
    large.queue.set_work_pace(0.001, 1)  # the work budget spent: the watch waits in the queue
    large.queue.may_send_command("watch", NOW)
    large.watch_only(ROOM, NOW)
    assert large.take_outbox() == [] and large.outstanding == 1
    large.prepare_reconnect()
    assert large.watching == set() and large.lazy_rooms == set() and large.outstanding == 0


def test_parting_a_room_forgets_its_list_and_watch(large: ChatClient) -> None:
    large.watch_only(ROOM, NOW)
    large.handle({"type": "parted", "room": ROOM}, NOW)
    assert large.watching == set() and large.lazy_rooms == set() and ROOM not in large.members


def test_a_real_large_room_fetched_and_watched(ed_alice: IdentityKey) -> None:
    keys = [IdentityKey.generate("ed25519") for _ in range(9)]
    server = make_server(large_room=5, presence_burst=1000)
    for index, key in enumerate(keys[:8]):
        hello(server, 100 + index, key, f"user{index}")
    net = Net(server)
    net.add(1, client_on(ed_alice, "alice"))
    client = net.clients[1]
    assert client.lazy_rooms == {ROOM} and client.member_count(ROOM) == 9
    # A speaker is known from its delayed join, before its line.
    out = server.receive(100, say(keys[0], counter=1, body="hi"), NOW)
    shown = net.deliver(out)[1]
    assert [line.kind for line in shown] == ["join", "message"] and nicks(client) == {"user0"}
    client.watch_only(ROOM, NOW)
    assert net.flush(1) == {1: []}  # the list fills, silently
    assert len(nicks(client)) == 9
    shown = net.deliver(hello(server, 200, keys[8], "late"))[1]
    assert [line.text for line in shown] == ["late joined #general"]
    assert client.member_count(ROOM) == 10
    client.watch_only("", NOW)
    assert net.flush(1) == {1: []}  # the unwatch's notice, for nobody
    assert client.watching == set()
