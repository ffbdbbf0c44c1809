"""End to end: room lines committed in batches (issue 16) are still durable before anyone hears
of them.

Several keys send lines back to back, so the server takes many in one event-loop pass and
commits them together. The server is killed with SIGKILL while lines are still arriving: every
line any client saw, confirmed to its sender (``sent``) or relayed to another member, must be in
chat.db afterwards, and the restarted server serves them.
"""

from __future__ import annotations

import select
import signal
import sqlite3
import time
from typing import Any

from tlschat.chat.envelope import SignedMessage
from tlschat.chat.frames import say_frame
from tlschat.protocol import ProtocolError

from .harness import Harness
from .test_limits_faults_e2e import RawClient

SENDERS = 4
BURST = 10  # lines per sender written back to back
LINES = 2000  # per sender at most
CONFIRMED_BEFORE_KILL = 150  # to the first sender


def stored_lines(database: str) -> set[tuple[str, int]]:
    db = sqlite3.connect(database)
    try:
        return {(str(s), int(c)) for s, c in db.execute("SELECT sender, counter FROM messages")}
    finally:
        db.close()


def signed_line(client: RawClient, network: str, counter: int) -> dict[str, Any]:
    now = time.time()
    line = SignedMessage.create(
        client.identity, network, "#general", counter, int(now * 1000), f"line {counter}"
    )
    return say_frame(line)


def drain(client: RawClient, seen: list[dict[str, Any]], wait: float) -> None:
    """Whatever arrives within ``wait`` seconds, or until the connection ends."""
    deadline = time.monotonic() + wait
    while not client.eof and time.monotonic() < deadline:
        ready, _, _ = select.select([client.sock], [], [], deadline - time.monotonic())
        if not ready:
            break
        try:
            client._receive(time.monotonic() + 5)
        except (OSError, ProtocolError):  # the server's end: a reset, or no close_notify
            client.eof = True
    while client.frames:
        seen.append(client.frames.popleft()[1])


def test_sigkill_loses_no_line_anyone_saw(harness: Harness) -> None:
    data_dir = harness.root / "server-data"
    flags = ("--rate", "100000", "--burst", "100000", "--history", "5000")
    server = harness.server(data_dir=data_dir, extra=flags)
    senders = [RawClient(server.port) for _ in range(SENDERS)]
    listener = RawClient(server.port)
    for number, client in enumerate(senders):
        client.join(f"sender{number}")
    listener.join("listener")
    everyone = (*senders, listener)
    seen: dict[int, list[dict[str, Any]]] = {id(client): [] for client in everyone}
    first = seen[id(senders[0])]
    counter = 0
    deadline = time.monotonic() + 60
    while sum(frame["type"] == "sent" for frame in first) < CONFIRMED_BEFORE_KILL:
        assert time.monotonic() < deadline and counter < LINES, server.describe()
        for _ in range(BURST):
            counter += 1
            for client in senders:
                client.send_frame(signed_line(client, server.fingerprint, counter))
        for client in everyone:
            drain(client, seen[id(client)], 0.001)
    # One more burst that the server is still taking in when it is killed.
    for _ in range(BURST):
        counter += 1
        for client in senders:
            client.send_frame(signed_line(client, server.fingerprint, counter))
    server.signal(signal.SIGKILL)
    server.wait_exit()
    for client in everyone:
        drain(client, seen[id(client)], 5.0)

    heard: set[tuple[str, int]] = set()
    for client in senders:
        for frame in seen[id(client)]:
            if frame["type"] == "sent":
                heard.add((client.identity.fingerprint, int(frame["counter"])))
    for client in (*senders, listener):
        for frame in seen[id(client)]:
            if frame["type"] == "message":
                heard.add((str(frame["sender"]), int(frame["counter"])))
    stored = stored_lines(str(data_dir / "chat.db"))
    assert len(heard) >= CONFIRMED_BEFORE_KILL
    assert heard <= stored, sorted(heard - stored)[:10]
    # Lines were still arriving: the kill came in the middle of the flood, not after it.
    assert len(stored) < SENDERS * counter

    again = harness.server(data_dir=data_dir, name="server-again", extra=flags)
    newcomer = RawClient(again.port)
    newcomer.handshake()
    newcomer.send_frame({"type": "hello", "nick": "newcomer"})
    _, history = newcomer.next_frame("history")
    replayed = {(str(m["sender"]), int(m["counter"])) for m in history["messages"]}
    assert replayed and replayed <= stored
    newcomer.close()
    for client in everyone:
        client.sock.close()
