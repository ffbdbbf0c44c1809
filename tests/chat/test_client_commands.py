"""ChatClient commands and frame handlers, against a real ChatServer where it matters."""

from __future__ import annotations

import base64
import dataclasses
import time
from typing import Any

import pytest

from tlschat.chat.client.commands import CLIENT_COMMANDS
from tlschat.chat.client.receiving import FRAME_HANDLERS, ChatClient
from tlschat.chat.envelope import SignedMessage
from tlschat.chat.frames import say_frame
from tlschat.chat.lines import Line
from tlschat.chat.server.commands import COMMANDS as SERVER_COMMANDS
from tlschat.chat.server.events import ChatServer
from tlschat.protocol.identity import IdentityKey

from .helpers import (
    ALICE,
    BOB,
    NETWORK,
    NOW,
    NOW_MS,
    Net,
    client_on,
    command,
    make_server,
)


def _clock(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp))


@pytest.fixture
def net(ed_alice: IdentityKey, ed_bob: IdentityKey) -> Net:
    """Alice (an operator) and Bob, both in #general, each with a ChatClient."""
    net = Net(make_server(operators=frozenset({ed_alice.fingerprint})))
    net.add(ALICE, client_on(ed_alice, "alice"))
    net.add(BOB, client_on(ed_bob, "bob"))
    return net


@pytest.fixture
def alice(net: Net) -> ChatClient:
    return net.clients[ALICE]


@pytest.fixture
def bob(net: Net) -> ChatClient:
    return net.clients[BOB]


def _message(
    key: IdentityKey, target: str, body: str = "hi", nick: str = "alice", counter: int = 1
) -> dict[str, Any]:
    """A 'message' frame as a (possibly malicious) server could send it."""
    fields = say_frame(SignedMessage.create(key, NETWORK, target, counter, NOW_MS, body))
    del fields["type"]
    return {
        "type": "message",
        "from": nick,
        "key": base64.b64encode(key.spki_der).decode(),
        **fields,
    }


# --- tables ----------------------------------------------------------------------------------


def test_client_command_table() -> None:
    assert list(CLIENT_COMMANDS) == [
        "help", "me", "msg", "reply", "re", "edit", "delete", "react", "ignore", "unignore",
        "part", "topic", "names", "more", "search", "encrypt", "verify", "devices", "quit",
    ]  # fmt: skip


def test_frame_handler_table() -> None:
    assert sorted(FRAME_HANDLERS) == sorted(
        [
            "welcome", "joined", "parted", "join", "leave", "nick", "notice", "motd", "error",
            "info", "topic", "whois", "bye", "history", "message", "ping", "pong", "away",
            "sent", "keys", "claimed", "keys_changed", "keys_uploaded", "encrypted",
            "device_messages", "search", "invitation", "members", "presence",
        ]
    )  # fmt: skip


# --- typing ----------------------------------------------------------------------------------


def test_plain_text_is_said_to_the_current_room(net: Net, alice: ChatClient) -> None:
    own, shown = net.type(ALICE, "hello all\r\n")
    [pending] = own
    assert (pending.kind, pending.text, pending.room, pending.delivery) == (
        "message",
        "hello all",
        "#general",
        "pending",
    )
    assert pending.verified is None  # our own line is never marked ✓
    own_id = f"{alice.identity.fingerprint}:{int(NOW * 1_000_000)}"
    assert shown[ALICE] == [dataclasses.replace(pending, delivery="delivered", id=own_id)]
    [line] = shown[BOB]
    assert (line.kind, line.text, line.room, line.verified) == (
        "message",
        "hello all",
        "#general",
        True,
    )


@pytest.mark.parametrize("text", ["", "   ", "\r\n"])
def test_blank_input_does_nothing(alice: ChatClient, text: str) -> None:
    assert alice.user_input(text, NOW) == []
    assert alice.take_outbox() == []


def test_double_slash_sends_a_single_slash(net: Net, alice: ChatClient) -> None:
    alice.user_input("//shrug", NOW)
    [frame] = alice.outbox
    assert (frame["type"], frame["body"]) == ("say", "/shrug")
    assert net.flush(ALICE)[BOB][0].text == "/shrug"


def test_unknown_command_is_forwarded_to_the_server(alice: ChatClient) -> None:
    assert alice.user_input("/Dance  wildly  ", NOW) == []
    assert alice.take_outbox() == [{"type": "command", "name": "dance", "args": "wildly"}]


def test_server_commands_are_forwarded(net: Net, alice: ChatClient) -> None:
    own, shown = net.type(ALICE, "/join #rust")
    assert own == []
    assert alice.rooms == ["#general", "#rust"]
    assert alice.room == "#rust"
    assert shown[ALICE] == [
        Line("joined", NOW, "You are alice in #rust (nobody else is here)", "alice", room="#rust")
    ]


def test_unknown_server_command_comes_back_as_an_error(net: Net) -> None:
    assert net.type(BOB, "/dance")[1][BOB] == [
        Line("error", NOW, "unknown command /dance; try /help")
    ]


# --- client commands -------------------------------------------------------------------------


def test_help_lists_client_commands_and_asks_the_server(net: Net, bob: ChatClient) -> None:
    own = bob.user_input("/help", NOW)
    assert own == [Line("info", NOW, "Client commands:")] + [
        Line("info", NOW, f"  {c.usage:<28} {c.summary}") for c in CLIENT_COMMANDS.values()
    ]
    assert own[1].text == "  /help                        this help, then the server's commands"
    assert bob.outbox == [{"type": "command", "name": "help", "args": ""}]
    shown = net.flush(BOB)[BOB]
    assert shown[0] == Line("info", NOW, "Server commands:")
    # The server's user commands but those the client answers itself (help, part, names, topic),
    # listed above with the client's syntax.
    assert [line.text.split()[0] for line in shown[1:]] == [
        "/nick", "/join", "/rooms", "/whois", "/away", "/back",
        # A room's owner's and operators' (tests/chat/test_server_room_roles*.py).
        "/private", "/public", "/invite", "/uninvite", "/roomop", "/deroomop",
        "/rkick", "/rban", "/runban", "/rmute", "/runmute",
    ]  # fmt: skip


def help_commands(lines: list[Line]) -> list[str]:
    """The command each line of a /help answer is about, in order ("/name")."""
    return [line.text.split()[0] for line in lines if line.text.startswith("  /")]


@pytest.mark.parametrize("operator", [False, True])
def test_help_lists_every_command_once_with_one_syntax(
    net: Net, alice: ChatClient, bob: ChatClient, operator: bool
) -> None:
    """Alice is an operator, bob is not; a glue's own command (the full-screen /trust) is
    listed too. Every command shows once, with the syntax the client's hints use."""
    client, who = (alice, ALICE) if operator else (bob, BOB)
    client.ui_commands = {"trust": ("/trust", "the server's key")}
    shown = client.user_input("/help", NOW) + net.flush(who)[who]
    listed = help_commands(shown)
    assert len(listed) == len(set(listed))
    everything = {
        name
        for name, c in SERVER_COMMANDS.items()
        if c.listed and (operator or not c.operator_only)
    }
    everything |= set(CLIENT_COMMANDS) | {"trust"}
    assert sorted(listed) == sorted(f"/{name}" for name in everything)
    usages = {line.text.split("  ")[1].strip() for line in shown if line.text.startswith("  /")}
    assert "/part [#room]" in usages and "/part #room" not in usages
    assert "/topic [#room] [TEXT]" in usages and "/topic #room [TEXT]" not in usages


def test_me_sends_an_action(net: Net, alice: ChatClient, ed_alice: IdentityKey) -> None:
    [pending] = alice.user_input("/me waves", NOW)
    assert (pending.kind, pending.text, pending.delivery) == ("action", "waves", "pending")
    [frame] = alice.outbox
    assert (frame["type"], frame["target"], frame["body"]) == ("say", "#general", "/me waves")
    [line] = net.flush(ALICE)[BOB]
    assert line == Line(
        "action", NOW, "waves", "alice", ed_alice.fingerprint, "#general", True, False,
        id=f"{ed_alice.fingerprint}:{int(NOW * 1_000_000)}",
    )  # fmt: skip
    assert line.render("#general") == f"[{_clock(NOW)}] ✓ * alice waves"


def test_me_usage(alice: ChatClient) -> None:
    assert alice.user_input("/me", NOW) == [
        Line("error", NOW, "usage: /me ACTION — say that you do something")
    ]
    assert alice.outbox == []


@pytest.mark.parametrize("args", ["", "alice", "alice   "])
def test_msg_usage(alice: ChatClient, args: str) -> None:
    assert alice.user_input(f"/msg {args}", NOW) == [
        Line(
            "error", NOW, "usage: /msg NICK TEXT — a private message, end-to-end encrypted for NICK"
        )
    ]
    assert alice.outbox == []


def test_unverified_private_message_cannot_be_replied_to(
    alice: ChatClient, ed_carol: IdentityKey, ed_dave: IdentityKey
) -> None:
    # Signed by carol for dave, then handed to alice.
    [line] = alice.handle(_message(ed_carol, "@" + ed_dave.fingerprint, nick="carol"), NOW)
    assert (line.kind, line.verified) == ("private", False)
    assert alice.last_private is None


def test_ignore_and_unignore(net: Net, bob: ChatClient, ed_alice: IdentityKey) -> None:
    fp = ed_alice.fingerprint
    assert bob.user_input("/ignore", NOW) == [Line("notice", NOW, "Ignoring: nobody")]
    assert bob.user_input("/ignore Alice", NOW) == [Line("notice", NOW, f"Ignoring Alice ({fp})")]
    assert bob.user_input("/ignore", NOW) == [Line("notice", NOW, f"Ignoring: {fp}")]
    own, shown = net.type(ALICE, "anyone?")
    own_id = f"{fp}:{int(NOW * 1_000_000)}"
    assert shown == {
        ALICE: [dataclasses.replace(own[0], delivery="delivered", id=own_id)],
        BOB: [],
    }
    assert bob.user_input("/unignore alice", NOW) == [
        Line("notice", NOW, "No longer ignoring alice")
    ]
    assert [line.text for line in net.type(ALICE, "back?")[1][BOB]] == ["back?"]


def test_ignore_by_fingerprint(bob: ChatClient, ed_carol: IdentityKey) -> None:
    fp = ed_carol.fingerprint
    assert bob.user_input(f"/ignore {fp}", NOW) == [Line("notice", NOW, f"Ignoring {fp} ({fp})")]
    assert bob.handle(_message(ed_carol, "#general", nick="carol"), NOW) == []
    assert bob.user_input(f"/unignore {fp}", NOW) == [
        Line("notice", NOW, f"No longer ignoring {fp}")
    ]


def test_ignore_unknown_and_unignore_unignored(bob: ChatClient) -> None:
    assert bob.user_input("/ignore zed", NOW) == [
        Line("error", NOW, "unknown nick zed; /whois it first")
    ]
    assert bob.user_input("/unignore alice", NOW) == [
        Line("error", NOW, "you are not ignoring alice")
    ]


def test_ignored_sender_is_hidden_in_history_too(bob: ChatClient, ed_carol: IdentityKey) -> None:
    bob.user_input(f"/ignore {ed_carol.fingerprint}", NOW)
    frame = {
        "type": "history",
        "room": "#general",
        "messages": [_message(ed_carol, "#general", nick="carol")],
    }
    assert bob.handle(frame, NOW) == [
        Line("notice", NOW, "Last 1 messages of #general:", room="#general")
    ]


def test_part_topic_names_default_to_the_current_room(bob: ChatClient) -> None:
    bob.room = "#rust"
    for typed, name, args in [
        ("/part", "part", "#rust"),
        ("/part #general", "part", "#general"),
        ("/topic", "topic", "#rust"),
        ("/topic Borrowing explained", "topic", "#rust Borrowing explained"),
        ("/topic #general", "topic", "#general"),
        ("/topic #general Hello", "topic", "#general Hello"),
        ("/names", "names", "#rust"),
        ("/names #general", "names", "#general"),
    ]:
        assert bob.user_input(typed, NOW) == []
        assert bob.take_outbox() == [{"type": "command", "name": name, "args": args}], typed


def test_quit(alice: ChatClient) -> None:
    assert alice.user_input("/quit", NOW) == []
    assert alice.quit_requested is True
    assert alice.take_outbox() == []


# --- frames from the server ------------------------------------------------------------------


def test_welcome(ed_bob: IdentityKey) -> None:
    client = client_on(ed_bob, "bob")
    frame = {
        "type": "welcome",
        "server": "testsrv",
        "nick": "bob_2",
        "fingerprint": ed_bob.fingerprint,
        "operator": False,
    }
    assert client.handle(frame, NOW) == [Line("notice", NOW, "Welcome to testsrv, bob_2")]
    assert client.nick == "bob_2"
    frame["operator"] = True
    assert client.handle(frame, NOW) == [
        Line("notice", NOW, "Welcome to testsrv, bob_2 (operator)")
    ]


def test_hello_through_a_real_server(ed_alice: IdentityKey, ed_bob: IdentityKey) -> None:
    net = Net(make_server(motd="Be nice."))
    net.add(ALICE, client_on(ed_alice, "alice"))
    shown = net.add(BOB, client_on(ed_bob, "bob"))
    assert shown == {
        BOB: [
            Line("notice", NOW, "Welcome to testsrv, bob"),
            # In the room the user lands in (the full-screen client shows it there).
            Line("motd", NOW, "Be nice.", room="#general"),
            Line("joined", NOW, "You are bob in #general with alice", "bob", room="#general"),
        ],
        ALICE: [Line("join", NOW, "bob joined #general", "bob", ed_bob.fingerprint, "#general")],
    }


def test_motd_of_several_lines_is_shown_line_by_line(bob: ChatClient) -> None:
    frame = {"type": "motd", "text": "Welcome to the test server\nBe nice\x1b[2J"}
    lines = bob.handle(frame, NOW)
    assert lines == [
        Line("motd", NOW, "Welcome to the test server", room="#general"),
        Line("motd", NOW, "Be nice\x1b[2J", room="#general"),
    ]
    assert lines[1].render("#general") == f"[{_clock(NOW)}] *** Be nice\ufffd[2J"


def test_motd_file_through_a_real_server(ed_alice: IdentityKey) -> None:
    net = Net(make_server(motd="Welcome!\nBe nice."))
    shown = net.add(ALICE, client_on(ed_alice, "alice"))
    assert shown[ALICE][1:3] == [
        Line("motd", NOW, "Welcome!", room="#general"),
        Line("motd", NOW, "Be nice.", room="#general"),
    ]


def test_joined_switches_room_and_learns_members(ed_bob: IdentityKey) -> None:
    client = client_on(ed_bob, "bob")
    client.handle({"type": "welcome", "server": "s", "nick": "bob"}, NOW)
    frame = {
        "type": "joined",
        "room": "#rust",
        "topic": "All about Rust",
        "members": [
            {"nick": "alice", "fingerprint": "SHA256:a", "away": ""},
            {"nick": "bob", "fingerprint": ed_bob.fingerprint, "away": ""},
            {"nick": "carol", "fingerprint": "SHA256:c", "away": "lunch"},
        ],
    }
    assert client.handle(frame, NOW) == [
        Line("joined", NOW, "You are bob in #rust with alice, carol", "bob", room="#rust"),
        Line("topic", NOW, "Topic of #rust: All about Rust", room="#rust"),
    ]
    assert (client.rooms, client.room) == (["#rust"], "#rust")
    assert client.directory == {
        "alice": "SHA256:a",
        "bob": ed_bob.fingerprint,
        "carol": "SHA256:c",
    }
    assert client.compose("x", NOW)["target"] == "#rust"


def test_joined_alone_and_rejoined(ed_bob: IdentityKey) -> None:
    client = client_on(ed_bob, "bob")
    client.handle({"type": "welcome", "server": "s", "nick": "bob"}, NOW)
    alone = {"type": "joined", "room": "#lobby", "members": [{"nick": "bob", "fingerprint": "x"}]}
    assert client.handle(alone, NOW) == [
        Line("joined", NOW, "You are bob in #lobby (nobody else is here)", "bob", room="#lobby")
    ]
    client.handle({"type": "joined", "room": "#general", "members": []}, NOW)
    client.handle(alone, NOW)
    assert (client.rooms, client.room) == (["#lobby", "#general"], "#lobby")


def test_joined_ignores_malformed_members(ed_bob: IdentityKey) -> None:
    client = client_on(ed_bob, "bob")
    client.handle({"type": "welcome", "server": "s", "nick": "bob"}, NOW)
    frame: dict[str, Any] = {"type": "joined", "room": "#general", "members": ["x", 3, None]}
    expected = "You are bob in #general (nobody else is here)"
    assert client.handle(frame, NOW)[0].text == expected
    frame["members"] = "not a list"
    assert client.handle(frame, NOW)[0].text == expected
    frame["members"] = [{"nick": 1, "fingerprint": "SHA256:a"}, {"nick": "x"}]
    assert client.handle(frame, NOW)[0].text == expected
    assert client.directory == {}


def test_parted_switches_to_the_last_joined_room(bob: ChatClient) -> None:
    for room in ("#rust", "#python"):
        bob.handle({"type": "joined", "room": room, "members": []}, NOW)
    bob.handle({"type": "joined", "room": "#rust", "members": []}, NOW)
    assert (bob.rooms, bob.room) == (["#general", "#rust", "#python"], "#rust")
    assert bob.handle({"type": "parted", "room": "#rust"}, NOW) == [
        Line("notice", NOW, "You left #rust; now talking in #python")
    ]
    assert (bob.rooms, bob.room) == (["#general", "#python"], "#python")
    # Parting a room other than the current one keeps the current one.
    bob.handle({"type": "parted", "room": "#general"}, NOW)
    assert (bob.rooms, bob.room) == (["#python"], "#python")
    assert bob.handle({"type": "parted", "room": "#python"}, NOW) == [
        Line("notice", NOW, "You left #python; /join a room to talk")
    ]
    assert (bob.rooms, bob.room) == ([], "")


def test_part_through_a_real_server(net: Net, bob: ChatClient, ed_bob: IdentityKey) -> None:
    net.type(BOB, "/join #rust")
    _, shown = net.type(BOB, "/part")
    assert shown == {BOB: [Line("notice", NOW, "You left #rust; now talking in #general")]}
    assert bob.room == "#general"
    _, shown = net.type(BOB, "/part")
    assert shown == {
        BOB: [Line("notice", NOW, "You left #general; /join a room to talk")],
        ALICE: [
            Line(
                "leave",
                NOW,
                "bob left #general (part)",
                "bob",
                ed_bob.fingerprint,
                "#general",
            )
        ],
    }


def test_join_leave_and_nick_events(net: Net, alice: ChatClient, ed_bob: IdentityKey) -> None:
    _, shown = net.type(BOB, "/nick robert")
    assert shown == {
        ALICE: [Line("nick", NOW, "bob is now known as robert", "robert", ed_bob.fingerprint)],
        BOB: [Line("notice", NOW, "You are now known as robert")],
    }
    assert alice.directory["robert"] == ed_bob.fingerprint
    assert net.clients[BOB].nick == "robert"
    shown = net.deliver(net.server.disconnect(BOB, "quit"))
    assert shown == {
        ALICE: [
            Line(
                "leave",
                NOW,
                "robert left #general (quit)",
                "robert",
                ed_bob.fingerprint,
                "#general",
            )
        ]
    }


def test_info_lines(bob: ChatClient) -> None:
    frame = {
        "type": "info",
        "title": "Rooms",
        "lines": ["#general (2 members)", 7, "#rust (1 member)"],
    }
    assert bob.handle(frame, NOW) == [
        Line("info", NOW, "Rooms:"),
        Line("info", NOW, "  #general (2 members)"),
        Line("info", NOW, "  #rust (1 member)"),
    ]
    assert bob.handle({"type": "info", "title": "Empty", "lines": "x"}, NOW) == [
        Line("info", NOW, "Empty:")
    ]


def test_server_info_reaches_the_client(
    net: Net, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    _, shown = net.type(BOB, "/names")
    assert shown[BOB] == [
        Line("info", NOW, "Members of #general:"),
        Line("info", NOW, f"  @alice {ed_alice.fingerprint}"),
        Line("info", NOW, f"  bob {ed_bob.fingerprint}"),
    ]


def test_topic_event(net: Net) -> None:
    _, shown = net.type(BOB, "/topic Welcome, all")
    expected = Line(
        "topic", NOW, "bob set the topic of #general: Welcome, all", "bob", room="#general"
    )
    assert shown == {ALICE: [expected], BOB: [expected]}
    _, shown = net.type(ALICE, "/topic")
    assert shown == {ALICE: [Line("notice", NOW, "Topic of #general: Welcome, all")]}


def test_whois_online_rendering(ed_bob: IdentityKey) -> None:
    client = client_on(ed_bob, "bob")
    frame = {
        "type": "whois",
        "query": "Alice",
        "found": True,
        "fingerprint": "SHA256:a",
        "nick": "alice",
        "online": True,
        "connected_since": NOW,
        "idle": 75.9,
        "away": "lunch",
        "rooms": ["#general", "#rust"],
        "operator": True,
    }
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(NOW))
    texts = [
        "alice is SHA256:a",
        f"  online since {since}, idle 75 s",
        "  rooms: #general, #rust",
        "  away: lunch",
        "  is an operator",
    ]
    assert client.handle(frame, NOW) == [
        Line("info", NOW, text, "alice", "SHA256:a") for text in texts
    ]
    assert client.directory == {"alice": "SHA256:a"}


def test_whois_online_minimal_rendering(ed_bob: IdentityKey) -> None:
    client = client_on(ed_bob, "bob")
    frame = {
        "type": "whois",
        "query": "alice",
        "found": True,
        "fingerprint": "SHA256:a",
        "nick": "alice",
        "online": True,
        "connected_since": NOW,
        "idle": 0,
        "away": "",
        "rooms": [],
        "operator": False,
    }
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(NOW))
    assert [line.text for line in client.handle(frame, NOW)] == [
        "alice is SHA256:a",
        f"  online since {since}, idle 0 s",
        "  rooms: -",
    ]


def test_whois_offline_and_not_found(net: Net, ed_bob: IdentityKey) -> None:
    net.server.disconnect(BOB, "quit")
    _, shown = net.type(ALICE, "/whois bob")
    assert shown == {
        ALICE: [
            Line("info", NOW, f"bob is {ed_bob.fingerprint}", "bob", ed_bob.fingerprint),
            Line("info", NOW, "  offline", "bob", ed_bob.fingerprint),
        ]
    }
    _, shown = net.type(ALICE, "/whois zed")
    assert shown == {ALICE: [Line("error", NOW, "no such nick: zed")]}


def test_whois_from_a_real_server(net: Net, ed_alice: IdentityKey) -> None:
    net.type(ALICE, "/away brb", now=NOW + 10)
    _, shown = net.type(BOB, "/whois alice", now=NOW + 70)
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(NOW))
    assert [line.text for line in shown[BOB]] == [
        f"alice is {ed_alice.fingerprint}",
        f"  online since {since}, idle 60 s",
        "  rooms: #general",
        "  away: brb",
        "  is an operator",
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("connected_since", float("inf")),
        ("connected_since", float("nan")),
        ("connected_since", "yesterday"),
        ("connected_since", [1]),
        ("connected_since", 10**30),
        ("idle", float("nan")),
        ("idle", "soon"),
        ("idle", True),
        ("idle", -(10**12)),
    ],
)
def test_whois_with_hostile_numbers_is_a_malformed_frame(
    ed_bob: IdentityKey, field: str, value: object
) -> None:
    client = client_on(ed_bob, "bob")
    frame = {
        "type": "whois",
        "query": "alice",
        "found": True,
        "fingerprint": "SHA256:a",
        "nick": "alice",
        "online": True,
        "connected_since": NOW,
        "idle": 1,
        field: value,
    }
    assert client.handle(frame, NOW) == [
        Line(
            "error",
            NOW,
            f"malformed 'whois' frame from server: '{field}' must be a number of seconds",
        )
    ]


def test_bye_dismisses(net: Net, bob: ChatClient) -> None:
    _, shown = net.type(ALICE, "/kick bob enough")
    assert shown[BOB] == [Line("error", NOW, "Disconnected by the server: kicked by alice: enough")]
    assert bob.dismissed == "kicked by alice: enough"
    assert shown[ALICE] == [Line("notice", NOW, "kicked bob: enough")]


def test_history_lines_are_verified_and_marked(ed_alice: IdentityKey, ed_bob: IdentityKey) -> None:
    net = Net(make_server())
    net.add(ALICE, client_on(ed_alice, "alice"))
    net.type(ALICE, "first", now=NOW)
    net.type(ALICE, "/me waves", now=NOW + 1)
    shown = net.add(BOB, client_on(ed_bob, "bob"), now=NOW + 2)
    assert shown[BOB][2:] == [
        Line("notice", NOW + 2, "Last 2 messages of #general:", room="#general"),
        Line(
            "message", NOW, "first", "alice", ed_alice.fingerprint, "#general",
            verified=True, key_changed=False, history=True,
            id=f"{ed_alice.fingerprint}:{int(NOW * 1_000_000)}",
        ),
        Line(
            "action", NOW + 1, "waves", "alice", ed_alice.fingerprint, "#general",
            verified=True, key_changed=False, history=True,
            id=f"{ed_alice.fingerprint}:{int((NOW + 1) * 1_000_000)}",
        ),
    ]  # fmt: skip


def test_history_message_for_another_room_is_unverified(
    bob: ChatClient, ed_carol: IdentityKey
) -> None:
    frame = {
        "type": "history",
        "room": "#general",
        "messages": [
            _message(ed_carol, "#secret", body="moved", nick="carol"),
            _message(ed_carol, "#general", body="stays", nick="carol", counter=2),
            "not a message",
        ],
    }
    lines = bob.handle(frame, NOW)
    assert [(line.text, line.verified, line.history) for line in lines[1:]] == [
        ("moved", False, True),
        ("stays", True, True),
    ]


def test_history_does_not_count_as_live(bob: ChatClient, ed_carol: IdentityKey) -> None:
    live = _message(ed_carol, "#general", body="live", nick="carol", counter=9)
    assert bob.handle(live, NOW)[0].verified is True
    old = _message(ed_carol, "#general", body="old", nick="carol", counter=3)
    history = {"type": "history", "room": "#general", "messages": [old]}
    assert bob.handle(history, NOW)[1].verified is True
    # The same line live is not shown again; an older one never shown is not new either.
    assert bob.handle(old, NOW) == []
    older = _message(ed_carol, "#general", body="older", nick="carol", counter=2)
    [line] = bob.handle(older, NOW)
    assert (line.verified, line.problem) == (False, "replayed: shown before")


def test_private_message_for_someone_else_is_unverified(
    bob: ChatClient, ed_alice: IdentityKey, ed_carol: IdentityKey
) -> None:
    [line] = bob.handle(_message(ed_alice, "@" + ed_carol.fingerprint, body="for carol"), NOW)
    assert (line.kind, line.room, line.verified) == ("private", "", False)
    assert line.render("#general") == (
        f"[{_clock(NOW)}] ✗ UNVERIFIED (signed for someone else) *alice* for carol"
    )


def test_private_message_for_me_is_verified(
    bob: ChatClient, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    [line] = bob.handle(_message(ed_alice, "@" + ed_bob.fingerprint, body="for bob"), NOW)
    fp = ed_alice.fingerprint
    assert line == Line("private", NOW, "for bob", "alice", fp, "", True, False, id=f"{fp}:1")
    assert bob.last_private == ("alice", ed_alice.fingerprint)


def test_private_action(bob: ChatClient, ed_alice: IdentityKey, ed_bob: IdentityKey) -> None:
    [line] = bob.handle(_message(ed_alice, "@" + ed_bob.fingerprint, body="/me nods"), NOW)
    assert (line.kind, line.text, line.verified) == ("action", "nods", True)


def test_line_from_another_room_names_it(net: Net, bob: ChatClient) -> None:
    net.type(ALICE, "/join #rust")
    net.type(BOB, "/join #rust")
    net.type(BOB, "/join #general")  # back to #general as the current room
    assert bob.room == "#general"
    _, shown = net.type(ALICE, "hi")  # alice's current room is #rust
    [line] = shown[BOB]
    assert line.room == "#rust"
    assert line.render(bob.room) == f"[{_clock(NOW)}] #rust ✓ <alice> hi"
    assert line.render("#rust") == f"[{_clock(NOW)}] ✓ <alice> hi"


def test_server_error_for_a_refused_message(net: Net) -> None:
    server: ChatServer = net.server
    command(server, ALICE, "mute", "bob")
    [pending], shown = net.type(BOB, "can I talk?")
    refused = dataclasses.replace(
        pending, delivery="refused", problem="message rejected: you are muted"
    )
    assert shown == {BOB: [refused]}
    assert refused.render("#general") == (
        f"[{_clock(NOW)}] !!! not sent (message rejected: you are muted): <bob> can I talk?"
    )
    assert net.clients[BOB].undelivered == [refused]


def test_text_after_parting_every_room_is_refused_locally() -> None:
    client = client_on(IdentityKey.generate("ed25519"), "solo")
    client.handle({"type": "joined", "room": "#general", "topic": "", "members": []}, NOW)
    client.handle({"type": "parted", "room": "#general"}, NOW)
    for typed in ("anyone?", "/me waves"):
        lines = client.user_input(typed, NOW)
        assert [(line.kind, line.text) for line in lines] == [
            ("error", "you are in no room; /join one to talk")
        ]
    assert client.take_outbox() == [] and client.outstanding == 0


def test_text_typed_before_the_joined_frame_goes_to_general() -> None:
    client = client_on(IdentityKey.generate("ed25519"), "early")
    [pending] = client.user_input("first!", NOW)
    assert (pending.room, pending.delivery) == ("#general", "pending")
    assert client.take_outbox() == []  # nothing goes out before the server's welcome
    client.handle({"type": "welcome", "server": "s", "nick": "early"}, NOW)
    (frame,) = client.take_outbox()
    assert frame["type"] == "say" and frame["target"] == "#general"


def test_ping_is_answered_with_pong_and_shows_nothing(alice: ChatClient) -> None:
    assert alice.handle({"type": "ping"}, NOW) == []
    assert alice.take_outbox() == [{"type": "pong"}]
    assert alice.handle({"type": "pong"}, NOW) == []


def test_prepare_reconnect_rejoins_rooms_and_restores_the_current_one(
    net: Net, alice: ChatClient
) -> None:
    net.type(ALICE, "/join #rust")
    net.type(ALICE, "/join #go")
    net.type(ALICE, "/join #rust")  # back to #rust as the current room
    alice.prepare_reconnect()
    alice.prepare_reconnect()  # a failed attempt in between changes nothing
    # The user still talks in #rust: what they type meanwhile is for it.
    assert (alice.rooms, alice.room, alice.wanted_nick) == ([], "#rust", "alice")
    assert alice.rejoining == {"#general", "#rust", "#go"}
    [typed] = alice.user_input("typed while away", NOW)
    assert typed.room == "#rust"
    alice.handle({"type": "welcome", "server": "s", "nick": "alice", "fingerprint": "x"}, NOW)
    assert alice.take_outbox() == [
        {"type": "command", "name": "join", "args": "#go"},
        {"type": "command", "name": "join", "args": "#rust"},
    ]
    # The rejoins (and the server's join of #general) leave the current room where it was.
    for room in ("#general", "#go"):
        alice.handle({"type": "joined", "room": room, "members": []}, NOW)
        assert alice.room == "#rust"
    alice.handle({"type": "joined", "room": "#rust", "members": []}, NOW)
    assert (alice.room, alice.rejoining) == ("#rust", set())
    [frame] = alice.take_outbox()
    assert (frame["type"], frame["target"]) == ("say", "#rust")


def test_away_frame_updates_the_member_list_quietly(
    net: Net, alice: ChatClient, ed_bob: IdentityKey
) -> None:
    _, shown = net.type(BOB, "/away lunch")
    assert shown[ALICE] == []
    assert alice.members["#general"]["bob"].away == "lunch"
    net.type(BOB, "/back")
    assert alice.members["#general"]["bob"].away == ""
