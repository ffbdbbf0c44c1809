"""The end-to-end layer across a cluster, with a real Redis: ChatServers in this process, each with
its own RedisBroker (and MemoryStore replica), as the server processes run them.

One-time key claims are atomic across servers (no key is handed out twice), inbox ids are the
same on every replica (Redis assigns them), encrypted history and rooms, devices and inboxes are
in what a server that joins later loads, and the device a ninth replaces is the same everywhere.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from tlschat.broker.redis import PREFIX, RedisBroker
from tlschat.chat.server.events import ChatServer
from tlschat.chat.server.inbox import INBOX_BOUNDS
from tlschat.chat.server.model import ChatSettings, Outgoing
from tlschat.e2e.device import Device
from tlschat.protocol.identity import IdentityKey
from tlschat.store.memory import MemoryStore

from ..chat.helpers import NETWORK, NOW, peer_of, say
from ..chat.server_e2e_helpers import (
    device_keys,
    fallback_key,
    megolm_say,
    olm,
    one_time_keys,
    private_say,
)
from .harness import RedisServer

WAIT = 10.0


@pytest.fixture(scope="module")
def ed_alice() -> IdentityKey:
    return IdentityKey.generate("ed25519")


@pytest.fixture(scope="module")
def ed_bob() -> IdentityKey:
    return IdentityKey.generate("ed25519")


@pytest.fixture(scope="module")
def ed_carol() -> IdentityKey:
    return IdentityKey.generate("ed25519")


class Node:
    """One server of the cluster: its chat logic, its broker, and every frame it sent."""

    def __init__(self, url: str, operators: frozenset[str] = frozenset()) -> None:
        self.broker = RedisBroker(url, 50)
        self.sent: list[Outgoing] = []
        self.chat = ChatServer(
            ChatSettings(server_name="cluster", operators=operators),
            MemoryStore(50),
            self.broker.node,
            self.broker.publish,
            network=NETWORK,
        )

    async def start(self) -> Node:
        await self.broker.start(self.chat, self.sent.extend)
        assert self.broker.connected
        return self

    def hello(
        self, session_id: int, key: IdentityKey, nick: str, device: Device | None, now: float = NOW
    ) -> None:
        self.sent += self.chat.connect(session_id, peer_of(key), "127.0.0.1:1", now)
        frame: dict[str, Any] = {"type": "hello", "nick": nick}
        if device is not None:
            frame["device_keys"] = device_keys(key, device)
        self.receive(session_id, frame, now)

    def receive(self, session_id: int, frame: dict[str, Any], now: float = NOW) -> None:
        self.sent += self.chat.receive(session_id, frame, now)

    def frames(self, session_id: int, kind: str) -> list[dict[str, Any]]:
        return [f for sid, f in self.sent if sid == session_id and f["type"] == kind]


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


# A whole scenario, its servers' starts and stops included, ends within this (it fails
# otherwise, naming what every task was waiting for).
SCENARIO_BOUND = 120.0


def run(scenario: Callable[[list[Node]], Coroutine[Any, Any, None]], nodes: list[Node]) -> None:
    async def main() -> None:
        for node in nodes:
            await node.start()
        try:
            await scenario(nodes)
        finally:
            for node in nodes:
                await node.broker.stop()

    async def bounded() -> None:
        task = asyncio.create_task(main())
        done, _ = await asyncio.wait([task], timeout=SCENARIO_BOUND)
        if not done:
            stacks = io.StringIO()
            for each in asyncio.all_tasks():
                each.print_stack(file=stacks)
            task.cancel()
            raise AssertionError(
                f"scenario still running after {SCENARIO_BOUND} s:\n{stacks.getvalue()}"
            )
        task.result()

    asyncio.run(bounded())


def test_no_one_time_key_is_claimed_twice_across_two_servers(
    redis_server: RedisServer, ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    laptop = Device.create()
    keys, fallback = one_time_keys(laptop, 20), fallback_key(laptop)

    async def scenario(nodes: list[Node]) -> None:
        a, b = nodes
        a.hello(1, ed_bob, "bob", laptop)
        await until(lambda: a.frames(1, "keys_uploaded") != [], "bob's device")
        a.receive(1, {"type": "keys_upload", "one_time_keys": [*keys, fallback]})
        fingerprint = ed_bob.fingerprint
        await until(
            lambda: b.chat.store.one_time_key_count(fingerprint, laptop.device_id) == (20, True),
            "the keys on the other server",
        )
        a.hello(2, ed_alice, "alice", None)
        b.hello(1, ed_carol, "carol", None)
        target = {
            "type": "keys_claim",
            "devices": [{"fingerprint": fingerprint, "device": laptop.device_id}],
        }
        await until(lambda: bool(a.frames(2, "joined") and b.frames(1, "joined")), "joins")
        # Both servers claim at once: their commits race in Redis.
        for _ in range(15):
            a.receive(2, target)
            b.receive(1, target)
        await until(
            lambda: len(a.frames(2, "claimed")) == len(b.frames(1, "claimed")) == 15, "claims"
        )
        handed = [
            frame["keys"][0]["one_time_key"]
            for frame in a.frames(2, "claimed") + b.frames(1, "claimed")
        ]
        one_time = [key for key in handed if not key["fallback"]]
        assert sorted(json.dumps(k) for k in one_time) == sorted(json.dumps(k) for k in keys)
        assert handed.count(fallback) == 10
        for node in nodes:
            count = node.chat.store.one_time_key_count(fingerprint, laptop.device_id)
            assert count == (0, True)
        with redis_server.client() as db:
            assert db.hlen(f"{PREFIX}otk:{fingerprint} {laptop.device_id}") == 0
            assert db.llen(f"{PREFIX}otk_order:{fingerprint} {laptop.device_id}") == 0

    run(scenario, [Node(redis_server.url), Node(redis_server.url)])


def _ids(frames: list[dict[str, Any]]) -> list[int]:
    return [item["id"] for frame in frames for item in frame["messages"]]


def test_inbox_ids_are_the_same_on_every_server(
    redis_server: RedisServer, ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    phone, laptop, tablet = Device.create(), Device.create(), Device.create()

    async def scenario(nodes: list[Node]) -> None:
        a, b = nodes
        # bob's laptop has a session on each server; alice sends from a, carol from b.
        a.hello(1, ed_bob, "bob", laptop)
        b.hello(1, ed_bob, "bob", laptop)
        a.hello(2, ed_alice, "alice", phone)
        b.hello(2, ed_carol, "carol", tablet)
        await until(
            lambda: all(n.frames(s, "keys_uploaded") for n in nodes for s in (1, 2)), "devices"
        )
        bob = ed_bob.fingerprint
        for serial in range(10):
            a.receive(
                2,
                {"type": "to_device", "messages": [olm(bob, laptop.device_id, f"YWxpY2U{serial}")]},
            )
            # An item for an unknown device (alice's phone under bob's key) is skipped everywhere.
            unknown = olm(bob, phone.device_id)
            b.receive(
                2,
                {
                    "type": "to_device",
                    "messages": [unknown, olm(bob, laptop.device_id, f"Y2Fyb2w{serial}")],
                },
            )
        await until(
            lambda: (
                len(_ids(a.frames(1, "device_messages"))) == 20
                and len(_ids(b.frames(1, "device_messages"))) == 20
            ),
            "the items on both servers",
        )
        ids = _ids(a.frames(1, "device_messages"))
        assert ids == _ids(b.frames(1, "device_messages"))
        assert ids == sorted(set(ids))
        replicas = [
            [
                (i.id, i.payload)
                for i in n.chat.store.inbox(bob, laptop.device_id, 0, NOW, INBOX_BOUNDS)
            ]
            for n in nodes
        ]
        assert replicas[0] == replicas[1] and [i for i, _ in replicas[0]] == ids
        for n in nodes:
            assert n.chat.store.inbox(bob, phone.device_id, 0, NOW, INBOX_BOUNDS) == []
        with redis_server.client() as db:
            members = db.zrange(f"{PREFIX}inbox:{bob} {laptop.device_id}", 0, -1)
            assert [int(m.split(b" ", 1)[0]) for m in members] == ids
            assert not db.exists(f"{PREFIX}inbox:{bob} {phone.device_id}")
        # Acknowledged on one server, the items are gone everywhere.
        a.receive(1, {"type": "device_ack", "upto": ids[-1]})
        await until(
            lambda: all(
                n.chat.store.inbox(bob, laptop.device_id, 0, NOW, INBOX_BOUNDS) == [] for n in nodes
            ),
            "the ack on both servers",
        )
        with redis_server.client() as db:
            assert db.zcard(f"{PREFIX}inbox:{bob} {laptop.device_id}") == 0
            assert int(db.hget(f"{PREFIX}inbox_bytes", f"{bob} {laptop.device_id}") or 0) == 0

    run(scenario, [Node(redis_server.url), Node(redis_server.url)])


def test_encrypted_rooms_lines_and_private_messages_cross_servers_and_are_loaded_later(
    redis_server: RedisServer, ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    phone, laptop = Device.create(), Device.create()
    operators = frozenset({ed_alice.fingerprint, ed_bob.fingerprint})

    async def scenario(nodes: list[Node]) -> None:
        a, b = nodes
        a.hello(1, ed_alice, "alice", phone)
        b.hello(1, ed_bob, "bob", laptop)
        await until(lambda: bool(a.frames(1, "joined") and b.frames(1, "joined")), "joins")
        b.receive(1, {"type": "keys_upload", "one_time_keys": one_time_keys(laptop, 3)})
        a.receive(1, {"type": "command", "name": "encrypt", "args": "#general"})
        b.receive(1, {"type": "command", "name": "encrypt", "args": "#general"})
        await until(lambda: bool(b.frames(1, "encrypted")), "the room encrypted")
        # Both asked at once: the log took one, and refused the other.
        await until(lambda: bool(a.frames(1, "error") or b.frames(1, "error")), "a refusal")
        refusals = a.frames(1, "error") + b.frames(1, "error")
        assert refusals == [{"type": "error", "text": "#general is already encrypted"}]
        line = megolm_say(ed_alice, 1)
        a.receive(1, line)
        await until(lambda: bool(b.frames(1, "message")), "the line")
        [relayed] = b.frames(1, "message")
        assert relayed["megolm"] == line["megolm"] and "body" not in relayed
        b.receive(1, say(ed_bob, 1))
        assert (
            b.frames(1, "error")[-1]["text"] == "message rejected: #general is end-to-end encrypted"
        )
        keys = [olm(ed_bob.fingerprint, laptop.device_id)]
        a.receive(1, private_say(ed_alice, 2, ed_bob.fingerprint, keys))
        await until(lambda: bool(a.frames(1, "sent")) and len(a.frames(1, "sent")) == 2, "sent")
        await until(lambda: bool(b.frames(1, "device_messages")), "the private message")
        [page] = b.frames(1, "device_messages")
        [item] = page["messages"]
        assert item["message"]["olm_private"]["ct"]
        # A server that joins now loads it all from Redis.
        c = await Node(redis_server.url, operators).start()
        try:
            store = c.chat.store
            assert c.chat.encrypted_rooms == {"#general"}
            assert [d.device for d in store.devices_of(ed_alice.fingerprint)] == [phone.device_id]
            assert store.one_time_key_count(ed_bob.fingerprint, laptop.device_id) == (3, False)
            [held] = store.inbox(ed_bob.fingerprint, laptop.device_id, 0, NOW, INBOX_BOUNDS)
            assert held.id == item["id"] and json.loads(held.payload) == {
                k: v for k, v in item.items() if k != "id"
            }
            [history] = store.recent_messages("#general", 50)
            assert json.loads(history.encrypted) == line["megolm"]
            c.hello(1, ed_carol, "carol", None)
            await until(lambda: bool(c.frames(1, "history")), "carol's history")
            [frame] = c.frames(1, "history")
            assert frame["messages"][0]["megolm"] == line["megolm"]
            [joined] = c.frames(1, "joined")
            assert joined["encrypted"] is True
            # Its replica took the same claim the script decided.
            target = {"fingerprint": ed_bob.fingerprint, "device": laptop.device_id}
            c.receive(1, {"type": "keys_claim", "devices": [target]})
            await until(lambda: bool(c.frames(1, "claimed")), "the claim")
            for node in (a, b, c):
                count = node.chat.store.one_time_key_count(ed_bob.fingerprint, laptop.device_id)
                assert count == (2, False)
        finally:
            await c.broker.stop()
        # Each device's event came before its session's 'online' in the log.
        with redis_server.client() as db:
            kinds = [
                (event["type"], event.get("fingerprint"))
                for event in (json.loads(fields[b"e"]) for _, fields in db.xrange(f"{PREFIX}log"))
            ]
        for fingerprint in (ed_alice.fingerprint, ed_bob.fingerprint):
            assert kinds.index(("device", fingerprint)) < kinds.index(("online", fingerprint))

    run(scenario, [Node(redis_server.url, operators), Node(redis_server.url, operators)])


def test_the_device_a_ninth_replaces_and_a_removed_one_are_gone_everywhere(
    redis_server: RedisServer, ed_alice: IdentityKey
) -> None:
    devices = [Device.create() for _ in range(9)]

    async def scenario(nodes: list[Node]) -> None:
        # Devices connect alternately to each server, a second apart; the ninth replaces the first.
        expected = sorted(d.device_id for d in devices[1:])

        def directory(node: Node) -> list[str]:
            return [d.device for d in node.chat.store.devices_of(ed_alice.fingerprint)]

        for index, device in enumerate(devices):
            server, session_id = nodes[index % 2], 10 + index
            server.hello(session_id, ed_alice, "alice", device, now=NOW + index)
            await until(
                lambda: bool(server.frames(session_id, "keys_uploaded")),  # noqa: B023
                "the device",
            )
        await until(lambda: directory(nodes[0]) == directory(nodes[1]) == expected, "directory")
        assert nodes[0].chat.sessions[10].device is None
        with redis_server.client() as db:
            listed = sorted(k.decode() for k in db.hkeys(f"{PREFIX}devices:{ed_alice.fingerprint}"))
            assert listed == expected
        # A device removed on one server (with its keys) is gone from every replica and Redis.
        gone = devices[2]
        key = f"{ed_alice.fingerprint} {gone.device_id}"
        nodes[0].receive(12, {"type": "keys_upload", "one_time_keys": one_time_keys(gone, 2)})
        await until(lambda: bool(nodes[0].frames(12, "keys_uploaded")[1:]), "the keys")
        nodes[1].receive(11, {"type": "device_remove", "device": gone.device_id})
        expected.remove(gone.device_id)
        await until(lambda: directory(nodes[0]) == directory(nodes[1]) == expected, "removal")
        assert nodes[0].chat.sessions[12].device is None
        assert nodes[0].chat.store.one_time_key_count(ed_alice.fingerprint, gone.device_id) == (
            0,
            False,
        )
        with redis_server.client() as db:
            assert not db.hexists(f"{PREFIX}devices:{ed_alice.fingerprint}", gone.device_id)
            assert not db.exists(f"{PREFIX}otk:{key}") and not db.exists(f"{PREFIX}otk_order:{key}")

    run(scenario, [Node(redis_server.url), Node(redis_server.url)])
