"""End to end: a room's presence budget and a connection's frame budget, with the real server.

The attackers are in-test protocol clients (:class:`RawClient`), each from its own loopback
address; the bystanders read everything they are sent.
"""

from __future__ import annotations

import time
from typing import Any

from .harness import Harness
from .test_limits_faults_e2e import RawClient

PRESENCE = ("join", "leave", "presence")


def command(name: str, args: str = "") -> dict[str, Any]:
    return {"type": "command", "name": name, "args": args}


def frames_until(client: RawClient, kind: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every frame up to and including the next one of type ``kind``."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        while client.frames:
            _, frame = client.frames.popleft()
            seen.append(frame)
            if frame["type"] == kind:
                return seen
        client._receive(deadline)


def test_a_join_part_flood_from_many_keys_reaches_a_bystander_at_the_rooms_rate(
    harness: Harness,
) -> None:
    server = harness.server(extra=("--presence-rate", "2", "--presence-burst", "4"))
    attackers = [RawClient(server.port, source=f"127.0.4.{n}") for n in range(1, 5)]
    for number, attacker in enumerate(attackers):
        attacker.join(f"flap{number}")
    bystander = RawClient(server.port, source="127.0.5.1")
    bystander.join("bystander")
    time.sleep(2.5)  # the room's budget is whole again (4 at 2 per second)

    began = time.monotonic()
    # Each key parts and joins 20 times in one write: all of its work budget.
    for attacker in attackers:
        for _ in range(20):
            attacker.send_frame(command("part", "#general"))
            attacker.send_frame(command("join", "#general"))
    for attacker in attackers:
        replies: list[str] = []
        while replies.count("joined") < 20:  # every pair was acted on
            replies += [frame["type"] for frame in frames_until(attacker, "joined")]
        assert replies.count("parted") == 20
    # The bystander reads what it is told: bounded by the room's budget, and adding up to the
    # room once the changes that waited have gone out (at 2 per second).
    everyone = {f"flap{n}" for n in range(4)}
    known = set(everyone)
    notices = 0
    deadline = time.monotonic() + 10.0
    while True:
        bystander.send_frame({"type": "ping"})
        for frame in frames_until(bystander, "pong"):
            # One change alone, or many that waited for the budget, together (one notice).
            for change in frame.get("changes", [frame]) if frame["type"] == "presence" else [frame]:
                if change["type"] == "join":
                    known.add(change["nick"])
                elif change["type"] == "leave":
                    known.remove(change["nick"])
            notices += frame["type"] in PRESENCE
        elapsed = time.monotonic() - began
        assert notices <= 4 + 2 * elapsed + 1, (notices, elapsed)
        # Past 3 s, whatever waited (at most one change per key) has gone out.
        if (known == everyone and elapsed > 3.0) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert known == everyone
    bystander.send_frame(command("names", "#general"))
    names = {line.split()[0] for line in frames_until(bystander, "info")[-1]["lines"]}
    assert names == {"bystander", *everyone}
    for client in (*attackers, bystander):
        client.close()


def test_a_connection_sending_garbage_is_told_to_slow_down_then_closed(harness: Harness) -> None:
    server = harness.server()
    neighbour = RawClient(server.port, source="127.0.6.2")
    neighbour.join("neighbour")
    attacker = RawClient(server.port, source="127.0.6.1")
    attacker.join("garbage")
    # 600 records whose content is no frame, in one go: each is answered until the
    # connection's budget (420) is spent, then told to slow down 50 times, then closed.
    for _ in range(600):
        attacker.connection.send_data(b"not json")
    attacker._send_pending()
    answers = frames_until(attacker, "bye", timeout=20.0)
    texts = [frame.get("text", "") for frame in answers if frame["type"] == "error"]
    slow = [text for text in texts if text == "slow down: this connection sends too much"]
    assert len(slow) == 50
    assert 0 < len(texts) - len(slow) <= 420
    assert answers[-1] == {"type": "bye", "reason": "too many frames: you were told to slow down"}
    attacker.wait_closed()
    # Its neighbour, of the same address block, is still served.
    neighbour.send_frame(command("names", "#general"))
    names = frames_until(neighbour, "info")[-1]["lines"]
    assert [line.split()[0] for line in names] == ["neighbour"]
    neighbour.close()
