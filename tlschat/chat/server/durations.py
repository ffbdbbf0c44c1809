"""Durations as operators type them ('90s', '10m', '2h', '7d') and as the server shows them."""

from __future__ import annotations

import re

DURATION_PATTERN = re.compile(r"(\d+)([smhd])")


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float | None:
    """'90s', '10m', '2h', '7d' -> seconds; None if ``text`` is not a duration."""
    match = DURATION_PATTERN.fullmatch(text)
    if match is None:
        return None
    return int(match.group(1)) * DURATION_UNITS[match.group(2)]


def describe_duration(seconds: float) -> str:
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            rest = seconds % size
            return f"{seconds // size}{unit}" + (describe_duration(rest) if rest else "")
    return f"{seconds}s"
