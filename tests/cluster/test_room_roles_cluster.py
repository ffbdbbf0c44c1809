"""Private rooms and room roles across a cluster, with a real Redis: ChatServers in this process,
each with its own RedisBroker (and MemoryStore replica), as the server processes run them.

A room made invite-only on one server is closed on the others; an invitation, a kick, a ban and a
mute given on one server take effect on all; one owner wins when two servers' keys create a room
at once; Redis holds all of it, and a server that joins later loads it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tlschat.broker.redis import PREFIX
from tlschat.protocol.identity import IdentityKey

from ..chat.room_roles_helpers import INVITE_ONLY, TEAM
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


def command(node: Node, session_id: int, name: str, args: str) -> None:
    node.receive(session_id, {"type": "command", "name": name, "args": args})


def notices(node: Node, session_id: int) -> list[str]:
    return [str(f["text"]) for f in node.frames(session_id, "notice")]


def errors(node: Node, session_id: int) -> list[str]:
    return [str(f["text"]) for f in node.frames(session_id, "error")]


def room_hash(redis_server: RedisServer, room: str) -> dict[str, str]:
    with redis_server.client() as db:
        raw: dict[bytes, bytes] = db.hgetall(f"{PREFIX}room:{room}")
    return {name.decode(): value.decode() for name, value in raw.items()}


def test_an_invite_only_room_across_two_servers_and_loaded_by_a_third(
    redis_server: RedisServer, ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    alice, bob, carol = ed_alice.fingerprint, ed_bob.fingerprint, ed_carol.fingerprint

    async def scenario(nodes: list[Node]) -> None:
        a, b = nodes
        a.hello(1, ed_alice, "alice", None)
        b.hello(1, ed_bob, "bob", None)
        b.hello(2, ed_carol, "carol", None)
        await until(lambda: bool(a.frames(1, "joined") and len(b.frames(2, "joined")) == 1), "hi")
        command(a, 1, "join", TEAM)
        await until(lambda: len(a.frames(1, "joined")) == 2, "alice in #team")
        assert a.frames(1, "joined")[1]["owner"] == alice
        command(a, 1, "private", TEAM)
        await until(lambda: b.chat.room_book.invite_only(TEAM), "the room closed on b")
        assert TEAM in b.chat.encrypted_rooms

        # On the other server: carol can neither join nor see it.
        command(b, 2, "join", TEAM)
        command(b, 2, "rooms", "")
        command(b, 2, "names", TEAM)
        command(b, 2, "whois", "alice")
        assert errors(b, 2) == [
            INVITE_ONLY,
            "#team is invite-only; only its members see who is in it",
        ]
        assert b.frames(2, "info")[0]["lines"] == ["#general (3 members)"]
        assert b.frames(2, "whois")[0]["rooms"] == ["#general"]

        # Invited on a, bob joins on b; a kick on a takes him out on b.
        command(a, 1, "invite", "bob #team")
        await until(lambda: "alice invited you to #team: /join #team" in notices(b, 1), "invite")
        command(b, 1, "join", TEAM)
        await until(lambda: len(b.frames(1, "joined")) == 2, "bob in #team")
        joined: dict[str, Any] = b.frames(1, "joined")[1]
        assert (joined["owner"], joined["invite_only"], joined["encrypted"]) == (alice, True, True)
        await until(lambda: bool(a.frames(1, "join")), "alice hears bob join")
        command(a, 1, "rkick", "bob #team enough")
        await until(lambda: bool(b.frames(1, "parted")), "bob kicked")
        assert "you were kicked from #team by alice: enough" in notices(b, 1)
        await until(lambda: bool(a.frames(1, "leave")), "alice hears bob leave")
        assert a.frames(1, "leave")[0]["reason"] == "kicked by alice: enough"
        command(b, 1, "join", TEAM)
        assert errors(b, 1) == [INVITE_ONLY]

        # A ban and a mute given on b (by a room operator there) hold on a.
        command(a, 1, "roomop", "bob #team")
        await until(lambda: "alice made you an operator of #team" in notices(b, 1), "op")
        command(b, 1, "rmute", "alice #team")
        command(b, 1, "rban", "carol #team 1h spam")
        await until(lambda: bool(a.chat.room_book.state(TEAM).bans), "the ban on a")
        assert errors(b, 1)[-1] == "alice is the owner of #team"
        with redis_server.client() as db:
            assert db.sismember(f"{PREFIX}encrypted_rooms", TEAM)
        stored = room_hash(redis_server, TEAM)
        assert stored.pop(f"ban {carol}").startswith('{"until":')
        assert stored == {
            "owner": alice,
            "invite_only": "1",
            f"admitted {alice}": "1",
            f"operator {bob}": "1",
        }

        # A server that joins now loads it all.
        c = await Node(redis_server.url).start()
        try:
            state = c.chat.room_book.get(TEAM)
            assert state is not None
            assert (state.owner, state.invite_only) == (alice, True)
            assert (state.operators, state.admitted, set(state.bans)) == ({bob}, {alice}, {carol})
            assert c.chat.store.room_states()[TEAM] == state
            assert TEAM in c.chat.encrypted_rooms
            c.hello(1, ed_carol, "carol", None)
            await until(lambda: bool(c.frames(1, "joined")), "carol on c")
            command(c, 1, "join", TEAM)
            assert errors(c, 1)[0].startswith("you are banned from #team for ")
        finally:
            await c.broker.stop()

    run(scenario, [Node(redis_server.url), Node(redis_server.url)])


def test_two_servers_creating_one_room_at_once_agree_on_its_owner(
    redis_server: RedisServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    async def scenario(nodes: list[Node]) -> None:
        a, b = nodes
        a.hello(1, ed_alice, "alice", None)
        b.hello(1, ed_bob, "bob", None)
        await until(lambda: bool(a.frames(1, "joined") and b.frames(1, "joined")), "hellos")
        for serial in range(10):
            command(a, 1, "join", f"#race{serial}")
            command(b, 1, "join", f"#race{serial}")
        await until(lambda: len(a.frames(1, "joined")) == len(b.frames(1, "joined")) == 11, "joins")
        # Neither server had applied the other's claim when it made its own: the log holds both.
        with redis_server.client() as db:
            events = [json.loads(fields[b"e"]) for _, fields in db.xrange(f"{PREFIX}log")]
        assert sum(event["type"] == "room_owner" for event in events) == 20
        for serial in range(10):
            room = f"#race{serial}"
            owners = {node.chat.room_book.state(room).owner for node in nodes}
            owners |= {node.chat.store.room_states()[room].owner for node in nodes}
            assert owners == {room_hash(redis_server, room)["owner"]}, room
            assert owners <= {ed_alice.fingerprint, ed_bob.fingerprint}

    run(scenario, [Node(redis_server.url), Node(redis_server.url)])
