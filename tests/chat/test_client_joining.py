"""What ChatClient asks the line modes to hold typed lines for (the welcome, the rejoin, a /join's
answer), so that a script acts as the same lines typed one by one; and the nick a line refused
before the welcome shows.

Pure: the server's frames are written out by hand.
"""

from __future__ import annotations

from tlschat.chat.client.joining import JOIN_PATIENCE
from tlschat.chat.client.receiving import ChatClient
from tlschat.protocol.identity import IdentityKey

from .helpers import NOW, client_on

JOIN_RUST = {"type": "command", "name": "join", "args": "#rust"}


def welcomed(key: IdentityKey, nick: str = "alice") -> ChatClient:
    client = client_on(key, nick)
    client.handle({"type": "welcome", "server": "s", "nick": nick}, NOW)
    client.handle({"type": "joined", "room": "#general", "members": []}, NOW)
    return client


def joined(client: ChatClient, room: str) -> None:
    client.handle({"type": "joined", "room": room, "members": []}, NOW)


def test_lines_are_held_until_the_welcome_and_the_rejoin(ed_alice: IdentityKey) -> None:
    client = client_on(ed_alice, "alice")
    assert client.holds_input(NOW)
    client.handle({"type": "welcome", "server": "s", "nick": "alice"}, NOW)
    joined(client, "#general")
    joined(client, "#rust")
    assert not client.holds_input(NOW)
    client.prepare_reconnect()
    assert client.holds_input(NOW)
    client.handle({"type": "welcome", "server": "s", "nick": "alice"}, NOW)
    assert client.take_outbox() == [JOIN_RUST]
    joined(client, "#general")
    assert client.holds_input(NOW)  # #rust is not back yet
    joined(client, "#rust")
    assert not client.holds_input(NOW)


def test_a_join_holds_the_next_line_until_its_joined_and_moves_the_room(
    ed_alice: IdentityKey,
) -> None:
    client = welcomed(ed_alice)
    client.user_input("/join rust", NOW)  # the server adds the '#'
    assert client.take_outbox() == [{"type": "command", "name": "join", "args": "rust"}]
    assert client.holds_input(NOW)
    joined(client, "#rust")
    assert not client.holds_input(NOW) and client.room == "#rust"
    client.user_input("/topic borrow checker", NOW)
    assert client.take_outbox() == [
        {"type": "command", "name": "topic", "args": "#rust borrow checker"}
    ]


def test_a_join_typed_before_the_welcome_holds_until_it_is_answered(
    ed_alice: IdentityKey,
) -> None:
    client = client_on(ed_alice, "alice")
    client.user_input("morning", NOW)
    client.user_input("/join #rust", NOW)
    client.handle({"type": "welcome", "server": "s", "nick": "alice"}, NOW)
    joined(client, "#general")
    assert [frame["type"] for frame in client.take_outbox()] == ["say", "command"]
    assert client.holds_input(NOW)
    joined(client, "#rust")
    assert not client.holds_input(NOW) and client.room == "#rust"


def test_an_error_after_the_join_went_out_ends_the_wait_in_the_same_room(
    ed_alice: IdentityKey,
) -> None:
    client = welcomed(ed_alice)
    client.user_input("/join #rust", NOW)
    client.take_outbox()
    client.handle({"type": "error", "text": "you are banned from #rust for good: spam"}, NOW)
    assert not client.holds_input(NOW) and client.room == "#general"


def test_an_error_before_the_join_went_out_does_not_end_its_wait(ed_alice: IdentityKey) -> None:
    client = client_on(ed_alice, "alice")
    client.user_input("/join #rust", NOW)  # queued: nothing goes out before the welcome
    client.handle({"type": "error", "text": "an answer to something else"}, NOW)
    client.handle({"type": "welcome", "server": "s", "nick": "alice"}, NOW)
    joined(client, "#general")
    assert client.take_outbox() == [JOIN_RUST]
    assert client.holds_input(NOW)


def test_a_join_without_an_answer_holds_for_a_while_only(ed_alice: IdentityKey) -> None:
    client = welcomed(ed_alice)
    client.user_input("/join #rust", NOW)
    assert client.take_outbox() == [JOIN_RUST]
    assert client.holds_input(NOW + JOIN_PATIENCE - 0.1)
    assert not client.holds_input(NOW + JOIN_PATIENCE)


def test_a_lost_connection_ends_the_wait_of_a_join_that_went_out_only(
    ed_alice: IdentityKey,
) -> None:
    client = welcomed(ed_alice)
    client.user_input("/join #rust", NOW)
    assert client.take_outbox() == [JOIN_RUST]
    client.prepare_reconnect()
    client.handle({"type": "welcome", "server": "s", "nick": "alice"}, NOW)
    joined(client, "#general")
    assert not client.holds_input(NOW)  # its answer will not come

    client.prepare_reconnect()
    client.user_input("/join #go", NOW)  # typed while disconnected: goes out on the next one
    client.handle({"type": "welcome", "server": "s", "nick": "alice"}, NOW)
    joined(client, "#general")
    assert client.take_outbox() == [{"type": "command", "name": "join", "args": "#go"}]
    assert client.holds_input(NOW)
    joined(client, "#go")
    assert not client.holds_input(NOW) and client.room == "#go"


def test_a_refused_rejoin_gives_the_room_up(ed_alice: IdentityKey) -> None:
    client = welcomed(ed_alice)
    client.user_input("/join #rust", NOW)
    joined(client, "#rust")
    client.prepare_reconnect()
    assert client.rejoining == {"#general", "#rust"}
    client.handle({"type": "welcome", "server": "s", "nick": "alice"}, NOW)
    joined(client, "#general")
    client.handle({"type": "error", "text": "you are banned from #rust for good: spam"}, NOW)
    assert client.rejoining == set() and client.rooms == ["#general"]
    assert not client.holds_input(NOW)


def test_a_line_refused_before_the_welcome_shows_the_nick_asked_for(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    asked = client_on(ed_alice, "alice")
    [pending] = asked.user_input("hi", NOW)
    assert pending.nick == "alice"
    [refused] = asked.give_up("the client stopped before the server answered", NOW)
    assert refused.render("#general").endswith(
        "!!! not sent (the client stopped before the server answered): <alice> hi"
    )
    unnamed = client_on(ed_bob)  # no --nick: the server would have chosen one
    unnamed.user_input("hi", NOW)
    [refused] = unnamed.give_up("the client never connected to a server", NOW)
    assert refused.render("#general").endswith(
        "!!! not sent (the client never connected to a server): <you> hi"
    )
