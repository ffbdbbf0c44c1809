"""The server's global handshake pacer: a token bucket of handshakes started per second for the
whole server, and the connections that wait for a token, first come first served.

A restart makes every client reconnect within seconds, and each handshake costs the server a
signature and a key exchange. Paced, a storm costs at most ``rate`` handshakes' CPU a second,
and users already online keep the rest; a connection that must wait is not refused, it waits its
turn (the glue leaves its ClientHello unread in the kernel meanwhile), up to ``max_wait``.

Pure: time is passed in. The glue (server/handshake_queue.py) runs one timer at ``next_at``.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ..chat.limits import TokenBucket

# How long a connection may wait for its handshake's turn before it is refused (server_busy).
MAX_WAIT = 60.0
# The timer fires no more often than this: each tick starts every handshake whose token refilled
# since the last one, so a fast rate costs a few timer calls per tick, not one per handshake.
TICK = 0.01
# A storm is told in the log once it has been paced this long, then every REPORT_INTERVAL while
# it lasts, and once when its queue has drained: never a line per connection.
FIRST_REPORT = 1.0
REPORT_INTERVAL = 10.0

Key = TypeVar("Key", bound=Hashable)


@dataclass
class Storm:
    """One stretch of time during which connections waited: what the log says of it."""

    began: float
    waited: int = 0  # connections that had to wait
    started: int = 0  # ...whose handshake then started
    expired: int = 0  # ...refused after max_wait
    peak: int = 0  # the most waiting at once
    longest: float = 0.0  # the longest wait of one that started
    next_report: float = 0.0
    reported: bool = False


@dataclass
class PacingStep(Generic[Key]):
    """What is due at one instant: handshakes to start now (in arrival order), waits that passed
    ``max_wait`` (to refuse), log lines, and when to look again (None: nothing waits)."""

    started: list[Key] = field(default_factory=list)
    expired: list[Key] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    next_at: float | None = None


class HandshakePacer(Generic[Key]):
    """Handshakes started per second for the whole server, after a burst; the rest wait in
    arrival order."""

    def __init__(self, rate: float, burst: int, max_wait: float = MAX_WAIT) -> None:
        if rate <= 0 or burst < 1 or max_wait <= 0:
            raise ValueError("rate and max_wait must be > 0 and burst >= 1")
        self.bucket = TokenBucket(rate, burst)
        self.max_wait = max_wait
        # Insertion order is arrival order: the first key is the next to start.
        self.waiting: dict[Key, float] = {}
        self.storm: Storm | None = None

    @property
    def rate(self) -> float:
        return self.bucket.rate

    def __len__(self) -> int:
        return len(self.waiting)

    def must_wait(self, now: float) -> bool:
        """Whether a connection arriving now would wait: others already do (it queues behind
        them), or the bucket is empty."""
        return bool(self.waiting) or self.bucket.wait(now) > 0.0

    def arrive(self, key: Key, now: float) -> bool:
        """A new connection: True if its handshake may start now (a token was taken), False if
        it waits (``step`` starts it when its turn comes)."""
        if not self.waiting and self.bucket.take(now) == 0.0:
            return True
        if self.storm is None:
            self.storm = Storm(began=now, next_report=now + FIRST_REPORT)
        self.waiting[key] = now
        self.storm.waited += 1
        self.storm.peak = max(self.storm.peak, len(self.waiting))
        return False

    def leave(self, key: Key) -> bool:
        """A waiting connection went away: it no longer waits. Whether it was waiting."""
        return self.waiting.pop(key, None) is not None

    def resize(self, rate: float, burst: int) -> None:
        """A reloaded configuration: the bucket keeps what it holds, up to the new burst."""
        self.bucket.resize(rate, burst)

    def step(self, now: float) -> PacingStep[Key]:
        """Everything due at ``now``: waits past ``max_wait`` end, then as many handshakes start
        as the bucket has tokens, oldest first."""
        due: PacingStep[Key] = PacingStep()
        storm = self.storm
        if storm is None:
            return due
        for key, arrived in list(self.waiting.items()):
            if now - arrived < self.max_wait:
                break  # arrival order: every later one arrived later still
            del self.waiting[key]
            due.expired.append(key)
        while self.waiting and self.bucket.take(now) == 0.0:
            key = next(iter(self.waiting))
            storm.longest = max(storm.longest, now - self.waiting.pop(key))
            due.started.append(key)
        storm.started += len(due.started)
        storm.expired += len(due.expired)
        if self.waiting:
            if now >= storm.next_report:
                due.lines.append(self._status())
                storm.reported = True
                storm.next_report = now + REPORT_INTERVAL
            oldest = next(iter(self.waiting.values()))
            # A tick, but no longer than the bucket takes to refill its burst: it holds no more.
            tick = min(TICK, self.bucket.burst / self.bucket.rate)
            due.next_at = min(
                now + max(tick, self.bucket.wait(now)),
                oldest + self.max_wait,
                storm.next_report,
            )
        else:
            if storm.reported:
                due.lines.append(self._summary(now))
            self.storm = None
        return due

    def _status(self) -> str:
        return f"[LIMIT] pacing handshakes: {len(self.waiting):,} waiting, {_rate(self.rate)}/s"

    def _summary(self, now: float) -> str:
        storm = self.storm
        assert storm is not None
        line = (
            f"[LIMIT] paced handshakes for {now - storm.began:.1f} s: "
            f"{storm.waited:,} connections waited (at most {storm.peak:,} at once), "
            f"{storm.started:,} started after up to {storm.longest:.1f} s"
        )
        if storm.expired:
            line += f", {storm.expired:,} refused after {self.max_wait:g} s"
        return line


def _rate(rate: float) -> str:
    return f"{rate:,.0f}" if rate >= 10 or rate.is_integer() else f"{rate:g}"
