"""The chat client and runs: replies over many frames are acted on once whole, and a run that
breaks is dropped with one error line (docs/PROTOCOL.md, "Runs")."""

from __future__ import annotations

from typing import Any

import pytest

from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.client.run_feed import RUNS, RunFeed
from tlschat.chat.frames import FrameError, decode_frame, encode_frame
from tlschat.chat.lines import Line
from tlschat.chat.runs import MAX_RUN_PARTS, split_run
from tlschat.protocol.identity import IdentityKey

from .helpers import NOW, Net, client_on, command, hello, make_server, say

AWAY = "a" * 200  # members as long as they get: fewer of them fill a frame


@pytest.fixture(scope="module")
def keys() -> list[IdentityKey]:
    return [IdentityKey.generate("ed25519") for _ in range(260)]


def wire(frame: dict[str, Any]) -> dict[str, Any]:
    return decode_frame(encode_frame(frame))


def run(head: dict[str, Any], key: str, items: list[Any], naming: tuple[str, ...]) -> list[Any]:
    frames = split_run(head, key, items, naming, continuation=RUNS[head["type"]].continuation)
    assert len(frames) > 1
    return [wire(frame) for frame in frames]


@pytest.fixture
def reader(ed_bob: IdentityKey) -> ChatClient:
    """A client in #general, as the server put it there."""
    client = client_on(ed_bob, "bob")
    client.handle({"type": "welcome", "server": "s", "nick": "bob"}, NOW)
    client.handle({"type": "joined", "room": "#general", "topic": "", "members": []}, NOW)
    return client


def members(count: int, away: str = AWAY) -> list[dict[str, str]]:
    return [
        {"nick": f"user{n}", "fingerprint": f"SHA256:fp{n}", "away": away} for n in range(count)
    ]


# --- the table ------------------------------------------------------------------------------


def test_every_reply_that_may_be_a_run_has_one_spec() -> None:
    assert sorted(RUNS) == ["history", "info", "joined", "members", "presence", "search", "whois"]
    assert RUNS["joined"].continuation == "members"
    assert {spec.naming for spec in RUNS.values()} == {("room",), ("title",), ("query",)}


def test_a_frame_that_is_no_run_passes_through() -> None:
    feed = RunFeed()
    notice = {"type": "notice", "text": "hi"}
    assert feed.feed(notice).frame is notice
    single = {"type": "info", "title": "T", "lines": ["x"]}
    assert feed.feed(single).frame is single and feed.open == ""


# --- runs acted on once whole ---------------------------------------------------------------


def test_a_member_list_over_many_frames_is_one_joined(keys: list[IdentityKey]) -> None:
    server = make_server(presence_burst=1000, work_burst=10_000)
    for index in range(250):
        hello(server, 100 + index, keys[index], f"user{index}")
        command(server, 100 + index, "away", AWAY)
    net = Net(server)
    shown = net.add(1, client_on(keys[250], "last"))[1]
    joined = [line for line in shown if line.kind == "joined"]
    assert len(joined) == 1
    client = net.clients[1]
    assert len(client.members["#general"]) == 251
    assert client.member_count("#general") == 251
    _, _, company = joined[0].text.partition(" with ")
    assert set(company.split(", ")) == {f"user{n}" for n in range(250)}
    assert not any(line.kind == "error" for line in shown), shown


def test_every_part_but_the_last_shows_nothing(reader: ChatClient) -> None:
    frames = run(
        {"type": "info", "title": "Members of #big"}, "lines", ["x" * 300] * 400, ("title",)
    )
    shown = [reader.handle(frame, NOW) for frame in frames]
    assert all(lines == [] for lines in shown[:-1])
    heading, *rows = shown[-1]
    assert heading == Line("info", NOW, "Members of #big:")
    assert len(rows) == 400


def test_a_whois_whose_rooms_outgrow_a_frame_is_one_answer(reader: ChatClient) -> None:
    rooms = [f"#room{n:04d}-" + "r" * 20 for n in range(2600)]
    head = {
        "type": "whois",
        "query": "carol",
        "found": True,
        "fingerprint": "SHA256:carol",
        "nick": "carol",
        "online": True,
        "connected_since": NOW,
        "idle": 1,
        "away": "",
        "operator": False,
    }
    lines = [
        line
        for frame in run(head, "rooms", rooms, ("query",))
        for line in reader.handle(frame, NOW)
    ]
    [listed] = [line for line in lines if line.text.startswith("  rooms:")]
    assert listed.text == "  rooms: " + ", ".join(rooms)


def test_a_joined_run_broken_by_another_frame_is_dropped(reader: ChatClient) -> None:
    frames = run(
        {"type": "joined", "room": "#big", "topic": ""}, "members", members(300), ("room",)
    )
    assert reader.handle(frames[0], NOW) == []
    lines = reader.handle({"type": "notice", "text": "in between"}, NOW)
    assert [line.kind for line in lines] == ["error", "notice"]
    assert "dropped an unfinished 'joined' reply" in lines[0].text
    assert "#big" not in reader.rooms and "#big" not in reader.members
    # The rest of the broken run continues no run: each part is refused, once.
    for frame in frames[1:]:
        [line] = reader.handle(frame, NOW)
        assert line.kind == "error" and "must start with part 0" in line.text


def test_a_part_out_of_order_drops_the_run(reader: ChatClient) -> None:
    frames = run({"type": "members", "room": "#general"}, "members", members(600), ("room",))
    assert len(frames) > 2
    reader.handle(frames[0], NOW)
    [line] = reader.handle(frames[2], NOW)
    assert line.kind == "error" and "out of order" in line.text
    assert reader.runs.open == ""
    assert reader.members["#general"] == {}


def test_a_part_naming_another_room_drops_the_run(reader: ChatClient) -> None:
    frames = run({"type": "members", "room": "#general"}, "members", members(300), ("room",))
    reader.handle(frames[0], NOW)
    [line] = reader.handle({**frames[1], "room": "#elsewhere"}, NOW)
    assert line.kind == "error" and "out of order" in line.text
    assert reader.members["#general"] == {}


def test_an_endless_run_is_dropped_at_its_bound(reader: ChatClient) -> None:
    first = {"type": "info", "title": "T", "lines": ["x"], "part": 0, "more": True}
    assert reader.handle(first, NOW) == []
    for part in range(1, MAX_RUN_PARTS):
        assert (
            reader.handle(
                {"type": "info", "title": "T", "lines": ["x"], "part": part, "more": True}, NOW
            )
            == []
        )
    [line] = reader.handle(
        {"type": "info", "title": "T", "lines": ["x"], "part": MAX_RUN_PARTS, "more": True}, NOW
    )
    assert line.kind == "error" and "dropped an unfinished 'info' reply" in line.text
    assert reader.runs.open == ""
    # The next reply is acted on as ever.
    assert reader.handle({"type": "info", "title": "U", "lines": ["y"]}, NOW)[0].text == "U:"


def test_a_run_that_starts_past_part_zero_is_malformed(reader: ChatClient) -> None:
    [line] = reader.handle(
        {"type": "history", "room": "#general", "messages": [], "part": 3, "more": False}, NOW
    )
    assert (
        line.text
        == "malformed 'history' frame from server: a 'history' run must start with part 0, not 3"
    )


@pytest.mark.parametrize("position", [{"part": "0"}, {"more": "yes"}, {"part": -1}, {"part": True}])
def test_bad_positions_are_malformed(reader: ChatClient, position: dict[str, Any]) -> None:
    [line] = reader.handle({"type": "search", "query": "q", "messages": [], **position}, NOW)
    assert line.kind == "error" and line.text.startswith("malformed 'search' frame")


def test_the_feed_refuses_a_run_whose_list_is_no_list() -> None:
    with pytest.raises(FrameError, match="must be a list"):
        RunFeed().feed({"type": "presence", "room": "#a", "changes": {}, "part": 0, "more": True})


def test_a_lost_connection_forgets_the_open_run(reader: ChatClient) -> None:
    frames = run({"type": "info", "title": "T"}, "lines", ["z" * 300] * 400, ("title",))
    reader.handle(frames[0], NOW)
    reader.prepare_reconnect()
    assert reader.runs.open == ""
    [line] = reader.handle(frames[1], NOW)
    assert line.kind == "error"


def test_history_of_maximal_lines_is_one_reply(keys: list[IdentityKey]) -> None:
    server = make_server(rate_per_second=1e6, burst=10**6)
    hello(server, 1, keys[0], "hoarder")
    bodies = [f"kept {n} " + "h" * 4000 for n in range(30)]
    for counter, body in enumerate(bodies, 1):
        server.receive(1, say(keys[0], counter=counter, body=body), NOW)
    net = Net(server)
    shown = net.add(2, client_on(keys[1], "newcomer"))[2]
    headings = [line.text for line in shown if line.kind == "notice" and "messages" in line.text]
    assert headings == ["Last 30 messages of #general:"]
    assert [line.text for line in shown if line.kind == "message"] == bodies
    assert all(line.verified for line in shown if line.kind == "message")
