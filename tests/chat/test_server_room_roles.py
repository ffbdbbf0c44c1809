"""Private rooms and room roles at the server (docs/PROTOCOL.md, section 22, "Private rooms and room
roles"): a room's first key owns it; its owner and operators make it invite-only (and so end-to-end
encrypted) and invite keys; an invite-only room shows nothing of itself to keys it does not admit;
server operators may do all of it in any room. Exact frames, fixed times."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tlschat.chat.server import room_roles
from tlschat.chat.server.cluster_events import Join, RoomMode, RoomOwner
from tlschat.chat.server.events import ChatServer
from tlschat.chat.server.model import ChatSettings, Outgoing
from tlschat.protocol.identity import IdentityKey
from tlschat.store import SQLiteStore

from .helpers import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    NETWORK,
    NOW,
    Frames,
    command,
    error,
    hello,
    info,
    joined,
    make_server,
    member,
    notice,
    say,
)
from .room_roles_helpers import INVITE_ONLY, TEAM, Deferred, mentions, team, texts, to

ENCRYPTED_BY_ALICE = {"type": "encrypted", "room": TEAM, "by": "alice"}


@pytest.fixture
def server(ed_dave: IdentityKey) -> ChatServer:
    """dave's key is a server operator (in the configuration); he connects when a test says so."""
    return make_server(operators=frozenset({ed_dave.fingerprint}))


# --- owners ----------------------------------------------------------------------------------


def test_the_first_key_to_join_a_room_owns_it(
    room: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    out = command(room, ALICE, "join", TEAM)
    assert out == [
        (ALICE, {**joined(TEAM, [member("alice", ed_alice)]), "owner": ed_alice.fingerprint})
    ]
    out = command(room, BOB, "join", TEAM)
    assert to(BOB, out, "joined")[0]["owner"] == ed_alice.fingerprint
    assert room.store.room_states()[TEAM].owner == ed_alice.fingerprint
    # Leaving does not give it up: the owner is the owner for good.
    command(room, ALICE, "part", TEAM)
    command(room, CAROL, "join", TEAM)
    assert room.room_book.rank(TEAM, ed_alice.fingerprint, False) == 2
    assert room.store.room_states()[TEAM].owner == ed_alice.fingerprint


def test_general_is_everyones(room: ChatServer, ed_dave: IdentityKey) -> None:
    assert room.room_book.get("#general") is None
    assert "owner" not in to(ALICE, command(room, ALICE, "join", "#general"), "joined")[0]
    hello(room, DAVE, ed_dave, "dave")
    assert command(room, DAVE, "private", "#general") == error(DAVE, "#general is open to everyone")
    assert command(room, DAVE, "rban", "bob #general") == error(
        DAVE, "#general is everyone's: /ban bans a key from the server"
    )


def test_a_room_without_an_owner_is_owned_by_its_next_joiner(
    room: ChatServer, ed_dave: IdentityKey, ed_carol: IdentityKey
) -> None:
    hello(room, DAVE, ed_dave, "dave")
    command(room, DAVE, "invite", "bob #later")  # a server operator: the room has no owner yet
    assert room.room_book.get("#later") is not None
    assert room.store.room_states()["#later"].owner is None
    command(room, CAROL, "join", "#later")
    assert room.store.room_states()["#later"].owner == ed_carol.fingerprint


def test_a_key_owns_a_bounded_number_of_rooms(
    room: ChatServer, monkeypatch: pytest.MonkeyPatch, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    monkeypatch.setattr(room_roles, "MAX_OWNED_ROOMS", 2)
    for name in ("#a", "#b", "#c"):
        command(room, ALICE, "join", name)
    owners = {name: state.owner for name, state in room.store.room_states().items()}
    assert owners == {"#a": ed_alice.fingerprint, "#b": ed_alice.fingerprint}
    command(room, BOB, "join", "#c")
    assert room.store.room_states()["#c"].owner == ed_bob.fingerprint


# --- invite-only -----------------------------------------------------------------------------


def test_private_makes_a_room_invite_only_and_end_to_end_encrypted(
    room: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    team(room, private=False)
    out = command(room, ALICE, "private", TEAM)
    assert out == [
        (BOB, {"type": "notice", "text": "alice made #team invite-only"}),
        (ALICE, ENCRYPTED_BY_ALICE),
        (BOB, ENCRYPTED_BY_ALICE),
        notice(ALICE, "#team is invite-only now, and end-to-end encrypted for good"),
    ]
    assert TEAM in room.encrypted_rooms and TEAM in room.store.encrypted_rooms()
    state = room.store.room_states()[TEAM]
    assert state.invite_only
    # Who was in it is a member: they come back after a lost connection.
    assert state.admitted == {ed_alice.fingerprint, ed_bob.fingerprint}
    rejoined = to(BOB, command(room, BOB, "join", TEAM), "joined")[0]
    assert (rejoined["invite_only"], rejoined["encrypted"]) == (True, True)
    # A plain line is refused there from now on.
    refusal = room.receive(BOB, say(ed_bob, 1, target=TEAM), NOW)
    assert refusal[0][1]["text"] == "message rejected: #team is end-to-end encrypted"


def test_an_encrypted_room_made_private_is_not_encrypted_twice(room: ChatServer) -> None:
    team(room, private=False)
    command(room, ALICE, "encrypt", TEAM)  # its owner may encrypt it
    out = command(room, ALICE, "private", TEAM)
    assert not [f for _, f in out if f["type"] == "encrypted"]
    assert texts(ALICE, out) == ["#team is invite-only now"]


def test_public_opens_the_room_and_it_stays_encrypted(room: ChatServer) -> None:
    team(room)
    out = command(room, ALICE, "public", TEAM)
    assert out == [
        (BOB, {"type": "notice", "text": "alice opened #team to everyone"}),
        notice(ALICE, "#team is open to everyone now (it stays end-to-end encrypted)"),
    ]
    assert to(CAROL, command(room, CAROL, "join", TEAM), "joined")[0]["encrypted"] is True
    assert not room.store.room_states()[TEAM].invite_only


@pytest.mark.parametrize(
    ("session_id", "name", "args", "text"),
    [
        (BOB, "private", TEAM, "only the operators of #team (or a server operator) can do that"),
        (BOB, "public", TEAM, "only the operators of #team (or a server operator) can do that"),
        (ALICE, "private", "", "usage: /private #room"),
        (ALICE, "private", "team", "usage: /private #room"),
        (ALICE, "private", TEAM, "#team is invite-only already"),
        (ALICE, "public", "#x", "only the operators of #x (or a server operator) can do that"),
    ],
)
def test_private_and_public_refusals(
    room: ChatServer, session_id: int, name: str, args: str, text: str
) -> None:
    team(room)
    assert command(room, session_id, name, args) == error(session_id, text)


def test_public_of_an_open_room_is_refused(room: ChatServer) -> None:
    team(room, private=False)
    assert command(room, ALICE, "public", TEAM) == error(ALICE, "#team is not invite-only")


def test_an_uninvited_key_cannot_join(room: ChatServer) -> None:
    team(room)
    assert command(room, CAROL, "join", TEAM) == error(CAROL, INVITE_ONLY)
    assert TEAM not in room.sessions[CAROL].rooms + room.sessions[CAROL].joining


def test_an_invitation_by_nick_lets_its_key_join(room: ChatServer, ed_carol: IdentityKey) -> None:
    team(room)
    out = command(room, ALICE, "invite", "carol #team")
    assert out == [
        notice(CAROL, "alice invited you to #team: /join #team"),
        notice(ALICE, "invited carol to #team"),
    ]
    out = command(room, CAROL, "join", TEAM)
    assert to(CAROL, out, "joined")[0]["room"] == TEAM
    assert to(ALICE, out, "join") == [{"type": "join", "room": TEAM, **member("carol", ed_carol)}]


def test_an_invitation_by_fingerprint_waits_for_its_key(
    room: ChatServer, ed_dave: IdentityKey
) -> None:
    team(room)
    # The room's name may come first, too.
    out = command(room, ALICE, "invite", f"#team {ed_dave.fingerprint}")
    assert out == [notice(ALICE, f"invited {ed_dave.fingerprint} to #team")]
    hello(room, 10, ed_dave, "dave")
    assert to(10, command(room, 10, "join", TEAM), "joined")


def test_an_invitation_lasts_until_used_then_membership_until_parting(
    room: ChatServer, ed_carol: IdentityKey
) -> None:
    team(room)
    command(room, ALICE, "invite", "carol #team")
    command(room, CAROL, "join", TEAM)
    # A member that loses its connection comes back.
    room.disconnect(CAROL, "connection lost")
    hello(room, 10, ed_carol, "carol")
    assert to(10, command(room, 10, "join", TEAM), "joined")
    # One that parts needs a new invitation.
    command(room, 10, "part", TEAM)
    assert command(room, 10, "join", TEAM) == error(10, INVITE_ONLY)
    command(room, ALICE, "invite", "carol #team")
    assert to(10, command(room, 10, "join", TEAM), "joined")


def test_an_invitation_can_be_revoked(room: ChatServer, ed_carol: IdentityKey) -> None:
    team(room)
    command(room, ALICE, "invite", "carol #team")
    out = command(room, ALICE, "uninvite", "carol #team")
    assert out == [notice(ALICE, "carol may no longer join #team")]
    assert ed_carol.fingerprint not in room.store.room_states()[TEAM].admitted
    assert command(room, CAROL, "join", TEAM) == error(CAROL, INVITE_ONLY)
    assert command(room, ALICE, "uninvite", "carol #team") == error(
        ALICE, "carol is not invited to #team"
    )


@pytest.mark.parametrize(
    ("session_id", "args", "text"),
    [
        (CAROL, "bob #team", "only the operators of #team (or a server operator) can do that"),
        (ALICE, "zed #team", "no such nick: zed"),
        (ALICE, "bob #team", "bob may join #team already"),
        (ALICE, "alice #team", "alice may join #team already"),
        (ALICE, "carol", "usage: /invite NICK|FP #room"),
        (ALICE, "#team", "usage: /invite NICK|FP #room"),
    ],
)
def test_invite_refusals(room: ChatServer, session_id: int, args: str, text: str) -> None:
    team(room)
    assert command(room, session_id, "invite", args) == error(session_id, text)


# --- nothing leaks ---------------------------------------------------------------------------


def test_rooms_lists_an_invite_only_room_to_its_members_only(
    room: ChatServer, ed_dave: IdentityKey
) -> None:
    team(room)
    command(room, ALICE, "topic", "#team the plan")
    listed = [
        "#general (3 members)",
        "#team (2 members, invite-only, end-to-end encrypted): the plan",
    ]
    assert command(room, BOB, "rooms") == info(BOB, "Rooms", listed)
    assert command(room, CAROL, "rooms") == info(CAROL, "Rooms", ["#general (3 members)"])
    # A server operator sees it; so does a key it invited.
    hello(room, DAVE, ed_dave, "dave")
    assert "#team" in command(room, DAVE, "rooms")[0][1]["lines"][1]
    command(room, ALICE, "invite", "carol #team")
    assert len(command(room, CAROL, "rooms")[0][1]["lines"]) == 2


def test_names_topic_and_whois_show_nothing_of_it_to_others(room: ChatServer) -> None:
    team(room)
    command(room, ALICE, "topic", "#team the plan")
    assert command(room, CAROL, "names", TEAM) == error(
        CAROL, "#team is invite-only; only its members see who is in it"
    )
    assert command(room, CAROL, "topic", TEAM) == error(
        CAROL, "#team is invite-only; only its members see its topic"
    )
    assert command(room, CAROL, "whois", "alice")[0][1]["rooms"] == ["#general"]
    assert command(room, BOB, "whois", "alice")[0][1]["rooms"] == ["#general", TEAM]
    assert command(room, BOB, "topic", TEAM) == [notice(BOB, "Topic of #team: the plan")]


def test_names_marks_the_owner_and_room_operators(
    room: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    team(room)
    command(room, ALICE, "invite", "carol #team")
    command(room, CAROL, "join", TEAM)
    command(room, ALICE, "roomop", "bob #team")
    assert command(room, CAROL, "names", TEAM) == info(
        CAROL,
        "Members of #team",
        [
            f"alice {ed_alice.fingerprint} (owner)",
            f"bob {ed_bob.fingerprint} (room operator)",
            f"carol {ed_carol.fingerprint}",
        ],
    )


def test_presence_in_an_invite_only_room_reaches_its_members_only(room: ChatServer) -> None:
    team(room)
    out: Frames = []
    out += command(room, BOB, "part", TEAM)
    command(room, ALICE, "invite", "bob #team")
    out += command(room, BOB, "join", TEAM)
    out += command(room, ALICE, "topic", "#team secret topic")
    out += command(room, BOB, "away", "lunch")
    out += command(room, BOB, "nick", "robert")
    assert to(ALICE, out, "leave") and to(ALICE, out, "join") and to(ALICE, out, "topic")
    # carol shares #general with them: she hears of the away and the nick, never of #team.
    assert [f["type"] for f in to(CAROL, out)] == ["away", "nick"]
    assert not mentions(out, CAROL, TEAM) and not mentions(out, CAROL, "secret topic")


# --- room operators and server operators -----------------------------------------------------


def test_the_owner_makes_and_unmakes_room_operators(room: ChatServer, ed_bob: IdentityKey) -> None:
    team(room)
    out = command(room, ALICE, "roomop", "bob #team")
    assert out == [
        notice(BOB, "alice made you an operator of #team"),
        notice(ALICE, "bob is an operator of #team now"),
    ]
    assert to(BOB, command(room, BOB, "join", TEAM), "joined")[0]["operators"] == [
        ed_bob.fingerprint
    ]
    # A room operator invites, but does not make operators.
    assert texts(BOB, command(room, BOB, "invite", "carol #team")) == ["invited carol to #team"]
    assert command(room, BOB, "roomop", "carol #team") == error(
        BOB, "only the owner of #team (or a server operator) can do that"
    )
    out = command(room, ALICE, "deroomop", "bob #team")
    assert out == [
        notice(BOB, "alice took back your operator status in #team"),
        notice(ALICE, "bob is no longer an operator of #team"),
    ]
    assert room.store.room_states()[TEAM].operators == set()
    assert command(room, BOB, "uninvite", "carol #team") == error(
        BOB, "only the operators of #team (or a server operator) can do that"
    )


@pytest.mark.parametrize(
    ("name", "args", "text"),
    [
        ("roomop", "alice #team", "alice is the owner of #team already"),
        ("deroomop", "carol #team", "carol is not an operator of #team"),
        ("roomop", "bob", "usage: /roomop NICK|FP #room"),
    ],
)
def test_room_operator_refusals(room: ChatServer, name: str, args: str, text: str) -> None:
    team(room)
    assert command(room, ALICE, name, args) == error(ALICE, text)


def test_room_operators_are_bounded(room: ChatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from tlschat.chat.server import room_commands

    monkeypatch.setattr(room_commands, "MAX_ROOM_OPERATORS", 1)
    team(room)
    command(room, ALICE, "roomop", "bob #team")
    assert command(room, ALICE, "roomop", "bob #team") == error(
        ALICE, "bob is an operator of #team already"
    )
    assert command(room, ALICE, "roomop", "carol #team") == error(
        ALICE, "#team has 1 operators already"
    )


def test_a_room_owner_may_encrypt_the_room(room: ChatServer) -> None:
    team(room, private=False)
    assert command(room, BOB, "encrypt", TEAM) == error(BOB, "/encrypt is for operators")
    out = command(room, ALICE, "encrypt", TEAM)
    assert to(BOB, out) == [ENCRYPTED_BY_ALICE]


def test_a_server_operator_may_do_all_of_it_in_any_room(
    room: ChatServer, ed_dave: IdentityKey
) -> None:
    team(room)
    hello(room, DAVE, ed_dave, "dave")
    # Uninvited, he joins; and he may act as the room's owner.
    assert to(DAVE, command(room, DAVE, "join", TEAM), "joined")
    assert texts(DAVE, command(room, DAVE, "roomop", "bob #team")) == [
        "bob is an operator of #team now"
    ]
    assert texts(DAVE, command(room, DAVE, "public", TEAM))[-1].startswith("#team is open")
    assert texts(DAVE, command(room, DAVE, "private", TEAM)) == ["#team is invite-only now"]
    # Nobody acts on him within a room.
    assert command(room, ALICE, "rkick", "dave #team") == error(ALICE, "dave is a server operator")


# --- a join the log put after the room closed ------------------------------------------------


def _deferred_server(ed_dave: IdentityKey) -> tuple[ChatServer, Deferred]:
    deferred = Deferred()
    server = ChatServer(
        ChatSettings(server_name="testsrv", operators=frozenset({ed_dave.fingerprint})),
        SQLiteStore(":memory:"),
        publish=deferred,
        network=NETWORK,
    )
    return server, deferred


def _drain(server: ChatServer, deferred: Deferred) -> list[Outgoing]:
    out: list[Outgoing] = []
    while deferred.events:
        out += server.apply(deferred.events.pop(0))
    return out


def test_a_join_committed_after_the_room_closed_is_turned_away(
    ed_alice: IdentityKey, ed_carol: IdentityKey, ed_dave: IdentityKey
) -> None:
    server, deferred = _deferred_server(ed_dave)
    hello(server, ALICE, ed_alice, "alice")
    hello(server, CAROL, ed_carol, "carol")
    command(server, ALICE, "join", TEAM)
    _drain(server, deferred)
    # carol asks to join while alice closes it; the log has the close first.
    command(server, CAROL, "join", TEAM)
    command(server, ALICE, "private", TEAM)
    join, close = deferred.take(Join), deferred.take(RoomMode)
    server.apply(close)
    assert server.apply(join) == error(CAROL, INVITE_ONLY)
    assert TEAM not in server.sessions[CAROL].rooms + server.sessions[CAROL].joining
    # Another server's session likewise: it is not counted in the room, nobody hears of it.
    remote = replace(join, node="other", sid=7)
    assert server.apply(remote) == []
    assert all(TEAM not in r.rooms for r in server.remote.values())
    assert not [m for m in server._cluster_members(TEAM) if m.fingerprint == ed_carol.fingerprint]


def test_two_claims_of_one_room_leave_the_first_in_the_log_its_owner(
    ed_alice: IdentityKey, ed_bob: IdentityKey, ed_dave: IdentityKey
) -> None:
    server, deferred = _deferred_server(ed_dave)
    hello(server, ALICE, ed_alice, "alice")
    hello(server, BOB, ed_bob, "bob")
    _drain(server, deferred)
    command(server, BOB, "join", TEAM)
    command(server, ALICE, "join", TEAM)  # before bob's claim was applied: both claim it
    claims = [e for e in deferred.events if isinstance(e, RoomOwner)]
    assert [c.fingerprint for c in claims] == [ed_bob.fingerprint, ed_alice.fingerprint]
    _drain(server, deferred)
    assert server.store.room_states()[TEAM].owner == ed_bob.fingerprint


# --- restarts --------------------------------------------------------------------------------


def test_room_roles_and_rules_survive_a_restart(
    tmp_path: Path, ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    store = SQLiteStore(tmp_path / "chat.db")
    first = make_server(store)
    hello(first, ALICE, ed_alice, "alice")
    hello(first, BOB, ed_bob, "bob")
    hello(first, CAROL, ed_carol, "carol")
    team(first)
    command(first, ALICE, "roomop", "bob #team")
    command(first, ALICE, "rmute", "carol #team")
    store.close()

    again = make_server(SQLiteStore(tmp_path / "chat.db"))
    hello(again, ALICE, ed_alice, "alice")
    hello(again, BOB, ed_bob, "bob")
    hello(again, CAROL, ed_carol, "carol")
    assert command(again, CAROL, "join", TEAM) == error(CAROL, INVITE_ONLY)
    joined_again = to(BOB, command(again, BOB, "join", TEAM), "joined")[0]
    assert joined_again["owner"] == ed_alice.fingerprint
    assert joined_again["operators"] == [ed_bob.fingerprint]
    assert joined_again["invite_only"] is True and joined_again["encrypted"] is True
    assert command(again, CAROL, "rooms") == info(CAROL, "Rooms", ["#general (3 members)"])
    assert again.store.room_states()[TEAM].mutes == {ed_carol.fingerprint: None}
