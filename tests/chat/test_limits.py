"""Flood control's token bucket, and the durations moderators type and read."""

from __future__ import annotations

import math

import pytest

from tlschat.chat.limits import TokenBucket
from tlschat.chat.server.durations import describe_duration, parse_duration

T0 = 1_700_000_000.0


def test_fresh_bucket_allows_a_burst_then_reports_the_wait() -> None:
    bucket = TokenBucket(rate=1.0, burst=3)
    assert [bucket.take(T0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(T0) == pytest.approx(1.0)
    # A refused take costs nothing: the wait is still 1 s.
    assert bucket.take(T0) == pytest.approx(1.0)


def test_bucket_refills_continuously() -> None:
    bucket = TokenBucket(rate=2.0, burst=2)
    assert bucket.take(T0) == bucket.take(T0) == 0.0
    assert bucket.take(T0) == pytest.approx(0.5)
    assert bucket.take(T0 + 0.25) == pytest.approx(0.25)
    assert bucket.take(T0 + 0.5) == 0.0
    assert bucket.take(T0 + 0.5) == pytest.approx(0.5)


def test_bucket_never_holds_more_than_the_burst() -> None:
    bucket = TokenBucket(rate=1.0, burst=3)
    bucket.take(T0)
    later = T0 + 3600
    assert [bucket.take(later) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(later) == pytest.approx(1.0)


def test_bucket_starts_full_at_its_first_take() -> None:
    # The first take defines the start: no credit for time before it.
    bucket = TokenBucket(rate=1.0, burst=1)
    assert bucket.take(T0 + 100) == 0.0
    assert bucket.take(T0 + 100) == pytest.approx(1.0)


def test_bucket_with_zero_rate_never_refills() -> None:
    bucket = TokenBucket(rate=0.0, burst=1)
    assert bucket.take(T0) == 0.0
    assert math.isinf(bucket.take(T0 + 10**6))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0s", 0), ("90s", 90), ("1m", 60), ("30m", 1800), ("2h", 7200), ("7d", 604800)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "10", "m", "1.5h", "10M", " 10m", "10m ", "-5m", "10mm", "1h30m", "2w", "spam"]
)
def test_parse_duration_refuses(text: str) -> None:
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (59, "59s"),
        (60, "1m"),
        (90, "1m30s"),
        (1799.9, "29m59s"),
        (3600, "1h"),
        (3661, "1h1m1s"),
        (7200, "2h"),
        (86400, "1d"),
        (90061, "1d1h1m1s"),
        (604800, "7d"),
    ],
)
def test_describe_duration(seconds: float, text: str) -> None:
    assert describe_duration(seconds) == text


@pytest.mark.parametrize("text", ["45s", "30m", "2h", "7d"])
def test_single_unit_durations_read_back_as_typed(text: str) -> None:
    seconds = parse_duration(text)
    assert seconds is not None
    assert describe_duration(seconds) == text
