"""Administration at run time across a cluster, with a real Redis: /allow, /disallow and /release
run on one server take effect on the others (committed by the Lua script, applied from the log),
are durable in Redis, and are in what a server that joins later loads.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tlschat.broker.redis import PREFIX
from tlschat.chat.server.cluster_events import Release
from tlschat.protocol.identity import IdentityKey

from ..chat.helpers import fallback_nick, peer_of
from .harness import RedisServer
from .test_e2e_cluster import Node, run, until


@pytest.fixture(scope="module")
def ed_alice() -> IdentityKey:
    return IdentityKey.generate("ed25519")


@pytest.fixture(scope="module")
def ed_bob() -> IdentityKey:
    return IdentityKey.generate("ed25519")


@pytest.fixture(scope="module")
def ed_carol() -> IdentityKey:
    return IdentityKey.generate("ed25519")


def listed(node: Node, *keys: IdentityKey) -> Node:
    """``node`` with an allowlist in force that holds ``keys``."""
    allowlist = frozenset(key.fingerprint for key in keys)
    node.chat.settings = dataclasses.replace(node.chat.settings, allowlist=allowlist)
    return node


def command(node: Node, session_id: int, name: str, args: str) -> None:
    node.receive(session_id, {"type": "command", "name": name, "args": args})


def texts(node: Node, session_id: int, kind: str) -> list[Any]:
    field = "reason" if kind == "bye" else "text"
    return [frame[field] for frame in node.frames(session_id, kind)]


def test_allow_and_disallow_on_one_server_hold_on_every_server(
    redis_server: RedisServer, ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    operators = frozenset({ed_alice.fingerprint})
    bob = ed_bob.fingerprint

    async def scenario(nodes: list[Node]) -> None:
        a, b = nodes
        a.hello(1, ed_alice, "alice", None)
        b.hello(1, ed_carol, "carol", None)
        await until(lambda: bool(a.frames(1, "joined") and b.frames(1, "joined")), "joins")
        assert b.chat.connect(2, peer_of(ed_bob), "127.0.0.1:2", 0.0) == []
        refused = b.chat.receive(2, {"type": "hello", "nick": "bob"}, 0.0)
        assert [frame["type"] for _, frame in refused] == ["bye"]

        command(a, 1, "allow", bob)
        await until(lambda: b.chat.store.allowed(bob) is True, "the /allow on b")
        await until(lambda: f"allowed {bob}" in texts(a, 1, "notice"), "alice told")
        b.hello(3, ed_bob, "bob", None)
        await until(lambda: bool(b.frames(3, "joined")), "bob in, on b")
        await until(lambda: a.chat._online_by_nick("bob") != [], "bob seen on a")

        command(a, 1, "disallow", "bob")
        await until(lambda: bool(b.frames(3, "bye")), "bob's bye on b")
        assert texts(b, 3, "bye") == ["removed from this server's allowlist by alice"]
        done = f"disallowed bob ({bob}); its sessions are disconnected"
        await until(lambda: done in texts(a, 1, "notice"), "alice told")
        assert a.chat.store.allowed(bob) is False
        with redis_server.client() as db:
            assert db.hget(f"{PREFIX}allowlist", bob) == b"0"

        # A server that joins now loads the decision: it refuses bob too.
        c = await listed(Node(redis_server.url, operators), ed_carol).start()
        try:
            assert c.chat.store.allowed(bob) is False
            assert c.chat.connect(1, peer_of(ed_bob), "127.0.0.1:3", 0.0) == []
            refused = c.chat.receive(1, {"type": "hello", "nick": "bob"}, 0.0)
            assert [frame["type"] for _, frame in refused] == ["bye"]
        finally:
            await c.broker.stop()

    nodes = [Node(redis_server.url, operators), Node(redis_server.url, operators)]
    run(scenario, [listed(node, ed_carol) for node in nodes])


def test_release_on_one_server_renames_the_owner_on_another_and_frees_the_nick(
    redis_server: RedisServer, ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    operators = frozenset({ed_alice.fingerprint})
    bob, fallback = ed_bob.fingerprint, fallback_nick(ed_bob)

    async def scenario(nodes: list[Node]) -> None:
        a, b = nodes
        a.hello(1, ed_alice, "alice", None)
        b.hello(1, ed_bob, "bob", None)
        b.hello(2, ed_bob, "bob", None)
        await until(lambda: bool(a.frames(1, "joined") and b.frames(2, "joined")), "joins")
        await until(lambda: len(a.chat._online_of(bob)) == 2, "bob's sessions seen on a")

        command(a, 1, "release", "bob")
        told = f"your nick bob was released by an operator; you are {fallback}"
        for session_id in (1, 2):
            await until(lambda s=session_id: told in texts(b, s, "notice"), "bob told")
            assert b.frames(session_id, "nick")[-1] == {
                "type": "nick",
                "old": "bob",
                "new": fallback,
                "fingerprint": bob,
            }
        await until(lambda: bool(a.frames(1, "nick")), "alice sees the rename")
        done = f"released bob from {bob}; its sessions are now {fallback}"
        assert done in texts(a, 1, "notice")
        for node in (a, b):
            assert node.chat.store.nick_owner("bob") is None
            assert node.chat.store.nick_of(bob) == fallback
        assert {m.nick for m in a.chat._online_of(bob)} == {fallback}
        with redis_server.client() as db:
            assert db.hget(f"{PREFIX}nick", bob) == fallback.encode()
            assert db.hget(f"{PREFIX}nick_owner", "bob") is None
            assert db.hget(f"{PREFIX}nick_owner", fallback) == bob.encode()

        # The nick is free: carol takes it on the other server.
        a.hello(3, ed_carol, "bob", None)
        await until(lambda: bool(a.frames(3, "joined")), "carol in")
        assert a.frames(3, "welcome")[0]["nick"] == "bob"
        await until(lambda: b.chat.store.nick_owner("bob") == ed_carol.fingerprint, "on b")

        # The script refuses a release that the log overtook: "bob" is carol's now.
        release = Release(node=a.chat.node, sid=1, confirm="x", nick="bob", fingerprint=bob)
        a.sent += a.chat.publish(release)
        refusal = f"bob is no longer {bob}'s: nothing was released"
        await until(lambda: refusal in texts(a, 1, "error"), "the refusal")
        assert b.chat.store.nick_owner("bob") == ed_carol.fingerprint

        # A server that joins now loads it all.
        c = await Node(redis_server.url, operators).start()
        try:
            assert c.chat.store.nick_owner("bob") == ed_carol.fingerprint
            assert c.chat.store.nick_of(bob) == fallback
        finally:
            await c.broker.stop()

    run(scenario, [Node(redis_server.url, operators), Node(redis_server.url, operators)])
