"""The lines a user sends, from typed to delivered or refused: ordered, paced, bounded. Pure.

Everything the user sends to the server (messages and server commands) waits in one queue, in the
order typed, until the connection is ready (welcomed, rooms rejoined). Messages are paced by a
token bucket that mirrors the server's flood control (its rate and burst arrive in ``welcome``),
so a paste or a pipe arrives whole instead of being refused past the burst. A sent message stays
in flight until the server's ``sent`` or a refusal naming its counter; after a reconnect the ones
still in flight are sent again, first and unchanged (the server refuses a second copy by its
counter). Each message ends in exactly one outcome: delivered or refused.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from .limits import TokenBucket, work_cost
from .lines import Line

DEFAULT_RATE = 2.0
DEFAULT_BURST = 10
DEFAULT_WORK_RATE = 30.0
DEFAULT_WORK_BURST = 300
# Lines waiting to be sent (typed while disconnected, or faster than the pace); past it a new
# line is refused at once.
MAX_WAITING = 200
# Messages sent and not yet acknowledged; the queue waits while this many are out.
MAX_IN_FLIGHT = 32
# A message in flight this long without an outcome is sent again, unchanged, on the same
# connection, with every message in flight after it: its first copy may have been lost in a
# server's failing link to its cluster. The server answers a copy as it answered the first, so
# that is safe.
ACK_TIMEOUT = 20.0
# The pace keeps this far inside the server's limits, so that a message that crossed the network
# a little faster than the one before is still within them.
PACE_MARGIN = 0.9


@dataclass
class Outgoing:
    """One line the user sent: a message (``line`` set) or a server command (``command`` set)."""

    ref: int
    text: str
    line: Line | None = None
    command: dict[str, Any] | None = None
    body: str = ""
    # '#room', or '@fingerprint'; empty while a /msg waits for its recipient's key.
    target: str = ""
    recipient: str = ""
    frame: dict[str, Any] | None = field(default=None, repr=False)
    # Sent on a connection that was lost before its outcome came.
    resent: bool = False
    # Refused by flood control: never recorded, so it may be signed anew if its counter is
    # overtaken (another device of the same key), unlike a line whose fate is unknown.
    throttled: bool = False
    sent_at: float = 0.0  # when it last went out

    @property
    def counter(self) -> int:
        return int(self.frame["counter"]) if self.frame is not None else -1


class DeliveryQueue:
    def __init__(self, max_waiting: int = MAX_WAITING, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.max_waiting = max_waiting
        self.max_in_flight = max_in_flight
        self.waiting: list[Outgoing] = []
        self.in_flight: dict[int, Outgoing] = {}
        self.bucket = TokenBucket(DEFAULT_RATE * PACE_MARGIN, DEFAULT_BURST - 1)
        # The server's work budget for commands (chat/limits.py: WORK_COSTS), mirrored.
        self.work = TokenBucket(DEFAULT_WORK_RATE * PACE_MARGIN, DEFAULT_WORK_BURST * PACE_MARGIN)
        self.paused_until = 0.0
        # After flood control refused a line, nothing goes out until every line in flight has
        # come back (the server refuses them the same way): the refused one goes first again.
        self.draining = False
        self._refs = 0

    def next_ref(self) -> int:
        self._refs += 1
        return self._refs

    @property
    def outstanding(self) -> int:
        """Lines that have no outcome yet."""
        return len(self.waiting) + len(self.in_flight)

    def add(self, item: Outgoing) -> bool:
        """Queue ``item``; False (and nothing queued) when the queue is full."""
        if len(self.waiting) >= self.max_waiting:
            return False
        self.waiting.append(item)
        return True

    def set_pace(self, rate: float, burst: int) -> None:
        """The server's flood control, from its ``welcome``: a fresh server has a full bucket."""
        self.bucket = TokenBucket(max(0.0, rate) * PACE_MARGIN, max(1, burst - 1))

    def set_work_pace(self, rate: float, burst: int) -> None:
        """The server's work budget for commands, from its ``welcome``."""
        self.work = TokenBucket(rate * PACE_MARGIN, max(1.0, burst * PACE_MARGIN))

    def may_send_command(self, name: str, now: float) -> float:
        """0.0 if the command may go now (its cost is taken), else seconds to wait."""
        cost = min(work_cost(name), self.work.burst)
        return self.work.take(now, cost)

    def head(self) -> Outgoing | None:
        """The next line to send, or None: nothing waits, or the queue drains after a refusal
        by flood control."""
        if self.draining and self.in_flight:
            return None
        self.draining = False
        return self.waiting[0] if self.waiting else None

    def may_send_message(self, now: float) -> float:
        """0.0 if a message may go now (a token is taken), else seconds to wait (or inf)."""
        if len(self.in_flight) >= self.max_in_flight:
            return float("inf")  # woken by an acknowledgement, not a timer
        if now < self.paused_until:
            return self.paused_until - now
        return self.bucket.take(now)

    def sent(self, item: Outgoing, now: float) -> None:
        """``item`` left the queue: a command is done with; a message is in flight."""
        self.waiting.remove(item)
        if item.frame is not None and item.command is None:
            item.sent_at = now
            self.in_flight[item.counter] = item

    def requeue_overdue(self, now: float, timeout: float = ACK_TIMEOUT) -> None:
        """Once the oldest message in flight has waited ``timeout`` for its outcome, its answer
        (or its first copy) may be lost: every message in flight goes back into the queue, in
        the order typed, to be sent again as after a lost connection (flood control's wait and
        order still apply)."""
        if self.in_flight and min(i.sent_at for i in self.in_flight.values()) + timeout <= now:
            self._requeue_in_flight()

    def next_overdue(self, timeout: float = ACK_TIMEOUT) -> float | None:
        """When the messages in flight are due to go back into the queue, if any is in flight."""
        if not self.in_flight:
            return None
        return min(item.sent_at for item in self.in_flight.values()) + timeout

    def settle(self, counter: int) -> Outgoing | None:
        """The message with ``counter`` got its outcome: one in flight, or one waiting to go
        again because its answer was late (the first copy's answer came after all)."""
        item = self.in_flight.pop(counter, None)
        if item is None:
            item = next((i for i in self.waiting if i.resent and i.counter == counter), None)
            if item is not None:
                self.waiting.remove(item)
        return item

    def throttle(self, counter: int, retry_after: float, now: float) -> Outgoing | None:
        """The server's flood control refused it: send it again, unchanged and in its place,
        after the wait. The server refuses the later ones in flight the same way until it comes
        again, so the lines are stored in the order typed."""
        item = self.in_flight.pop(counter, None)
        if item is None:
            return None
        item.throttled = True
        self.draining = True
        self.requeue(item)
        self.paused_until = max(self.paused_until, now + retry_after)
        self.bucket.tokens, self.bucket.updated = 0.0, now
        return item

    def requeue(self, item: Outgoing) -> None:
        """Back into the queue in the order it was typed (ahead of later lines)."""
        refs = [each.ref for each in self.waiting]
        self.waiting.insert(bisect.bisect_left(refs, item.ref), item)

    def connection_lost(self) -> None:
        """Everything in flight goes out again, first and unchanged, on the next connection."""
        self._requeue_in_flight()
        self.paused_until = 0.0

    def _requeue_in_flight(self) -> None:
        for item in self.in_flight.values():
            item.resent = True
            self.requeue(item)
        self.in_flight.clear()
        self.draining = False

    def drop_all(self) -> list[Outgoing]:
        """Every line without an outcome, in the order typed; the queue is empty after."""
        items = sorted([*self.waiting, *self.in_flight.values()], key=lambda item: item.ref)
        self.waiting.clear()
        self.in_flight.clear()
        return items

    def unresolved(self, recipient: str) -> list[Outgoing]:
        """Take out the waiting /msg lines to ``recipient`` whose key was not found."""
        folded = recipient.casefold()
        gone = [i for i in self.waiting if not i.target and i.recipient.casefold() == folded]
        for item in gone:
            self.waiting.remove(item)
        return gone
