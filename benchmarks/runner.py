"""The coordinator: runs each scenario against one server (or a cluster measured as one) and turns
counts into figures.

CPU time is read from /proc for the server process, the load-generator workers and the whole
machine over exactly the timed window, so each figure can say what limited it.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .load import (
    HIST_BUCKETS,
    ClientFactory,
    Phase,
    Target,
    WorkerPool,
    WorkerSpec,
    histogram_quantile,
)
from .servers import CLOCK_TICKS, Server, cpu_seconds, speaks_tlschat


class Measured(Protocol):
    """What a scenario measures: one :class:`Server`, or a cluster of them (benchmarks.cluster)
    whose CPU is the sum over its processes."""

    @property
    def kind(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def fingerprint(self) -> str: ...

    @property
    def ports(self) -> tuple[int, ...]: ...

    def cpu_seconds(self) -> float: ...

    def cpu_by_process(self) -> dict[str, float]: ...


CORES = os.cpu_count() or 1
WARMUP = 1.0
# What tlschat might reach at saturation, to size the stock of pre-signed messages: at most
# 10,000 messages/s, or 250,000 deliveries/s (past it, the rest is signed in the window: reported).
# Issue 16's server takes in about 6,000 messages/s at N = 10 and delivers 175,000/s at N = 100.
SAT_MESSAGES_GUESS = 10_000
SAT_DELIVERIES_GUESS = 250_000
LIGHT_RATE = 200.0  # msgs/s offered in all at the light fixed load ...
LIGHT_MAX_DELIVERIES = 10_000.0  # ... or less, so that the room's deliveries stay at this rate


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (/proc/stat)."""
    with open("/proc/stat", encoding="ascii") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / CLOCK_TICKS


@dataclass
class Snapshot:
    wall: float
    server: float
    workers: list[float]
    machine: float
    server_parts: dict[str, float]  # the server's CPU per process (a cluster has several)

    @classmethod
    def take(cls, server: Measured, worker_pids: list[int]) -> Snapshot:
        workers = []
        for pid in worker_pids:
            try:
                workers.append(cpu_seconds(pid))
            except OSError:
                workers.append(0.0)
        parts = server.cpu_by_process()
        return cls(time.monotonic(), sum(parts.values()), workers, machine_busy_seconds(), parts)


def usage(before: Snapshot, after: Snapshot) -> dict[str, Any]:
    wall = after.wall - before.wall
    server = after.server - before.server
    workers = [b - a for a, b in zip(before.workers, after.workers, strict=True)]
    machine = after.machine - before.machine
    others = max(0.0, machine - server - sum(workers))
    return {
        "wall_s": wall,
        "server_cpu_s": server,
        "server_cpu_s_by_process": {
            name: after.server_parts[name] - before.server_parts[name]
            for name in after.server_parts
        },
        "server_util": server / wall,
        "loadgen_cpu_s": sum(workers),
        "loadgen_util": sum(workers) / wall,
        "loadgen_max_worker_util": max(workers, default=0.0) / wall,
        "other_util": others / wall,
    }


def limiter(use: dict[str, Any], offered_met: bool | None = None) -> str:
    """What limited a figure, from the CPU shares over its window."""
    server, loadgen, other = use["server_util"], use["loadgen_util"], use["other_util"]
    spare = CORES - server - other
    if server >= 0.9:
        reason = f"server CPU saturated ({server:.0%} of a core)"
    elif other >= 0.5 and loadgen + server + other >= 0.85 * CORES:
        reason = f"machine busy: other processes used {other:.2f} cores (server {server:.0%})"
    elif loadgen >= 0.85 * spare or use["loadgen_max_worker_util"] >= 0.92:
        reason = f"load generator CPU ({loadgen:.2f} cores; server {server:.0%})"
    elif offered_met:
        reason = f"offered load (server {server:.0%} of a core)"
    else:
        reason = f"neither CPU full (server {server:.0%}, load gen {loadgen:.2f} cores)"
    if other >= 0.25 and not reason.startswith("machine busy"):
        reason += f"; other processes used {other:.2f} cores"
    return reason


def wait_quiet(server: Measured, limit: float = 120.0, quiet: float = 0.05) -> float:
    """Wait until the server uses under ``quiet`` of a core over 0.3 s; the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = server.cpu_seconds()
        time.sleep(0.3)
        if server.cpu_seconds() - before < quiet * 0.3 + 1.0 / CLOCK_TICKS:
            break
    return time.monotonic() - started


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _target(server: Measured, cafile: str) -> Target:
    return Target(server.kind, server.port, server.fingerprint, cafile, server.ports)


# ----- handshakes -----


def run_handshakes(
    server: Server,
    cafile: str,
    duration: float,
    workers: int = 3,
    concurrency: int = 4,
    warmup: float = WARMUP,
    on_window: Callable[[str, float], None] | None = None,
) -> dict[str, Any]:
    target = _target(server, cafile)
    specs = [WorkerSpec(target, [], []) for _ in range(workers)]
    pool = WorkerPool("handshake", specs, concurrency)
    pool.start()
    try:
        pool.receive_all("ready", 60)
        t_start = time.monotonic() + warmup
        t_end = t_start + duration
        pool.send_all(("go", t_start, t_end))
        _sleep_until(t_start)
        before = Snapshot.take(server, pool.pids)
        if on_window is not None:
            on_window("handshake", duration)
        _sleep_until(t_end)
        after = Snapshot.take(server, pool.pids)
        results = pool.receive_all("result", duration + 60)
    finally:
        pool.stop()
    use = usage(before, after)
    completed = sum(r["completed"] for r in results)
    histogram = _merge([r["histogram"] for r in results])
    return {
        "completed": completed,
        "failed": sum(r["failed"] for r in results),
        "first_error": next((r["first_error"] for r in results if r["first_error"]), ""),
        "per_wall_s": completed / use["wall_s"],
        "per_server_cpu_s": completed / use["server_cpu_s"] if use["server_cpu_s"] else None,
        "p50_ms": _ms(histogram_quantile(histogram, 0.5)),
        "p99_ms": _ms(histogram_quantile(histogram, 0.99)),
        "clients": f"{workers} processes x {concurrency} concurrent",
        **use,
        "limited_by": limiter(use),
    }


# ----- room fan-out -----


def light_rate(n: int) -> float:
    return min(LIGHT_RATE, LIGHT_MAX_DELIVERIES / max(1, n - 1))


def saturation_window(n: int) -> int:
    """Messages each sender keeps in flight at saturation: 8 at N=10, 2 at N=100, 1 at 1,000.

    Enough to keep the server busy (ten senders), few enough that the queue, and so the latency
    at saturation (Little's law), stays within a few thousand deliveries.
    """
    return max(1, min(8, round(200 / n)))


def ingress_source(kind: str, client_factory: ClientFactory | None) -> str:
    """Which count of the workers' is the messages the server accepted: tlschat's own 'sent'
    confirmations ("confirmed") for the plain client, whose frames the load client reads; else
    the lines each sender's watcher received ("watched"), which is what a relay read and
    relayed (every line reaches every other client, the watcher among them, once)."""
    return "confirmed" if speaks_tlschat(kind) and client_factory is None else "watched"


def run_room(
    server: Measured,
    cafile: str,
    n: int,
    duration: float,
    modes: tuple[str, ...] = ("fixed", "saturation"),
    workers: int = 4,
    senders: int = 10,
    window: int | None = None,
    on_window: Callable[[str, float], None] | None = None,
    warmup: float = WARMUP,
    client_factory: ClientFactory | None = None,
    saturation_guess: float = SAT_DELIVERIES_GUESS,
) -> dict[str, dict[str, Any]]:
    """N clients in one room; one timed phase per mode on the same connections.

    ``client_factory``: tlschat only, clients of another kind than the plain room's
    (benchmarks.encrypted_load); they are pre-signed like the plain ones. ``saturation_guess``:
    the deliveries per second the stock of pre-signed messages is sized for.
    """
    target = _target(server, cafile)
    accepted_by = ingress_source(server.kind, client_factory)
    if window is None:
        window = saturation_window(n)
    workers = max(1, min(workers, n // 2))
    senders = min(senders, n)
    bounds = [n * w // workers for w in range(workers + 1)]
    fixed_rate = light_rate(n)
    presign = 0
    if speaks_tlschat(server.kind):
        per_sender_sat = min(SAT_MESSAGES_GUESS, saturation_guess / max(1, n - 1)) / senders
        seconds = duration + warmup + 1.0
        presign = math.ceil(seconds * (fixed_rate / senders + per_sender_sat)) + 2 * window
    specs = [
        WorkerSpec(
            target,
            list(range(bounds[w], bounds[w + 1])),
            list(range(senders * w // workers, senders * (w + 1) // workers)),
            presign=presign,
            connect_concurrency=2 if server.kind == "ngircd" else 16,
            client_factory=client_factory,
        )
        for w in range(workers)
    ]
    from multiprocessing import RawArray

    from .load import CAPACITY

    send_times = RawArray("d", senders * CAPACITY)
    pool = WorkerPool("room", specs, send_times)
    started = time.monotonic()
    pool.start()
    results: dict[str, dict[str, Any]] = {}
    try:
        ready = pool.receive_all("ready", 120 + n * 0.5)
        connected = sum(r["connected"] for r in ready)
        senders = sum(r["senders"] for r in ready)
        setup_s = time.monotonic() - started
        settle_s = wait_quiet(server)
        for mode in modes:
            rate = fixed_rate if mode == "fixed" else 0.0
            t_start = time.monotonic() + warmup
            t_end = t_start + duration
            phase = Phase(mode, rate / senders, 256 if mode == "fixed" else window, t_start, t_end)
            pool.send_all(("go", phase))
            _sleep_until(t_start)
            before = Snapshot.take(server, pool.pids)
            if on_window is not None:
                on_window(mode, duration)
            _sleep_until(t_end)
            after = Snapshot.take(server, pool.pids)
            phase_results = pool.receive_all("result", duration + 120)
            use = usage(before, after)
            delivered = sum(r["delivered"] for r in phase_results)
            accepted = sum(r[accepted_by] for r in phase_results)
            histogram = _merge([r["histogram"] for r in phase_results])
            offered = rate * (connected - 1) if mode == "fixed" else None
            rate_delivered = delivered / use["wall_s"]
            met = offered is not None and rate_delivered >= 0.95 * offered
            results[mode] = {
                "n": n,
                "connected": connected,
                "senders": senders,
                "window": phase.window,
                "offered_msgs_per_s": rate if mode == "fixed" else None,
                "offered_deliveries_per_s": offered,
                "sent": sum(r["sent"] for r in phase_results),
                "delivered": delivered,
                "delivered_per_s": rate_delivered,
                "per_server_cpu_s": delivered / use["server_cpu_s"]
                if use["server_cpu_s"]
                else None,
                "cpu_us_per_msg": use["server_cpu_s"] / delivered * 1e6 if delivered else None,
                "accepted": accepted,
                "accepted_counted_by": accepted_by,
                "accepted_per_s": accepted / use["wall_s"],
                "accepted_per_server_cpu_s": accepted / use["server_cpu_s"]
                if use["server_cpu_s"]
                else None,
                "p50_ms": _ms(histogram_quantile(histogram, 0.5)),
                "p99_ms": _ms(histogram_quantile(histogram, 0.99)),
                "skipped_sends": sum(r["skipped"] for r in phase_results),
                "lost_connections": sum(r["lost"] for r in phase_results),  # since setup
                "errors": sum(r["errors"] for r in phase_results),
                "first_error": next(
                    (r["first_error"] for r in phase_results if r["first_error"]), ""
                ),
                "signed_late": sum(r["signed_late"] for r in phase_results),
                "client_counts": _sum_counts([r["client_counts"] for r in phase_results]),
                "min_lead_s": min(r["lead_s"] for r in phase_results),
                "setup_s": setup_s,
                "settle_s": settle_s,
                **use,
                "limited_by": limiter(use, met if mode == "fixed" else None),
            }
            wait_quiet(server, limit=30)
    finally:
        pool.stop()
    return results


# ----- idle connections -----


def run_idle(
    server: Server, cafile: str, stages: tuple[int, ...], workers: int = 4
) -> list[dict[str, Any]]:
    target = _target(server, cafile)
    total = max(stages)
    bounds = [total * w // workers for w in range(workers + 1)]
    specs = [
        WorkerSpec(
            target,
            list(range(bounds[w], bounds[w + 1])),
            [],
            # ngircd answers bursts of concurrent TLS registrations slowly; a few at a time is
            # much faster there and changes nothing for the memory figure.
            connect_concurrency=2 if server.kind == "ngircd" else 32,
        )
        for w in range(workers)
    ]
    pool = WorkerPool("idle", specs)
    pool.start()
    results = []
    try:
        time.sleep(0.5)
        wait_quiet(server, limit=10)
        baseline = server.rss_bytes()
        for stage in stages:
            shares = [stage * (w + 1) // workers - stage * w // workers for w in range(workers)]
            started = time.monotonic()
            for pipe, share in zip(pool.pipes, shares, strict=True):
                pipe.send(("connect", share))
            ready = pool.receive_all("ready", 120 + stage / 50)
            seconds = time.monotonic() - started
            wait_quiet(server, limit=30)
            time.sleep(1.0)
            connected = sum(r["connected"] for r in ready)
            rss = server.rss_bytes()
            per_connection = (rss - baseline) / connected if connected else None
            results.append(
                {
                    "connections": stage,
                    "connected": connected,
                    "failed": sum(r["failed"] for r in ready),
                    "lost": sum(r["lost"] for r in ready),
                    "first_error": next((r["first_error"] for r in ready if r["first_error"]), ""),
                    "connect_s": seconds,
                    "baseline_rss_mib": baseline / 2**20,
                    "rss_mib": rss / 2**20,
                    "kib_per_connection": per_connection / 1024 if per_connection else None,
                    "connections_per_gib": 2**30 / per_connection if per_connection else None,
                    "server_alive": server.alive(),
                }
            )
    finally:
        pool.stop()
    return results


def _sum_counts(counts: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for each in counts:
        for name, value in each.items():
            total[name] = total.get(name, 0) + value
    return total


def _merge(histograms: list[list[int]]) -> list[int]:
    merged = [0] * HIST_BUCKETS
    for histogram in histograms:
        for bucket, count in enumerate(histogram):
            if count:
                merged[bucket] += count
    return merged


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000
