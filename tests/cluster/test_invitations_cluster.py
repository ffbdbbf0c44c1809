"""Invitations across a cluster, with a real Redis: ChatServers in this process, each with its own
RedisBroker and replica. An invitation made on one server is used on another; the commit script
uses it up, so a second use, also one racing the first on another server, is refused; revoking
holds everywhere; `tlschat invite --broker` makes one for the whole cluster; and a server that
joins later loads them all.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from tlschat.broker.redis import PREFIX
from tlschat.chat.invitation import invitation_id, secret_digest
from tlschat.chat.server.invitations import ADMITTED
from tlschat.invite_command import make_invitation
from tlschat.protocol.identity import IdentityKey
from tlschat.server.keys import load_or_create_server_identity

from ..chat.helpers import NOW, peer_of
from .harness import RedisServer
from .test_e2e_cluster import Node, run, until

KEYS = ("alice", "bob", "carol", "dave", "erin")


@pytest.fixture(scope="module")
def keys() -> dict[str, IdentityKey]:
    return {name: IdentityKey.generate("ed25519") for name in KEYS}


def listed_only(node: Node) -> Node:
    """``node`` with an allowlist in force that holds nobody (operators are admitted)."""
    node.chat.settings = dataclasses.replace(node.chat.settings, allowlist=frozenset())
    return node


def invited_hello(node: Node, session_id: int, key: IdentityKey, nick: str, secret: str) -> None:
    assert node.chat.connect(session_id, peer_of(key), "127.0.0.1:1", NOW) == []
    node.receive(session_id, {"type": "hello", "nick": nick, "invitation": secret})


def invite(node: Node, session_id: int, args: str = "") -> None:
    node.receive(session_id, {"type": "command", "name": "invitation", "args": args})


def texts(node: Node, session_id: int, kind: str) -> list[Any]:
    field = "reason" if kind == "bye" else "text"
    return [frame[field] for frame in node.frames(session_id, kind)]


def outcome(node: Node, session_id: int) -> str:
    """'welcome' or 'bye' once the session has one."""
    kinds = [frame["type"] for sid, frame in node.sent if sid == session_id]
    return next((kind for kind in kinds if kind in ("welcome", "bye")), "")


def test_an_invitation_made_on_one_server_is_used_once_in_the_whole_cluster(
    redis_server: RedisServer, keys: dict[str, IdentityKey]
) -> None:
    alice, bob, carol = keys["alice"], keys["bob"], keys["carol"]
    operators = frozenset({alice.fingerprint})

    async def scenario(nodes: list[Node]) -> None:
        a, b = nodes
        a.hello(1, alice, "alice", None)
        await until(lambda: bool(a.frames(1, "joined")), "alice in")
        invite(a, 1)
        await until(lambda: bool(a.frames(1, "invitation")), "the invitation")
        made = a.frames(1, "invitation")[0]
        made_id, secret = made["id"], made["secret"]
        assert made_id == invitation_id(secret_digest(secret))
        await until(lambda: b.chat.store.invitation(made_id) is not None, "it on b")
        with redis_server.client() as db:
            kept = db.hgetall(f"{PREFIX}invitation:{made_id}")
            assert kept[b"digest"] == secret_digest(secret).encode()
            assert secret.encode() not in b"".join([*kept.values(), *kept.keys()])
            log = b"".join(f for _, entry in db.xrange(f"{PREFIX}log") for f in entry.values())
            assert secret.encode() not in log

        # Bob uses it on b: admitted, and on the allowlist of every server.
        invited_hello(b, 1, bob, "bob", secret)
        await until(lambda: bool(b.frames(1, "joined")), "bob in, on b")
        assert ADMITTED in texts(b, 1, "notice")
        await until(lambda: a.chat.store.allowed(bob.fingerprint) is True, "bob allowed on a")
        used = f"invitation {made_id} was used by {bob.fingerprint}, now on the allowlist"
        await until(lambda: used in texts(a, 1, "notice"), "alice told")
        with redis_server.client() as db:
            assert db.hget(f"{PREFIX}invitation:{made_id}", "used_by") == bob.fingerprint.encode()
            assert db.hget(f"{PREFIX}allowlist", bob.fingerprint) == b"1"

        # Carol tries it on a: used already.
        invited_hello(a, 2, carol, "carol", secret)
        assert texts(a, 2, "bye") == ["this invitation was used already"]

        # Bob comes back to a without it: admitted.
        a.hello(3, bob, "bob", None)
        await until(lambda: bool(a.frames(3, "joined")), "bob in, on a")

    run(scenario, [listed_only(Node(redis_server.url, operators)) for _ in range(2)])


def test_two_servers_racing_to_use_one_invitation_admit_one_key(
    redis_server: RedisServer, keys: dict[str, IdentityKey]
) -> None:
    alice, dave, erin = keys["alice"], keys["dave"], keys["erin"]
    operators = frozenset({alice.fingerprint})

    async def scenario(nodes: list[Node]) -> None:
        a, b = nodes
        a.hello(1, alice, "alice", None)
        await until(lambda: bool(a.frames(1, "joined")), "alice in")
        for _ in range(5):
            invite(a, 1)
        await until(lambda: len(a.frames(1, "invitation")) == 5, "the invitations")
        made = a.frames(1, "invitation")
        await until(lambda: b.chat.store.open_invitations(NOW) == 5, "them on b")
        # Each invitation is brought to both servers at once: both replicas see it open, and
        # the commit script decides which use comes first.
        for index, frame in enumerate(made):
            invited_hello(a, 10 + index, dave if index % 2 else erin, "x", frame["secret"])
            invited_hello(b, 10 + index, erin if index % 2 else dave, "y", frame["secret"])
        sessions = [(node, 10 + index) for index in range(5) for node in (a, b)]
        await until(lambda: all(outcome(n, s) for n, s in sessions), "every outcome")
        for index in range(5):
            pair = sorted(outcome(node, 10 + index) for node in (a, b))
            assert pair == ["bye", "welcome"], index
            loser = next(node for node in (a, b) if outcome(node, 10 + index) == "bye")
            assert texts(loser, 10 + index, "bye") == ["this invitation was used already"]
        for node in (a, b):
            assert node.chat.store.open_invitations(NOW) == 0
            assert [i.state(NOW) for i in node.chat.store.invitations()] == ["used"] * 5

    run(scenario, [listed_only(Node(redis_server.url, operators)) for _ in range(2)])


def test_revoke_and_the_command_line_hold_for_every_server_and_a_new_one_loads_them(
    redis_server: RedisServer, keys: dict[str, IdentityKey], tmp_path: Path
) -> None:
    alice, bob, carol = keys["alice"], keys["bob"], keys["carol"]
    operators = frozenset({alice.fingerprint})
    server_key, _, _ = load_or_create_server_identity(tmp_path / "data")

    async def scenario(nodes: list[Node]) -> None:
        a, b = nodes
        a.hello(1, alice, "alice", None)
        b.hello(1, alice, "alice", None)
        await until(lambda: bool(a.frames(1, "joined") and b.frames(1, "joined")), "alice in")
        invite(a, 1, "1d")
        await until(lambda: bool(a.frames(1, "invitation")), "the invitation")
        made_id, secret = a.frames(1, "invitation")[0]["id"], a.frames(1, "invitation")[0]["secret"]
        await until(lambda: b.chat.store.invitation(made_id) is not None, "it on b")
        b.receive(1, {"type": "command", "name": "revoke", "args": made_id})
        await until(lambda: f"revoked invitation {made_id}" in texts(b, 1, "notice"), "revoked")
        invited_hello(a, 2, bob, "bob", secret)
        assert texts(a, 2, "bye") == ["this invitation was revoked"]

        # `tlschat invite --broker`: committed to the log, every server has it at once.
        args = argparse.Namespace(
            data_dir=tmp_path / "data",
            expires="2h",
            host="chat.example.org",
            port=8443,
            broker=redis_server.url,
        )
        cli_made = make_invitation(args, NOW)
        assert cli_made.where == f"committed to the cluster at {redis_server.url}"
        assert cli_made.invitation.fingerprint == server_key.fingerprint
        await until(lambda: a.chat.store.invitation(cli_made.id) is not None, "it on a")
        await until(lambda: b.chat.store.invitation(cli_made.id) is not None, "it on b")
        invited_hello(b, 3, carol, "carol", cli_made.invitation.secret)
        await until(lambda: bool(b.frames(3, "joined")), "carol in, on b")

        # A server that joins now loads both: one revoked, one used.
        c = await listed_only(Node(redis_server.url, operators)).start()
        try:
            states = {i.id: i.state(NOW) for i in c.chat.store.invitations()}
            assert states == {made_id: "revoked", cli_made.id: "used"}
            loaded = c.chat.store.invitation(cli_made.id)
            assert loaded is not None and loaded.used_by == carol.fingerprint
            assert loaded == b.chat.store.invitation(cli_made.id)
        finally:
            await c.broker.stop()

    run(scenario, [listed_only(Node(redis_server.url, operators)) for _ in range(2)])
