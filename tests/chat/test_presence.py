"""Presence notices: the room's budget, flaps folded away, and member lists that stay right."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tlschat.chat.presence import PresenceLimiter

ROOM = "#general"


def change(kind: str, fingerprint: str, nick: str = "") -> dict[str, Any]:
    return {"type": kind, "room": ROOM, "nick": nick or fingerprint, "fingerprint": fingerprint}


def test_changes_within_the_budget_are_announced_at_once() -> None:
    limiter = PresenceLimiter(rate=1.0, burst=3)
    assert [limiter.announce(ROOM, f"k{n}", change("join", f"k{n}"), 0.0) for n in range(4)] == [
        True,
        True,
        True,
        False,
    ]
    assert limiter.waiting == 1
    # Another room has its own budget.
    assert limiter.announce("#other", "k9", change("join", "k9"), 0.0)


def test_waiting_changes_go_out_together_oldest_first_as_the_budget_refills() -> None:
    limiter = PresenceLimiter(rate=2.0, burst=1)
    assert limiter.announce(ROOM, "a", change("join", "a"), 0.0)
    for name in ("b", "c", "d"):
        assert not limiter.announce(ROOM, name, change("join", name), 0.0)
    assert limiter.due(0.1) == []
    assert [a.fingerprint for a in limiter.due(0.5)] == ["b", "c", "d"]
    assert limiter.waiting == 0
    # The batch spent the budget: the next change waits for the next batch.
    assert not limiter.announce(ROOM, "e", change("join", "e"), 0.6)
    assert not limiter.announce(ROOM, "f", change("join", "f"), 0.7)
    assert limiter.due(0.8) == []
    assert [a.fingerprint for a in limiter.due(1.0)] == ["e", "f"]
    # Everything announced: once the budget is whole again, a change goes out at once.
    assert limiter.due(10.0) == []
    assert limiter.announce(ROOM, "g", change("leave", "g"), 10.0)


def test_a_flap_while_waiting_is_not_announced_and_costs_nothing() -> None:
    limiter = PresenceLimiter(rate=1.0, burst=1)
    assert limiter.announce(ROOM, "a", change("join", "a"), 0.0)
    # The budget is spent: "m" leaves and comes back, "n" leaves for good, "o" joins and leaves.
    for kind, name in [("leave", "m"), ("leave", "n"), ("join", "o"), ("join", "m")]:
        assert not limiter.announce(ROOM, name, change(kind, name), 0.0)
    assert not limiter.announce(ROOM, "o", change("leave", "o"), 0.0)
    announced = limiter.due(1.0)
    assert [(a.fingerprint, a.frame["type"]) for a in announced] == [("n", "leave")]
    assert limiter.waiting == 0


def test_a_waiting_key_keeps_its_latest_frame() -> None:
    limiter = PresenceLimiter(rate=1.0, burst=1)
    assert limiter.announce(ROOM, "a", change("join", "a"), 0.0)
    assert not limiter.announce(ROOM, "m", change("leave", "m", "old"), 0.0)
    assert not limiter.announce(ROOM, "m", change("join", "m", "mid"), 0.0)
    assert not limiter.announce(ROOM, "m", change("leave", "m", "new"), 0.0)
    [announcement] = limiter.due(1.0)
    assert announcement.frame == change("leave", "m", "new")


def test_a_flood_reaches_a_bystander_at_the_rooms_rate() -> None:
    """Four keys flapping 20 times a second each for 15 s: at most the burst plus the rate of
    notices (a batch is one notice)."""
    limiter = PresenceLimiter(rate=5.0, burst=10)
    announced = 0
    present = dict.fromkeys("abcd", True)
    for step in range(15 * 20):
        now = step / 20
        for key in present:
            present[key] = not present[key]
            kind = "join" if present[key] else "leave"
            announced += limiter.announce(ROOM, key, change(kind, key), now)
        announced += len({a.room for a in limiter.due(now)})
    assert announced <= 10 + 5 * 15


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("abcdef"), st.floats(min_value=0, max_value=0.5)),
        max_size=80,
    )
)
def test_a_bystanders_member_list_ends_right_whatever_the_changes(
    flips: list[tuple[str, float]],
) -> None:
    """Each key toggles between in and out of the room; a bystander applies what it is told,
    as it is told. Once the waiting changes are due, its list is the room's."""
    limiter = PresenceLimiter(rate=3.0, burst=2)
    present: set[str] = set()
    known: set[str] = set()

    def apply(frame: dict[str, Any]) -> None:
        if frame["type"] == "join":
            assert frame["fingerprint"] not in known  # never told twice
            known.add(frame["fingerprint"])
        else:
            assert frame["fingerprint"] in known
            known.discard(frame["fingerprint"])

    now = 0.0
    for key, pause in flips:
        now += pause
        for announcement in limiter.due(now):
            apply(announcement.frame)
        present ^= {key}
        frame = change("join" if key in present else "leave", key)
        if limiter.announce(ROOM, key, frame, now):
            apply(frame)
    for _ in range(len(flips)):
        now += 1.0
        for announcement in limiter.due(now):
            apply(announcement.frame)
    assert limiter.waiting == 0
    assert known == present
