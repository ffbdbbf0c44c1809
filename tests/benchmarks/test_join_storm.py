"""The join-storm benchmark's pure parts: the reconnect backoff, the last joiner's member view, the
users' address blocks and the live user's round-trip summary."""

from __future__ import annotations

import ipaddress
import random

import pytest

from benchmarks.join_storm_clients import (
    BACKOFF_CAP,
    MemberView,
    StormUser,
    Tally,
    address_for,
    backoff_delay,
)
from benchmarks.join_storm_live import summarize_rtt
from tlschat.chat.runs import split_run


class HighestDraw(random.Random):
    """Always draws the top of the range: the bound backoff_delay allows."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_backoff_bound_starts_at_one_second_doubles_and_stops_at_the_cap() -> None:
    bounds = [backoff_delay(attempt, HighestDraw()) for attempt in range(8)]
    assert bounds == [1.0, 2.0, 4.0, 8.0, 16.0, BACKOFF_CAP, BACKOFF_CAP, BACKOFF_CAP]
    assert backoff_delay(10_000, HighestDraw()) == BACKOFF_CAP


def test_backoff_is_full_jitter_over_the_whole_range() -> None:
    rng = random.Random(7)
    first = [backoff_delay(0, rng) for _ in range(2000)]
    assert all(0.0 <= delay <= 1.0 for delay in first)
    assert min(first) < 0.01 and max(first) > 0.99
    third = [backoff_delay(2, rng) for _ in range(2000)]
    assert all(0.0 <= delay <= 4.0 for delay in third) and max(third) > 3.9


def member(fingerprint: str) -> dict[str, str]:
    return {"nick": f"n{fingerprint}", "fingerprint": fingerprint, "away": ""}


def test_member_view_starts_from_joined_then_follows_joins_and_leaves() -> None:
    view = MemberView("#general")
    view.handle({"type": "join", "room": "#general", "fingerprint": "early"})
    assert view.count == 0  # before the list it belongs to: nothing to add it to
    joined = {"type": "joined", "room": "#general", "members": [member("a"), member("b")]}
    assert view.handle(joined) == []
    assert (view.count, view.listed) == (2, 2)
    view.handle({"type": "join", "room": "#general", "fingerprint": "c"})
    view.handle({"type": "join", "room": "#general", "fingerprint": "a"})  # one entry per key
    view.handle({"type": "leave", "room": "#general", "fingerprint": "b"})
    assert view.members == {"a", "c"}
    batch = [
        {"type": "join", "fingerprint": "d"},
        {"type": "leave", "fingerprint": "a"},
        {"type": "join", "fingerprint": "e"},
    ]
    view.handle({"type": "presence", "room": "#general", "changes": batch})
    assert view.members == {"c", "d", "e"}


def test_member_view_puts_a_run_together() -> None:
    members = [member(f"k{n}") for n in range(3000)]
    frames = split_run(
        {"type": "joined", "room": "#general"},
        "members",
        members,
        ("room",),
        continuation="members",
    )
    assert len(frames) > 1
    view = MemberView("#general")
    for frame in frames:
        assert view.handle(frame) == []
    assert view.count == view.listed == 3000


def test_member_view_of_a_large_room_watches_it_and_takes_the_answer() -> None:
    view = MemberView("#general")
    lazy = {"type": "joined", "room": "#general", "members": [], "lazy": True}
    assert view.handle(lazy) == [{"type": "command", "name": "watch", "args": "#general"}]
    assert view.count == 0
    view.handle({"type": "members", "room": "#general", "members": [member("a"), member("b")]})
    view.handle({"type": "join", "room": "#general", "fingerprint": "c"})
    assert view.members == {"a", "b", "c"}


def test_member_view_ignores_other_rooms_and_other_frames() -> None:
    view = MemberView("#general")
    view.handle({"type": "joined", "room": "#general", "members": [member("a")]})
    assert view.handle({"type": "join", "room": "#other", "fingerprint": "x"}) == []
    assert view.handle({"type": "leave", "room": "#other", "fingerprint": "a"}) == []
    view.handle({"type": "nick", "old": "na", "new": "nb", "fingerprint": "a"})
    view.handle({"type": "sent", "target": "#general", "counter": 1})
    assert view.members == {"a"}


def test_a_users_view_is_complete_once_it_knows_the_expected_count() -> None:
    user = StormUser(0, 1, "", Tally())
    user.watch(expected=3)
    user.observe({"type": "joined", "room": "#general", "members": [member("a"), member("b")]})
    assert user.complete_at is None and not user.complete.is_set()
    user.observe({"type": "join", "room": "#general", "fingerprint": "c"})
    assert user.complete_at is not None and user.complete.is_set()


def test_every_user_has_an_address_block_of_its_own() -> None:
    blocks = {ipaddress.ip_network(f"{address_for(i)}/24", strict=False) for i in range(1000)}
    assert len(blocks) == 1000
    assert all(ipaddress.ip_address(address_for(i)).is_loopback for i in (0, 249, 250, 62_499))
    with pytest.raises(ValueError):
        address_for(62_500)


def test_round_trips_are_summarized_over_the_window_only() -> None:
    samples = {
        "sends": [0.5, 1.0, 1.1, 1.2, 1.3, 5.0],
        "rtts": [9.0, 0.010, 0.020, None, 0.030, 9.0],
        "offline": [1.4, 1.5, 6.0],
    }
    summary = summarize_rtt(samples, 1.0, 2.0)
    assert summary["sent"] == 4 and summary["unanswered"] == 1 and summary["offline"] == 2
    assert summary["p50_ms"] == pytest.approx(20.0)
    assert summary["max_ms"] == pytest.approx(30.0) == summary["p99_ms"]
    assert summarize_rtt(samples, 2.0, 3.0)["p50_ms"] is None
