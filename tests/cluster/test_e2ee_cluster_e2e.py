"""End to end: the end-to-end layer (issue 14) on a cluster, two servers sharing one Redis.

Users on different servers exchange encrypted private messages, also with a device that is
offline when they are sent and comes back through the other server; one-time keys uploaded
through one server are claimed through both, each key once; an encrypted room works across
servers, and a member who left reads nothing said meanwhile. Then the canary: what the cluster
stores and logs (every Redis value, Redis's append-only files, its memory and the servers')
holds no trace of the text of encrypted lines, though it holds the plain control line.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import redis

from tlschat.broker.redis import PREFIX
from tlschat.protocol import IdentityKey

from ..e2e.harness import WAIT, Client, Harness
from ..e2e.test_canary_e2e import (
    MIN_SCANNED,
    canaries,
    exchange,
    files_under,
    found_in,
    scan_memory,
    where,
)
from ..e2e.test_chat_features_e2e import quit_cleanly
from ..e2e.test_e2ee_e2e import (
    OTHER_DEVICE,
    Join,
    encrypted_room,
    event,
    joined,
    received,
    second_device,
    sent,
)
from .harness import POLL, Cluster, StartCluster


def one_time_keys(client: redis.Redis, fingerprint: str) -> dict[str, int]:
    """How many one-time keys the cluster holds for each device of ``fingerprint``."""
    db: Any = client  # its replies are bytes (no decode_responses)
    devices = sorted(device.decode() for device in db.hkeys(f"{PREFIX}devices:{fingerprint}"))
    return {device: db.llen(f"{PREFIX}otk_order:{fingerprint} {device}") for device in devices}


def cluster_joiner(harness: Harness, cluster: Cluster) -> Join:
    """Clients that have joined, once the cluster holds one-time keys for every device of
    their user. The e2e helpers' barrier is not enough here: a server answers a command at
    once, while the client's ``keys_upload`` before it is still on its way through Redis (a
    peer claiming meanwhile gets no key: see test_a_device_whose_first_keys_came_late_is_tried_
    again in tests/e2e/test_e2ee_e2e.py)."""

    def join(nick: str, port: int, home: Path) -> Client:
        client = joined(harness, nick, port, home=home, json=True)
        fingerprint = IdentityKey.load(home / "identity.pem").fingerprint
        deadline = time.monotonic() + WAIT
        with cluster.redis.client() as db:
            while not (counts := one_time_keys(db, fingerprint)) or 0 in counts.values():
                assert time.monotonic() < deadline, f"no one-time keys of {nick}: {counts}"
                time.sleep(POLL)
        return client

    return join


def test_private_messages_offline_devices_and_key_claims_across_servers(
    harness: Harness, make_cluster: StartCluster
) -> None:
    homes = {nick: harness.home(nick) for nick in ("alice", "bob", "carol")}
    phone_home = second_device(harness, homes["bob"], "bob-phone")
    bob_fp = harness.key_fingerprint(homes["bob"])
    cluster = make_cluster(2)
    zero, one = cluster.ports
    join = cluster_joiner(harness, cluster)

    # bob's phone makes its device through server 1, then goes offline; his laptop is on 1.
    quit_cleanly(join("bob", one, phone_home))
    bob = join("bob", one, homes["bob"])
    with cluster.redis.client() as db:
        before = one_time_keys(db, bob_fp)
    assert len(before) == 2 and all(count > 2 for count in before.values()), before

    # First contact from alice, through server 0, and from carol, through server 1: each claims
    # a one-time key of each of bob's devices, uploaded through server 1.
    alice = join("alice", zero, homes["alice"])
    carol = join("carol", one, homes["carol"])
    from_alice, from_carol = "alice via server zero 41d7", "carol via server one 0e5c"
    alice.send(f"/msg bob {from_alice}")
    sent(alice, "private", from_alice)  # at once, though the phone is offline
    carol.send(f"/msg bob {from_carol}")
    sent(carol, "private", from_carol)
    received(bob, "private", "alice", from_alice)
    received(bob, "private", "carol", from_carol)
    with cluster.redis.client() as db:
        after = one_time_keys(db, bob_fp)
    # Two claims per device, each handed out a key of its own (else the second message could
    # not have been decrypted: vodozemac forgets a one-time key once a session used it).
    assert after == {device: count - 2 for device, count in before.items()}, (before, after)

    # The phone comes back through server 0: its inbox, filled through both servers.
    phone = join("bob", zero, phone_home)
    received(phone, "private", "alice", from_alice)
    received(phone, "private", "carol", from_carol)
    # From the phone on server 0 to carol on server 1; the laptop on server 1 gets the copy.
    from_phone = "bob's phone via server zero 9a2b"
    phone.send(f"/msg carol {from_phone}")
    sent(phone, "private", from_phone)
    received(carol, "private", "bob", from_phone)
    copy = event(bob, kind="private", text=from_phone, note=OTHER_DEVICE)
    assert (copy["room"], copy["encrypted"]) == ("@carol", True), copy
    quit_cleanly(alice, bob, carol, phone)


def test_an_encrypted_room_across_servers(harness: Harness, make_cluster: StartCluster) -> None:
    homes = {nick: harness.home(nick) for nick in ("alice", "bob", "carol")}
    cluster = make_cluster(2, extra=("--operator", harness.key_fingerprint(homes["alice"])))
    zero, one = cluster.ports
    ports = {"alice": zero, "bob": one, "carol": one, "carol again": zero}
    join = cluster_joiner(harness, cluster)
    alice, bob, carol = encrypted_room(harness, homes, ports, join)

    # Encrypted for good, cluster-wide: alice's other device, through the other server.
    join = cluster_joiner(harness, cluster)
    other = join("alice", one, second_device(harness, homes["alice"], "alice-2"))
    other.send("/encrypt #general")
    event(other, kind="error", text="#general is already encrypted")
    quit_cleanly(alice, bob, carol, other)


# ----- the canary: Redis -----


def redis_contents(client: redis.Redis) -> dict[str, bytes]:
    """Every key of the Redis database with its value, whatever its type, as bytes."""
    db: Any = client  # its replies are bytes (no decode_responses)
    contents: dict[str, bytes] = {}
    for key in db.scan_iter(count=1000):
        kind = db.type(key).decode()
        parts: list[bytes]
        if kind == "none":
            continue  # gone since the scan listed it (an inbox emptied meanwhile)
        if kind == "string":
            parts = [db.get(key) or b""]
        elif kind == "hash":
            parts = [b for pair in db.hgetall(key).items() for b in pair]
        elif kind == "list":
            parts = db.lrange(key, 0, -1)
        elif kind == "set":
            parts = sorted(db.smembers(key))
        elif kind == "zset":
            parts = [member for member, _ in db.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            parts = [b for _, fields in db.xrange(key) for pair in fields.items() for b in pair]
        else:
            raise AssertionError(f"Redis key {key!r} has type {kind}, which this scan misses")
        contents[key.decode()] = key + b"\n" + b"\n".join(parts)
    return contents


def test_the_canary_is_nowhere_in_redis_nor_on_the_cluster_servers(
    harness: Harness, make_cluster: StartCluster
) -> None:
    secret, control = canaries()
    homes = {nick: harness.home(nick) for nick in ("alice", "bob", "carol")}
    operator = harness.key_fingerprint(homes["alice"])
    cluster = make_cluster(2, extra=("--verbose", "--operator", operator))
    zero, one = cluster.ports
    ports = {"alice": zero, "bob": one, "carol": one}
    chat = exchange(harness, ports, homes, secret, control, cluster_joiner(harness, cluster))

    # Every value Redis holds: the plain line is there, the canary is not.
    with cluster.redis.client() as db:
        contents = redis_contents(db)
    # What was scanned holds the encrypted lines: room history, the log of events, and the
    # inbox of bob's offline device.
    assert b"megolm" in contents[f"{PREFIX}history:#vault"], sorted(contents)
    assert b"olm_private" in contents[f"{PREFIX}log"], sorted(contents)
    inboxes = [value for key, value in contents.items() if key.startswith(f"{PREFIX}inbox:")]
    assert any(b"olm_private" in value for value in inboxes), sorted(contents)
    control_in = [key for key, value in contents.items() if found_in(value, control)]
    assert control_in, "control: the plain line should be in Redis"
    leaked = {key: hits for key, value in contents.items() if (hits := found_in(value, secret))}
    assert not leaked, leaked

    # The memory of Redis and of each server, while they run.
    assert cluster.redis.process is not None
    pids = {"redis": cluster.redis.process.pid}
    pids.update((f"server {n}", server.pid) for n, server in enumerate(cluster.servers))
    for name, pid in pids.items():
        memory = scan_memory(pid, secret, control)
        assert memory.scanned >= MIN_SCANNED, (name, memory.scanned)
        assert not memory.hits[secret], (name, memory.hits)
        if name == "redis":  # it holds the history, the plain line with it
            assert memory.hits[control], "control: the plain line should be in Redis's memory"

    # Redis's files (its append-only log) and the cluster's data dir; the servers' logs.
    quit_cleanly(chat.alice, chat.bob, chat.carol)
    redis_files = files_under(cluster.redis.directory)
    assert where(redis_files, control), f"control: not in Redis's files {sorted(redis_files)}"
    assert not where(redis_files, secret), where(redis_files, secret)
    assert not where(files_under(cluster.data_dir), secret)
    for server in cluster.servers:
        log = "\n".join(server.snapshot("stdout") + server.snapshot("stderr"))
        assert "[CLUSTER] Joined the cluster" in log, server.describe()
        assert not found_in(log.encode(), secret), server.describe()
