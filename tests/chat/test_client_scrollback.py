"""Scrollback in the chat client: the oldest line held per room, pages asked one at a time, each
checked as history, and every page that comes getting exactly one outcome."""

from __future__ import annotations

from typing import Any

import pytest

from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.client.scrollback import PAGE, start_of_history
from tlschat.chat.frames import b64
from tlschat.chat.lines import Line
from tlschat.chat.server.events import ChatServer
from tlschat.chat.server.model import HISTORY_PAGE
from tlschat.protocol.identity import IdentityKey

from .helpers import NOW, NOW_MS, Net, client_on, hello, make_server, relayed, say

ROOM = "#general"
TOTAL = 2 * HISTORY_PAGE + 30


@pytest.fixture(scope="module")
def talker() -> IdentityKey:
    return IdentityKey.generate("ed25519")


def stored(server: ChatServer, talker: IdentityKey, count: int, first: int = 1) -> None:
    hello(server, 9, talker, "talker")
    for counter in range(first, first + count):
        server.receive(9, say(talker, counter=counter, body=f"line {counter}"), NOW)


def entry(talker: IdentityKey, counter: int, body: str = "", target: str = ROOM) -> dict[str, Any]:
    frame = say(
        talker, counter=counter, ts=NOW_MS - 1000, body=body or f"line {counter}", target=target
    )
    return relayed(frame, "talker", talker)


def line_id(key: IdentityKey, counter: int) -> str:
    return f"{key.fingerprint}:{counter}"


@pytest.fixture
def reader(ed_bob: IdentityKey, talker: IdentityKey) -> ChatClient:
    """A client in #general whose history on join was lines 51 to 100 of 100."""
    client = client_on(ed_bob, "bob")
    client.handle({"type": "welcome", "server": "s", "nick": "bob"}, NOW)
    client.handle({"type": "joined", "room": ROOM, "members": []}, NOW)
    messages = [entry(talker, counter) for counter in range(51, 101)]
    client.handle({"type": "history", "room": ROOM, "messages": messages, "older": True}, NOW)
    client.take_outbox()
    return client


def page(talker: IdentityKey, counters: range, before: str, older: bool) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "history",
        "room": ROOM,
        "messages": [entry(talker, counter) for counter in counters],
        "before": before,
    }
    if older:
        frame["older"] = True
    return frame


# --- what the client holds ------------------------------------------------------------------


def test_the_history_on_join_says_where_the_room_starts(
    reader: ChatClient, talker: IdentityKey
) -> None:
    state = reader.scrollback[ROOM]
    assert (state.oldest, state.older, state.pending) == (line_id(talker, 51), True, "")


def test_a_room_joined_without_history_starts_with_its_first_live_line(
    ed_bob: IdentityKey, talker: IdentityKey
) -> None:
    client = client_on(ed_bob, "bob")
    client.handle({"type": "joined", "room": ROOM, "members": []}, NOW)
    assert client.scrollback[ROOM].oldest == ""
    client.handle(entry(talker, 7), NOW)
    client.handle(entry(talker, 8), NOW)
    assert client.scrollback[ROOM].oldest == line_id(talker, 7)
    assert client.load_older(ROOM, NOW) == [
        Line("notice", NOW, "No earlier lines of #general: that is the start of its history")
    ]
    assert client.take_outbox() == []


# --- asking ---------------------------------------------------------------------------------


def test_load_older_asks_for_the_page_before_the_oldest_line(
    reader: ChatClient, talker: IdentityKey
) -> None:
    assert reader.load_older(ROOM, NOW) == []
    oldest = line_id(talker, 51)
    assert reader.take_outbox() == [
        {"type": "command", "name": "history", "args": f"{ROOM} {oldest}"}
    ]
    # One page at a time per room.
    assert reader.load_older(ROOM, NOW) == [
        Line("notice", NOW, "Still loading earlier lines of #general…")
    ]
    assert reader.take_outbox() == []


def test_more_asks_for_the_current_room_or_the_one_named(reader: ChatClient) -> None:
    assert reader.user_input("/more", NOW) == []
    assert reader.take_outbox()[0]["name"] == "history"
    [line] = reader.user_input("/more #elsewhere", NOW)
    assert line == Line("error", NOW, "you are not in #elsewhere")
    [line] = reader.user_input("/more bob", NOW)
    assert line.kind == "error" and line.text.startswith("usage: /more [#room]")


def test_a_page_comes_above_verified_and_moves_the_oldest(
    reader: ChatClient, talker: IdentityKey
) -> None:
    reader.load_older(ROOM, NOW)
    lines = reader.handle(page(talker, range(1, 51), line_id(talker, 51), older=False), NOW)
    assert all(line.earlier for line in lines)
    heading, *messages, end = lines
    assert (heading.kind, heading.text) == (PAGE, "50 earlier lines of #general:")
    assert [line.text for line in messages] == [f"line {n}" for n in range(1, 51)]
    assert all(line.verified and line.history for line in messages)
    assert (end.kind, end.text) == (PAGE, start_of_history(ROOM))
    state = reader.scrollback[ROOM]
    assert (state.oldest, state.older, state.pending) == (line_id(talker, 1), False, "")
    assert reader.load_older(ROOM, NOW)[0].text.startswith("No earlier lines of #general")


def test_a_page_is_checked_as_history_is(reader: ChatClient, talker: IdentityKey) -> None:
    reader.load_older(ROOM, NOW)
    forged = {**entry(talker, 40), "body": "not what was signed"}
    moved = entry(talker, 41, target="#secret")
    frame = {
        "type": "history",
        "room": ROOM,
        "messages": [forged, moved],
        "before": line_id(talker, 51),
    }
    _, first, second, _end = reader.handle(frame, NOW)
    assert (first.verified, first.problem) == (False, "bad signature")
    assert (second.verified, second.problem) == (False, "signed for another room")


def test_a_page_nobody_asked_for_is_dropped(reader: ChatClient, talker: IdentityKey) -> None:
    [line] = reader.handle(page(talker, range(1, 51), line_id(talker, 51), older=False), NOW)
    assert line.kind == "error" and "this client did not ask for" in line.text
    reader.load_older(ROOM, NOW)
    [line] = reader.handle(page(talker, range(1, 51), line_id(talker, 30), older=False), NOW)
    assert line.kind == "error" and f"(before {line_id(talker, 30)})" in line.text
    assert reader.scrollback[ROOM].pending == line_id(talker, 51)  # still waiting for its own


def test_a_page_of_a_room_you_are_not_in_is_dropped(
    reader: ChatClient, talker: IdentityKey
) -> None:
    frame = {**page(talker, range(1, 3), line_id(talker, 51), older=False), "room": "#secret"}
    [line] = reader.handle(frame, NOW)
    assert line.kind == "error" and "#secret, a room you are not in" in line.text
    join_history = {"type": "history", "room": "#secret", "messages": [entry(talker, 1)]}
    [line] = reader.handle(join_history, NOW)
    assert line.kind == "error" and "#secret, a room you are not in" in line.text


def test_a_page_that_does_not_reach_further_back_ends_the_history(
    reader: ChatClient, talker: IdentityKey
) -> None:
    reader.load_older(ROOM, NOW)
    empty = {
        "type": "history",
        "room": ROOM,
        "messages": [],
        "before": line_id(talker, 51),
        "older": True,
    }
    lines = reader.handle(empty, NOW)
    assert [line.text for line in lines] == ["0 earlier lines of #general:", start_of_history(ROOM)]
    assert reader.scrollback[ROOM].older is False


def test_a_page_refused_for_retention_ends_the_history(
    reader: ChatClient, talker: IdentityKey
) -> None:
    reader.load_older(ROOM, NOW)
    text = f"#general holds no line {line_id(talker, 51)} (any more)"
    assert reader.handle({"type": "error", "text": text}, NOW) == [Line("error", NOW, text)]
    state = reader.scrollback[ROOM]
    assert (state.pending, state.older) == ("", False)


def test_a_lost_connection_forgets_the_page_asked_for(
    reader: ChatClient, talker: IdentityKey
) -> None:
    reader.load_older(ROOM, NOW)
    reader.prepare_reconnect()
    assert reader.scrollback[ROOM].pending == ""
    reader.handle({"type": "welcome", "server": "s", "nick": "bob"}, NOW)
    reader.handle({"type": "joined", "room": ROOM, "members": []}, NOW)
    [line] = reader.handle(page(talker, range(1, 51), line_id(talker, 51), older=False), NOW)
    assert line.kind == "error"
    # What was shown is still held: the next page is asked from its oldest line.
    assert reader.scrollback[ROOM].oldest == line_id(talker, 51)


def test_parting_forgets_the_rooms_history(reader: ChatClient) -> None:
    reader.handle({"type": "parted", "room": ROOM}, NOW)
    assert ROOM not in reader.scrollback


def test_operations_in_a_page_apply_within_it_and_last_stays_the_newest(
    reader: ChatClient, talker: IdentityKey
) -> None:
    reader.load_older(ROOM, NOW)
    target = line_id(talker, 10)
    frame = {
        "type": "history",
        "room": ROOM,
        "messages": [entry(talker, 10, "typo"), entry(talker, 11, f"/edit {target} fixed")],
        "before": line_id(talker, 51),
        "older": True,
    }
    _, original, edited = reader.handle(frame, NOW)
    assert (original.id, original.text) == (target, "typo")
    assert (edited.id, edited.text, edited.edited, edited.earlier) == (target, "fixed", True, True)
    assert reader.book.get(target) is None
    last = reader.book.last(ROOM)
    assert last is not None and last.id == line_id(talker, 100)


def test_scrollback_walks_a_real_servers_history_back_to_its_start(
    ed_bob: IdentityKey, talker: IdentityKey
) -> None:
    server = make_server(work_burst=10_000, rate_per_second=1e6, burst=10**6)
    stored(server, talker, TOTAL)
    net = Net(server)
    shown = net.add(1, client_on(ed_bob, "bob"))[1]
    client = net.clients[1]
    held = [line.text for line in shown if line.kind == "message"]
    assert held == [f"line {n}" for n in range(TOTAL - 49, TOTAL + 1)]
    pages = 0
    while client.scrollback[ROOM].older:
        assert client.load_older(ROOM, NOW) == []
        lines = net.flush(1)[1]
        assert all(line.earlier for line in lines)
        held = [line.text for line in lines if line.kind == "message"] + held
        pages += 1
    assert pages == 2
    assert held == [f"line {n}" for n in range(1, TOTAL + 1)]
    assert lines[-1].text == start_of_history(ROOM)


def test_the_key_of_a_page_line_is_the_senders(reader: ChatClient, talker: IdentityKey) -> None:
    reader.load_older(ROOM, NOW)
    impostor = IdentityKey.generate("ed25519")
    swapped = {**entry(talker, 5), "key": b64(impostor.spki_der)}
    frame = {"type": "history", "room": ROOM, "messages": [swapped], "before": line_id(talker, 51)}
    _, line, _end = reader.handle(frame, NOW)
    assert line.verified is False
