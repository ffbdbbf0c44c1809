"""Honest delivery, as a property: every line typed gets exactly one outcome, under any
interleaving of acknowledgements, refusals, flood control and reconnects.

One ChatClient talks to a small model of the server, written here, that behaves as ChatServer
does: it keeps the last counter it accepted from the sender and answers each 'say' it reads by
accepting it ('sent'), refusing it (an error naming the counter), throttling it (the same, with
'retry_after'; the session's later messages are then throttled too until that one comes again),
or, when the counter is not above the last accepted, with the replay error, except for the very
message it committed, which it acknowledges again, and one it refused for good, which it refuses
again the same way. Its answers wait until delivered, in any order (a cluster acknowledges
through its broker, but refuses at once), and are lost with the connection, as are the frames it
has not read yet. A client whose message waited ACK_TIMEOUT for its answer sends it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.frames import decode_frame, encode_frame
from tlschat.chat.lines import DELIVERED, PENDING, REFUSED, Line
from tlschat.chat.server.events import ChatServer
from tlschat.protocol.identity import IdentityKey

from .helpers import ALICE, NOW, Net, client_on, command, hello, make_server, say

REPLAYED = "message rejected: replayed or out-of-order counter"
MUTED = "message rejected: you are muted"
GIVEN_UP = "the client quit before the server answered"
BOB_FINGERPRINT = "SHA256:bobbobbobbobbobbobbobbobbobbobbobbobbobbob"


@dataclass(frozen=True)
class Op:
    """One step: the user types, the server reads or answers, the connection drops or comes
    back, or time passes. ``pick`` chooses what is typed, how the server decides, which answer
    comes next, the burst of a new session or how long to wait."""

    kind: str
    pick: int = 0

    @property
    def typed(self) -> str:
        # Private messages are end-to-end encrypted: their delivery is that of any line once
        # encrypted (tests/chat/test_client_e2e.py), after a round of the key directory.
        return ["text", "text", "me", "names"][self.pick % 4]

    @property
    def decision(self) -> str:
        return ["accept", "accept", "refuse", "throttle"][self.pick % 4]

    @property
    def seconds(self) -> float:
        return [0.05, 0.5, 2.0, 10.0][self.pick % 4]


# Typing, reading and answering are the common steps; the connection drops now and then.
KINDS = ["type"] * 4 + ["read"] * 4 + ["answer"] * 4 + ["drop", "reconnect", "wait", "wait"]
OPS = st.lists(st.builds(Op, st.sampled_from(KINDS), st.integers(0, 11)), min_size=20, max_size=100)


@dataclass
class Model:
    """The server's side: what it accepted, what it has not read, what it has not answered."""

    last_counter: int = 0
    accepted: list[int] = field(default_factory=list)  # refs, in the order stored
    unread: list[dict[str, Any]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    connected: bool = True
    committed: dict[int, str] = field(default_factory=dict)  # counter -> signature
    # counter -> (signature, refusal) of the messages refused for good: a copy gets the same.
    refused: dict[int, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    held: int | None = None  # the session's throttled counter, holding back later ones

    def read(self, refs: dict[str, int], decision: str, wait: float = 1.0) -> None:
        frame = decode_frame(encode_frame(self.unread.pop(0)))
        if frame["type"] == "command":
            self.answers.append({"type": "info", "title": frame["name"], "lines": []})
            return
        assert frame["type"] == "say", frame
        counter = frame["counter"]
        sent = {"type": "sent", "target": frame["target"], "counter": counter}
        if self.committed.get(counter) == frame["sig"]:
            self.answers.append(sent)  # the same message again: acknowledged again
            return
        if counter in self.refused and self.refused[counter][0] == frame["sig"]:
            self.answers.append(self.refused[counter][1])  # and refused again
            return
        if self.held is not None and counter != self.held:
            decision = "throttle"
        elif counter <= self.last_counter:
            decision = "replayed"
        if counter == self.held and decision != "throttle":
            self.held = None
        if decision == "replayed":
            refusal = {"type": "error", "text": REPLAYED, "counter": counter}
            self.refused[counter] = (frame["sig"], refusal)
            self.answers.append(refusal)
        elif decision == "accept":
            self.last_counter = counter
            self.committed[counter] = frame["sig"]
            self.accepted.append(refs[frame["body"]])
            self.answers.append(sent)
        elif decision == "refuse":
            refusal = {"type": "error", "text": MUTED, "counter": counter}
            self.refused[counter] = (frame["sig"], refusal)
            self.answers.append(refusal)
        else:
            if self.held is None:
                self.held = counter
            text = f"flood control: message not sent; you can send again in {wait:.1f} s"
            refusal = {"type": "error", "text": text, "counter": counter, "retry_after": wait}
            self.answers.append(refusal)


@dataclass
class Run:
    client: ChatClient
    model: Model = field(default_factory=Model)
    now: float = NOW
    shown: list[Line] = field(default_factory=list)  # every Line the client returned
    typed: list[int] = field(default_factory=list)  # the refs of the message lines typed
    refs: dict[str, int] = field(default_factory=dict)  # a message's body -> its ref
    # The refs shown delivered on the server's 'sent' (not inferred from a replay error).
    acknowledged: list[int] = field(default_factory=list)

    def took(self, lines: list[Line]) -> None:
        """The glue shows ``lines`` and sends what the client queued (nowhere if offline)."""
        self.shown += lines
        frames = self.client.take_outbox()
        if self.model.connected:
            self.model.unread += frames

    def type(self, what: str) -> None:
        n = len(self.typed)
        text, body = {
            "text": (f"line {n}", f"line {n}"),
            "me": (f"/me waves {n}", f"/me waves {n}"),
            "names": ("/names", ""),
        }[what]
        lines = self.client.user_input(text, self.now)
        if body:
            first = lines[0]
            assert first.ref and first.delivery in (PENDING, REFUSED), first
            self.typed.append(first.ref)
            self.refs[body] = first.ref
        self.took(lines)

    def welcome(self, burst: int) -> None:
        self.model.connected = True
        welcome = {"type": "welcome", "server": "model", "nick": "alice"}
        self.took(self.client.handle({**welcome, "rate": 2.0, "burst": burst}, self.now))
        joined = {"type": "joined", "room": "#general", "members": []}
        self.took(self.client.handle(joined, self.now))

    def drop(self) -> None:
        """The connection is lost: unread frames and unsent answers with it."""
        self.model.connected = False
        self.model.held = None  # the session ends, and its hold with it
        self.model.unread.clear()
        self.model.answers.clear()
        self.client.prepare_reconnect()
        self.took([])

    def answer(self, index: int) -> None:
        frame = self.model.answers.pop(index % len(self.model.answers))
        lines = self.client.handle(decode_frame(encode_frame(frame)), self.now)
        if frame["type"] == "sent":
            self.acknowledged += [line.ref for line in lines if line.delivery == DELIVERED]
        self.took(lines)

    def step(self, op: Op) -> None:
        if op.kind == "type":
            self.type(op.typed)
        elif op.kind == "read" and self.model.unread:
            self.model.read(self.refs, op.decision, op.seconds)
        elif op.kind == "answer" and self.model.answers:
            self.answer(op.pick)
        elif op.kind == "drop":
            self.drop()
        elif op.kind == "reconnect" and not self.model.connected:
            self.welcome(1 + op.pick % 4)
        elif op.kind == "wait":
            self.now += op.seconds
            self.took(self.client.tick(self.now))

    def honest_ending(self) -> None:
        """Reconnect once more; the server accepts everything (or says it has it already)."""
        self.drop()
        self.welcome(4)
        for _ in range(2000):
            while self.model.unread:
                self.model.read(self.refs, "accept")
            while self.model.answers:
                self.answer(0)
            if self.client.outstanding == 0:
                return
            assert self.client.wake_at is not None, "lines left without an outcome, and no wake"
            self.now = max(self.now, self.client.wake_at)
            self.took(self.client.tick(self.now))
        pytest.fail(f"{self.client.outstanding} lines still without an outcome")

    def giving_up(self) -> None:
        """The user quits: whatever has no outcome yet is refused. Answers that come after,
        and frames the server reads after, change nothing on screen."""
        self.took(self.client.give_up(GIVEN_UP, self.now))
        assert self.client.outstanding == 0
        after = len(self.shown)
        while self.model.unread:
            self.model.read(self.refs, "accept")
        while self.model.answers:
            self.answer(0)
        assert [line for line in self.shown[after:] if line.delivery] == []

    def outcomes(self) -> dict[int, list[Line]]:
        found: dict[int, list[Line]] = {ref: [] for ref in self.typed}
        for line in self.shown:
            if line.delivery in (DELIVERED, REFUSED):
                found[line.ref].append(line)
        return found


def _run(key: IdentityKey, ops: list[Op], ending: str) -> Run:
    client = client_on(key, "alice")
    client.directory["bob"] = BOB_FINGERPRINT
    run = Run(client)
    run.welcome(10)
    for op in ops:
        run.step(op)
    if ending == "honest":
        run.honest_ending()
    else:
        run.giving_up()
    return run


def _outcomes(run: Run) -> dict[int, Line]:
    """The one outcome of each message line typed; fails on a line with none, or two."""
    outcomes = run.outcomes()
    for ref, lines in outcomes.items():
        assert len(lines) == 1, (ref, lines)
    return {ref: lines[0] for ref, lines in outcomes.items()}


def _delivered_were_stored_once(run: Run, outcomes: dict[int, Line]) -> None:
    accepted = run.model.accepted
    for ref, line in outcomes.items():
        if line.delivery == DELIVERED:
            assert accepted.count(ref) == 1, (ref, accepted)


def _stored_in_the_order_typed(run: Run) -> None:
    assert run.model.accepted == sorted(run.model.accepted), run.model.accepted


@pytest.mark.parametrize("ending", ["honest", "give_up"])
@settings(max_examples=200, deadline=None)
@given(ops=OPS)
def test_every_line_typed_gets_exactly_one_outcome(
    ed_alice: IdentityKey, ending: str, ops: list[Op]
) -> None:
    run = _run(ed_alice, ops, ending)
    outcomes = _outcomes(run)
    accepted = run.model.accepted
    assert run.client.outstanding == 0
    # Never stored twice.
    assert len(accepted) == len(set(accepted)), accepted
    # A line acknowledged by 'sent' was stored (once).
    for ref in run.acknowledged:
        assert accepted.count(ref) == 1, (ref, accepted)
    # A line refused by the server was not stored (one given up may have been).
    for ref, line in outcomes.items():
        if line.delivery == REFUSED and line.problem != GIVEN_UP:
            assert ref not in accepted, (ref, line.problem)
    if ending == "honest":
        # Everything the server stored, the user is told was delivered.
        for ref in accepted:
            assert outcomes[ref].delivery == DELIVERED, outcomes[ref]
    # What the user is told at the end: exactly the lines refused (and commands given up).
    refused = [
        line
        for line in run.shown
        if line.delivery == REFUSED or (line.ref and line.kind == "error")
    ]
    assert run.client.undelivered == refused
    # A line shown delivered was stored exactly once; lines are stored in the order typed.
    _delivered_were_stored_once(run, outcomes)
    _stored_in_the_order_typed(run)


# A line refused, a later one stored, the answers lost with the connection: the refused one is
# re-sent, refused as a replay, and shown delivered.
REFUSED_THEN_LOST = [Op("type"), Op("type"), Op("read", 2), Op("read", 0)]
# The first line throttled (its answer arrives), the second stored: the first is signed anew and
# stored after the second.
THROTTLED_THEN_STORED = [Op("type"), Op("type"), Op("read", 3), Op("read", 0), Op("answer")]


@settings(max_examples=200, deadline=None)
@example(ops=REFUSED_THEN_LOST)
@given(ops=OPS)
def test_a_line_shown_delivered_was_stored_exactly_once(
    ed_alice: IdentityKey, ops: list[Op]
) -> None:
    run = _run(ed_alice, ops, "honest")
    _delivered_were_stored_once(run, _outcomes(run))


@settings(max_examples=200, deadline=None)
@example(ops=THROTTLED_THEN_STORED)
@given(ops=OPS)
def test_lines_are_stored_in_the_order_typed(ed_alice: IdentityKey, ops: list[Op]) -> None:
    _stored_in_the_order_typed(_run(ed_alice, ops, "honest"))


# --- found by the property: what a real ChatServer shows -------------------------------------

ALICE_AGAIN, OTHER_DEVICE = 11, 12


def _connected(server: ChatServer, key: IdentityKey) -> tuple[Net, ChatClient]:
    net = Net(server)
    alice = client_on(key, "alice")
    net.add(ALICE, alice)
    return net, alice


def _reconnected(net: Net, alice: ChatClient, now: float) -> list[Line]:
    """The connection of session ALICE is lost (with what was on its way); alice reconnects
    and sends what she re-sends. The lines she is shown."""
    net.server.disconnect(ALICE, "connection lost")
    alice.prepare_reconnect()
    shown = net.add(ALICE_AGAIN, alice, now).get(ALICE_AGAIN, [])
    return shown + net.flush(ALICE_AGAIN, now).get(ALICE_AGAIN, [])


def _spend_the_servers_tokens(server: ChatServer, key: IdentityKey) -> None:
    """Another device of the same user spends the server's burst for that key."""
    hello(server, OTHER_DEVICE, key, "alice")
    for counter in range(1, 11):
        out = server.receive(OTHER_DEVICE, say(key, counter, body=f"other device {counter}"), NOW)
        assert (OTHER_DEVICE, {"type": "sent", "target": "#general", "counter": counter}) in out


def _stored(server: ChatServer) -> list[str]:
    return [m.body for m in server.store.recent_messages("#general", 50)]


def _outcome(lines: list[Line], text: str) -> str:
    [delivery] = [line.delivery for line in lines if line.text == text and line.delivery]
    return delivery


def test_a_refused_message_resent_after_a_later_one_was_stored_is_not_delivered(
    ed_alice: IdentityKey,
) -> None:
    net, alice = _connected(make_server(), ed_alice)
    alice.user_input("/join #other", NOW)
    net.flush(ALICE)
    alice.user_input("are you there?", NOW)  # to #other
    alice.room = "#general"  # the user went back to #general's window
    alice.user_input("hello room", NOW)
    first, room_line = alice.take_outbox()
    # Another session of alice's left #other meanwhile: the server refuses the first line and
    # stores the other; the connection is lost before either answer reaches alice.
    command(net.server, ALICE, "part", "#other")
    [(_, refusal)] = net.server.receive(ALICE, first, NOW)
    assert refusal["text"] == "message rejected: you are not in #other"
    net.server.receive(ALICE, room_line, NOW)
    shown = _reconnected(net, alice, NOW + 1)
    assert _outcome(shown, "hello room") == "delivered"
    # Re-sent, the first line gets its refusal again (not the replay error its counter, below
    # the room line's, would get): alice is not told it was delivered.
    assert _outcome(shown, "are you there?") == "refused"


def test_a_message_lost_behind_a_throttled_one_is_resent_behind_it(
    ed_alice: IdentityKey,
) -> None:
    server = make_server()
    net, alice = _connected(server, ed_alice)
    _spend_the_servers_tokens(server, ed_alice)
    alice.user_input("one", NOW)
    alice.user_input("two", NOW)
    first, _ = alice.take_outbox()
    # The server reads the first: flood control; its answer arrives. The second is still on
    # its way when the connection is lost.
    [(_, refusal)] = server.receive(ALICE, first, NOW)
    assert "retry_after" in refusal
    assert alice.handle(refusal, NOW) == []
    shown = _reconnected(net, alice, NOW + 5)
    # Both go again, in the order typed, unchanged; each is stored once and shown delivered.
    assert (_outcome(shown, "one"), _outcome(shown, "two")) == ("delivered", "delivered")
    assert _stored(server)[-2:] == ["one", "two"]
    assert _stored(server).count("one") == _stored(server).count("two") == 1


def test_messages_are_stored_in_the_order_typed_under_flood_control(
    ed_alice: IdentityKey,
) -> None:
    server = make_server()
    net, alice = _connected(server, ed_alice)
    _spend_the_servers_tokens(server, ed_alice)
    alice.user_input("one", NOW)
    alice.user_input("two", NOW)
    first, second = alice.take_outbox()
    # The first arrives with the bucket empty; the second half a second later, refilled: the
    # server holds it back all the same, until the first comes again.
    [(_, refusal)] = server.receive(ALICE, first, NOW)
    answers = server.receive(ALICE, second, NOW + 0.5)
    assert [frame.get("retry_after") is not None for _, frame in answers] == [True]
    shown = alice.handle(refusal, NOW + 0.5)
    shown += net.deliver(answers, NOW + 0.5).get(ALICE, [])
    assert [line for line in shown if line.delivery] == []  # both still pending
    now = NOW + 0.5
    while alice.outstanding and now < NOW + 30:
        assert alice.wake_at is not None
        now = alice.wake_at
        shown += alice.tick(now)
        shown += net.flush(ALICE, now).get(ALICE, [])
    assert (_outcome(shown, "one"), _outcome(shown, "two")) == ("delivered", "delivered")
    assert _stored(server)[-2:] == ["one", "two"]
