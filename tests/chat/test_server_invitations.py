"""Onboarding without fingerprints, pure: operators' /invitation, /invitations and /revoke, and a
key the allowlist does not admit that brings an invitation in its hello. Every transition with
its exact frames (one server alone applies each event as it is published; a server whose events
wait, as in a cluster, for the log's verdict)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from tlschat.chat.invitation import invitation_id, secret_digest
from tlschat.chat.server import invitations as invitations_module
from tlschat.chat.server.cluster_events import ClusterEvent, InvitationMade, InvitationUse
from tlschat.chat.server.event_codec import encode_event
from tlschat.chat.server.events import ChatServer
from tlschat.chat.server.invitations import ADMITTED, NO_ALLOWLIST
from tlschat.chat.server.model import DEGRADED_REJECTION, ChatSettings, Outgoing
from tlschat.protocol.identity import IdentityKey
from tlschat.store import SQLiteStore
from tlschat.store.base import Ban
from tlschat.store.invitations import StoredInvitation

from .helpers import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    NETWORK,
    NOW,
    Frames,
    command,
    connect,
    error,
    hello,
    info,
    make_server,
    notice,
    via_log,
    welcome,
)

WEEK = 7 * 86400


def listed_only(alice: IdentityKey, *listed: IdentityKey, store: Any = None) -> ChatServer:
    """Alice is a configured operator, online; the allowlist in force holds ``listed``."""
    server = make_server(
        store,
        operators=frozenset({alice.fingerprint}),
        allowlist=frozenset(key.fingerprint for key in listed),
    )
    hello(server, ALICE, alice, "alice")
    return server


def invite(server: ChatServer, args: str = "", now: float = NOW) -> tuple[str, str]:
    """Alice makes an invitation: its (id, secret)."""
    ((to, frame),) = command(server, ALICE, "invitation", args, now)
    assert to == ALICE and frame["type"] == "invitation"
    return frame["id"], frame["secret"]


def hello_with(
    server: ChatServer,
    session_id: int,
    key: IdentityKey,
    nick: str,
    secret: object,
    now: float = NOW,
) -> Frames:
    assert connect(server, session_id, key, now) == []
    frame = {"type": "hello", "nick": nick, "invitation": secret}
    return server.receive(session_id, frame, now)


def bye(session_id: int, reason: str) -> Frames:
    return [(session_id, {"type": "bye", "reason": reason})]


def not_listed(session_id: int, key: IdentityKey) -> Frames:
    return bye(session_id, f"this server admits listed keys only; yours is {key.fingerprint}")


# --- making one ------------------------------------------------------------------------------


def test_an_operator_makes_one_and_only_the_hash_of_its_secret_is_kept(
    ed_alice: IdentityKey,
) -> None:
    server = listed_only(ed_alice)
    ((to, frame),) = command(server, ALICE, "invitation")
    secret = frame["secret"]
    made_id = invitation_id(secret_digest(secret))
    assert (to, frame) == (
        ALICE,
        {"type": "invitation", "id": made_id, "secret": secret, "valid_for": WEEK},
    )
    assert len(secret) == 32
    kept = server.store.invitation(made_id)
    assert kept == StoredInvitation(
        made_id, secret_digest(secret), f"alice ({ed_alice.fingerprint})", NOW, NOW + WEEK
    )
    assert secret not in json.dumps(dataclasses.asdict(kept))


def test_its_duration_and_the_address_new_users_reach_the_server_by(
    ed_alice: IdentityKey,
) -> None:
    server = listed_only(ed_alice)
    ((_, frame),) = command(server, ALICE, "invitation", "2h chat.example.org:9443")
    assert (frame["valid_for"], frame["address"]) == (7200, "chat.example.org:9443")
    assert server.store.invitations()[0].expires_at == NOW + 7200
    ((_, frame),) = command(server, ALICE, "invitation", "[::1]:8443 90m")
    assert (frame["valid_for"], frame["address"]) == (5400, "[::1]:8443")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ("soon", "usage: /invitation [DURATION] [HOST:PORT]: 'soon' is not a server address"),
        ("2h 3h", "usage: /invitation [DURATION] [HOST:PORT]"),
        ("h:1 h:2", "usage: /invitation [DURATION] [HOST:PORT]"),
        ("2h h:1 x", "usage: /invitation [DURATION] [HOST:PORT]"),
        ("h:0", "usage: /invitation [DURATION] [HOST:PORT]: 'h:0': the port must be a number"),
        ("0s", "an invitation lasts from 1s to 365d"),
        ("366d", "an invitation lasts from 1s to 365d"),
    ],
)
def test_bad_arguments_make_nothing(ed_alice: IdentityKey, args: str, said: str) -> None:
    server = listed_only(ed_alice)
    out = command(server, ALICE, "invitation", args)
    assert out[0][1]["type"] == "error" and out[0][1]["text"].startswith(said), out
    assert server.store.invitations() == []


def test_without_an_allowlist_the_operator_is_told_what_it_is_for(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    server = make_server(operators=frozenset({ed_alice.fingerprint}))
    hello(server, ALICE, ed_alice, "alice")
    out = command(server, ALICE, "invitation")
    assert [frame["type"] for _, frame in out] == ["invitation", "notice"]
    assert out[1] == notice(ALICE, NO_ALLOWLIST)
    # Every key is admitted: one that brings the invitation does not use it.
    secret = out[0][1]["secret"]
    assert hello_with(server, BOB, ed_bob, "bob", secret)[0] == (BOB, welcome("bob", ed_bob))
    assert server.store.open_invitations(NOW) == 1


def test_no_more_than_the_open_limit(
    ed_alice: IdentityKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(invitations_module, "MAX_OPEN_INVITATIONS", 2)
    server = listed_only(ed_alice)
    first, _ = invite(server)
    invite(server)
    assert command(server, ALICE, "invitation") == error(
        ALICE, "2 invitations are open already; /revoke some first"
    )
    command(server, ALICE, "revoke", first)
    invite(server)


def test_users_cannot_make_list_or_revoke_them(ed_alice: IdentityKey, ed_bob: IdentityKey) -> None:
    server = listed_only(ed_alice, ed_bob)
    hello(server, BOB, ed_bob, "bob")
    for name in ("invitation", "invitations", "revoke"):
        assert command(server, BOB, name) == error(BOB, f"/{name} is for operators")


# --- using one -------------------------------------------------------------------------------


def test_a_new_key_with_an_invitation_is_admitted_and_allowed_for_good(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    server = listed_only(ed_alice)
    made_id, secret = invite(server)
    out = hello_with(server, BOB, ed_bob, "bob", secret, NOW + 60)
    used = f"invitation {made_id} was used by {ed_bob.fingerprint}, now on the allowlist"
    assert out[:3] == [
        notice(ALICE, used),
        (BOB, welcome("bob", ed_bob)),
        notice(BOB, ADMITTED),
    ]
    assert [frame["type"] for to, frame in out if to == BOB][2:] == ["joined"]
    assert server.store.allowed(ed_bob.fingerprint) is True
    kept = server.store.invitation(made_id)
    assert kept is not None and (kept.used_by, kept.used_at) == (ed_bob.fingerprint, NOW + 60)
    # Later, without the invitation: admitted as any allowed key.
    server.disconnect(BOB, "quit")
    assert hello(server, 5, ed_bob, "bob", NOW + 120)[0] == (5, welcome("bob", ed_bob))


def test_a_second_use_is_refused(
    ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    server = listed_only(ed_alice)
    _, secret = invite(server)
    hello_with(server, BOB, ed_bob, "bob", secret)
    out = hello_with(server, CAROL, ed_carol, "carol", secret)
    assert out == bye(CAROL, "this invitation was used already")
    assert server.store.allowed(ed_carol.fingerprint) is None
    assert server.receive(CAROL, {"type": "command", "name": "rooms"}, NOW) == []


def test_an_expired_one_is_refused(ed_alice: IdentityKey, ed_bob: IdentityKey) -> None:
    server = listed_only(ed_alice)
    made_id, secret = invite(server, "1h")
    out = hello_with(server, BOB, ed_bob, "bob", secret, NOW + 3600)
    assert out == bye(BOB, "this invitation has expired")
    assert server.store.allowed(ed_bob.fingerprint) is None
    kept = server.store.invitation(made_id)
    assert kept is not None and kept.used_at is None


def test_a_revoked_one_is_refused(ed_alice: IdentityKey, ed_bob: IdentityKey) -> None:
    server = listed_only(ed_alice)
    made_id, secret = invite(server)
    assert command(server, ALICE, "revoke", made_id) == [
        notice(ALICE, f"revoked invitation {made_id}")
    ]
    assert hello_with(server, BOB, ed_bob, "bob", secret) == bye(BOB, "this invitation was revoked")


@pytest.mark.parametrize(
    "secret",
    [
        "A" * 32,  # well formed, made by nobody here
        "short",
        "s" * 65,
        "s" * 31 + "!",
        42,
        None,
        ["s" * 32],
    ],
)
def test_an_unknown_or_malformed_one_is_not_valid_here(
    ed_alice: IdentityKey, ed_bob: IdentityKey, secret: object
) -> None:
    server = listed_only(ed_alice)
    invite(server)
    out = hello_with(server, BOB, ed_bob, "bob", secret)
    assert out == bye(BOB, "this invitation is not valid here")
    assert server.store.open_invitations(NOW) == 1


def test_a_secret_whose_id_matches_but_whose_hash_does_not_is_not_valid(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    server = listed_only(ed_alice)
    secret = "B" * 32
    digest = secret_digest(secret)
    forged = digest[:8] + ("0" if digest[8] != "0" else "1") + digest[9:]
    server.store.add_invitation(StoredInvitation(digest[:8], forged, "x", NOW, NOW + WEEK))
    assert hello_with(server, BOB, ed_bob, "bob", secret) == bye(
        BOB, "this invitation is not valid here"
    )


def test_an_unlisted_key_without_one_is_turned_away_at_its_hello(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    server = listed_only(ed_alice)
    invite(server)
    assert connect(server, BOB, ed_bob) == []
    # Before its hello it may only ping.
    assert server.receive(BOB, {"type": "ping"}, NOW) == [(BOB, {"type": "pong"})]
    assert command(server, BOB, "rooms") == error(BOB, "say hello first")
    assert server.receive(BOB, {"type": "hello", "nick": "bob"}, NOW) == not_listed(BOB, ed_bob)
    assert server.store.open_invitations(NOW) == 1


@pytest.mark.parametrize("who", ["listed", "operator"])
def test_a_key_admitted_otherwise_does_not_use_the_one_it_brings(
    ed_alice: IdentityKey, ed_bob: IdentityKey, who: str
) -> None:
    server = listed_only(ed_alice, ed_bob)
    made_id, secret = invite(server)
    key, nick = (ed_bob, "bob") if who == "listed" else (ed_alice, "alice")
    out = hello_with(server, BOB, key, nick, secret)
    assert out[0] == (BOB, welcome(nick, key, operator=who == "operator"))
    assert not any(frame.get("text") == ADMITTED for _, frame in out)
    kept = server.store.invitation(made_id)
    assert kept is not None and kept.state(NOW) == "open"
    assert server.store.allowed(key.fingerprint) is None


def test_a_key_allowed_between_its_handshake_and_its_hello_uses_none(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    server = listed_only(ed_alice)
    _, secret = invite(server)
    assert connect(server, BOB, ed_bob) == []
    command(server, ALICE, "allow", ed_bob.fingerprint)
    frame = {"type": "hello", "nick": "bob", "invitation": secret}
    assert server.receive(BOB, frame, NOW)[0] == (BOB, welcome("bob", ed_bob))
    assert server.store.open_invitations(NOW) == 1


def test_a_banned_key_is_refused_whatever_it_brings(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    server = listed_only(ed_alice)
    _, secret = invite(server)
    server.store.add_ban(Ban(ed_bob.fingerprint, None, "spam", ed_alice.fingerprint))
    assert connect(server, BOB, ed_bob) == bye(BOB, "you are banned for good: spam")
    frame = {"type": "hello", "nick": "bob", "invitation": secret}
    assert server.receive(BOB, frame, NOW) == []
    assert server.store.open_invitations(NOW) == 1


def test_invitations_survive_a_restart(
    tmp_path: Path, ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    path = tmp_path / "chat.db"
    server = listed_only(ed_alice, store=SQLiteStore(path))
    _, used = invite(server)
    _, unused = invite(server)
    hello_with(server, BOB, ed_bob, "bob", used)
    server.store.close()
    again = listed_only(ed_alice, store=SQLiteStore(path))
    assert hello_with(again, BOB, ed_bob, "bob", used)[0] == (BOB, welcome("bob", ed_bob))
    assert hello_with(again, CAROL, ed_carol, "carol", used) == bye(
        CAROL, "this invitation was used already"
    )
    assert hello_with(again, DAVE, ed_carol, "carol", unused)[2] == notice(DAVE, ADMITTED)


# --- listing and revoking --------------------------------------------------------------------


def test_the_list_says_when_by_whom_until_when_and_what_became_of_each(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    server = listed_only(ed_alice)
    by = f"alice ({ed_alice.fingerprint})"
    assert command(server, ALICE, "invitations") == info(ALICE, "Invitations", ["none"])
    expired, _ = invite(server, "1h")
    revoked, _ = invite(server, "", NOW + 60)
    command(server, ALICE, "revoke", revoked, NOW + 120)
    used, secret = invite(server, "", NOW + 180)
    hello_with(server, BOB, ed_bob, "bob", secret, NOW + 240)
    opened, _ = invite(server, "2d", NOW + 300)
    out = command(server, ALICE, "invitations", "", NOW + 7200)
    assert out == info(
        ALICE,
        "Invitations",
        [
            f"{opened} made 1h55m ago by {by}: open, expires in 1d22h5m",
            f"{used} made 1h57m ago by {by}: used 1h56m ago by bob ({ed_bob.fingerprint})",
            f"{revoked} made 1h59m ago by {by}: revoked 1h58m ago",
            f"{expired} made 2h ago by {by}: expired 1h ago",
        ],
    )
    assert all(secret not in line for line in out[0][1]["lines"])


def test_revoke_refuses_what_is_not_open(ed_alice: IdentityKey, ed_bob: IdentityKey) -> None:
    server = listed_only(ed_alice)
    revoked, _ = invite(server)
    command(server, ALICE, "revoke", revoked)
    used, secret = invite(server)
    hello_with(server, BOB, ed_bob, "bob", secret)
    expired, _ = invite(server, "1m")
    assert command(server, ALICE, "revoke", revoked) == error(
        ALICE, f"invitation {revoked} was revoked already"
    )
    assert command(server, ALICE, "revoke", used) == error(
        ALICE, f"invitation {used} was used already"
    )
    assert command(server, ALICE, "revoke", expired, NOW + 60) == error(
        ALICE, f"invitation {expired} has expired"
    )
    assert command(server, ALICE, "revoke", "0badf00d") == error(
        ALICE, "no such invitation: 0badf00d"
    )
    for args in ("", "nope", "0BADF00D"):
        assert command(server, ALICE, "revoke", args) == error(
            ALICE, "usage: /revoke ID (the id /invitations lists)"
        )


# --- the log's verdict (a cluster) -----------------------------------------------------------


class Waiting:
    """A server whose events wait for the log's verdict, as in a cluster: ``apply`` or
    ``reject`` the next one."""

    def __init__(self, alice: IdentityKey) -> None:
        self.events: list[ClusterEvent] = []
        self.server = ChatServer(
            ChatSettings(
                server_name="testsrv",
                operators=frozenset({alice.fingerprint}),
                allowlist=frozenset(),
            ),
            SQLiteStore(":memory:"),
            "a",
            self.publish,
            network=NETWORK,
        )
        connect(self.server, ALICE, alice)
        self.server.receive(ALICE, {"type": "hello", "nick": "alice"}, NOW)
        self.apply_all()

    def publish(self, event: ClusterEvent) -> list[Outgoing]:
        self.events.append(via_log(event))
        return []

    def apply_all(self) -> Frames:
        out: Frames = []
        while self.events:
            out += self.server.apply(self.events.pop(0))
        return out

    def reject(self, reason: str) -> Frames:
        return self.server.rejected(self.events.pop(0), reason)


def test_the_secret_reaches_its_maker_once_the_log_kept_it_and_is_not_in_the_event(
    ed_alice: IdentityKey,
) -> None:
    waiting = Waiting(ed_alice)
    assert command(waiting.server, ALICE, "invitation") == []
    (event,) = waiting.events
    assert isinstance(event, InvitationMade)
    wire = {"type", "node", "sid", "id", "digest", "made_by", "made_at", "expires_at"}
    assert set(encode_event(event)) == wire
    out = waiting.apply_all()
    assert [frame["type"] for _, frame in out] == ["invitation"]
    assert secret_digest(out[0][1]["secret"]) == event.digest
    assert waiting.server.made_invitations == {}


def test_a_refused_invitation_tells_its_maker_and_keeps_no_secret(ed_alice: IdentityKey) -> None:
    waiting = Waiting(ed_alice)
    command(waiting.server, ALICE, "invitation")
    assert waiting.reject(DEGRADED_REJECTION) == error(
        ALICE, "not done: the cluster's store is unreachable"
    )
    assert waiting.server.made_invitations == {}


def test_the_hello_waits_for_the_use_and_a_use_the_log_refused_ends_the_session(
    ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    waiting = Waiting(ed_alice)
    command(waiting.server, ALICE, "invitation")
    secret = waiting.apply_all()[0][1]["secret"]
    server = waiting.server
    assert hello_with(server, BOB, ed_bob, "bob", secret) == []
    (use,) = waiting.events
    assert use == InvitationUse(
        node="a",
        sid=BOB,
        id=invitation_id(secret_digest(secret)),
        fingerprint=ed_bob.fingerprint,
        at=NOW,
    )
    again = {"type": "hello", "nick": "bob", "invitation": secret}
    assert server.receive(BOB, again, NOW) == error(BOB, "already said hello")
    assert command(server, BOB, "rooms") == error(BOB, "say hello first")
    # Another server's key used it first: the log refuses this use.
    assert waiting.reject("this invitation was used already") == bye(
        BOB, "this invitation was used already"
    )
    assert server.store.allowed(ed_bob.fingerprint) is None
    # Unreachable: the session is told to come back.
    assert hello_with(server, CAROL, ed_carol, "carol", secret) == []
    assert waiting.reject(DEGRADED_REJECTION) == bye(
        CAROL, "the cluster's store is unreachable; try the invitation again in a while"
    )


def test_a_use_applied_after_its_session_left_still_counts(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    waiting = Waiting(ed_alice)
    command(waiting.server, ALICE, "invitation")
    (made,) = waiting.events
    assert isinstance(made, InvitationMade)
    made_id = made.id
    secret = waiting.apply_all()[0][1]["secret"]
    hello_with(waiting.server, BOB, ed_bob, "bob", secret)
    waiting.server.disconnect(BOB, "connection lost")
    used = f"invitation {made_id} was used by {ed_bob.fingerprint}, now on the allowlist"
    assert waiting.apply_all() == [notice(ALICE, used)]
    assert waiting.server.store.allowed(ed_bob.fingerprint) is True
