"""The ratio figures of a results JSON: tlschat's figures over the references' measured in the
same run, which carry from one machine to another where absolute times do not
(benchmarks.compare holds them against a committed baseline).

Each figure says which way is better and how far it may move (relative) before that counts as a
change: light-load figures and latencies move more from run to run than CPU per message does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .report import _idle_counts, _sizes

LOWER = "lower"
HIGHER = "higher"
PHASES = (("fixed", "light"), ("saturation", "saturation"))
# The references a light-load p99 is held against (as in the targets): the best of them.
LATENCY_REFERENCES = ("ssl", "ngircd")

# Default relative tolerances; a baseline's own, per figure, win (benchmarks.compare).
TOLERANCE_HANDSHAKE = 0.25  # the crypto floor share moved 41-52 % between runs (issue 16)
TOLERANCE_SATURATION = 0.25
TOLERANCE_LIGHT = 0.35  # a lightly loaded server's CPU per message is a few percent of a core
TOLERANCE_P99 = 0.5
TOLERANCE_IDLE = 0.25


@dataclass(frozen=True)
class Figure:
    """One ratio: ``value`` is tlschat's figure over a reference's, ``detail`` the two numbers."""

    name: str
    value: float
    better: str  # LOWER or HIGHER
    tolerance: float  # relative: 0.25 = may move 25 % of the baseline before it counts
    detail: str


def _entry(results: dict[str, Any], key: str) -> dict[str, Any]:
    value = results.get(key)
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    """A positive measured number, or None (not measured, or nothing to divide by)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value > 0 else None


class _Collector:
    def __init__(self) -> None:
        self.figures: list[Figure] = []

    def ratio(
        self,
        name: str,
        ours: Any,
        theirs: Any,
        better: str,
        tolerance: float,
        unit: str = "",
        theirs_name: str = "",
    ) -> None:
        mine, reference = _number(ours), _number(theirs)
        if mine is None or reference is None:
            return
        detail = f"{mine:,.4g}{unit} / {reference:,.4g}{unit}"
        if theirs_name:
            detail += f" ({theirs_name})"
        self.figures.append(Figure(name, mine / reference, better, tolerance, detail))


def figures(data: dict[str, Any], server: str = "tlschat") -> list[Figure]:
    """Every ratio figure ``data`` (a results JSON, benchmarks.__main__) has for ``server``; a
    figure whose parts were not measured (ngircd not installed, a scenario that failed) is
    left out."""
    results = data.get("results", {})
    floor = data.get("crypto_floor", {})
    out = _Collector()
    handshakes = _entry(results, f"handshake/{server}").get("per_server_cpu_s")
    out.ratio(
        "handshakes per CPU-s / ssl",
        handshakes,
        _entry(results, "handshake/ssl").get("per_server_cpu_s"),
        HIGHER,
        TOLERANCE_HANDSHAKE,
    )
    out.ratio(
        "handshakes per CPU-s / crypto floor",
        handshakes,
        floor.get("floor_per_cpu_s_ed25519_client"),
        HIGHER,
        TOLERANCE_HANDSHAKE,
    )
    for n in _sizes(results):
        for mode, phase in PHASES:
            tolerance = TOLERANCE_LIGHT if mode == "fixed" else TOLERANCE_SATURATION
            mine = _entry(results, f"fanout/{mode}/{n}/{server}")
            for reference in ("ssl", "ngircd"):
                out.ratio(
                    f"N={n} {phase}: CPU us per delivered msg / {reference}",
                    mine.get("cpu_us_per_msg"),
                    _entry(results, f"fanout/{mode}/{n}/{reference}").get("cpu_us_per_msg"),
                    LOWER,
                    tolerance,
                    " us",
                )
            out.ratio(
                f"N={n} {phase}: accepted per CPU-s / ssl",
                mine.get("accepted_per_server_cpu_s"),
                _entry(results, f"fanout/{mode}/{n}/ssl").get("accepted_per_server_cpu_s"),
                HIGHER,
                tolerance,
            )
        measured = {
            kind: p99
            for kind in LATENCY_REFERENCES
            if (p99 := _number(_entry(results, f"fanout/fixed/{n}/{kind}").get("p99_ms")))
        }
        if measured:
            # The references are in the name: a p99 held against ssl alone is not the same
            # figure as one held against the best of ssl and ngircd.
            best = min(measured, key=lambda kind: measured[kind])
            out.ratio(
                f"N={n} light: p99 / best of {'+'.join(measured)}",
                _entry(results, f"fanout/fixed/{n}/{server}").get("p99_ms"),
                measured[best],
                LOWER,
                TOLERANCE_P99,
                " ms",
                best,
            )
    for count in _idle_counts(results):
        out.ratio(
            f"{count} idle: KiB per connection / ssl",
            _entry(results, f"idle/{count}/{server}").get("kib_per_connection"),
            _entry(results, f"idle/{count}/ssl").get("kib_per_connection"),
            LOWER,
            TOLERANCE_IDLE,
            " KiB",
        )
    return out.figures
