"""The join-storm benchmark's figures (:mod:`benchmarks.join_storm`): one :class:`Row` per
scenario, the table printed from them, and what the JSON says about the machine."""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Row:
    """One scenario's figures; times in seconds from its start (the storm's go, or the restarted
    server listening)."""

    n: int
    scenario: str  # "storm" or "restart"
    cpu_s: float  # the server's, until the traffic last seen (settle_s)
    cpu_until_joined_s: float  # ... until every user but the last joiner was in
    settled: bool  # False: still busy at --settle-timeout (figures marked +)
    settle_s: float
    peak_rss_mib: float  # VmHWM: the restarted server's own for "restart"
    wall_s: float | None  # until the last joiner's `joined`
    members: int  # that the last joiner knew in the end
    expected: int  # users in #general, the last joiner and the live user
    listed: int  # how many its `joined` reply carried
    complete_s: float | None  # when it knew all of them (None: never, within --timeout)
    failed: int  # users that never got in
    lost: int  # joined connections that dropped
    frames: int  # read by all users, in all
    bytes: int
    clients_cpu_s: float  # the storm users' worker processes
    other_cpu_s: float  # everything else that ran on the machine meanwhile
    first_error: str
    window: tuple[float, float]  # monotonic: the live user's lines sent in it are this row's
    rtt: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


COLUMNS = (
    ("N", 6),
    ("scenario", 9),
    ("server CPU s", 13),
    ("peak RSS MiB", 13),
    ("wall s", 7),
    ("settled s", 10),
    ("last joiner knows", 18),
    ("in joined", 10),
    ("complete s", 11),
    ("live RTT p50/p99/max ms", 24),
    ("failed", 7),
    ("lost", 5),
    ("frames read", 12),
    ("clients CPU s", 14),
    ("other CPU s", 12),
)


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_table(rows: list[Row], header: bool = True) -> str:
    lines = []
    if header:
        lines.append("".join(name.rjust(width) for name, width in COLUMNS))
    for row in rows:
        unsettled = "" if row.settled else "+"
        rtt = row.rtt
        if rtt.get("p50_ms") is not None:
            rtt_text = f"{rtt['p50_ms']:.0f}/{rtt['p99_ms']:.0f}/{rtt['max_ms']:.0f}"
        else:
            rtt_text = "(at the end)" if not rtt else "-"
        cells = (
            str(row.n),
            row.scenario,
            f"{row.cpu_s:.1f}{unsettled}",
            f"{row.peak_rss_mib:.0f}",
            seconds(row.wall_s),
            f"{row.settle_s:.2f}{unsettled}",
            f"{row.members}/{row.expected}",
            str(row.listed),
            seconds(row.complete_s),
            rtt_text,
            str(row.failed),
            str(row.lost),
            f"{row.frames:,}",
            f"{row.clients_cpu_s:.1f}",
            f"{row.other_cpu_s:.1f}",
        )
        lines.append("".join(c.rjust(w) for c, (_, w) in zip(cells, COLUMNS, strict=True)))
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
        model = next(
            (ln.split(":", 1)[1].strip() for ln in handle if ln.startswith("model name")), ""
        )
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "load_average": os.getloadavg(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }


def baseline_line(n: int, rtt: dict[str, Any]) -> str:
    figures = "/".join(seconds(rtt[key]) for key in ("p50_ms", "p99_ms", "max_ms"))
    return f"N={n}: live RTT before the storm p50/p99/max {figures} ms"
