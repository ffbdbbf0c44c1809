"""The reconnect backoff (issue 20, point 6): full jitter, base 1 s, cap 30 s, deterministic with
the random source passed in."""

from __future__ import annotations

import random

import pytest

from tlschat.client.backoff import FIRST_BACKOFF, MAX_BACKOFF, backoff_delay, describe_delay


def test_the_bound_doubles_from_one_second_up_to_thirty() -> None:
    # The largest wait each attempt may draw: random() just under 1.
    almost_one = 1 - 2**-53
    bounds = [round(backoff_delay(attempt, lambda: almost_one), 6) for attempt in range(8)]
    assert bounds == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert (FIRST_BACKOFF, MAX_BACKOFF) == (1.0, 30.0)


def test_the_wait_is_the_random_fraction_of_the_bound() -> None:
    assert backoff_delay(0, lambda: 0.5) == 0.5
    assert backoff_delay(3, lambda: 0.25) == 2.0
    assert backoff_delay(10, lambda: 0.5) == 15.0
    assert backoff_delay(2, lambda: 0.0) == 0.0


def test_the_same_seed_gives_the_same_waits_and_clients_spread_out() -> None:
    first = [backoff_delay(n, random.Random(7).random) for n in range(6)]
    again = [backoff_delay(n, random.Random(7).random) for n in range(6)]
    assert first == again
    # A thousand clients cut at once do not come back at once: their first waits spread over
    # the whole second.
    source = random.Random(1)
    waits = sorted(backoff_delay(0, source.random) for _ in range(1000))
    assert waits[0] < 0.01 and waits[-1] > 0.99
    assert len({round(wait, 2) for wait in waits}) > 90


@pytest.mark.parametrize("attempt", [-1, 0, 40, 10_000])
def test_any_attempt_count_stays_within_the_cap(attempt: int) -> None:
    assert 0.0 <= backoff_delay(attempt, lambda: 0.999) <= MAX_BACKOFF


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(0.0, "now"), (0.04, "now"), (0.4, "in 0.4 s"), (2.0, "in 2.0 s"), (12.3, "in 12 s")],
)
def test_waits_read_as_a_user_reads_them(seconds: float, said: str) -> None:
    assert describe_delay(seconds) == said
