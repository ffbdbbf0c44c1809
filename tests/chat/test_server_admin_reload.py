"""A reloaded configuration in the chat, pure: ``reconfigure`` (the live settings, applied to the
sessions already there) and the /reload command's answers."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tlschat.chat.server.admin import ReloadOutcome
from tlschat.chat.server.events import ChatServer
from tlschat.chat.server.model import ChatSettings
from tlschat.protocol.identity import IdentityKey

from .helpers import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    NOW,
    NOW_MS,
    Frames,
    command,
    connect,
    error,
    hello,
    info,
    make_server,
    notice,
    say,
    sent,
    throttled,
)


@pytest.fixture
def room(ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey) -> ChatServer:
    server = make_server(operators=frozenset({ed_alice.fingerprint}), rate_per_second=1, burst=3)
    hello(server, ALICE, ed_alice, "alice")
    hello(server, BOB, ed_bob, "bob")
    hello(server, CAROL, ed_carol, "carol")
    return server


def changed(server: ChatServer, **values: Any) -> ChatSettings:
    return dataclasses.replace(server.settings, **values)


def bye(key: IdentityKey) -> dict[str, str]:
    return {
        "type": "bye",
        "reason": f"this server admits listed keys only; yours is {key.fingerprint}",
    }


# --- reconfigure -----------------------------------------------------------------------------


def test_operators_added_and_removed_are_told(
    room: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    command(room, ALICE, "op", "carol")  # a runtime operator: the file changes nothing for her
    out = room.reconfigure(
        changed(room, operators=frozenset({ed_bob.fingerprint, ed_carol.fingerprint}))
    )
    assert sorted(out, key=lambda item: item[0]) == [
        notice(ALICE, "you are no longer an operator (the server's configuration)"),
        notice(BOB, "you are an operator now (the server's configuration)"),
    ]
    assert not room.is_operator(ed_alice.fingerprint)
    assert room.is_operator(ed_bob.fingerprint) and room.is_operator(ed_carol.fingerprint)
    assert command(room, ALICE, "kick", "carol") == error(ALICE, "/kick is for operators")
    assert hello(room, 10, ed_bob, "bob")[0][1]["operator"] is True
    assert hello(room, 11, ed_alice, "alice")[0][1]["operator"] is False


def test_an_allowlist_put_in_force_disconnects_the_keys_it_does_not_admit(
    room: ChatServer, ed_bob: IdentityKey, ed_carol: IdentityKey, ed_dave: IdentityKey
) -> None:
    assert connect(room, DAVE, ed_dave) == []  # handshaken, no hello yet
    out = room.reconfigure(changed(room, allowlist=frozenset({ed_bob.fingerprint})))
    assert out == [(CAROL, bye(ed_carol)), (DAVE, bye(ed_dave))]
    assert room.sessions[CAROL].dismissed and room.sessions[DAVE].dismissed
    assert not room.sessions[ALICE].dismissed  # an operator, not listed
    assert not room.sessions[BOB].dismissed
    # Reloading the same settings again disconnects nobody twice.
    assert room.reconfigure(room.settings) == []


def test_a_stored_allow_outlives_an_allowlist_put_in_force(
    room: ChatServer, ed_bob: IdentityKey
) -> None:
    command(room, ALICE, "allow", "carol")
    assert room.reconfigure(changed(room, allowlist=frozenset())) == [(BOB, bye(ed_bob))]
    assert not room.sessions[CAROL].dismissed


def test_flood_control_takes_the_new_rate_and_burst_keeping_what_was_spent(
    room: ChatServer, ed_alice: IdentityKey
) -> None:
    def send(counter: int, now: float) -> Frames:
        ts = NOW_MS + int((now - NOW) * 1000)
        return room.receive(ALICE, say(ed_alice, counter=counter, ts=ts, body=f"#{counter}"), now)

    assert send(1, NOW)[-1] == sent(ALICE, "#general", 1)
    room.reconfigure(changed(room, rate_per_second=0.5, burst=1))
    # Two tokens were left of the old burst of 3: the new burst of 1 caps them.
    assert send(2, NOW)[-1] == sent(ALICE, "#general", 2)
    assert send(3, NOW) == throttled(ALICE, 2.0, 3)
    assert send(3, NOW + 2)[-1] == sent(ALICE, "#general", 3)
    # The connections' budgets follow the new flood control.
    budget = room.settings.connection_budget()
    assert (room.sessions[BOB].frames.rate, room.sessions[BOB].frames.burst) == (
        budget.rate,
        budget.burst,
    )


def test_the_new_motd_name_and_length_limit_apply_from_now_on(
    room: ChatServer, ed_alice: IdentityKey, ed_dave: IdentityKey
) -> None:
    room.reconfigure(changed(room, motd="New rules.", server_name="renamed", max_body_bytes=5))
    out = hello(room, DAVE, ed_dave, "dave")
    assert out[0][1]["server"] == "renamed"
    assert out[1] == (DAVE, {"type": "motd", "text": "New rules."})
    frame = say(ed_alice, counter=1, body="too long")
    assert room.receive(ALICE, frame, NOW)[0][1]["text"] == (
        "message rejected: longer than 5 bytes"
    )


# --- /reload ---------------------------------------------------------------------------------


def test_reload_without_a_configuration_file(room: ChatServer) -> None:
    assert command(room, ALICE, "reload") == error(
        ALICE, "this server has no configuration file to reload"
    )


def test_reload_is_for_operators(room: ChatServer) -> None:
    asked: list[str] = []

    def reloader(origin: str) -> ReloadOutcome:
        asked.append(origin)
        return ReloadOutcome("server.toml")

    room.reloader = reloader
    assert command(room, BOB, "reload") == error(BOB, "/reload is for operators")
    assert asked == []


def test_reload_answers_what_changed_after_what_it_sent(
    room: ChatServer, ed_alice: IdentityKey
) -> None:
    asked: list[str] = []
    told = notice(BOB, "you are an operator now (the server's configuration)")

    def reloader(origin: str) -> ReloadOutcome:
        asked.append(origin)
        return ReloadOutcome("server.toml", changes=("motd: '' -> 'hi'",), out=(told,))

    room.reloader = reloader
    assert command(room, ALICE, "reload") == [
        told,
        *info(ALICE, "Reloaded server.toml", ["motd: '' -> 'hi'"]),
    ]
    assert asked == [f"/reload by alice ({ed_alice.fingerprint})"]
    room.reloader = lambda origin: ReloadOutcome("server.toml")
    assert command(room, ALICE, "reload") == info(ALICE, "Reloaded server.toml", ["no changes"])


def test_reload_of_a_refused_file_says_why(room: ChatServer) -> None:
    room.reloader = lambda origin: ReloadOutcome(
        "server.toml", refused="port 70000 is out of range"
    )
    assert command(room, ALICE, "reload") == error(
        ALICE,
        "server.toml refused: port 70000 is out of range; the old configuration stays in force",
    )
