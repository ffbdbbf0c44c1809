"""Flood control: a token bucket per user, refilled continuously."""

from __future__ import annotations

from dataclasses import dataclass

# The work a frame makes the server do, in units of a ping: what it sends, to how many, and what
# it reads from the store. Commands not named cost DEFAULT_WORK. The server charges it to the
# key's work budget; the client paces its commands by the same table.
WORK_COSTS = {"ping": 1, "join": 10, "part": 5, "names": 4, "rooms": 4, "whois": 4, "help": 4}
DEFAULT_WORK = 2


def work_cost(name: str) -> int:
    return WORK_COSTS.get(name, DEFAULT_WORK)


@dataclass
class TokenBucket:
    """``burst`` messages at once, then ``rate`` per second; a short paste fits in the burst."""

    rate: float
    burst: float
    tokens: float = -1.0
    updated: float = 0.0

    def wait(self, now: float) -> float:
        """Seconds until a token is available (0.0 if one is), taking nothing."""
        if self.tokens < 0:
            return 0.0
        tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        if tokens >= 1.0 - 1e-9:
            return 0.0
        return (1.0 - tokens) / self.rate if self.rate > 0 else float("inf")

    def take(self, now: float, cost: float = 1.0) -> float:
        """0.0 if ``cost`` tokens were taken; otherwise the seconds until they are available."""
        if self.tokens < 0:
            self.tokens, self.updated = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        # Float sums of refills fall a hair short of whole tokens; a billionth is no flood.
        if self.tokens >= cost - 1e-9:
            self.tokens = max(0.0, self.tokens - cost)
            return 0.0
        return (cost - self.tokens) / self.rate if self.rate > 0 else float("inf")
