"""Every encrypted line gets exactly one outcome, and every claim exactly one answer, as a property
of the real ChatServer: under any interleaving of new lines, copies, lines reusing a counter,
stale keys, flood control, time and commits that lag (as in a cluster, whose log also refuses a
counter that another commit overtook).

As section 21 says for signed lines: a copy of a line whose first copy is on its way gets no
answer of its own; else every copy of a line gets the same answer ('sent', or the same refusal),
flood control's refusals excepted (they are no outcome: the line comes again later).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tlschat.chat.e2e_frames import MegolmLine
from tlschat.chat.server.cluster_events import ClusterEvent
from tlschat.chat.server.events import ChatServer
from tlschat.chat.server.inbox import INBOX_BOUNDS
from tlschat.chat.server.line_events import CommittedLine
from tlschat.chat.server.model import REPLAY_REJECTION, ChatSettings, Outgoing
from tlschat.chat.server.stored import megolm_tag, stored_tag
from tlschat.e2e.device import Device
from tlschat.protocol.identity import IdentityKey
from tlschat.store.memory import MemoryStore

from .helpers import ALICE, BOB, NETWORK, NOW, command, peer_of, via_log
from .server_e2e_helpers import (
    device_keys,
    fallback_key,
    megolm_say,
    olm,
    one_time_keys,
    private_say,
)

ROOM = "#e"
ONE_TIME_KEYS = 4


class Deferred:
    """One server whose events wait for ``pump`` to be committed, as a cluster's do; the commit
    refuses a counter not above the sender's last, as the cluster's script does. Each event
    remembers which step of the test published it, so its answers are that step's."""

    def __init__(self, **settings: Any) -> None:
        self.pending: list[tuple[ClusterEvent, int | None]] = []
        self.step: int | None = None
        self.last: dict[str, int] = {}
        self.server = ChatServer(
            ChatSettings(server_name="property", **settings),
            MemoryStore(500),
            "a",
            self._publish,
            network=NETWORK,
        )

    def _publish(self, event: ClusterEvent) -> list[Outgoing]:
        self.pending.append((via_log(event), self.step))
        return []

    def receive(self, step: int | None, frame: dict[str, Any], now: float) -> list[Outgoing]:
        self.step = step
        try:
            return self.server.receive(ALICE if step is not None else BOB, frame, now)
        finally:
            self.step = None

    def pump(self) -> list[tuple[int | None, Outgoing]]:
        out: list[tuple[int | None, Outgoing]] = []
        while self.pending:
            event, step = self.pending.pop(0)
            if isinstance(event, CommittedLine):
                message = event.message
                if message.counter <= self.last.get(message.sender, -1):
                    out += [(step, o) for o in self.server.rejected(event, REPLAY_REJECTION)]
                    continue
                self.last[message.sender] = message.counter
            out += [(step, o) for o in self.server.apply(event)]
        return out


@dataclass
class Run:
    """alice sends to #e (encrypted) and to bob; bob's device holds a few one-time keys."""

    alice: IdentityKey
    bob: IdentityKey
    bob_device: Device
    log: Deferred
    now: float = NOW
    counter: int = 0
    frames: list[dict[str, Any]] = field(default_factory=list)  # each line's frame, by line
    answers: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # by line
    claims: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # by claim step

    def keys(self) -> list[dict[str, Any]]:
        return [olm(self.bob.fingerprint, self.bob_device.device_id)]

    def new_line(self, kind: str, counter: int | None = None) -> None:
        if counter is None:
            self.counter += 1
            counter = self.counter
        if kind == "room":
            frame = megolm_say(self.alice, counter, ROOM)
        else:
            keys = self.keys() if kind == "private" else []
            frame = private_say(self.alice, counter, self.bob.fingerprint, keys)
        self.frames.append(frame)
        self.answers[len(self.frames) - 1] = []
        self.send(len(self.frames) - 1)

    def send(self, line: int) -> None:
        self.took(self.log.receive(line, self.frames[line], self.now), line)

    def claim(self, step: int) -> None:
        self.claims[step] = []
        target = {"fingerprint": self.bob.fingerprint, "device": self.bob_device.device_id}
        step_id = -1 - step  # claims and lines share the log's step numbers, apart
        self.took(
            self.log.receive(step_id, {"type": "keys_claim", "devices": [target]}, self.now),
            step_id,
        )

    def took(self, out: list[Outgoing], step: int | None) -> None:
        for session_id, frame in out:
            if session_id != ALICE or step is None:
                continue
            if step < 0:
                self.claims[-1 - step].append(frame)
            elif frame["type"] in ("sent", "error") and "counter" in frame:
                self.answers[step].append(frame)

    def pump(self) -> None:
        for step, item in self.log.pump():
            self.took([item], step)

    def outcomes(self, line: int) -> list[dict[str, Any]]:
        return [a for a in self.answers[line] if "retry_after" not in a]

    def honest_ending(self) -> None:
        """Commit what waits; send every line without an outcome again, until each has one."""
        for _ in range(100):
            self.pump()
            waiting = [line for line in self.answers if not self.outcomes(line)]
            if not waiting:
                return
            self.now += 2.0
            for line in waiting:
                self.send(line)
        raise AssertionError("lines left without an outcome")


def _stored(run: Run) -> dict[tuple[int, str], int]:
    """(counter, tag) -> how many times the line is stored: in the room, or in bob's inbox."""
    server = run.log.server
    stored: dict[tuple[int, str], int] = {}
    for message in server.store.recent_messages(ROOM, 500):
        key = (message.counter, stored_tag(message))
        stored[key] = stored.get(key, 0) + 1
    inbox = server.store.inbox(
        run.bob.fingerprint, run.bob_device.device_id, 0, run.now, INBOX_BOUNDS
    )
    for item in inbox:
        message = json.loads(item.payload)["message"]
        key = (message["counter"], message["olm_private"]["ct"])
        stored[key] = stored.get(key, 0) + 1
    return stored


def _key_of(frame: dict[str, Any]) -> tuple[int, str]:
    """What ``_stored`` counts a line by."""
    if "megolm" in frame:
        megolm = MegolmLine(frame["megolm"]["session"], frame["megolm"]["ct"])
        return frame["counter"], megolm_tag(megolm)
    return frame["counter"], frame["olm_private"]["ct"]


STEPS = st.lists(
    st.one_of(
        st.sampled_from([("room", 0), ("private", 0), ("stale", 0), ("pump", 0), ("claim", 0)]),
        st.tuples(st.sampled_from(["copy", "reuse"]), st.integers(0, 40)),
        st.tuples(st.just("wait"), st.sampled_from([0, 1, 3])),
    ),
    max_size=50,
)


def _setup(alice: IdentityKey, bob: IdentityKey) -> Run:
    log = Deferred(operators=frozenset({alice.fingerprint}), burst=3, rate_per_second=1.0)
    server = log.server
    alice_device, bob_device = Device.create(), Device.create()
    for session_id, key, nick, device in (
        (ALICE, alice, "alice", alice_device),
        (BOB, bob, "bob", bob_device),
    ):
        server.connect(session_id, peer_of(key), "127.0.0.1:1", NOW)
        frame = {"type": "hello", "nick": nick, "device_keys": device_keys(key, device)}
        server.receive(session_id, frame, NOW)
        log.pump()
        command(server, session_id, "join", ROOM)
        log.pump()
    command(server, ALICE, "encrypt", ROOM)
    upload = [*one_time_keys(bob_device, ONE_TIME_KEYS), fallback_key(bob_device)]
    server.receive(BOB, {"type": "keys_upload", "one_time_keys": upload}, NOW)
    log.pump()
    return Run(alice, bob, bob_device, log)


@settings(max_examples=150, deadline=None)
@given(steps=STEPS)
def test_every_encrypted_line_gets_exactly_one_outcome(
    ed_alice: IdentityKey, ed_bob: IdentityKey, steps: list[tuple[str, int]]
) -> None:
    run = _setup(ed_alice, ed_bob)
    for index, (what, pick) in enumerate(steps):
        if what in ("room", "private", "stale"):
            run.new_line(what)
        elif what == "copy" and run.frames:
            run.send(pick % len(run.frames))
        elif what == "reuse" and run.frames:
            old = run.frames[pick % len(run.frames)]
            run.new_line("room" if "megolm" in old else "private", old["counter"])
        elif what == "pump":
            run.pump()
        elif what == "claim":
            run.claim(index)
        elif what == "wait":
            run.now += pick
    run.honest_ending()
    stored = _stored(run)
    sent_counters: list[int] = []
    for line, frame in enumerate(run.frames):
        outcomes = run.outcomes(line)
        # One outcome, however many copies were answered.
        assert all(o == outcomes[0] for o in outcomes), outcomes
        delivered = outcomes[0]["type"] == "sent"
        assert stored.get(_key_of(frame), 0) == (1 if delivered else 0), (line, outcomes)
        if delivered:
            sent_counters.append(frame["counter"])
    # One line per counter at most is delivered.
    assert len(sent_counters) == len(set(sent_counters))
    # Each claim has one answer; no one-time key is handed out twice.
    handed: list[str] = []
    for answers in run.claims.values():
        assert len(answers) == 1, answers
        if answers[0]["type"] == "claimed":
            key = answers[0]["keys"][0]["one_time_key"]
            if not key["fallback"]:
                handed.append(key["id"])
    assert len(handed) == len(set(handed)) <= ONE_TIME_KEYS
