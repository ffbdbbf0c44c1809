"""Flood control: a token bucket per user, refilled continuously."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The work a frame makes the server do, in units of a ping: what it sends, to how many, and what
# it reads from the store. Commands not named cost DEFAULT_WORK. The server charges it to the
# key's work budget; the client paces its commands by the same table.
WORK_COSTS = {
    "ping": 1,
    "join": 10,
    "part": 5,
    "names": 4,
    "search": 4,
    "rooms": 4,
    "whois": 4,
    "help": 4,
    "members": 4,
    "watch": 4,
    "history": 4,
}
# What each further frame of a run an answer needs costs (tlschat/chat/runs.py).
PAGE_WORK = 1
DEFAULT_WORK = 2


# What a message costs its connection's frame budget: a signature to check, even when refused.
SAY_WORK = 2


# The end-to-end layer's frames cost their connection one unit plus one per ITEMS_PER_UNIT items
# of their list (docs/PROTOCOL.md, "End-to-end layer"): the list is what the server stores or
# sends for them.
E2E_LISTS = {
    "keys_upload": "one_time_keys",
    "keys_query": "fingerprints",
    "keys_claim": "devices",
    "to_device": "messages",
    "device_remove": "",
    "device_ack": "",
}
ITEMS_PER_UNIT = 8


# What claiming one device's one-time key costs its key's work budget: a hostile key draining
# other devices' keys down to their fallback keys does so at the work rate, no faster.
CLAIM_WORK = 1


def work_cost(name: str) -> int:
    return WORK_COSTS.get(name, DEFAULT_WORK)


def claim_cost(devices: int) -> int:
    """What a ``keys_claim`` for ``devices`` devices costs its key's work budget."""
    return CLAIM_WORK * devices


def _items(container: object, name: str) -> int:
    value = container.get(name) if isinstance(container, dict) and name else None
    return len(value) if isinstance(value, list) else 0


def frame_cost(frame: dict[str, Any]) -> int:
    """What any client frame costs its connection, whatever becomes of it."""
    kind = frame.get("type")
    if kind == "say":
        # An encrypted private message also carries one Olm item per device it is for.
        return SAY_WORK + _items(frame.get("olm_private"), "keys") // ITEMS_PER_UNIT
    if kind == "command":
        name = frame.get("name")
        return work_cost(name.lower()) if isinstance(name, str) else DEFAULT_WORK
    if isinstance(kind, str) and kind in E2E_LISTS:
        return 1 + _items(frame, E2E_LISTS[kind]) // ITEMS_PER_UNIT
    return 1


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
        tokens = self._refilled(now)
        if tokens >= 1.0 - 1e-9:
            return 0.0
        return (1.0 - tokens) / self.rate if self.rate > 0 else float("inf")

    def is_full(self, now: float) -> bool:
        """Whether a whole burst is available: a bucket that could as well be made anew."""
        return self.tokens < 0 or self._refilled(now) >= self.burst

    def take(self, now: float, cost: float = 1.0) -> float:
        """0.0 if ``cost`` tokens were taken; otherwise the seconds until they are available."""
        if self.tokens < 0:
            self.tokens, self.updated = self.burst, now
        self.tokens = self._refilled(now)
        self.updated = max(self.updated, now)
        # Float sums of refills fall a hair short of whole tokens; a billionth is no flood.
        if self.tokens >= cost - 1e-9:
            self.tokens = max(0.0, self.tokens - cost)
            return 0.0
        return (cost - self.tokens) / self.rate if self.rate > 0 else float("inf")

    def resize(self, rate: float, burst: float) -> None:
        """New settings (a reloaded configuration): what the bucket holds is kept up to the new
        burst, so a reload neither refills it nor lets it hold more than the burst."""
        self.rate, self.burst = rate, burst
        self.tokens = min(self.tokens, burst)

    def _refilled(self, now: float) -> float:
        # The clock is the wall clock, which may step back: that refills nothing, takes nothing.
        return min(self.burst, self.tokens + max(0.0, now - self.updated) * self.rate)
