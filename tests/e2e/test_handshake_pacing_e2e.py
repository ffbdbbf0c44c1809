"""End to end: a reconnect storm against the real server process is admitted at the server's
handshake rate, none refused, while a user already online keeps getting answers.

The storm is 100 protocol clients in threads of the test, each from an address block of its own
(127.1.N.1: the per-block limits are not what paces them), all connecting at once.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

from .harness import Harness
from .test_admission_e2e import stop_server
from .test_limits_faults_e2e import RawClient

USERS = 100
RATE = 20.0
BURST = 10
# Far longer than the storm takes at this rate (about 4.5 s); every wait here is bounded by it.
STORM_WAIT = 60.0
# Generous: a live user's round trip is milliseconds, and the bound is for a starved one.
LIVE_ROUND_TRIP = 2.0
PING_EVERY = 0.1
# Clocks of two processes on one machine, and float sums of a token bucket.
SLACK = 0.05


def test_a_reconnect_storm_is_paced_none_refused_and_a_live_user_keeps_its_answers(
    harness: Harness,
) -> None:
    server = harness.server(
        extra=(
            "--handshake-rate",
            str(RATE),
            "--handshake-rate-burst",
            str(BURST),
            # Shorter than the storm's longest wait: a handshake's timeout counts from its turn.
            "--handshake-timeout",
            "2",
        )
    )
    live = RawClient(server.port, source="127.0.0.2")
    live.join("live")
    users: list[RawClient] = []

    def storm_user(number: int) -> float:
        user = RawClient(server.port, source=f"127.1.{number}.1")
        users.append(user)
        user.join(f"storm{number}", timeout=STORM_WAIT)
        return time.monotonic()

    round_trips: list[float] = []
    began = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=USERS) as pool:
            futures = [pool.submit(storm_user, number) for number in range(USERS)]
            while not all(future.done() for future in futures):
                assert time.monotonic() - began < STORM_WAIT, "the storm did not end"
                sent = time.monotonic()
                live.send_frame({"type": "ping"})
                arrived, _ = live.next_frame("pong", timeout=STORM_WAIT)
                round_trips.append(arrived - sent)
                time.sleep(PING_EVERY)
            joined = sorted(future.result() - began for future in futures)
    finally:
        for user in users:
            user.close()
    live.close()

    # All got in (a refused or failed one would have raised in its thread).
    assert len(joined) == USERS
    # Paced: the server starts at most BURST handshakes at once and RATE a second after them, so
    # the k-th user can have joined no sooner than (k - BURST) / RATE after the storm began.
    for k, seconds in enumerate(joined, start=1):
        assert seconds >= (k - BURST) / RATE - SLACK, (k, seconds, joined)
    assert joined[-1] >= (USERS - BURST) / RATE - SLACK
    # Meanwhile the user already online was answered promptly, all along.
    assert len(round_trips) >= 10, round_trips
    assert max(round_trips) < LIVE_ROUND_TRIP, round_trips

    stop_server(server)
    limits = [line for line in server.snapshot() if line.startswith("[LIMIT]")]
    # None refused, none failed: no per-block summary at all.
    assert not [line for line in limits if re.match(r"\[LIMIT\] [0-9.]+/\d+: ", line)], limits
    # The storm is told in a few lines, not one per connection.
    assert any(
        re.fullmatch(r"\[LIMIT\] pacing handshakes: [\d,]+ waiting, 20/s", line) for line in limits
    ), limits
    summary = [line for line in limits if line.startswith("[LIMIT] paced handshakes for ")]
    assert len(summary) == 1, limits
    waited = re.search(r": (\d+) connections waited", summary[0])
    assert waited is not None and USERS - BURST - 10 <= int(waited.group(1)) <= USERS, summary
    assert len(limits) <= 3, limits
