"""How long the client waits before its next attempt to connect. Pure.

Full jitter (a uniformly random wait up to an exponentially growing bound): when a server comes
back after a restart, its clients do not all knock at the same instant.
"""

from __future__ import annotations

from collections.abc import Callable

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
# 2**5 already passes the cap: no need for larger powers (nor for the float to overflow).
_MAX_DOUBLINGS = 16


def backoff_delay(
    attempt: int,
    random: Callable[[], float],
    base: float = FIRST_BACKOFF,
    cap: float = MAX_BACKOFF,
) -> float:
    """The wait before attempt ``attempt + 1`` (``attempt`` 0: the first retry): ``random()``
    (a float in [0, 1)) times ``min(cap, base * 2**attempt)``."""
    bound = min(cap, base * 2.0 ** min(max(attempt, 0), _MAX_DOUBLINGS))
    return random() * bound


def describe_delay(seconds: float) -> str:
    """'now', '0.4 s', '12 s': a wait as the user reads it."""
    if seconds < 0.05:
        return "now"
    if seconds < 9.95:
        return f"in {seconds:.1f} s"
    return f"in {seconds:.0f} s"
