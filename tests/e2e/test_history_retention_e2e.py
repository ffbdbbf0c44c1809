"""End to end: history retention (issue 13) with the real server process.

A flood of large messages from several keys into several rooms must keep chat.db and its -wal
under ``--history-max-bytes`` all along (the server learns the bound at its first retention pass,
on start, and keeps it as messages are appended), and a client joining afterwards still gets the
newest history.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tlschat.chat.envelope import SignedMessage
from tlschat.chat.frames import say_frame

from .harness import Harness, json_event
from .test_limits_faults_e2e import RawClient, home_with_key

BOUND = 1024 * 1024  # the smallest bound the server takes
KEYS = 6
BATCH = 10
ROUNDS = 30  # 6 keys x 300 messages of ~3.5 KB: about 6.3 MB, six times the bound
BODY = "x" * 3500


def on_disk(database: Path) -> int:
    wal = database.with_name(database.name + "-wal")
    return database.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def test_a_flood_from_many_keys_keeps_the_database_under_its_bound(harness: Harness) -> None:
    data_dir = harness.root / "server-data"
    flags = ("--rate", "1000", "--burst", "1000", "--history", "20")
    server = harness.server(data_dir=data_dir, extra=(*flags, "--history-max-bytes", str(BOUND)))
    database = data_dir / "chat.db"
    clients = [RawClient(server.port) for _ in range(KEYS)]
    for number, client in enumerate(clients):
        client.join(f"flooder{number}")
        client.send_frame({"type": "command", "name": "join", "args": f"#flood{number % 3}"})
        client.next_frame("joined")
    counters = [0] * KEYS
    sent_to: dict[str, list[str]] = {}
    largest = 0
    try:
        for _ in range(ROUNDS):
            for number, client in enumerate(clients):
                for _ in range(BATCH):
                    counters[number] += 1
                    room = "#general" if counters[number] % 2 else f"#flood{number % 3}"
                    text = f"k{number} n{counters[number]:04d} {BODY}"
                    signed = SignedMessage.create(
                        client.identity,
                        server.fingerprint,
                        room,
                        counters[number],
                        int(time.time() * 1000),
                        text,
                    )
                    client.send_frame(say_frame(signed))
                    sent_to.setdefault(room, []).append(text)
                for _ in range(BATCH):
                    client.next_frame("sent")
            largest = max(largest, on_disk(database))
        assert on_disk(database) <= BOUND
    finally:
        for client in clients:
            client.close()
    assert largest <= BOUND, largest  # at every round of the flood, not only after a pass

    # A newcomer still gets the newest history of #general, the last message sent to it last.
    carol = harness.client("carol", server.port, home=home_with_key(harness, "carol"), json=True)
    general = sent_to["#general"]
    newest = general[-1]
    carol.wait_for_line(json_event(kind="message", history=True, text=newest))
    replayed = [
        json.loads(line)["text"]
        for line in carol.snapshot()
        if json_event(kind="message", history=True, verified=True)(line)
    ]
    assert replayed[-1] == newest, carol.describe()
    # The newest that fit: a run of what was sent last, in order, with nothing older between.
    assert 5 <= len(replayed) <= 20, carol.describe()
    assert replayed == general[-len(replayed) :], carol.describe()
    assert server.find("[HISTORY] Retention on start") is not None
    carol.close_stdin()
    assert carol.wait_exit() == 0, carol.describe()
