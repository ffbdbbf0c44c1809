"""The global handshake pacer (server/pacing.py), on a clock the tests move by hand."""

from __future__ import annotations

import pytest

from tlschat.server.pacing import FIRST_REPORT, REPORT_INTERVAL, TICK, HandshakePacer


def test_a_burst_starts_at_once_then_the_rest_wait_and_start_at_the_rate() -> None:
    pacer: HandshakePacer[str] = HandshakePacer(rate=10.0, burst=3)
    assert [pacer.arrive(key, 0.0) for key in "abcde"] == [True, True, True, False, False]
    assert len(pacer) == 2 and pacer.must_wait(0.0)

    step = pacer.step(0.0)
    assert (step.started, step.expired, step.lines) == ([], [], [])
    assert step.next_at == pytest.approx(0.1)  # one token refills in 1/rate

    step = pacer.step(0.1)
    assert step.started == ["d"] and step.next_at == pytest.approx(0.2)
    step = pacer.step(0.2)
    assert step.started == ["e"] and step.next_at is None
    assert len(pacer) == 0 and pacer.storm is None


def test_waiting_connections_start_in_arrival_order_and_a_newcomer_queues_behind_them() -> None:
    pacer: HandshakePacer[str] = HandshakePacer(rate=10.0, burst=1)
    assert pacer.arrive("first", 0.0)
    assert not pacer.arrive("second", 0.0)
    # A token has refilled, but "second" was there before: the newcomer does not jump the queue.
    assert pacer.must_wait(0.15)
    assert not pacer.arrive("third", 0.15)
    assert pacer.step(0.15).started == ["second"]
    assert pacer.step(0.25).started == ["third"]
    # Nobody waits and the bucket refilled: straight in.
    assert not pacer.must_wait(0.4)
    assert pacer.arrive("fourth", 0.4)


def test_one_step_starts_every_handshake_whose_token_refilled_since_the_last() -> None:
    pacer: HandshakePacer[int] = HandshakePacer(rate=1000.0, burst=10)
    assert pacer.arrive(0, 0.0)
    for key in range(1, 10):
        assert pacer.arrive(key, 0.0)
    for key in range(10, 31):
        assert not pacer.arrive(key, 0.0)
    assert pacer.step(0.005).started == [10, 11, 12, 13, 14]
    step = pacer.step(0.012)
    assert step.started == [15, 16, 17, 18, 19, 20, 21]
    # A fast rate does not make a fast timer: the next look is one tick away, not 1 ms.
    assert step.next_at == pytest.approx(0.012 + TICK)


def test_the_timer_comes_back_before_a_small_burst_would_overflow() -> None:
    pacer: HandshakePacer[int] = HandshakePacer(rate=1000.0, burst=2)
    assert pacer.arrive(0, 0.0) and pacer.arrive(1, 0.0)
    for key in range(2, 12):
        assert not pacer.arrive(key, 0.0)
    # Two tokens refill in 2 ms and the bucket holds no more: a 10 ms tick would lose 8 of them.
    assert pacer.step(0.0).next_at == pytest.approx(0.002)
    assert pacer.step(0.002).started == [2, 3]


def test_a_connection_that_left_never_starts() -> None:
    pacer: HandshakePacer[str] = HandshakePacer(rate=1.0, burst=1)
    assert pacer.arrive("a", 0.0)
    assert not pacer.arrive("b", 0.0)
    assert not pacer.arrive("c", 0.0)
    assert pacer.leave("b")
    assert not pacer.leave("b") and not pacer.leave("never seen")
    assert pacer.step(1.0).started == ["c"]
    assert pacer.step(2.0).started == [] and len(pacer) == 0


def test_a_wait_past_max_wait_ends_and_is_told_in_the_summary() -> None:
    pacer: HandshakePacer[str] = HandshakePacer(rate=0.01, burst=1, max_wait=60.0)  # 1 per 100 s
    assert pacer.arrive("a", 0.0)
    assert not pacer.arrive("b", 0.0)
    assert not pacer.arrive("c", 30.0)
    step = pacer.step(30.0)
    assert step.lines == ["[LIMIT] pacing handshakes: 2 waiting, 0.01/s"]
    assert step.next_at == pytest.approx(30.0 + REPORT_INTERVAL)
    step = pacer.step(59.0)
    assert step.expired == [] and step.started == []
    assert step.next_at == pytest.approx(60.0)  # b's limit comes before the next token
    step = pacer.step(60.0)
    assert step.expired == ["b"] and step.started == []
    step = pacer.step(89.9)
    assert step.expired == [] and step.next_at == pytest.approx(90.0)  # c's limit
    step = pacer.step(90.0)
    assert step.expired == ["c"] and step.next_at is None
    assert step.lines == [
        "[LIMIT] paced handshakes for 90.0 s: 2 connections waited (at most 2 at once), "
        "0 started after up to 0.0 s, 2 refused after 60 s"
    ]


def test_a_storm_is_logged_once_paced_a_while_then_every_interval_then_once_at_its_end() -> None:
    pacer: HandshakePacer[int] = HandshakePacer(rate=2.0, burst=1, max_wait=1000.0)
    assert pacer.arrive(0, 0.0)
    for key in range(1, 1301):
        assert not pacer.arrive(key, 0.0)
    lines: list[str] = []
    now, steps = 0.0, 0
    while True:
        step = pacer.step(now)
        lines += step.lines
        steps += 1
        if step.next_at is None:
            break
        assert step.next_at > now
        now = step.next_at
    # One handshake every half second: 1,300 take 650 s, in about as many timer calls as
    # handshakes (never a busy loop).
    assert now == pytest.approx(650.0)
    assert steps <= 1300 + 650 / REPORT_INTERVAL + 3
    status = [line for line in lines if line.startswith("[LIMIT] pacing handshakes:")]
    assert status[0] == "[LIMIT] pacing handshakes: 1,298 waiting, 2/s"  # at FIRST_REPORT (1 s)
    assert len(status) == int((650 - FIRST_REPORT) // REPORT_INTERVAL) + 1
    assert lines[-1] == (
        "[LIMIT] paced handshakes for 650.0 s: 1,300 connections waited (at most 1,300 at once), "
        "1,300 started after up to 650.0 s"
    )
    assert len(lines) == len(status) + 1


def test_a_short_storm_logs_nothing() -> None:
    pacer: HandshakePacer[str] = HandshakePacer(rate=100.0, burst=1)
    assert pacer.arrive("a", 0.0)
    assert not pacer.arrive("b", 0.0)
    step = pacer.step(0.01)
    assert step.started == ["b"] and step.lines == [] and pacer.storm is None


def test_a_status_line_says_the_rate_as_configured() -> None:
    pacer: HandshakePacer[str] = HandshakePacer(rate=0.5, burst=1)
    assert pacer.arrive("a", 0.0)
    assert not pacer.arrive("b", 0.0)
    assert not pacer.arrive("c", 0.0)
    step = pacer.step(FIRST_REPORT)
    assert step.lines == ["[LIMIT] pacing handshakes: 2 waiting, 0.5/s"]
    assert pacer.step(FIRST_REPORT + 1.0).started == ["b"]


def test_a_reload_resizes_the_bucket_keeping_what_it_holds() -> None:
    pacer: HandshakePacer[str] = HandshakePacer(rate=1.0, burst=5)
    for key in "abcde":
        assert pacer.arrive(key, 0.0)
    assert not pacer.arrive("f", 0.0)
    assert not pacer.arrive("g", 0.0)
    pacer.resize(100.0, 2)
    assert pacer.rate == 100.0
    step = pacer.step(0.0)
    assert step.started == [] and step.next_at == pytest.approx(TICK)  # 1/100 s, not 1 s
    assert pacer.step(0.02).started == ["f", "g"]
    # A larger burst is not a refill: the bucket grows back to it at the rate.
    pacer.resize(1.0, 50)
    for key in "hij":
        assert pacer.arrive(key, 3.02)  # none held at 0.02, 3 refilled since
    assert not pacer.arrive("k", 3.02)


@pytest.mark.parametrize(
    ("rate", "burst", "max_wait"), [(0.0, 1, 60.0), (-1.0, 1, 60.0), (1.0, 0, 60.0), (1.0, 1, 0.0)]
)
def test_nonsense_settings_are_refused(rate: float, burst: int, max_wait: float) -> None:
    with pytest.raises(ValueError):
        HandshakePacer(rate=rate, burst=burst, max_wait=max_wait)
