"""Carrying a one-server chat.db's history into a cluster (issue 20, point 1): against a real
redis-server. First the import itself (order, idempotence, counters, the cap), then the whole way
as an operator goes it: a server alone, its history, a cluster server on the same data dir that
says what it lacks, `tlschat cluster-import` (twice), and a client that reads the old lines,
verified, from the cluster."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest
import redis

from tlschat.broker import redis_import
from tlschat.broker.redis_import import import_history, missing_lines, plan_room, shown_url
from tlschat.chat.server.stored import dumps, relayed_frame
from tlschat.store.base import StoredMessage
from tlschat.store.sqlite import SQLiteStore
from tlschat.store.sqlite_history import read_history

from ..e2e.harness import CLOCK, EXIT_WAIT, HOST, Harness, stop
from .harness import JOINED, RedisServer, cluster_client

NETWORK = "SHA256:network"
KEY = b"key-der"


def line(room: str, sender: str, counter: int, ts: int, body: str = "") -> StoredMessage:
    return StoredMessage(
        room,
        sender,
        sender,
        KEY,
        counter,
        ts,
        body or f"{sender} {counter}",
        f"sig {sender} {counter}".encode(),
    )


def stream(redis_server: RedisServer, room: str) -> list[tuple[str, int]]:
    with redis_server.client() as db:
        entries = db.xrange(f"tlschat:history:{room}")
    lines = [json.loads(fields[b"m"]) for _, fields in entries]
    return [(line["sender"], line["counter"]) for line in lines]


def add_cluster_line(redis_server: RedisServer, message: StoredMessage) -> None:
    """A line as a cluster server commits it: its relayed frame in the room's stream."""
    with redis_server.client() as db:
        db.xadd(f"tlschat:history:{message.room}", {"m": dumps(relayed_frame(message, NETWORK))})
        db.sadd("tlschat:rooms", message.room)


def connection(redis_server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(redis_server.url, decode_responses=True)


def test_import_merges_by_signed_time_and_adds_nothing_twice(redis_server: RedisServer) -> None:
    # The cluster already has two lines of #general, one of them also in the database.
    add_cluster_line(redis_server, line("#general", "carol", 7, 2_000))
    add_cluster_line(redis_server, line("#general", "alice", 3, 5_000))
    with redis_server.client() as db:
        db.hset("tlschat:counters", mapping={"alice": "40", "bob": "1"})
    history = {
        "#general": [
            line("#general", "alice", 1, 1_000),
            line("#general", "bob", 2, 3_000),
            line("#general", "alice", 3, 5_000),
            line("#general", "bob", 4, 6_000),
        ],
        "#rust": [line("#rust", "bob", 5, 1_500), line("#rust", "alice", 6, 1_600)],
    }
    with connection(redis_server) as db:
        assert missing_lines(db, history) == {"#general": 3, "#rust": 2}
        assert import_history(db, history, NETWORK) == {"#general": 3, "#rust": 2}
        # Run again: the cluster has every line; nothing is added, nothing is missing.
        assert import_history(db, history, NETWORK) == {}
        assert missing_lines(db, history) == {}
        counters = db.hgetall("tlschat:counters")
        rooms = db.smembers("tlschat:rooms")
    assert stream(redis_server, "#general") == [
        ("alice", 1),
        ("carol", 7),
        ("bob", 2),
        ("alice", 3),
        ("bob", 4),
    ]
    assert stream(redis_server, "#rust") == [("bob", 5), ("alice", 6)]
    assert rooms == {"#general", "#rust"}
    # Raised to the newest imported line's counter, never lowered (alice's 40 stays).
    assert counters == {"alice": "40", "bob": "5"}
    # Each line is stored as the servers relay it: the same fields, signature and all.
    with redis_server.client() as db:
        _, fields = db.xrange("tlschat:history:#rust")[0]
    assert json.loads(fields[b"m"]) == relayed_frame(history["#rust"][0], NETWORK)


def test_lines_the_cluster_cap_would_drop_at_once_are_not_missing(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A room whose stream is full of newer lines keeps its newest: older ones from the database
    are not added, nor said to be missing (else the server's warning would never go away)."""
    monkeypatch.setattr(redis_import, "HISTORY_CAP", 3)
    for counter in range(10, 13):
        add_cluster_line(redis_server, line("#general", "carol", counter, 10_000 + counter))
    old = [line("#general", "alice", 1, 1_000), line("#general", "alice", 2, 2_000)]
    newer = line("#general", "alice", 3, 10_011)  # between carol's 10 and 11
    with connection(redis_server) as db:
        assert missing_lines(db, {"#general": old}) == {}
        assert import_history(db, {"#general": [*old, newer]}, NETWORK) == {"#general": 1}
    assert stream(redis_server, "#general") == [("alice", 3), ("carol", 11), ("carol", 12)]


def test_a_plan_keeps_each_side_in_its_own_order() -> None:
    """Lines whose signed times are out of order (clocks differ) keep their order on each side."""
    existing = [
        dumps(relayed_frame(line("#r", "c", n, ts), NETWORK)) for n, ts in [(1, 50), (2, 40)]
    ]
    plan = plan_room(existing, [line("#r", "a", 9, 45), line("#r", "a", 10, 30)], NETWORK)
    order = [(line["sender"], line["counter"]) for line in map(json.loads, plan.texts)]
    assert order == [("a", 9), ("a", 10), ("c", 1), ("c", 2)]
    assert plan.added == 2


def test_a_password_in_the_broker_url_is_never_printed() -> None:
    assert shown_url("redis://:s3cret@10.0.0.5:6380/0") == "redis://:***@10.0.0.5:6380/0"
    assert shown_url("rediss://tls:s3cret@host/1") == "rediss://tls:***@host/1"
    assert shown_url("redis://127.0.0.1:6380/0") == "redis://127.0.0.1:6380/0"


def test_read_history_reads_each_rooms_newest_lines_of_a_database_in_use(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SQLiteStore(path)
    lines = [line("#b", "x", 1, 10), line("#a", "y", 2, 20), line("#b", "x", 3, 30)]
    for message in lines:
        store.append_message(message)
    store.commit()  # as a running server does at the end of each event-loop pass
    assert read_history(path, 10) == {"#a": [lines[1]], "#b": [lines[0], lines[2]]}
    assert read_history(path, 1) == {"#a": [lines[1]], "#b": [lines[2]]}
    store.close()


# ----- the whole way, with real processes -----

CARRY = re.compile(r"\[CLUSTER\] (\S+) holds (\d+) history lines? \((\d+) rooms?\)")


def said(nick: str, text: str) -> re.Pattern[str]:
    return re.compile(rf"^{CLOCK} ✓ <{re.escape(nick)}> {re.escape(text)}")


def test_a_cluster_on_a_standalone_data_dir_warns_and_imports_its_history(
    harness: Harness, redis_server: RedisServer
) -> None:
    data = harness.root / "data"
    alone = harness.server(data, name="alone")
    alice = harness.joined_client("alice", alone.port)
    for text in ("first from the server alone", "second from the server alone"):
        alice.send(text)
        alice.wait_for_line(f"sent <alice> {text}")
    alice.send("/join #rust")
    alice.wait_for_line("You are alice in #rust")
    alice.send("lifetimes again")
    alice.wait_for_line("sent <alice> lifetimes again")
    alice.close_stdin()
    assert alice.wait_exit() == 0, alice.describe()
    assert stop(alone, signal.SIGINT) == 0, alone.describe()

    # A cluster server on that data dir: its history is not the cluster's, and it says so.
    first = harness.server(data, name="first", extra=("--broker", redis_server.url))
    warning = first.wait_for_line(CARRY)
    assert warning == (
        f"[CLUSTER] {data / 'chat.db'} holds 3 history lines (2 rooms) that the cluster does "
        f"not show; carry them over with: tlschat cluster-import --data-dir {data} --broker "
        f"{redis_server.url} (then restart the servers)"
    ), first.describe()
    assert stop(first, signal.SIGINT) == 0

    imported = harness.start(
        "import", "cluster-import", "--data-dir", str(data), "--broker", redis_server.url
    )
    assert imported.wait_exit() == 0, imported.describe()
    assert imported.output() == (
        f"Carried 3 history lines of {data / 'chat.db'} into the cluster at {redis_server.url} "
        "(#general 2, #rust 1); servers already running show them once restarted"
    )
    again = harness.start(
        "again", "cluster-import", "--data-dir", str(data), "--broker", redis_server.url
    )
    assert again.wait_exit() == 0, again.describe()
    assert again.output() == (
        f"The cluster at {redis_server.url} has every history line of {data / 'chat.db'} "
        "already (3 lines in 2 rooms): nothing to carry over"
    )

    # Restarted, the cluster's servers have the old lines, and nothing more to say about them.
    servers = [
        harness.server(data, name=f"node{index}", extra=("--broker", redis_server.url))
        for index in range(2)
    ]
    for server in servers:
        server.wait_for_line(JOINED)
    bob = cluster_client(harness, "bob", f"{HOST}:{servers[1].port}")
    bob.wait_for_line(said("alice", "first from the server alone"))
    bob.wait_for_line(said("alice", "second from the server alone"))
    bob.send("/join #rust")
    bob.wait_for_line(said("alice", "lifetimes again"))
    history = bob.snapshot()
    assert history.index(bob.find(said("alice", "first from the server alone"))) < history.index(
        bob.find(said("alice", "second from the server alone"))
    )
    bob.close_stdin()
    assert bob.wait_exit(EXIT_WAIT) == 0, bob.describe()
    for server in servers:
        assert server.find(CARRY) is None, server.describe()
