"""What is in Redis is data from other processes: a log entry that is not an event, or a history
entry that is not a line, is logged and skipped by every server, which goes on following the log
(ChatServers in this process with real RedisBrokers and a real Redis)."""

from __future__ import annotations

import json
import logging

import pytest

from tlschat.broker.redis import PREFIX
from tlschat.protocol.identity import IdentityKey

from ..chat.helpers import say
from .harness import RedisServer
from .test_e2e_cluster import Node, run, until

NOT_EVENTS = [
    "not json",
    "[]",
    json.dumps({"type": "reboot", "node": "x"}),
    json.dumps({"type": "join", "node": "x", "sid": "1", "room": "#general"}),
    json.dumps({"type": "offline", "node": "x", "sid": 1, "nick": "n", "fingerprint": "f"}),
]


@pytest.fixture(scope="module")
def ed_alice() -> IdentityKey:
    return IdentityKey.generate("ed25519")


@pytest.fixture(scope="module")
def ed_bob() -> IdentityKey:
    return IdentityKey.generate("ed25519")


def test_entries_that_are_not_events_are_skipped_and_the_log_still_followed(
    redis_server: RedisServer,
    ed_alice: IdentityKey,
    ed_bob: IdentityKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="tlschat.cluster")

    async def scenario(nodes: list[Node]) -> None:
        a, b = nodes
        a.hello(1, ed_alice, "alice", None)
        b.hello(1, ed_bob, "bob", None)
        await until(lambda: bool(a.frames(1, "joined") and b.frames(1, "joined")), "joins")
        with redis_server.client() as db:
            for text in NOT_EVENTS:
                db.xadd(f"{PREFIX}log", {"e": text})
            db.xadd(f"{PREFIX}log", {"x": "no event at all"})
        a.receive(1, say(ed_alice, counter=1, body="after the noise"))
        await until(lambda: bool(b.frames(1, "message")), "the line after the noise")
        assert [frame["body"] for frame in b.frames(1, "message")] == ["after the noise"]
        assert a.frames(1, "sent") == [{"type": "sent", "target": "#general", "counter": 1}]
        # A history entry that is not a line: a server that joins now loads the others.
        with redis_server.client() as db:
            db.xadd(f"{PREFIX}history:#general", {"m": json.dumps({"type": "message"})})
        c = await Node(redis_server.url).start()
        try:
            history = c.chat.store.recent_messages("#general", 10)
            assert [line.body for line in history] == ["after the noise"]
        finally:
            await c.broker.stop()

    run(scenario, [Node(redis_server.url), Node(redis_server.url)])
    skipped = [r.getMessage() for r in caplog.records if "Log entry" in r.getMessage()]
    # Each of the two servers skipped each entry once, saying why.
    assert len(skipped) == 2 * (len(NOT_EVENTS) + 1)
    assert sum("not an event: 'reboot' type" in text for text in skipped) == 2
    assert sum("'join' event.sid must be an integer" in text for text in skipped) == 2
    assert sum("'offline' event has no 'away'" in text for text in skipped) == 2
    history = [r.getMessage() for r in caplog.records if "History entry" in r.getMessage()]
    assert len(history) == 1 and "of #general skipped: line has no 'from'" in history[0]
