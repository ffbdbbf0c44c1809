"""Kicks, bans and mutes within a room (docs/PROTOCOL.md, section 22, "Private rooms and room
roles"): by its owner and operators (and server operators, in any room), on keys below them; the
key stays connected and in its other rooms. Exact frames, fixed times."""

from __future__ import annotations

import pytest

from tlschat.chat.server.events import ChatServer
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
    error,
    hello,
    make_server,
    member,
    notice,
    rejected,
    say,
    sent,
)
from .room_roles_helpers import INVITE_ONLY, TEAM, team, texts, to
from .server_e2e_helpers import hello_device, megolm_say


@pytest.fixture
def server(ed_dave: IdentityKey) -> ChatServer:
    """dave's key is a server operator (in the configuration)."""
    return make_server(operators=frozenset({ed_dave.fingerprint}))


# --- kick ------------------------------------------------------------------------------------


def test_a_kick_removes_the_key_from_the_room_only(room: ChatServer, ed_bob: IdentityKey) -> None:
    team(room)
    out = command(room, ALICE, "rkick", "bob #team too chatty")
    assert out == [
        notice(BOB, "you were kicked from #team by alice: too chatty"),
        (BOB, {"type": "parted", "room": TEAM}),
        (
            ALICE,
            {
                "type": "leave",
                "room": TEAM,
                **member("bob", ed_bob),
                "reason": "kicked by alice: too chatty",
            },
        ),
        notice(ALICE, "kicked bob from #team: too chatty"),
    ]
    assert room.sessions[BOB].rooms == ["#general"] and not room.sessions[BOB].dismissed
    # An invite-only room's membership ends with it: a new invitation is needed.
    assert command(room, BOB, "join", TEAM) == error(BOB, INVITE_ONLY)
    assert ed_bob.fingerprint not in room.store.room_states()[TEAM].admitted


def test_a_kick_from_an_open_room_lets_the_key_come_back(room: ChatServer) -> None:
    team(room, private=False)
    out = command(room, ALICE, "rkick", "bob #team")
    assert texts(ALICE, out) == ["kicked bob from #team: no reason given"]
    assert to(BOB, command(room, BOB, "join", TEAM), "joined")


def test_a_kick_takes_every_session_of_the_key(room: ChatServer, ed_bob: IdentityKey) -> None:
    team(room)
    hello(room, 10, ed_bob, "bob")
    command(room, 10, "join", TEAM)
    out = command(room, ALICE, "rkick", "bob #team")
    assert to(BOB, out, "parted") == to(10, out, "parted") == [{"type": "parted", "room": TEAM}]
    assert len(to(ALICE, out, "leave")) == 1  # one key left


def test_a_server_operator_kicks_from_any_room_also_general(
    room: ChatServer, ed_dave: IdentityKey
) -> None:
    hello(room, DAVE, ed_dave, "dave")
    out = command(room, DAVE, "rkick", "bob #general spam")
    assert to(BOB, out, "parted") == [{"type": "parted", "room": "#general"}]
    assert room.sessions[BOB].rooms == []


@pytest.mark.parametrize(
    ("session_id", "args", "text"),
    [
        (CAROL, "bob #team", "only the operators of #team (or a server operator) can do that"),
        (ALICE, "carol #team", "carol is not in #team"),
        (ALICE, "alice #team", "alice is the owner of #team"),
        (BOB, "alice #team", "alice is the owner of #team"),
        (ALICE, "bob", "usage: /rkick NICK|FP #room [REASON]"),
        (ALICE, "bob #team \x1b[2J", "a reason is at most 200 bytes of plain text"),
        (ALICE, "bob #team " + "x" * 201, "a reason is at most 200 bytes of plain text"),
    ],
)
def test_kick_refusals(room: ChatServer, session_id: int, args: str, text: str) -> None:
    team(room)
    command(room, ALICE, "roomop", "bob #team")
    assert command(room, session_id, "rkick", args) == error(session_id, text)


def test_room_operators_do_not_act_on_each_other(room: ChatServer) -> None:
    team(room)
    command(room, ALICE, "invite", "carol #team")
    command(room, CAROL, "join", TEAM)
    command(room, ALICE, "roomop", "bob #team")
    command(room, ALICE, "roomop", "carol #team")
    assert command(room, BOB, "rkick", "carol #team") == error(BOB, "carol is an operator of #team")
    # The owner acts on its operators.
    assert texts(ALICE, command(room, ALICE, "rmute", "carol #team")) == ["muted carol in #team"]


# --- ban -------------------------------------------------------------------------------------


def test_a_ban_for_a_while_keeps_the_key_out_until_it_ends(
    room: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    team(room, private=False)
    out = command(room, ALICE, "rban", "bob #team 2h spam")
    assert texts(BOB, out) == ["you were banned from #team for 2h by alice: spam"]
    assert to(ALICE, out, "leave")[0]["reason"] == "banned for 2h by alice: spam"
    assert texts(ALICE, out) == [f"banned bob ({ed_bob.fingerprint}) from #team for 2h"]
    stored = room.store.room_states()[TEAM].bans
    assert stored == {
        ed_bob.fingerprint: Ban(ed_bob.fingerprint, NOW + 7200, "spam", ed_alice.fingerprint)
    }
    assert command(room, BOB, "join", TEAM, NOW + 60) == error(
        BOB, "you are banned from #team for 1h59m: spam"
    )
    assert command(room, ALICE, "invite", "bob #team") == error(
        ALICE, "bob is banned from #team; /runban first"
    )
    assert to(BOB, command(room, BOB, "join", TEAM, NOW + 7201), "joined")


def test_a_ban_for_good_until_lifted(room: ChatServer, ed_bob: IdentityKey) -> None:
    team(room)
    command(room, ALICE, "roomop", "bob #team")
    command(room, ALICE, "rban", "bob #team")
    # A banned operator is an operator no more.
    assert room.store.room_states()[TEAM].operators == set()
    assert command(room, BOB, "join", TEAM) == error(
        BOB, "you are banned from #team for good: no reason given"
    )
    out = command(room, ALICE, "runban", "bob #team")
    assert out == [notice(ALICE, f"unbanned bob ({ed_bob.fingerprint}) from #team")]
    assert room.store.room_states()[TEAM].bans == {}
    # Unbanned is not invited: the room is still invite-only.
    assert command(room, BOB, "join", TEAM) == error(BOB, INVITE_ONLY)
    assert command(room, ALICE, "runban", "bob #team") == error(
        ALICE, "bob is not banned from #team"
    )


def test_a_room_ban_is_not_a_server_ban(room: ChatServer, ed_bob: IdentityKey) -> None:
    team(room)
    command(room, ALICE, "rban", "bob #team")
    assert room.store.active_ban(ed_bob.fingerprint, NOW) is None
    assert not room.sessions[BOB].dismissed
    command(room, BOB, "join", "#elsewhere")
    assert room.sessions[BOB].rooms == ["#general", "#elsewhere"]


def test_sanctions_that_ran_out_are_forgotten_by_the_next_one(
    room: ChatServer, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    team(room, private=False)
    command(room, CAROL, "join", TEAM)
    command(room, ALICE, "rban", "bob #team 1m")
    command(room, ALICE, "rmute", "carol #team 1m")
    command(room, ALICE, "rban", "carol #team 1h", NOW + 120)
    command(room, BOB, "join", TEAM, NOW + 120)
    command(room, ALICE, "rmute", "bob #team", NOW + 130)
    state = room.store.room_states()[TEAM]
    assert set(state.bans) == {ed_carol.fingerprint}
    assert state.mutes == {ed_bob.fingerprint: None}


def test_bans_are_bounded(room: ChatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from tlschat.chat.server import room_commands

    monkeypatch.setattr(room_commands, "MAX_ROOM_BANS", 1)
    team(room)
    command(room, ALICE, "rban", "bob #team")
    assert command(room, ALICE, "rban", "carol #team") == error(
        ALICE, "#team has 1 bans already; /runban some first"
    )
    # Banning the same key again (to change how long) is no new ban.
    assert texts(ALICE, command(room, ALICE, "rban", "bob #team 1h"))[0].endswith("for 1h")


# --- mute ------------------------------------------------------------------------------------


def test_a_key_muted_in_a_room_is_silent_there_only(room: ChatServer, ed_bob: IdentityKey) -> None:
    team(room, private=False)
    out = command(room, ALICE, "rmute", "bob #team 10m")
    assert out == [
        notice(BOB, "you were muted in #team for 10m by alice"),
        notice(ALICE, "muted bob in #team for 10m"),
    ]
    assert room.receive(BOB, say(ed_bob, 1, target=TEAM), NOW) == rejected(
        BOB, "message rejected: you are muted in #team for 10m", 1
    )
    assert command(room, BOB, "topic", "#team mine now") == error(
        BOB, "you are muted in #team for 10m"
    )
    # Elsewhere it talks; and in #team again once the mute ends.
    assert sent(BOB, "#general", 2) in room.receive(BOB, say(ed_bob, 2), NOW)
    later = room.receive(BOB, say(ed_bob, 3, ts=NOW_MS + 601_000, target=TEAM), NOW + 601)
    assert sent(BOB, TEAM, 3) in later


def test_unmute(room: ChatServer, ed_bob: IdentityKey) -> None:
    team(room, private=False)
    command(room, ALICE, "rmute", "bob #team")
    out = command(room, ALICE, "runmute", "bob #team")
    assert out == [
        notice(BOB, "you were unmuted in #team by alice"),
        notice(ALICE, "unmuted bob in #team"),
    ]
    assert sent(BOB, TEAM, 1) in room.receive(BOB, say(ed_bob, 1, target=TEAM), NOW)
    assert command(room, ALICE, "runmute", "bob #team") == error(ALICE, "bob is not muted in #team")


def test_a_room_mute_holds_for_encrypted_lines_too(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    from tlschat.e2e.device import Device

    server = make_server()
    hello_device(server, ALICE, ed_alice, "alice", Device.create())
    hello_device(server, BOB, ed_bob, "bob", Device.create())
    team(server)  # invite-only, so end-to-end encrypted
    command(server, ALICE, "rmute", "bob #team")
    assert server.receive(BOB, megolm_say(ed_bob, 1, TEAM), NOW) == rejected(
        BOB, "message rejected: you are muted in #team", 1
    )
    assert sent(ALICE, TEAM, 1) in server.receive(ALICE, megolm_say(ed_alice, 1, TEAM), NOW)


def test_a_server_operator_is_never_muted_in_a_room(room: ChatServer, ed_dave: IdentityKey) -> None:
    team(room)
    hello(room, DAVE, ed_dave, "dave")
    command(room, DAVE, "join", TEAM)
    assert command(room, ALICE, "rmute", "dave #team") == error(ALICE, "dave is a server operator")
    assert command(room, ALICE, "rban", "dave #team") == error(ALICE, "dave is a server operator")
