"""The server's presence budget per room and frame budget per connection."""

from __future__ import annotations

from typing import Any

from tlschat.chat.server.events import ChatServer
from tlschat.chat.server.sessions import MAX_REFUSED_FRAMES
from tlschat.protocol.identity import IdentityKey

from .helpers import ALICE, BOB, CAROL, DAVE, NOW, NOW_MS, command, hello, make_server, say

PRESENCE = ("join", "leave")


def presence_to(out: list[tuple[int, dict[str, Any]]], session_id: int) -> list[dict[str, Any]]:
    return [frame for sid, frame in out if sid == session_id and frame["type"] in PRESENCE]


def names(server: ChatServer, session_id: int, now: float) -> list[str]:
    [(_, reply)] = command(server, session_id, "names", "#general", now)
    return [line.split()[0] for line in reply["lines"]]


def test_a_join_part_flood_reaches_a_bystander_at_the_rooms_presence_rate(
    ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey, ed_dave: IdentityKey
) -> None:
    server = make_server(presence_rate=2.0, presence_burst=4, work_burst=10_000)
    for session_id, key, nick in [(ALICE, ed_alice, "alice"), (BOB, ed_bob, "bob")]:
        hello(server, session_id, key, nick)
    hello(server, CAROL, ed_carol, "carol")
    hello(server, DAVE, ed_dave, "dave")
    told: list[dict[str, Any]] = []
    # carol and dave part and join 50 times each within a second; the room's budget (4) was
    # spent on the four arrivals.
    for step in range(50):
        now = NOW + step / 50
        for session_id in (CAROL, DAVE):
            told += presence_to(command(server, session_id, "part", "#general", now), BOB)
            told += presence_to(command(server, session_id, "join", "#general", now), BOB)
        told += presence_to(server.tick(now), BOB)
    assert len(told) <= 2  # what a second of the room's rate refills
    told += presence_to(server.tick(NOW + 60), BOB)
    assert not server.presence_waiting
    # What bob was told adds up to the room as it is.
    known = {"alice", "bob", "carol", "dave"}
    for frame in told:
        if frame["type"] == "join":
            known.add(frame["nick"])
        else:
            known.remove(frame["nick"])
    assert known == set(names(server, BOB, NOW + 60)) == {"alice", "bob", "carol", "dave"}


def test_a_waiting_join_is_announced_with_the_nick_of_the_moment(
    ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    server = make_server(presence_rate=1.0, presence_burst=2)
    hello(server, ALICE, ed_alice, "alice")
    hello(server, BOB, ed_bob, "bob")  # the room's budget is spent on alice's and bob's joins
    out = hello(server, CAROL, ed_carol, "carol")
    assert presence_to(out, ALICE) == []
    assert server.presence_waiting
    command(server, CAROL, "nick", "caroline")
    assert server.tick(NOW + 0.5) == []
    out = server.tick(NOW + 1.0)
    assert sorted(sid for sid, _ in out) == [ALICE, BOB]
    assert {frame["nick"] for _, frame in out} == {"caroline"}
    assert not server.presence_waiting


def test_a_leave_waits_behind_the_budget_and_comes_with_its_reason(
    ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    server = make_server(presence_rate=1.0, presence_burst=3)
    hello(server, ALICE, ed_alice, "alice")
    hello(server, BOB, ed_bob, "bob")
    hello(server, CAROL, ed_carol, "carol")  # the last of the budget
    assert presence_to(server.disconnect(CAROL, "quit"), ALICE) == []
    [(_, frame)] = [item for item in server.tick(NOW + 3) if item[0] == ALICE]
    assert frame["type"] == "leave" and frame["nick"] == "carol" and frame["reason"] == "quit"


def test_bad_signatures_spend_the_connection_until_it_is_closed(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    server = make_server()
    hello(server, ALICE, ed_alice, "alice")
    hello(server, BOB, ed_bob, "bob")
    budget = server.settings.connection_budget()
    answers = []
    # Flood control never sees these (the signature check refuses them first): the
    # connection's own budget does.
    for counter in range(1, 400):
        forged = {**say(ed_alice, counter=counter), "sig": say(ed_bob, counter=counter)["sig"]}
        [(sid, answer)] = server.receive(ALICE, forged, NOW)
        assert sid == ALICE
        answers.append(answer)
        if answer["type"] == "bye":
            break
    bad = [a for a in answers if a.get("text") == "message rejected: bad signature"]
    slow = [a for a in answers if a.get("text") == "slow down: this connection sends too much"]
    assert len(bad) == (budget.burst - 1) // 2  # its burst, less its hello
    assert len(slow) == MAX_REFUSED_FRAMES
    assert all(a["retry_after"] > 0 and a["counter"] > 0 for a in slow)
    assert answers[-1] == {"type": "bye", "reason": "too many frames: you were told to slow down"}
    assert len(answers) == len(bad) + len(slow) + 1
    # Another connection, of another key, is not affected.
    assert command(server, BOB, "names", "#general")[0][1]["type"] == "info"


def test_an_undecodable_frame_costs_its_connection_too(ed_alice: IdentityKey) -> None:
    server = make_server()
    hello(server, ALICE, ed_alice, "alice")
    budget = server.settings.connection_budget()
    answers = [server.refuse_frame(ALICE, "not a frame", NOW) for _ in range(int(budget.burst))]
    assert answers[0] == [(ALICE, {"type": "error", "text": "not a frame"})]
    assert answers[-1][0][1]["text"] == "slow down: this connection sends too much"
    # A second later the budget has refilled by its rate.
    assert server.refuse_frame(ALICE, "not a frame", NOW + 1) == [
        (ALICE, {"type": "error", "text": "not a frame"})
    ]


def test_a_client_pacing_itself_by_the_welcome_never_meets_the_connection_budget(
    ed_alice: IdentityKey,
) -> None:
    """A full message burst and a full work burst at once, then both rates for a minute."""
    server = make_server()
    hello(server, ALICE, ed_alice, "alice")
    settings = server.settings
    counter = 0
    for second in range(61):
        now = NOW + second
        messages = settings.burst if second == 0 else int(settings.rate_per_second)
        pings = settings.work_burst - 11 if second == 0 else int(settings.work_rate)
        for _ in range(messages):
            counter += 1
            frame = say(ed_alice, counter=counter, ts=int(now * 1000))
            assert server.receive(ALICE, frame, now)[-1][1]["type"] == "sent"
        for _ in range(pings):
            assert server.receive(ALICE, {"type": "ping"}, now) == [(ALICE, {"type": "pong"})]


def test_budgets_whole_again_are_forgotten(ed_alice: IdentityKey, ed_bob: IdentityKey) -> None:
    server = make_server()
    hello(server, ALICE, ed_alice, "alice")
    hello(server, BOB, ed_bob, "bob")
    assert server.receive(ALICE, say(ed_alice), NOW)[-1][1]["type"] == "sent"
    command(server, BOB, "names", "#general")
    assert set(server.buckets) == {ed_alice.fingerprint}
    assert set(server.work_buckets) == {ed_bob.fingerprint}
    server.tick(NOW + 0.1)  # not whole yet
    assert set(server.buckets) == {ed_alice.fingerprint}
    assert set(server.work_buckets) == {ed_bob.fingerprint}
    server.tick(NOW + 60)
    assert server.buckets == {} and server.work_buckets == {}
    # Flood control starts again from a whole burst, as for a new key.
    for counter in range(2, 12):
        out = server.receive(ALICE, say(ed_alice, counter, NOW_MS + 60_000), NOW + 60)
        assert out[-1][1]["type"] == "sent"
