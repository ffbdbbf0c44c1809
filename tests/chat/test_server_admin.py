"""Administration at run time, pure: the allowlist in force, /allow, /disallow and /release, each
transition with exact frames (one server alone: every event applies as it is published)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tlschat.chat.server.events import ChatServer
from tlschat.protocol.identity import IdentityKey
from tlschat.store import SQLiteStore

from .helpers import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    NOW,
    command,
    connect,
    error,
    fallback_nick,
    hello,
    make_server,
    notice,
)


def listed_only(alice: IdentityKey, *listed: IdentityKey) -> ChatServer:
    """Alice is a configured operator; the allowlist in force holds ``listed``."""
    return make_server(
        operators=frozenset({alice.fingerprint}),
        allowlist=frozenset(key.fingerprint for key in listed),
    )


def not_listed(key: IdentityKey) -> dict[str, str]:
    return {
        "type": "bye",
        "reason": f"this server admits listed keys only; yours is {key.fingerprint}",
    }


# --- the allowlist in force ------------------------------------------------------------------


def test_without_an_allowlist_every_key_is_admitted_whatever_is_stored(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    server = make_server()
    server.store.set_allowed(ed_bob.fingerprint, False)
    assert server.admits(ed_bob.fingerprint) and server.admits(ed_alice.fingerprint)
    assert connect(server, BOB, ed_bob) == []


def test_in_force_it_is_the_configured_list_plus_allowed_minus_disallowed(
    ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey, ed_dave: IdentityKey
) -> None:
    server = listed_only(ed_alice, ed_bob, ed_carol)
    server.store.set_allowed(ed_carol.fingerprint, False)  # configured, then disallowed
    server.store.set_allowed(ed_dave.fingerprint, True)  # not configured, allowed
    assert server.admits(ed_alice.fingerprint)  # an operator, listed or not
    assert server.admits(ed_bob.fingerprint)
    assert not server.admits(ed_carol.fingerprint)
    assert server.admits(ed_dave.fingerprint)
    assert hello(server, CAROL, ed_carol, "carol") == [(CAROL, not_listed(ed_carol))]
    assert connect(server, DAVE, ed_dave) == []
    # The latest decision is the key's: an /allow after a /disallow admits it again.
    server.store.set_allowed(ed_carol.fingerprint, True)
    assert connect(server, 5, ed_carol) == []


# --- /allow ----------------------------------------------------------------------------------


def test_allow_by_fingerprint_admits_a_key_that_never_connected(
    ed_alice: IdentityKey, ed_dave: IdentityKey
) -> None:
    server = listed_only(ed_alice)
    hello(server, ALICE, ed_alice, "alice")
    assert hello(server, DAVE, ed_dave, "dave") == [(DAVE, not_listed(ed_dave))]
    fingerprint = ed_dave.fingerprint
    assert command(server, ALICE, "allow", fingerprint) == [notice(ALICE, f"allowed {fingerprint}")]
    assert server.store.allowed(fingerprint) is True
    assert connect(server, 5, ed_dave) == []


def test_allow_by_nick_of_a_key_that_registered_one(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    server = make_server(operators=frozenset({ed_alice.fingerprint}))
    hello(server, ALICE, ed_alice, "alice")
    hello(server, BOB, ed_bob, "bob")
    server.disconnect(BOB, "quit")
    server.reconfigure(dataclasses.replace(server.settings, allowlist=frozenset()))
    assert hello(server, 5, ed_bob, "bob") == [(5, not_listed(ed_bob))]
    assert command(server, ALICE, "allow", "bob") == [
        notice(ALICE, f"allowed bob ({ed_bob.fingerprint})")
    ]
    assert connect(server, 6, ed_bob) == []


def test_allow_of_a_listed_key_is_refused(ed_alice: IdentityKey, ed_bob: IdentityKey) -> None:
    server = listed_only(ed_alice, ed_bob)
    hello(server, ALICE, ed_alice, "alice")
    fingerprint = ed_bob.fingerprint
    assert command(server, ALICE, "allow", fingerprint) == error(
        ALICE, f"{fingerprint} is on the allowlist already"
    )
    assert server.store.allowed(fingerprint) is None


def test_allow_without_an_allowlist_in_force_is_kept_for_then(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    server = make_server(operators=frozenset({ed_alice.fingerprint}))
    hello(server, ALICE, ed_alice, "alice")
    assert command(server, ALICE, "allow", ed_bob.fingerprint) == [
        notice(
            ALICE,
            f"allowed {ed_bob.fingerprint}; no allowlist is in force on this server "
            "(allowlist_only is off): kept for then",
        )
    ]
    assert server.store.allowed(ed_bob.fingerprint) is True


def test_allow_of_an_unknown_nick(ed_alice: IdentityKey) -> None:
    server = listed_only(ed_alice)
    hello(server, ALICE, ed_alice, "alice")
    assert command(server, ALICE, "allow", "zed") == error(ALICE, "no such nick: zed")


# --- /disallow -------------------------------------------------------------------------------


def test_disallow_of_an_online_key_says_bye_to_each_of_its_sessions(
    ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    server = listed_only(ed_alice, ed_bob, ed_carol)
    hello(server, ALICE, ed_alice, "alice")
    hello(server, BOB, ed_bob, "bob")
    hello(server, 10, ed_bob, "bob")
    assert connect(server, 11, ed_bob) == []  # before its hello
    hello(server, CAROL, ed_carol, "carol")
    bye = {"type": "bye", "reason": "removed from this server's allowlist by alice"}
    assert command(server, ALICE, "disallow", "bob") == [
        (BOB, bye),
        (10, bye),
        (11, bye),
        notice(ALICE, f"disallowed bob ({ed_bob.fingerprint}); its sessions are disconnected"),
    ]
    assert server.store.allowed(ed_bob.fingerprint) is False
    assert all(server.sessions[s].dismissed for s in (BOB, 10, 11))
    assert not server.sessions[CAROL].dismissed
    assert hello(server, 12, ed_bob, "bob") == [(12, not_listed(ed_bob))]


def test_disallow_of_an_offline_key(ed_alice: IdentityKey, ed_bob: IdentityKey) -> None:
    server = listed_only(ed_alice, ed_bob)
    hello(server, ALICE, ed_alice, "alice")
    fingerprint = ed_bob.fingerprint
    assert command(server, ALICE, "disallow", fingerprint) == [
        notice(ALICE, f"disallowed {fingerprint}")
    ]
    assert command(server, ALICE, "disallow", fingerprint) == error(
        ALICE, f"{fingerprint} is not on the allowlist"
    )
    # /allow undoes it.
    assert command(server, ALICE, "allow", fingerprint) == [notice(ALICE, f"allowed {fingerprint}")]
    assert connect(server, BOB, ed_bob) == []


def test_disallow_of_an_unlisted_key_is_refused(ed_alice: IdentityKey, ed_bob: IdentityKey) -> None:
    server = listed_only(ed_alice)
    hello(server, ALICE, ed_alice, "alice")
    assert command(server, ALICE, "disallow", ed_bob.fingerprint) == error(
        ALICE, f"{ed_bob.fingerprint} is not on the allowlist"
    )
    assert server.store.allowed(ed_bob.fingerprint) is None


def test_disallow_without_an_allowlist_in_force_disconnects_nobody(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    server = make_server(operators=frozenset({ed_alice.fingerprint}))
    hello(server, ALICE, ed_alice, "alice")
    hello(server, BOB, ed_bob, "bob")
    assert command(server, ALICE, "disallow", "bob") == [
        notice(
            ALICE,
            f"disallowed bob ({ed_bob.fingerprint}); no allowlist is in force on this server "
            "(allowlist_only is off): kept for then",
        )
    ]
    assert not server.sessions[BOB].dismissed
    assert server.store.allowed(ed_bob.fingerprint) is False


def test_operators_cannot_be_disallowed(
    ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    server = listed_only(ed_alice, ed_bob, ed_carol)
    hello(server, ALICE, ed_alice, "alice")
    hello(server, BOB, ed_bob, "bob")
    command(server, ALICE, "op", "bob")
    assert command(server, BOB, "disallow", "alice") == error(
        BOB,
        f"alice ({ed_alice.fingerprint}) is an operator in the server's configuration "
        "(operators are admitted whatever the allowlist)",
    )
    assert command(server, ALICE, "disallow", "bob") == error(
        ALICE,
        f"bob ({ed_bob.fingerprint}) is an operator (operators are admitted whatever the "
        "allowlist); /deop first",
    )
    assert server.store.allowed(ed_bob.fingerprint) is None


# --- /release --------------------------------------------------------------------------------


@pytest.fixture
def room(ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey) -> ChatServer:
    server = make_server(operators=frozenset({ed_alice.fingerprint}))
    hello(server, ALICE, ed_alice, "alice")
    hello(server, BOB, ed_bob, "bob")
    hello(server, CAROL, ed_carol, "carol")
    return server


def test_release_of_an_online_key_gives_its_sessions_the_fallback(
    room: ChatServer, ed_bob: IdentityKey
) -> None:
    hello(room, 10, ed_bob, "bob")
    fallback = fallback_nick(ed_bob)
    renamed = {"type": "nick", "old": "bob", "new": fallback, "fingerprint": ed_bob.fingerprint}
    told = notice(0, f"your nick bob was released by an operator; you are {fallback}")[1]
    assert command(room, ALICE, "release", "BOB") == [
        (ALICE, renamed),
        (BOB, renamed),
        (CAROL, renamed),
        (10, renamed),
        (BOB, told),
        (10, told),
        notice(ALICE, f"released bob from {ed_bob.fingerprint}; its sessions are now {fallback}"),
    ]
    assert room.sessions[BOB].nick == room.sessions[10].nick == fallback
    assert room.store.nick_owner("bob") is None
    assert room.store.nick_of(ed_bob.fingerprint) == fallback
    # The nick is free: another key takes it.
    assert command(room, CAROL, "nick", "bob")[-1][1]["new"] == "bob"
    assert room.store.nick_owner("bob") == room.sessions[CAROL].fingerprint


def test_release_of_an_offline_key(
    room: ChatServer, ed_bob: IdentityKey, ed_dave: IdentityKey
) -> None:
    room.disconnect(BOB, "quit")
    assert command(room, ALICE, "release", "bob") == [
        notice(ALICE, f"released bob from {ed_bob.fingerprint}")
    ]
    assert room.store.nick_of(ed_bob.fingerprint) is None
    # A new key (a user who lost theirs, say) gets the nick on hello.
    assert hello(room, DAVE, ed_dave, "bob")[0][1]["nick"] == "bob"
    # The old key, back, is told it belongs to another key and gets a fallback.
    welcome = hello(room, 5, ed_bob, "bob")
    assert welcome[0][1]["nick"] == fallback_nick(ed_bob)
    assert welcome[1][1]["text"] == f"'bob' belongs to another key; you are {fallback_nick(ed_bob)}"


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ("", "name a nick"),
        ("zed", "no such nick: zed"),
        ("SHA256:" + "A" * 43, "no such nick: SHA256:" + "A" * 43),
    ],
)
def test_release_needs_a_registered_nick(room: ChatServer, args: str, text: str) -> None:
    assert command(room, ALICE, "release", args) == error(ALICE, text)


def test_release_is_for_operators(room: ChatServer, ed_bob: IdentityKey) -> None:
    assert command(room, CAROL, "release", "bob") == error(CAROL, "/release is for operators")
    assert room.store.nick_owner("bob") == ed_bob.fingerprint


# --- persistence -----------------------------------------------------------------------------


def test_allow_disallow_and_release_survive_a_restart(
    tmp_path: Path, ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    path = tmp_path / "chat.db"
    settings = {
        "operators": frozenset({ed_alice.fingerprint}),
        "allowlist": frozenset({ed_carol.fingerprint}),
    }
    server = make_server(SQLiteStore(path), **settings)
    hello(server, ALICE, ed_alice, "alice")
    hello(server, CAROL, ed_carol, "carol")
    command(server, ALICE, "allow", ed_bob.fingerprint)
    command(server, ALICE, "disallow", "carol")
    hello(server, BOB, ed_bob, "bob")
    server.disconnect(BOB, "quit")
    command(server, ALICE, "release", "bob")
    server.store.close()

    again = make_server(SQLiteStore(path), **settings)
    assert connect(again, BOB, ed_bob, NOW + 60) == []
    assert hello(again, CAROL, ed_carol, "carol", NOW + 60) == [(CAROL, not_listed(ed_carol))]
    assert again.store.nick_owner("bob") is None
