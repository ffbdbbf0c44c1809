"""End to end: one server of a cluster cut off from Redis by a fault proxy (tests/chaos/proxy.py),
the other reaching it directly. What was committed while the first was away reaches its users
live, in order and once; a line of its own in flight when the link failed gets one outcome.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from ..chaos.proxy import FaultProxy, ProxyMode
from ..e2e.harness import CLOCK, HOST, Client, Harness, Server
from ..e2e.test_chat_features_e2e import barrier, notice, quit_cleanly, said
from .harness import JOINED, RedisServer
from .test_cluster_e2e import count_lines, room_messages

UNREACHABLE = "[CLUSTER] Redis unreachable"


def delivered(nick: str, text: str) -> re.Pattern[str]:
    """A whole plain line: the sender's own message, acknowledged by the server."""
    return re.compile(rf"^{CLOCK} sent <{re.escape(nick)}> {re.escape(text)}$")


REACHABLE_AGAIN = "[CLUSTER] Redis reachable again; resynchronised"


@pytest.fixture
def proxy(redis_server: RedisServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(redis_server.port)
    try:
        yield proxy
    finally:
        proxy.close()


def cluster_of_two(
    harness: Harness, redis_server: RedisServer, proxy: FaultProxy
) -> tuple[Server, Server]:
    """``far`` reaches Redis through the proxy, ``near`` directly; one data dir, one key."""
    data_dir = harness.root / "cluster-data"
    servers = []
    for name, port in (("far", proxy.port), ("near", redis_server.port)):
        server = harness.server(
            data_dir=data_dir, name=name, extra=("--broker", f"redis://{HOST}:{port}")
        )
        server.wait_for_line(JOINED)
        servers.append(server)
    return servers[0], servers[1]


def users(harness: Harness, far: Server, near: Server) -> tuple[Client, Client]:
    alice = harness.joined_client("alice", far.port)
    bob = harness.joined_client("bob", near.port)
    alice.wait_for_line(notice("bob joined #general"))
    return alice, bob


@pytest.mark.parametrize("fault", [ProxyMode.REFUSE, ProxyMode.RESET])
def test_lines_committed_while_a_server_is_cut_off_reach_its_users_live_once(
    harness: Harness, redis_server: RedisServer, proxy: FaultProxy, fault: ProxyMode
) -> None:
    far, near = cluster_of_two(harness, redis_server, proxy)
    alice, bob = users(harness, far, near)
    bob.send("before the cut 0a0a")
    alice.wait_for_line(said("bob", "before the cut 0a0a"))

    start = far.mark()
    proxy.set_mode(fault)
    far.wait_for_line(UNREACHABLE, start=start)
    away = [f"while far was cut off {n} {n}b{n}b" for n in range(5)]
    for text in away:
        bob.send(text)
    for text in away:
        bob.wait_for_line(delivered("bob", text))
    proxy.set_mode(ProxyMode.FORWARD)
    far.wait_for_line(REACHABLE_AGAIN, start=start, timeout=20.0)
    bob.send("after the cut 9z9z")
    alice.wait_for_line(said("bob", "after the cut 9z9z"))

    # Live, in the order sent, once each: not lost, not replayed as missed history.
    assert room_messages(alice, ("bob",)) == ["before the cut 0a0a", *away, "after the cut 9z9z"]
    for text in away:
        assert count_lines(alice, text) == 1, alice.describe()
    assert alice.find("missed") is None, alice.describe()
    quit_cleanly(alice, bob)


def test_a_line_in_flight_when_the_link_fails_gets_one_outcome(
    harness: Harness, redis_server: RedisServer, proxy: FaultProxy
) -> None:
    far, near = cluster_of_two(harness, redis_server, proxy)
    alice, bob = users(harness, far, near)
    # The link stops forwarding: alice's line is handed to Redis and no answer comes back; then
    # the link is reset, and the server reconnects once forwarding is back.
    proxy.set_mode(ProxyMode.PAUSE)
    out = alice.mark()
    alice.send("in flight when the link failed 1c1c")
    barrier(alice)  # far has read the line (and handed it to Redis) before this answer
    proxy.set_mode(ProxyMode.RESET)
    far.wait_for_line(UNREACHABLE)
    proxy.set_mode(ProxyMode.FORWARD)
    far.wait_for_line(REACHABLE_AGAIN, timeout=20.0)
    bob.wait_for_line(said("alice", "in flight when the link failed 1c1c"))
    # Delivered, on alice's screen too, and only once anywhere.
    alice.wait_for_line(delivered("alice", "in flight when the link failed 1c1c"), start=out)
    bob.send("barrier 2d2d")
    alice.wait_for_line(said("bob", "barrier 2d2d"))
    assert count_lines(bob, "in flight when the link failed 1c1c") == 1, bob.describe()
    assert count_lines(alice, "in flight when the link failed 1c1c") == 1, alice.describe()
    quit_cleanly(alice, bob)  # exit 0: nothing left without an outcome
