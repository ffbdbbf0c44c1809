"""Big rooms: lists over many frames, large rooms' lazy member lists and presence, batched
presence, and scrollback in pages (docs/PROTOCOL.md, "Runs" and "Large rooms")."""

from __future__ import annotations

from typing import Any

import pytest

from tlschat.chat.frames import MAX_FRAME, encode_frame
from tlschat.chat.runs import RunAssembler
from tlschat.chat.server.events import ChatServer
from tlschat.chat.server.model import HISTORY_PAGE
from tlschat.protocol.identity import IdentityKey

from .helpers import NOW, Frames, command, hello, make_server, say
from .test_cluster import Log
from .test_cluster import hello as cluster_hello

AWAY = "a" * 200
UNKNOWN_ID = "SHA256:" + "A" * 43 + ":12"  # members as long as they get: fewer of them fill a frame


@pytest.fixture(scope="module")
def keys() -> list[IdentityKey]:
    return [IdentityKey.generate("ed25519") for _ in range(400)]


def crowd(server: ChatServer, keys: list[IdentityKey], count: int, away: str = "") -> None:
    for index in range(count):
        session_id = 100 + index
        hello(server, session_id, keys[index], f"user{index}")
        if away:
            command(server, session_id, "away", away)


def frames_to(out: Frames, session_id: int) -> list[dict[str, Any]]:
    return [frame for target, frame in out if target == session_id]


def assemble(frames: list[dict[str, Any]], key: str, continuation: str = "") -> dict[str, Any]:
    assembler = RunAssembler()
    whole = assembler.start(frames[0], key, continuation, ("room",))
    for frame in frames[1:]:
        assert whole is None
        whole = assembler.add(frame)
    assert whole is not None
    return whole


def test_a_member_list_longer_than_a_frame_arrives_whole(keys: list[IdentityKey]) -> None:
    server = make_server(presence_burst=1000, work_burst=10_000)
    crowd(server, keys, 300, AWAY)
    out = hello(server, 1, keys[300], "last")
    told = frames_to(out, 1)
    run = [f for f in told if f["type"] in ("joined", "members")]
    assert len(run) > 1
    assert all(len(encode_frame(frame)) <= MAX_FRAME for frame in run)
    whole = assemble(run, "members", "members")
    assert whole["member_count"] == 301
    assert len(whole["members"]) == 301
    assert {m["nick"] for m in whole["members"]} == {f"user{n}" for n in range(300)} | {"last"}


def test_names_longer_than_a_frame_is_an_info_run(keys: list[IdentityKey]) -> None:
    server = make_server(presence_burst=1000, work_burst=10_000)
    crowd(server, keys, 300, AWAY)
    run = frames_to(command(server, 100, "names", "#general"), 100)
    assert len(run) > 1
    assembler = RunAssembler()
    whole = assembler.start(run[0], "lines", naming=("title",))
    for frame in run[1:]:
        whole = assembler.add(frame)
    assert whole is not None and len(whole["lines"]) == 300


def test_a_large_rooms_joined_is_lazy_and_members_fetches_the_list(
    keys: list[IdentityKey],
) -> None:
    server = make_server(large_room=5, presence_burst=1000)
    crowd(server, keys, 8)
    [joined] = [f for f in frames_to(hello(server, 1, keys[8], "late"), 1) if f["type"] == "joined"]
    assert joined["lazy"] is True and joined["members"] == [] and joined["member_count"] == 9
    [members] = frames_to(command(server, 1, "members", "#general"), 1)
    assert members["type"] == "members" and members["member_count"] == 9
    assert {m["nick"] for m in members["members"]} == {f"user{n}" for n in range(8)} | {"late"}
    assert command(server, 1, "members", "#nowhere") == [
        (1, {"type": "error", "text": "you are not in #nowhere"})
    ]


def test_a_large_room_tells_silent_arrivals_only_to_its_watchers(
    keys: list[IdentityKey],
) -> None:
    server = make_server(large_room=5, presence_burst=1000)
    crowd(server, keys, 8)
    watcher, bystander = 100, 101
    assert frames_to(command(server, watcher, "watch", "#general"), watcher)[0]["type"] == "members"
    out = hello(server, 1, keys[8], "quiet")
    assert [f["type"] for f in frames_to(out, watcher)] == ["join"]
    assert frames_to(out, bystander) == []
    # Speaking makes the key known to everyone, just before its line (a delayed join).
    out = server.receive(1, say(keys[8], counter=1, body="hi all"), NOW)
    assert [f["type"] for f in frames_to(out, bystander)] == ["join", "message"]
    assert [f["type"] for f in frames_to(out, watcher)] == ["message"]
    out = server.receive(1, say(keys[8], counter=2, body="again"), NOW)
    assert [f["type"] for f in frames_to(out, bystander)] == ["message"]
    # Its leave then reaches everyone; a silent key's only the watchers.
    out = server.disconnect(1, "quit")
    assert [f["type"] for f in frames_to(out, bystander)] == ["leave"]
    assert [f["type"] for f in frames_to(out, watcher)] == ["leave"]
    out = server.disconnect(107, "quit")
    assert frames_to(out, bystander) == []
    assert [f["type"] for f in frames_to(out, watcher)] == ["leave"]
    assert command(server, watcher, "unwatch", "#general")[0][1]["type"] == "notice"
    out = server.disconnect(106, "quit")
    assert frames_to(out, watcher) == []


def test_a_session_watches_a_few_rooms_at_most(keys: list[IdentityKey]) -> None:
    server = make_server()
    hello(server, 1, keys[0], "solo")
    for room in ("#a", "#b", "#c", "#d", "#e"):
        command(server, 1, "join", room)
    for room in ("#a", "#b", "#c", "#d"):
        assert frames_to(command(server, 1, "watch", room), 1)[0]["type"] == "members"
    assert command(server, 1, "watch", "#e")[0][1]["text"].startswith("you watch 4 rooms")
    # A room left is no longer watched: it makes room for another.
    command(server, 1, "part", "#a")
    assert frames_to(command(server, 1, "watch", "#e"), 1)[0]["type"] == "members"
    assert command(server, 1, "unwatch", "#a")[0][1]["text"] == "you do not watch #a"


def test_a_storm_of_arrivals_reaches_bystanders_as_batches(keys: list[IdentityKey]) -> None:
    server = make_server(presence_rate=1.0, presence_burst=1)
    hello(server, 1, keys[0], "first")
    hello(server, 2, keys[1], "second")  # the room's budget is spent: this one waits
    for index in range(2, 12):
        assert frames_to(hello(server, 10 + index, keys[index], f"n{index}"), 1) == []
    [batch] = frames_to(server.tick(NOW + 1.0), 1)
    assert batch["type"] == "presence" and batch["room"] == "#general"
    assert [c["nick"] for c in batch["changes"]] == ["second"] + [f"n{i}" for i in range(2, 12)]
    assert {c["type"] for c in batch["changes"]} == {"join"}


def test_scrollback_walks_back_page_by_page(keys: list[IdentityKey]) -> None:
    server = make_server(history_limit=10, work_burst=10_000, rate_per_second=1e6, burst=10**6)
    hello(server, 1, keys[0], "talker")
    total = 2 * HISTORY_PAGE + 30
    for counter in range(1, total + 1):
        server.receive(1, say(keys[0], counter=counter, body=f"line {counter}"), NOW)
    joined = frames_to(hello(server, 2, keys[1], "reader"), 2)
    [history] = [f for f in joined if f["type"] == "history"]
    assert history["older"] is True
    counters = [m["counter"] for m in history["messages"]]
    assert counters == list(range(total - 9, total + 1))
    seen = counters
    while True:
        oldest = f"{keys[0].fingerprint}:{seen[0]}"
        [page] = frames_to(command(server, 2, "history", f"#general {oldest}"), 2)
        assert page["type"] == "history" and page["before"] == oldest
        page_counters = [m["counter"] for m in page["messages"]]
        assert len(page_counters) <= HISTORY_PAGE
        seen = page_counters + seen
        if not page.get("older"):
            break
    assert seen == list(range(1, total + 1))


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ("#general", "usage: /history #room SENDER:COUNTER (the id of the oldest line you have)"),
        ("#general nonsense", "usage: /history"),
        ("#general SHA256:xyz:12", "usage: /history"),  # not a fingerprint
        (f"#general {UNKNOWN_ID}", f"#general holds no line {UNKNOWN_ID} (any more)"),
        (f"#elsewhere {UNKNOWN_ID}", "you are not in #elsewhere"),
    ],
)
def test_scrollback_refusals(keys: list[IdentityKey], args: str, error: str) -> None:
    server = make_server()
    hello(server, 1, keys[0], "reader")
    [(target, frame)] = command(server, 1, "history", args)
    assert target == 1 and frame["type"] == "error" and frame["text"].startswith(error)


def test_every_page_past_the_first_costs_its_sender(keys: list[IdentityKey]) -> None:
    server = make_server(presence_burst=1000, work_burst=10_000, work_rate=0.001)
    crowd(server, keys, 300, AWAY)
    bucket = server.work_buckets[keys[0].fingerprint]
    before = bucket.tokens
    pages = len(frames_to(command(server, 100, "members", "#general"), 100))
    assert pages > 1
    assert before - bucket.tokens == pytest.approx(4 + (pages - 1), abs=0.01)


def test_in_a_cluster_a_member_list_of_every_server_arrives_whole(
    keys: list[IdentityKey],
) -> None:
    log = Log(["a", "b"], presence_burst=1000, work_burst=10_000)
    for index in range(300):
        node = "a" if index % 2 else "b"
        cluster_hello(log, node, 100 + index, keys[index], f"user{index}")
        log.pump()
        log.servers[node].receive(
            100 + index, {"type": "command", "name": "away", "args": AWAY}, NOW
        )
        log.pump()
    cluster_hello(log, "a", 1, keys[300], "last")
    out = log.pump()["a"]
    run = [f for f in frames_to(out, 1) if f["type"] in ("joined", "members")]
    assert len(run) > 1
    whole = assemble(run, "members", "members")
    assert whole["member_count"] == len(whole["members"]) == 301
    assert all(m["away"] == AWAY for m in whole["members"] if m["nick"] != "last")
    listed = frames_to(command(log.servers["b"], 100, "members", "#general"), 100)
    assert len(assemble(listed, "members")["members"]) == 301


def test_an_encrypted_room_is_never_large(keys: list[IdentityKey]) -> None:
    server = make_server(large_room=2, presence_burst=1000)
    server.encrypted_rooms.add("#general")
    crowd(server, keys, 5)
    out = hello(server, 1, keys[5], "late")
    [joined] = [f for f in frames_to(out, 1) if f["type"] == "joined"]
    assert "lazy" not in joined and len(joined["members"]) == 6
    assert [f["type"] for f in frames_to(out, 100)] == ["join"]
