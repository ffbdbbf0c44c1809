"""ChatServer commands: every command, every refusal, with exact frames and fixed times."""

from __future__ import annotations

import pytest

from tlschat.chat.frames import MAX_FRAME, encode_frame
from tlschat.chat.server.commands import COMMANDS
from tlschat.chat.server.events import ChatServer
from tlschat.chat.server.model import MAX_ROOMS_PER_USER
from tlschat.protocol.identity import IdentityKey
from tlschat.store import Ban

from .helpers import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    NOW,
    NOW_MS,
    command,
    connect,
    error,
    hello,
    info,
    joined,
    make_server,
    member,
    notice,
    rejected,
    relayed,
    say,
    sent,
)

SYNTAX = "(1-24 of letters, digits, _-[]{}|^`)"
ROOM_SYNTAX = "(#, then 1-32 letters, digits, _-)"


@pytest.fixture
def server(ed_alice: IdentityKey) -> ChatServer:
    """Alice's key is an operator in the configuration."""
    return make_server(operators=frozenset({ed_alice.fingerprint}))


# --- dispatch --------------------------------------------------------------------------------


def test_unknown_command(room: ChatServer) -> None:
    assert command(room, BOB, "dance") == error(BOB, "unknown command /dance; try /help")


OPERATOR_COMMANDS = [
    "op",
    "deop",
    "kick",
    "ban",
    "unban",
    "mute",
    "unmute",
    "reload",
    "allow",
    "disallow",
    "release",
    "invitation",
    "invitations",
    "revoke",
]


def test_operator_commands_are_exactly_these() -> None:
    assert [c.name for c in COMMANDS.values() if c.operator_only] == OPERATOR_COMMANDS


@pytest.mark.parametrize("name", OPERATOR_COMMANDS)
def test_non_operators_are_refused_operator_commands(room: ChatServer, name: str) -> None:
    assert command(room, BOB, name, "carol") == error(BOB, f"/{name} is for operators")
    assert room.store.active_ban(room.sessions[CAROL].fingerprint, NOW) is None
    assert room.mutes == {}
    assert CAROL in room.sessions and not room.sessions[CAROL].dismissed


# --- help ------------------------------------------------------------------------------------

USER_USAGES = [
    "/help",
    "/nick NAME",
    "/join #room",
    "/part #room",
    "/rooms",
    "/names [#room]",
    "/search TEXT [#room]",
    "/whois NICK",
    "/topic #room [TEXT]",
    "/away [MESSAGE]",
    "/back",
]
# A room's owner's and operators' commands (tests/chat/test_server_room_roles*.py): every user's.
ROOM_USAGES = [
    "/private #room",
    "/public #room",
    "/invite NICK|FP #room",
    "/uninvite NICK|FP #room",
    "/roomop NICK|FP #room",
    "/deroomop NICK|FP #room",
    "/rkick NICK|FP #room [REASON]",
    "/rban NICK|FP #room [30m|2h|7d] [REASON]",
    "/runban NICK|FP #room",
    "/rmute NICK|FP #room [DURATION]",
    "/runmute NICK|FP #room",
]
OPERATOR_USAGES = [
    "/op NICK|FP",
    "/deop NICK|FP",
    "/kick NICK [REASON]",
    "/ban NICK|FP [30m|2h|7d] [REASON]",
    "/unban NICK|FP",
    "/mute NICK|FP [DURATION]",
    "/unmute NICK|FP",
    "/encrypt #room",
    "/reload",
    "/allow NICK|FP",
    "/disallow NICK|FP",
    "/release NICK",
    "/invitation [7d] [HOST:PORT]",
    "/invitations",
    "/revoke ID",
]


def _help_lines(usages: list[str]) -> list[str]:
    summaries = {c.usage: c.summary for c in COMMANDS.values()}
    return [f"{usage:<28} {summaries[usage]}" for usage in usages]


def test_help_for_a_user_lists_user_commands_only(room: ChatServer) -> None:
    out = command(room, BOB, "help")
    usages = USER_USAGES + ROOM_USAGES + ["/encrypt #room"]  # a room's operators' too
    assert out == info(BOB, "Server commands", _help_lines(usages))
    assert out[0][1]["lines"][0] == "/help                        list the server's commands"
    assert not any("/ban" in line for line in out[0][1]["lines"])


def test_help_for_an_operator_adds_operator_commands(room: ChatServer) -> None:
    out = command(room, ALICE, "help")
    usages = USER_USAGES + ROOM_USAGES + OPERATOR_USAGES
    assert out == info(ALICE, "Server commands", _help_lines(usages))
    assert (
        "/ban NICK|FP [30m|2h|7d] [REASON] ban a key, for good or for a while"
        in (out[0][1]["lines"])
    )


# --- nick ------------------------------------------------------------------------------------


def test_nick_change_is_broadcast_and_registered(room: ChatServer, ed_alice: IdentityKey) -> None:
    out = command(room, ALICE, "nick", "alicia")
    event = {"type": "nick", "old": "alice", "new": "alicia", "fingerprint": ed_alice.fingerprint}
    assert out == [(ALICE, event), (BOB, event), (CAROL, event)]
    assert room.sessions[ALICE].nick == "alicia"
    assert room.store.nick_of(ed_alice.fingerprint) == "alicia"
    # A key owns one nick at a time: the old one is free.
    assert room.store.nick_owner("alice") is None


def test_nick_change_of_own_case_is_allowed(room: ChatServer) -> None:
    out = command(room, ALICE, "nick", "ALICE")
    assert out[0][1]["new"] == "ALICE"
    assert room.sessions[ALICE].nick == "ALICE"


def test_freed_nick_can_be_taken_by_another_key(room: ChatServer, ed_bob: IdentityKey) -> None:
    command(room, ALICE, "nick", "alicia")
    out = command(room, BOB, "nick", "Alice")
    event = {"type": "nick", "old": "bob", "new": "Alice", "fingerprint": ed_bob.fingerprint}
    assert out == [(ALICE, event), (BOB, event), (CAROL, event)]
    assert room.store.nick_owner("alice") == ed_bob.fingerprint


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ("no spaces", f"'no spaces' is not a valid nick {SYNTAX}"),
        ("", f"'' is not a valid nick {SYNTAX}"),
        ("x" * 25, f"'{'x' * 25}' is not a valid nick {SYNTAX}"),
        ("#room", f"'#room' is not a valid nick {SYNTAX}"),
        ("BOB", "'BOB' belongs to another key"),
        ("carol", "'carol' belongs to another key"),
    ],
)
def test_nick_refusals(room: ChatServer, args: str, text: str) -> None:
    assert command(room, ALICE, "nick", args) == error(ALICE, text)
    assert room.sessions[ALICE].nick == "alice"


def test_nick_of_an_offline_owner_is_refused(room: ChatServer) -> None:
    room.disconnect(CAROL, "quit")
    assert command(room, ALICE, "nick", "carol") == error(ALICE, "'carol' belongs to another key")


def test_nick_in_use_online_but_unregistered_is_refused(
    room: ChatServer, ed_dave: IdentityKey
) -> None:
    hello(room, DAVE, ed_dave, "")
    fallback = room.sessions[DAVE].nick
    assert command(room, ALICE, "nick", fallback) == error(
        ALICE, f"{fallback!r} belongs to another key"
    )


def test_owner_gets_the_nick_back_by_command_after_reconnect(
    room: ChatServer, ed_alice: IdentityKey
) -> None:
    room.disconnect(ALICE, "quit")
    assert command(room, BOB, "nick", "alice") == error(BOB, "'alice' belongs to another key")
    hello(room, 10, ed_alice, "")
    assert room.sessions[10].nick == "alice"
    command(room, 10, "nick", "ally")
    out = command(room, 10, "nick", "alice")
    assert out[0][1] == {
        "type": "nick",
        "old": "ally",
        "new": "alice",
        "fingerprint": ed_alice.fingerprint,
    }


def test_all_sessions_of_a_key_change_together(
    room: ChatServer, ed_alice: IdentityKey, ed_dave: IdentityKey
) -> None:
    hello(room, 10, ed_alice, "alice")
    hello(room, DAVE, ed_dave, "dave")
    command(room, DAVE, "part", "#general")
    command(room, 10, "join", "#rust")
    command(room, DAVE, "join", "#rust")
    out = command(room, ALICE, "nick", "alicia")
    event = {"type": "nick", "old": "alice", "new": "alicia", "fingerprint": ed_alice.fingerprint}
    # Everyone who shares a room with either session, and both sessions, once each.
    assert out == [(sid, event) for sid in (ALICE, BOB, CAROL, DAVE, 10)]
    assert room.sessions[ALICE].nick == room.sessions[10].nick == "alicia"


# --- join ------------------------------------------------------------------------------------


def test_join_new_room(room: ChatServer, ed_bob: IdentityKey) -> None:
    # Its first key owns it (tests/chat/test_server_room_roles.py), and 'joined' says so.
    expected = {**joined("#rust", [member("bob", ed_bob)]), "owner": ed_bob.fingerprint}
    assert command(room, BOB, "join", "#rust") == [(BOB, expected)]
    assert room.sessions[BOB].rooms == ["#general", "#rust"]


def test_join_without_hash_and_join_event_to_members(
    room: ChatServer, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    command(room, BOB, "join", "#rust")
    out = command(room, CAROL, "join", "rust")
    both = joined("#rust", [member("bob", ed_bob), member("carol", ed_carol)])
    assert out == [
        (CAROL, {**both, "owner": ed_bob.fingerprint}),
        (BOB, {"type": "join", "room": "#rust", **member("carol", ed_carol)}),
    ]


def test_rejoin_is_idempotent_and_returns_the_room_state(
    room: ChatServer, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    command(room, BOB, "join", "#rust")
    command(room, CAROL, "join", "#rust")
    command(room, CAROL, "topic", "#rust All about Rust")
    out = command(room, BOB, "join", "#rust")
    assert out == [
        (
            BOB,
            {
                **joined(
                    "#rust",
                    [member("bob", ed_bob), member("carol", ed_carol)],
                    topic="All about Rust",
                ),
                "owner": ed_bob.fingerprint,
            },
        )
    ]
    assert room.sessions[BOB].rooms == ["#general", "#rust"]


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        ("#no spaces", "#no spaces"),
        ("", ""),
        ("#" + "a" * 33, "#" + "a" * 33),
        ("#ümlaut", "#ümlaut"),
        ("##double", "##double"),
        ("rust!", "rust!"),
    ],
)
def test_join_invalid_room_names(room: ChatServer, args: str, shown: str) -> None:
    assert command(room, BOB, "join", args) == error(
        BOB, f"{shown!r} is not a valid room name {ROOM_SYNTAX}"
    )
    assert room.sessions[BOB].rooms == ["#general"]


def test_join_longest_valid_room_name(room: ChatServer) -> None:
    name = "#" + "a" * 32
    assert command(room, BOB, "join", name)[0][1]["room"] == name


def test_join_at_most_max_rooms(room: ChatServer) -> None:
    assert MAX_ROOMS_PER_USER == 20
    for n in range(MAX_ROOMS_PER_USER - 1):
        assert command(room, BOB, "join", f"#r{n}")[0][1]["type"] == "joined"
    assert len(room.sessions[BOB].rooms) == MAX_ROOMS_PER_USER
    assert command(room, BOB, "join", "#onemore") == error(
        BOB, "you are in 20 rooms already; /part one first"
    )
    # Rejoining a room already joined is still fine, and parting frees a place.
    assert command(room, BOB, "join", "#r0")[0][1]["type"] == "joined"
    command(room, BOB, "part", "#r0")
    assert command(room, BOB, "join", "#onemore")[0][1]["room"] == "#onemore"


# --- part ------------------------------------------------------------------------------------


def test_part_tells_the_parter_and_the_room(
    room: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    out = command(room, BOB, "part", "#general")
    leave = {"type": "leave", "room": "#general", **member("bob", ed_bob), "reason": "part"}
    assert out == [(BOB, {"type": "parted", "room": "#general"}), (ALICE, leave), (CAROL, leave)]
    assert room.sessions[BOB].rooms == []
    # Bob no longer hears #general and may not talk there.
    assert room.receive(ALICE, say(ed_alice), NOW) == [
        (CAROL, relayed(say(ed_alice), "alice", ed_alice)),
        sent(ALICE, "#general", 1),
    ]
    assert room.receive(BOB, say(ed_bob), NOW) == rejected(
        BOB, "message rejected: you are not in #general", 1
    )


def test_part_ignores_text_after_the_room(room: ChatServer) -> None:
    out = command(room, BOB, "part", "#general see you")
    assert out[0] == (BOB, {"type": "parted", "room": "#general"})


def test_part_a_room_you_are_not_in(room: ChatServer) -> None:
    assert command(room, BOB, "part", "#rust") == error(BOB, "you are not in #rust")


def test_part_usage(room: ChatServer) -> None:
    assert command(room, BOB, "part") == error(BOB, "usage: /part #room")


# --- rooms, names ----------------------------------------------------------------------------


def test_rooms_lists_counts_and_topics(room: ChatServer) -> None:
    command(room, ALICE, "join", "#rust")
    command(room, ALICE, "topic", "#rust Rust talk")
    command(room, BOB, "join", "#rust")
    command(room, CAROL, "join", "#python")
    command(room, CAROL, "join", "#empty")
    command(room, CAROL, "part", "#empty")
    command(room, ALICE, "topic", "#general General chat")
    assert command(room, BOB, "rooms") == info(
        BOB,
        "Rooms",
        [
            "#general (3 members): General chat",
            "#python (1 member)",
            "#rust (2 members): Rust talk",
        ],
    )


def test_names_marks_operators_and_away(
    room: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    command(room, BOB, "away", "lunch")
    expected = info(
        CAROL,
        "Members of #general",
        [
            f"@alice {ed_alice.fingerprint}",
            f"bob {ed_bob.fingerprint} (away: lunch)",
            f"carol {ed_carol.fingerprint}",
        ],
    )
    assert command(room, CAROL, "names", "#general") == expected
    # Without a room: the first room of the session.
    assert command(room, CAROL, "names") == expected


def test_names_sorted_case_insensitively(
    room: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    command(room, BOB, "nick", "Zed")
    command(room, CAROL, "nick", "Bea")
    lines = command(room, ALICE, "names")[0][1]["lines"]
    assert [line.split()[0] for line in lines] == ["@alice", "Bea", "Zed"]


def test_names_of_another_room(room: ChatServer, ed_bob: IdentityKey) -> None:
    command(room, BOB, "join", "#rust")
    assert command(room, CAROL, "names", "#rust") == info(
        CAROL, "Members of #rust", [f"bob {ed_bob.fingerprint} (owner)"]
    )


def test_names_of_an_empty_room(room: ChatServer) -> None:
    assert command(room, BOB, "names", "#nowhere") == error(BOB, "nobody is in #nowhere")


# --- whois -----------------------------------------------------------------------------------


def test_whois_online(room: ChatServer, ed_alice: IdentityKey) -> None:
    command(room, ALICE, "join", "#rust", now=NOW + 5)
    command(room, ALICE, "away", "lunch", now=NOW + 10)
    out = command(room, BOB, "whois", "ALICE", now=NOW + 30)
    assert out == [
        (
            BOB,
            {
                "type": "whois",
                "query": "ALICE",
                "found": True,
                "fingerprint": ed_alice.fingerprint,
                "nick": "alice",
                "online": True,
                "connected_since": NOW,
                "idle": 20.0,
                "away": "lunch",
                "rooms": ["#general", "#rust"],
                "operator": True,
            },
        )
    ]


def test_whois_by_fingerprint_of_a_user(room: ChatServer, ed_bob: IdentityKey) -> None:
    [(_, reply)] = command(room, ALICE, "whois", ed_bob.fingerprint)
    assert reply == {
        "type": "whois",
        "query": ed_bob.fingerprint,
        "found": True,
        "fingerprint": ed_bob.fingerprint,
        "nick": "bob",
        "online": True,
        "connected_since": NOW,
        "idle": 0.0,
        "away": "",
        "rooms": ["#general"],
        "operator": False,
    }


def test_whois_of_a_key_with_two_sessions(room: ChatServer, ed_bob: IdentityKey) -> None:
    hello(room, 10, ed_bob, "bob", now=NOW + 100)
    command(room, 10, "join", "#rust", now=NOW + 100)
    command(room, BOB, "back", now=NOW + 50)
    [(_, reply)] = command(room, ALICE, "whois", "bob", now=NOW + 130)
    assert reply["connected_since"] == NOW  # the earliest session
    assert reply["idle"] == 30.0  # since the latest activity of any session
    assert reply["rooms"] == ["#general", "#rust"]


def test_whois_offline_registered(room: ChatServer, ed_carol: IdentityKey) -> None:
    room.disconnect(CAROL, "quit")
    assert command(room, BOB, "whois", "Carol") == [
        (
            BOB,
            {
                "type": "whois",
                "query": "Carol",
                "found": True,
                "fingerprint": ed_carol.fingerprint,
                "nick": "carol",
                "online": False,
            },
        )
    ]


def test_whois_unknown(room: ChatServer) -> None:
    assert command(room, BOB, "whois", "nobody") == [
        (BOB, {"type": "whois", "query": "nobody", "found": False})
    ]


def test_whois_usage(room: ChatServer) -> None:
    assert command(room, BOB, "whois") == error(BOB, "usage: /whois NICK")


# --- topic -----------------------------------------------------------------------------------


def test_topic_show_when_none(room: ChatServer) -> None:
    assert command(room, BOB, "topic", "#general") == [notice(BOB, "#general has no topic")]


def test_topic_set_broadcast_persist_and_show(room: ChatServer) -> None:
    out = command(room, BOB, "topic", "#general Welcome, all")
    event = {"type": "topic", "room": "#general", "topic": "Welcome, all", "by": "bob"}
    assert out == [(ALICE, event), (BOB, event), (CAROL, event)]
    assert room.store.topics() == {"#general": "Welcome, all"}
    assert command(room, CAROL, "topic", "#general") == [
        notice(CAROL, "Topic of #general: Welcome, all")
    ]


def test_topic_of_a_room_you_are_not_in_can_be_shown_not_set(room: ChatServer) -> None:
    command(room, ALICE, "join", "#rust")
    command(room, ALICE, "topic", "#rust Rust")
    assert command(room, BOB, "topic", "#rust") == [notice(BOB, "Topic of #rust: Rust")]
    assert command(room, BOB, "topic", "#rust Python") == error(BOB, "you are not in #rust")
    assert room.topics["#rust"] == "Rust"


def test_topic_length_limit(room: ChatServer) -> None:
    assert command(room, BOB, "topic", "#general " + "x" * 300)[0][1]["type"] == "topic"
    for topic in ("x" * 301, "é" * 151):
        assert command(room, BOB, "topic", f"#general {topic}") == error(
            BOB, "a topic is at most 300 bytes of plain text"
        )
    assert room.topics["#general"] == "x" * 300


@pytest.mark.parametrize("topic", ["two\nlines", "esc\x1b[2J", "rtl\u202eoverride", "nul\x00"])
def test_topic_with_control_characters_refused(room: ChatServer, topic: str) -> None:
    assert command(room, BOB, "topic", f"#general {topic}") == error(
        BOB, "a topic is at most 300 bytes of plain text"
    )
    assert room.store.topics() == {}


def test_topic_refused_while_muted(room: ChatServer) -> None:
    command(room, ALICE, "mute", "bob")
    assert command(room, BOB, "topic", "#general mine now") == error(BOB, "you are muted")
    # Showing it is still fine.
    assert command(room, BOB, "topic", "#general") == [notice(BOB, "#general has no topic")]


def test_nick_refused_while_muted(room: ChatServer, ed_bob: IdentityKey) -> None:
    command(room, ALICE, "mute", "bob 10m")
    assert command(room, BOB, "nick", "bobby") == error(BOB, "you are muted")
    assert room.sessions[BOB].nick == "bob"
    assert room.store.nick_of(ed_bob.fingerprint) == "bob"
    assert room.store.nick_owner("bobby") is None
    # Once the mute ends, the nick is free to change again.
    assert (
        BOB,
        {"type": "nick", "old": "bob", "new": "bobby", "fingerprint": ed_bob.fingerprint},
    ) in (command(room, BOB, "nick", "bobby", now=NOW + 600))


def test_a_muted_key_reconnecting_keeps_its_nick(room: ChatServer, ed_bob: IdentityKey) -> None:
    command(room, ALICE, "mute", "bob 10m")
    room.disconnect(BOB, "quit")
    out = hello(room, 10, ed_bob, "bobby")
    assert room.sessions[10].nick == "bob"
    assert notice(10, "'bobby' not taken: you are muted; you are bob") in out
    assert room.store.nick_owner("bobby") is None
    # Its own nick, asked for, is no news.
    room.disconnect(10, "quit")
    hello(room, 11, ed_bob, "bob")
    assert room.sessions[11].nick == "bob"


@pytest.mark.parametrize("args", ["", "general new topic"])
def test_topic_usage(room: ChatServer, args: str) -> None:
    assert command(room, BOB, "topic", args) == error(BOB, "usage: /topic #room [new topic]")


# --- away, back ------------------------------------------------------------------------------


def away_event(key: IdentityKey, text: str) -> dict[str, str]:
    return {"type": "away", "nick": "bob", "fingerprint": key.fingerprint, "away": text}


def test_away_marks_every_session_of_the_key_and_tells_the_room(
    room: ChatServer, ed_bob: IdentityKey
) -> None:
    hello(room, 10, ed_bob, "bob")
    everyone = [ALICE, BOB, CAROL, 10]
    assert command(room, BOB, "away", "lunch") == [
        notice(BOB, "You are marked away: lunch"),
        *[(target, away_event(ed_bob, "lunch")) for target in everyone],
    ]
    assert room.sessions[BOB].away == room.sessions[10].away == "lunch"
    assert command(room, 10, "back") == [
        notice(10, "You are back"),
        *[(target, away_event(ed_bob, "")) for target in everyone],
    ]
    assert room.sessions[BOB].away == room.sessions[10].away == ""


def test_away_is_not_told_to_rooms_the_key_is_not_in(room: ChatServer, ed_bob: IdentityKey) -> None:
    command(room, ALICE, "join", "#rust")
    command(room, ALICE, "part", "#general")
    out = command(room, BOB, "away", "lunch")
    assert ALICE not in [target for target, _ in out]


def test_away_without_message(room: ChatServer, ed_bob: IdentityKey) -> None:
    assert command(room, BOB, "away")[0] == notice(BOB, "You are marked away: away")
    assert room.sessions[BOB].away == "away"


@pytest.mark.parametrize("text", ["x" * 201, "two\nlines", "esc\x1b[2J"])
def test_away_message_refused(room: ChatServer, text: str) -> None:
    assert command(room, BOB, "away", text) == error(
        BOB, "an away message is at most 200 bytes of plain text"
    )
    assert room.sessions[BOB].away == ""


def test_away_text_refused_while_muted(room: ChatServer, ed_bob: IdentityKey) -> None:
    hello(room, 10, ed_bob, "bob")
    command(room, ALICE, "mute", "bob")
    assert command(room, BOB, "away", "buy cheap pills at spam.example") == error(
        BOB, "you are muted"
    )
    assert room.sessions[BOB].away == room.sessions[10].away == ""
    assert command(room, CAROL, "whois", "bob")[0][1]["away"] == ""


def test_back_and_bare_away_allowed_while_muted(room: ChatServer, ed_bob: IdentityKey) -> None:
    command(room, BOB, "away", "lunch")
    command(room, ALICE, "mute", "bob")
    everyone = [ALICE, BOB, CAROL]
    # Clearing the away text says nothing of one's own.
    assert command(room, BOB, "back") == [
        notice(BOB, "You are back"),
        *[(target, away_event(ed_bob, "")) for target in everyone],
    ]
    # Nor does a bare /away: its text is the server's fixed "away".
    assert command(room, BOB, "away") == [
        notice(BOB, "You are marked away: away"),
        *[(target, away_event(ed_bob, "away")) for target in everyone],
    ]


# --- op, deop --------------------------------------------------------------------------------


def test_op_makes_an_operator(room: ChatServer, ed_bob: IdentityKey) -> None:
    assert command(room, ALICE, "op", "bob") == [
        notice(BOB, "alice made you an operator"),
        notice(ALICE, "bob is now an operator"),
    ]
    assert room.is_operator(ed_bob.fingerprint)
    listed = [c for c in COMMANDS.values() if c.listed]
    assert len(command(room, BOB, "help")[0][1]["lines"]) == len(listed)
    assert command(room, CAROL, "names")[0][1]["lines"][1].startswith("@bob ")
    assert command(room, BOB, "kick", "carol")[-1] == notice(BOB, "kicked carol: no reason given")


def test_op_by_fingerprint_of_an_offline_key(room: ChatServer, ed_dave: IdentityKey) -> None:
    assert command(room, ALICE, "op", ed_dave.fingerprint) == [
        notice(ALICE, f"{ed_dave.fingerprint} is now an operator")
    ]
    assert hello(room, DAVE, ed_dave, "dave")[0][1]["operator"] is True


@pytest.mark.parametrize(
    ("name", "args", "text"),
    [
        (name, args, text)
        for name in OPERATOR_COMMANDS
        # A room, nothing, a nick, an invitation: not a key.
        if name not in ("encrypt", "reload", "release", "invitation", "invitations", "revoke")
        for args, text in (("", "name a nick or a fingerprint"), ("zed", "no such nick: zed"))
    ],
)
def test_operator_commands_need_a_known_target(
    room: ChatServer, name: str, args: str, text: str
) -> None:
    assert command(room, ALICE, name, args) == error(ALICE, text)


def test_deop(room: ChatServer, ed_bob: IdentityKey) -> None:
    command(room, ALICE, "op", "bob")
    assert command(room, ALICE, "deop", "bob") == [notice(ALICE, "bob is no longer an operator")]
    assert not room.is_operator(ed_bob.fingerprint)
    assert command(room, BOB, "kick", "carol") == error(BOB, "/kick is for operators")


def test_configured_operator_cannot_be_deopped(room: ChatServer, ed_alice: IdentityKey) -> None:
    command(room, ALICE, "op", "bob")
    assert command(room, BOB, "deop", "alice") == error(
        BOB, "alice is an operator in the server's configuration"
    )
    assert command(room, ALICE, "deop", ed_alice.fingerprint) == error(
        ALICE, f"{ed_alice.fingerprint} is an operator in the server's configuration"
    )
    assert room.is_operator(ed_alice.fingerprint)


@pytest.mark.parametrize("name", ["kick", "mute"])
def test_configured_operator_cannot_be_kicked_or_muted(
    room: ChatServer, ed_alice: IdentityKey, name: str
) -> None:
    command(room, ALICE, "op", "bob")
    assert command(room, BOB, name, "alice 10m") == error(
        BOB, "alice is an operator in the server's configuration"
    )
    assert command(room, BOB, name, ed_alice.fingerprint) == error(
        BOB, f"{ed_alice.fingerprint} is an operator in the server's configuration"
    )
    # Not even by a configured operator (as with /deop).
    assert command(room, ALICE, name, "alice") == error(
        ALICE, "alice is an operator in the server's configuration"
    )
    assert room.mutes == {}
    assert not room.sessions[ALICE].dismissed
    assert command(room, ALICE, "topic", "#general still here")[0][1]["type"] == "topic"


def test_configured_operator_still_kicks_and_mutes_users_and_runtime_operators(
    room: ChatServer, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    command(room, ALICE, "op", "bob")
    assert command(room, ALICE, "mute", "bob") == [
        notice(BOB, "you were muted by alice"),
        notice(ALICE, "muted bob"),
    ]
    assert command(room, ALICE, "mute", "carol") == [
        notice(CAROL, "you were muted by alice"),
        notice(ALICE, "muted carol"),
    ]
    assert set(room.mutes) == {ed_bob.fingerprint, ed_carol.fingerprint}
    assert command(room, ALICE, "kick", "carol") == [
        (CAROL, {"type": "bye", "reason": "kicked by alice: no reason given"}),
        notice(ALICE, "kicked carol: no reason given"),
    ]


def test_runtime_operators_end_with_the_server(room: ChatServer, ed_bob: IdentityKey) -> None:
    command(room, ALICE, "op", "bob")
    restarted = make_server(room.store, operators=room.settings.operators)
    assert not restarted.is_operator(ed_bob.fingerprint)


# --- kick ------------------------------------------------------------------------------------


def test_kick_says_bye_to_every_session_of_the_key(room: ChatServer, ed_bob: IdentityKey) -> None:
    hello(room, 10, ed_bob, "bob")
    assert command(room, ALICE, "kick", "bob flooding the room") == [
        (BOB, {"type": "bye", "reason": "kicked by alice: flooding the room"}),
        (10, {"type": "bye", "reason": "kicked by alice: flooding the room"}),
        notice(ALICE, "kicked bob: flooding the room"),
    ]
    # Kicked, not banned: the key may come back.
    assert connect(room, 11, ed_bob) == []


def test_kick_without_reason(room: ChatServer) -> None:
    assert command(room, ALICE, "kick", "carol") == [
        (CAROL, {"type": "bye", "reason": "kicked by alice: no reason given"}),
        notice(ALICE, "kicked carol: no reason given"),
    ]


def test_kicked_session_is_not_heard_while_it_closes(room: ChatServer, ed_bob: IdentityKey) -> None:
    command(room, ALICE, "kick", "bob")
    assert room.receive(BOB, say(ed_bob), NOW) == []
    assert command(room, BOB, "nick", "bobby") == []
    assert room.store.recent_messages("#general", 10) == []
    leave = {
        "type": "leave",
        "room": "#general",
        **member("bob", ed_bob),
        "reason": "kicked by alice: no reason given",
    }
    assert room.disconnect(BOB, "kicked by alice: no reason given") == [
        (ALICE, leave),
        (CAROL, leave),
    ]


def test_kick_offline(room: ChatServer) -> None:
    room.disconnect(CAROL, "quit")
    assert command(room, ALICE, "kick", "carol") == error(ALICE, "carol is not online")


# --- ban, unban ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "seconds", "shown"),
    [("30m", 1800, "30m"), ("2h", 7200, "2h"), ("7d", 604800, "7d"), ("90s", 90, "1m30s")],
)
def test_ban_for_a_while(
    room: ChatServer,
    ed_alice: IdentityKey,
    ed_bob: IdentityKey,
    duration: str,
    seconds: int,
    shown: str,
) -> None:
    out = command(room, ALICE, "ban", f"bob {duration} spamming links")
    assert out == [
        (BOB, {"type": "bye", "reason": f"banned for {shown} by alice: spamming links"}),
        notice(ALICE, f"banned bob ({ed_bob.fingerprint}) for {shown}"),
    ]
    assert room.store.active_ban(ed_bob.fingerprint, NOW) == Ban(
        ed_bob.fingerprint, NOW + seconds, "spamming links", ed_alice.fingerprint
    )


def test_ban_for_good(room: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey) -> None:
    assert command(room, ALICE, "ban", "bob") == [
        (BOB, {"type": "bye", "reason": "banned for good by alice: no reason given"}),
        notice(ALICE, f"banned bob ({ed_bob.fingerprint}) for good"),
    ]
    assert room.store.active_ban(ed_bob.fingerprint, NOW + 10**9) == Ban(
        ed_bob.fingerprint, None, "no reason given", ed_alice.fingerprint
    )


def test_ban_for_good_with_a_reason(room: ChatServer, ed_bob: IdentityKey) -> None:
    out = command(room, ALICE, "ban", "bob being rude")
    assert out[0] == (BOB, {"type": "bye", "reason": "banned for good by alice: being rude"})


def test_ban_every_session_of_the_key(room: ChatServer, ed_bob: IdentityKey) -> None:
    hello(room, 10, ed_bob, "bob")
    out = command(room, ALICE, "ban", "bob 1h")
    bye = {"type": "bye", "reason": "banned for 1h by alice: no reason given"}
    assert out[:2] == [(BOB, bye), (10, bye)]


def test_connect_while_banned_gets_bye_with_reason(room: ChatServer, ed_bob: IdentityKey) -> None:
    command(room, ALICE, "ban", "bob 2h spamming")
    room.disconnect(BOB, "banned")
    assert connect(room, 10, ed_bob, now=NOW + 3600) == [
        (10, {"type": "bye", "reason": "you are banned for 1h: spamming"})
    ]
    assert connect(room, 11, ed_bob, now=NOW + 3599) == [
        (11, {"type": "bye", "reason": "you are banned for 1h1s: spamming"})
    ]


def test_connect_while_banned_for_good(room: ChatServer, ed_bob: IdentityKey) -> None:
    command(room, ALICE, "ban", "bob spam")
    assert connect(room, 10, ed_bob, now=NOW + 10**8) == [
        (10, {"type": "bye", "reason": "you are banned for good: spam"})
    ]


def test_refused_session_is_not_admitted_by_a_pipelined_hello(
    room: ChatServer, ed_bob: IdentityKey, ed_alice: IdentityKey
) -> None:
    # A client may send its hello right behind its handshake: the bye must still hold.
    command(room, ALICE, "ban", "bob spam")
    room.disconnect(BOB, "banned")
    assert connect(room, 10, ed_bob)[0][1]["type"] == "bye"
    assert room.receive(10, {"type": "hello", "nick": "bob"}, NOW) == []
    assert room.receive(10, say(ed_bob), NOW) == []
    assert room.sessions[10].rooms == []
    assert room.store.recent_messages("#general", 10) == []
    assert room.disconnect(10, "you are banned for good: spam") == []


def test_ban_expires(room: ChatServer, ed_bob: IdentityKey) -> None:
    command(room, ALICE, "ban", "bob 30m")
    room.disconnect(BOB, "banned")
    assert connect(room, 10, ed_bob, now=NOW + 1799)[0][1]["type"] == "bye"
    assert connect(room, 11, ed_bob, now=NOW + 1800) == []
    assert room.store.active_ban(ed_bob.fingerprint, NOW) is None  # removed on expiry
    assert room.receive(11, {"type": "hello", "nick": "bob"}, NOW + 1800)[0][1]["nick"] == "bob"


def test_ban_by_fingerprint_of_an_unknown_key(room: ChatServer, ed_dave: IdentityKey) -> None:
    fp = ed_dave.fingerprint
    assert command(room, ALICE, "ban", f"{fp} 7d spam") == [
        notice(ALICE, f"banned {fp} ({fp}) for 7d")
    ]
    assert connect(room, DAVE, ed_dave, now=NOW + 86400) == [
        (DAVE, {"type": "bye", "reason": "you are banned for 6d: spam"})
    ]


def test_ban_by_nick_of_an_offline_key(room: ChatServer, ed_carol: IdentityKey) -> None:
    room.disconnect(CAROL, "quit")
    assert command(room, ALICE, "ban", "carol") == [
        notice(ALICE, f"banned carol ({ed_carol.fingerprint}) for good")
    ]


def test_operators_cannot_be_banned(room: ChatServer, ed_alice: IdentityKey) -> None:
    command(room, ALICE, "op", "carol")
    assert command(room, ALICE, "ban", "carol 1h") == error(
        ALICE, "carol is an operator; /deop first"
    )
    assert command(room, CAROL, "ban", "alice") == error(CAROL, "alice is an operator; /deop first")
    assert command(room, CAROL, "ban", ed_alice.fingerprint)[0][1]["type"] == "error"
    assert room.store.active_ban(ed_alice.fingerprint, NOW) is None


def test_unban(room: ChatServer, ed_bob: IdentityKey) -> None:
    command(room, ALICE, "ban", "bob")
    room.disconnect(BOB, "banned")
    assert command(room, ALICE, "unban", "bob") == [
        notice(ALICE, f"unbanned bob ({ed_bob.fingerprint})")
    ]
    assert connect(room, 10, ed_bob) == []


def test_unban_by_fingerprint(room: ChatServer, ed_dave: IdentityKey) -> None:
    fp = ed_dave.fingerprint
    command(room, ALICE, "ban", fp)
    assert command(room, ALICE, "unban", fp) == [notice(ALICE, f"unbanned {fp} ({fp})")]


def test_unban_when_not_banned(room: ChatServer) -> None:
    assert command(room, ALICE, "unban", "bob") == error(ALICE, "bob is not banned")


def test_unban_after_the_ban_expired(room: ChatServer) -> None:
    # An expired ban is no ban: there is nothing to lift.
    command(room, ALICE, "ban", "bob 30m")
    assert command(room, ALICE, "unban", "bob", now=NOW + 1800) == error(ALICE, "bob is not banned")


# --- mute, unmute ----------------------------------------------------------------------------


def test_mute_for_a_while(room: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey) -> None:
    assert command(room, ALICE, "mute", "bob 10m") == [
        notice(BOB, "you were muted for 10m by alice"),
        notice(ALICE, "muted bob for 10m"),
    ]
    assert room.receive(BOB, say(ed_bob, counter=1), NOW) == rejected(
        BOB, "message rejected: you are muted for 10m", 1
    )
    later = say(ed_bob, counter=2, ts=NOW_MS + 60_000)
    assert room.receive(BOB, later, NOW + 60) == rejected(
        BOB, "message rejected: you are muted for 9m", 2
    )
    # (Private messages, encrypted, still pass: test_server_e2e_lines.py.) The mute ends by itself.
    after = say(ed_bob, counter=3, ts=NOW_MS + 600_000)
    out = room.receive(BOB, after, NOW + 600)
    assert [sid for sid, _ in out] == [ALICE, CAROL, BOB]
    assert out[-1] == sent(BOB, "#general", 3)


def test_mute_for_good(room: ChatServer, ed_bob: IdentityKey) -> None:
    assert command(room, ALICE, "mute", "bob") == [
        notice(BOB, "you were muted by alice"),
        notice(ALICE, "muted bob"),
    ]
    late = say(ed_bob, ts=NOW_MS + 10**9)
    assert room.receive(BOB, late, NOW + 10**6) == rejected(
        BOB, "message rejected: you are muted", 1
    )
    # A refused message does not use up its counter.
    assert room.store.last_counter(ed_bob.fingerprint) == -1


def test_mute_every_session_is_told(room: ChatServer, ed_bob: IdentityKey) -> None:
    hello(room, 10, ed_bob, "bob")
    assert command(room, ALICE, "mute", "bob 1h") == [
        notice(BOB, "you were muted for 1h by alice"),
        notice(10, "you were muted for 1h by alice"),
        notice(ALICE, "muted bob for 1h"),
    ]


def test_unmute(room: ChatServer, ed_bob: IdentityKey) -> None:
    command(room, ALICE, "mute", "bob")
    assert command(room, ALICE, "unmute", "bob") == [
        notice(BOB, "you were unmuted by alice"),
        notice(ALICE, "unmuted bob"),
    ]
    out = room.receive(BOB, say(ed_bob), NOW)
    assert [sid for sid, _ in out] == [ALICE, CAROL, BOB]
    assert out[-1] == sent(BOB, "#general", 1)


def test_unmute_when_not_muted(room: ChatServer) -> None:
    assert command(room, ALICE, "unmute", "bob") == error(ALICE, "bob is not muted")


def test_unmute_after_the_mute_expired(room: ChatServer) -> None:
    command(room, ALICE, "mute", "bob 10m")
    assert command(room, ALICE, "unmute", "bob", now=NOW + 600) == error(ALICE, "bob is not muted")


# --- allowlist -------------------------------------------------------------------------------


def test_allowlist_admits_listed_keys_and_operators(
    ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    server = make_server(
        operators=frozenset({ed_alice.fingerprint}), allowlist=frozenset({ed_bob.fingerprint})
    )
    assert connect(server, ALICE, ed_alice) == []
    assert connect(server, BOB, ed_bob) == []
    # An unlisted key is turned away in answer to its hello (which might bring an invitation).
    assert hello(server, CAROL, ed_carol, "carol") == [
        (
            CAROL,
            {
                "type": "bye",
                "reason": (f"this server admits listed keys only; yours is {ed_carol.fingerprint}"),
            },
        )
    ]
    assert server.receive(CAROL, {"type": "ping"}, NOW) == []


def test_empty_allowlist_admits_operators_only(ed_alice: IdentityKey, ed_bob: IdentityKey) -> None:
    server = make_server(operators=frozenset({ed_alice.fingerprint}), allowlist=frozenset())
    assert connect(server, ALICE, ed_alice) == []
    assert hello(server, BOB, ed_bob, "bob")[0][1]["type"] == "bye"


def test_without_allowlist_everyone_is_admitted(ed_carol: IdentityKey) -> None:
    assert connect(make_server(), CAROL, ed_carol) == []


def test_ban_is_checked_before_the_allowlist(ed_alice: IdentityKey, ed_bob: IdentityKey) -> None:
    server = make_server(allowlist=frozenset({ed_bob.fingerprint}))
    server.store.add_ban(Ban(ed_bob.fingerprint, None, "spam", ed_alice.fingerprint))
    assert connect(server, BOB, ed_bob) == [
        (BOB, {"type": "bye", "reason": "you are banned for good: spam"})
    ]


def test_whois_of_a_well_formed_but_unknown_fingerprint_is_not_found() -> None:
    server = make_server()
    hello(server, 1, IdentityKey.generate("ed25519"), "asker")
    unknown = "SHA256:" + "A" * 43
    assert command(server, 1, "whois", unknown) == [
        (1, {"type": "whois", "query": unknown, "found": False})
    ]


def test_rooms_counts_keys_not_sessions() -> None:
    server = make_server()
    key = IdentityKey.generate("ed25519")
    for session_id in (1, 2):
        hello(server, session_id, key, "twin")
    (reply,) = command(server, 1, "rooms")
    assert reply[1]["lines"] == ["#general (1 member)"]


def test_joined_lists_each_key_once_and_fits_one_frame() -> None:
    server = make_server(max_body_bytes=4096)
    twin = IdentityKey.generate("ed25519")
    hello(server, 1, twin, "twin")
    hello(server, 2, twin, "twin")
    for session_id in range(3, 703):  # 702 keys: more than one frame's worth of members
        hello(server, session_id, IdentityKey.generate("ed25519"), f"user{session_id}")
    out = hello(server, 800, IdentityKey.generate("ed25519"), "late")
    (joined,) = [frame for _, frame in out if frame["type"] == "joined"]
    fingerprints = [member["fingerprint"] for member in joined["members"]]
    assert len(fingerprints) == len(set(fingerprints))
    assert fingerprints.count(twin.fingerprint) == 1
    assert 400 < len(joined["members"]) < 702
    assert len(encode_frame(joined)) <= MAX_FRAME


# --- the work budget -------------------------------------------------------------------------


def test_a_join_part_flood_spends_the_keys_work_budget(room: ChatServer) -> None:
    """20 part/join pairs fit the burst (300 units at 15 a pair); past it every command is
    refused with the wait, until the budget refills at 30 units a second: 2 pairs."""
    done = refused = 0
    for _ in range(25):
        for name in ("part", "join"):
            out = command(room, ALICE, name, "#general")
            done += sum(1 for sid, f in out if sid == ALICE and f["type"] in ("parted", "joined"))
            refused += sum(1 for sid, f in out if sid == ALICE and "retry_after" in f)
    assert done == 40 and refused == 10
    [(_, refusal)] = command(room, ALICE, "part", "#general")
    assert refusal["text"].startswith("slow down: too many commands; you can send again in")
    assert refusal["retry_after"] > 0
    # A second later: two more pairs, then refused again.
    later = NOW + 1
    for _ in range(2):
        assert command(room, ALICE, "part", "#general", now=later)[0][1]["type"] == "parted"
        assert command(room, ALICE, "join", "#general", now=later)[0][1]["type"] != "error"
    assert "retry_after" in command(room, ALICE, "part", "#general", now=later)[0][1]
    # Another key is not affected, and pings cost too (one unit each).
    assert command(room, BOB, "names", "#general")[0][1]["type"] == "info"
    for _ in range(300):
        room.receive(CAROL, {"type": "ping"}, NOW)
    assert "retry_after" in room.receive(CAROL, {"type": "ping"}, NOW)[0][1]
