"""``python -m benchmarks.join_storm``: N clients join #general of one tlschat server at once
(issue 18), and with ``--restart`` the same again after the server restarts.

For each N: a fresh server (SQLite, default settings except the load limits
:func:`benchmarks.servers.start_server` lifts; its admission of handshakes is the default one:
400 a second after a burst of 20, at most 256 in progress or waiting), the live user
(:mod:`benchmarks.join_storm_live`) in #general, then ``--workers`` processes of storm users
(:mod:`benchmarks.join_storm_clients`), each from its own /24 block of 127/8 and reading all it
is sent.

- **storm**: N - 1 users connect, handshake, say hello and land in #general, ``--concurrency``
  connects in flight; then the last joiner (user N - 1) joins and counts #general's members from
  its ``joined`` run (or, #general being large, the ``members`` run its ``watch`` answers) and the
  changes after it, until it knows all N + 1 (the live user too) or
  ``--timeout`` passes.
- **restart**: the server is stopped (SIGTERM) and started again on the same port, key and data;
  every user reconnects with full-jitter backoff (first try within 1 s, the bound doubling to
  30 s) until back in #general; then the last joiner as above.

Figures per scenario, from its start (the storm's go; the restarted server listening): server CPU
(utime + stime) until the storm settles, that is until for a second no user read anything and the
server was idle (``+``: still busy at ``--settle-timeout``); the server's peak RSS (VmHWM); the
wall time until the last joiner's ``joined``; its member count and when that was complete; the
live user's round trip (a signed line every ``--live-interval`` to its own room, until ``sent``)
over the scenario; users that did not get in, and joined connections that dropped; the frames all
users read; the CPU of the users' processes, and of everything else on the machine meanwhile (a
busy machine makes every figure worse). ``--json`` writes benchmarks/results/storm-DATE.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import multiprocessing.sharedctypes
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlschat.server.config import ServerSettings

from .join_storm_clients import (
    ATTEMPT_TIMEOUT,
    BYTES,
    FRAMES,
    JOINED,
    LOST,
    STATS,
    StormSpec,
    storm_worker_main,
)
from .join_storm_live import LIVE_ROOM, LiveSpec, live_main, summarize_rtt
from .join_storm_report import Row, baseline_line, format_table, machine
from .servers import CLOCK_TICKS, cpu_seconds, make_tls_files, raise_file_limit, start_server

RESULTS = Path(__file__).resolve().parent / "results"
BASELINE = 2.0  # seconds of the live user's round trips before the storm, for comparison
QUIET = 1.0  # settled: this long with nothing read by any user and the server idle
IDLE_SHARE = 0.05  # of one core: the live user's lines and the server's timers stay below it
TICK = 1 / CLOCK_TICKS  # the resolution of /proc's CPU times
SAMPLE = 0.25
PROGRESS_EVERY = 5.0
MIB = 1024 * 1024


def processes_busy_seconds() -> float:
    """CPU seconds all cores spent running processes since boot: user, nice and system time in
    /proc/stat (not interrupts: loopback traffic's softirq work is charged to nobody)."""
    with open("/proc/stat", encoding="ascii") as handle:
        values = [int(v) for v in handle.readline().split()[1:4]]
    return sum(values) / CLOCK_TICKS


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set size so far (VmHWM in /proc/PID/status)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class Child:
    """A forked process of this benchmark and its end of the pipe: one answer per request."""

    name: str
    process: multiprocessing.process.BaseProcess
    pipe: multiprocessing.connection.Connection

    def receive(
        self, expected: str, timeout: float, activity: Activity | None = None
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not self.pipe.poll(SAMPLE):
            if not self.process.is_alive():
                raise RuntimeError(f"{self.name} exited (code {self.process.exitcode})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} gave no {expected!r} within {timeout:.0f} s")
            if activity is not None:
                activity.sample()
        kind, payload = self.pipe.recv()
        if kind != expected:
            raise RuntimeError(f"{self.name} answered {kind!r} ({payload}), not {expected!r}")
        return dict(payload)

    def stop(self) -> None:
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def spawn(name: str, target: Callable[..., None], *args: Any) -> Child:
    context = multiprocessing.get_context("fork")
    mine, theirs = context.Pipe()
    process = context.Process(target=target, args=(*args, theirs), daemon=True)
    process.start()
    return Child(name, process, mine)


class Activity:
    """When a scenario's traffic was last seen: some user read a frame, or the server was busy
    (more than IDLE_SHARE of a core, past one clock tick). ``sample`` is called every SAMPLE s
    from every wait; it also prints progress now and then."""

    def __init__(self, bench: StormBench, scenario: str) -> None:
        self.bench = bench
        self.scenario = scenario
        self.started = self.sampled = self.active_at = self.printed = time.monotonic()
        self.cpu0 = self.cpu = self.cpu_at_active = bench.server.cpu_seconds()
        self.frames = self.frames0 = bench.total(FRAMES)
        # The machine's other load (other programs on it) over the same time, to tell a quiet
        # run from a disturbed one.
        self.others0 = self.others_at_active = self._others()

    def _others(self) -> float:
        return processes_busy_seconds() - self.bench.server.cpu_seconds() - self.bench.our_cpu()

    def sample(self) -> None:
        bench, now = self.bench, time.monotonic()
        frames, cpu = bench.total(FRAMES), bench.server.cpu_seconds()
        if frames != self.frames or cpu - self.cpu > IDLE_SHARE * (now - self.sampled) + TICK:
            self.active_at, self.cpu_at_active = now, cpu
            self.others_at_active = self._others()
        self.frames, self.cpu, self.sampled = frames, cpu, now
        if now - self.printed >= PROGRESS_EVERY:
            self.printed = now
            print(
                f"  [{time.strftime('%H:%M:%S')}] N={bench.n} {self.scenario} "
                f"{now - self.started:.0f} s: {bench.total(JOINED)} in #general, "
                f"{frames - self.frames0:,} frames read, server CPU {cpu - self.cpu0:.1f} s",
                flush=True,
            )

    def settle(self, deadline: float) -> bool:
        """Wait until nothing happened for QUIET s (True), or ``deadline``. Only what is seen
        from now on counts as quiet: the workers publish their counts a moment late."""
        watching = time.monotonic()
        while True:
            time.sleep(SAMPLE)
            self.sample()
            now = time.monotonic()
            if now - max(self.active_at, watching) >= QUIET:
                return True
            if now >= deadline:
                return False


class StormBench:
    """One N: its server, live user and workers, and the scenarios run against them."""

    def __init__(self, args: argparse.Namespace, n: int, directory: Path) -> None:
        self.args = args
        self.n = n
        self.directory = directory
        self.tls = make_tls_files(directory / "tls")
        # Admission as a server runs it by default: a restart's reconnects are paced, not lifted.
        self.server_args: tuple[str, ...] = (
            "--handshake-rate",
            str(ServerSettings.handshake_rate),
            "--handshake-rate-burst",
            str(ServerSettings.handshake_rate_burst),
            "--max-unauthenticated",
            str(ServerSettings.max_unauthenticated),
        )
        if args.presence_rate is not None:
            self.server_args += ("--presence-rate", str(args.presence_rate))
        if args.presence_burst is not None:
            self.server_args += ("--presence-burst", str(args.presence_burst))
        self.server = start_server("tlschat", directory, self.tls, extra=self.server_args)
        self.shared = multiprocessing.sharedctypes.RawArray("q", args.workers * STATS + 1)
        self.live = spawn(
            "live user",
            live_main,
            LiveSpec(
                args.workers * STATS,
                self.server.port,
                self.server.fingerprint,
                args.live_room,
                args.live_interval,
            ),
            self.shared,
        )
        self.workers: list[Child] = []
        self.last_worker: Child | None = None
        self.baseline: tuple[float, float] = (0.0, 0.0)
        self.baseline_cpu_per_s = 0.0

    def start(self) -> None:
        self.live.receive("ready", ATTEMPT_TIMEOUT + 10)
        count, share = self.args.workers, max(1, self.args.concurrency // self.args.workers)
        for slot in range(count):
            indices = list(range(slot, self.n, count))
            last = self.n - 1 if self.n - 1 in indices else None
            spec = StormSpec(
                slot, indices, last, self.server.port, self.server.fingerprint, share, 1000 + slot
            )
            worker = spawn(f"worker {slot}", storm_worker_main, spec, self.shared)
            self.workers.append(worker)
            if last is not None:
                self.last_worker = worker
        for worker in self.workers:
            worker.receive("ready", 120)
        self.live.pipe.send(("go",))
        started, cpu = time.monotonic(), self.server.cpu_seconds()
        time.sleep(BASELINE)
        self.baseline = (started, time.monotonic())
        self.baseline_cpu_per_s = (self.server.cpu_seconds() - cpu) / BASELINE

    # ----- what the workers publish -----

    def total(self, stat: int) -> int:
        return sum(self.shared[slot * STATS + stat] for slot in range(self.args.workers))

    def live_in_room(self) -> int:
        return int(self.shared[self.args.workers * STATS])

    def clients_cpu(self) -> float:
        pids = [w.process.pid for w in self.workers if w.process.pid is not None]
        return sum(cpu_seconds(pid) for pid in pids)

    def our_cpu(self) -> float:
        """This benchmark's own processes: the workers, the live user, the coordinator."""
        live = self.live.process.pid
        own = os.times()
        return self.clients_cpu() + (cpu_seconds(live) if live else 0.0) + own.user + own.system

    # ----- the scenarios -----

    def storm(self) -> Row:
        activity = Activity(self, "storm")
        before = self._counts()
        for worker in self.workers:
            worker.pipe.send(("storm", self.args.storm_timeout))
        timeout = self.args.storm_timeout + 30
        stats = [w.receive("joined", timeout, activity) for w in self.workers]
        return self._finish(activity, before, stats, {})

    def restart(self) -> Row:
        for worker in self.workers:
            worker.pipe.send(("arm", self.args.storm_timeout + 60))
            worker.receive("armed", 30)
        stopping = time.monotonic()
        self.server.stop()
        self.server.log_path.rename(self.directory / "tlschat-before-restart.log")
        fingerprint, port = self.server.fingerprint, self.server.port
        extra = (*self.server_args, "--port", str(port))
        self.server = start_server("tlschat", self.directory, self.tls, extra=extra)
        if self.server.fingerprint != fingerprint:
            raise RuntimeError("the restarted server has another key")
        activity = Activity(self, "restart")
        before = self._counts()
        for worker in self.workers:
            worker.pipe.send(("rejoined",))
        timeout = self.args.storm_timeout + 90
        stats = [w.receive("joined", timeout, activity) for w in self.workers]
        extra_figures = {
            "downtime_s": activity.started - stopping,
            "attempts": sum(s["attempts"] for s in stats),
            "max_attempts": max(s["max_attempts"] for s in stats),
        }
        return self._finish(activity, before, stats, extra_figures)

    def _counts(self) -> tuple[int, int, int, float]:
        return self.total(FRAMES), self.total(BYTES), self.total(LOST), self.clients_cpu()

    def _finish(
        self,
        activity: Activity,
        before: tuple[int, int, int, float],
        stats: list[dict[str, Any]],
        extra: dict[str, Any],
    ) -> Row:
        t0, cpu0 = activity.started, activity.cpu0
        cpu_until_joined = self.server.cpu_seconds() - cpu0
        joined = sum(s["joined"] for s in stats)
        expected = joined + 1 + self.live_in_room()
        worker = self.last_worker
        assert worker is not None
        worker.pipe.send(("last", expected, self.args.timeout))
        last = worker.receive("last", self.args.timeout + ATTEMPT_TIMEOUT + 30, activity)
        if last["joined_at"] is not None:
            extra["last_join_s"] = last["joined_at"] - last["started_at"]
        settled = activity.settle(t0 + self.args.settle_timeout)
        frames, size, lost, clients_cpu = self._counts()
        errors = [s["first_error"] for s in stats if s["first_error"]] + [last["error"]]
        return Row(
            n=self.n,
            scenario=activity.scenario,
            cpu_s=activity.cpu_at_active - cpu0,
            cpu_until_joined_s=cpu_until_joined,
            settled=settled,
            settle_s=activity.active_at - t0,
            peak_rss_mib=peak_rss_bytes(self.server.pid) / MIB,
            wall_s=None if last["joined_at"] is None else last["joined_at"] - t0,
            members=last["members"],
            expected=expected,
            listed=last["listed"],
            complete_s=None if last["complete_at"] is None else last["complete_at"] - t0,
            failed=sum(s["failed"] for s in stats) + (1 if last["error"] else 0),
            lost=lost - before[2],
            frames=frames - before[0],
            bytes=size - before[1],
            clients_cpu_s=clients_cpu - before[3],
            other_cpu_s=activity.others_at_active - activity.others0,
            first_error=next((e for e in errors if e), ""),
            window=(t0, activity.active_at),
            extra=extra,
        )

    def close(self, rows: list[Row]) -> dict[str, Any]:
        """Stop everything; the rows get the live user's round trips; its baseline."""
        for worker in self.workers:
            worker.pipe.send(("close",))
        for worker in self.workers:
            worker.receive("closed", 60)
            worker.stop()
        self.live.pipe.send(("stop",))
        samples = self.live.receive("samples", 60)
        self.live.stop()
        self.server.stop()
        for row in rows:
            row.rtt = summarize_rtt(samples, *row.window)
        return {
            "rtt": summarize_rtt(samples, *self.baseline),
            "server_cpu_per_s": self.baseline_cpu_per_s,
            "reconnects": samples["reconnects"],
            "refused": samples["refused"],
            "errors": samples["errors"],
        }

    def abort(self) -> None:
        for child in [*self.workers, self.live]:
            if child.process.is_alive():
                child.process.kill()
            child.process.join(timeout=5)
        self.server.stop()


def run_n(args: argparse.Namespace, n: int) -> tuple[list[Row], dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix=f"join-storm-{n}-") as scratch:
        bench = StormBench(args, n, Path(scratch))
        try:
            bench.start()
            rows = [bench.storm()]
            print(format_table(rows[-1:], header=False), flush=True)
            if args.restart:
                rows.append(bench.restart())
                print(format_table(rows[-1:], header=False), flush=True)
            baseline = bench.close(rows)
        except BaseException:
            print(bench.server.log_tail(), file=sys.stderr)
            bench.abort()
            raise
    return rows, baseline


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.join_storm", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--n", default="1000,5000", help="room sizes (1000,5000)")
    parser.add_argument("--restart", action="store_true", help="also the storm after a restart")
    parser.add_argument(
        "--json",
        nargs="?",
        const="",
        metavar="OUT",
        help="write the results (OUT, default benchmarks/results/storm-DATE.json)",
    )
    parser.add_argument("--workers", type=int, default=2, help="client processes (2)")
    parser.add_argument("--concurrency", type=int, default=64, help="connects in flight (64)")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="s the last joiner waits for all members"
    )
    parser.add_argument(
        "--storm-timeout", type=float, default=600.0, help="s for every user to get in (600)"
    )
    parser.add_argument(
        "--settle-timeout", type=float, default=300.0, help="s from the start to settle (300)"
    )
    parser.add_argument("--live-room", default=LIVE_ROOM, help="where the live user talks")
    parser.add_argument("--live-interval", type=float, default=0.1, help="s between its lines")
    parser.add_argument("--presence-rate", type=float, help="server flag (default: its own)")
    parser.add_argument("--presence-burst", type=int, help="server flag (default: its own)")
    args = parser.parse_args(argv)
    args.sizes = [int(part) for part in args.n.split(",") if part.strip()]
    if not args.sizes or min(args.sizes) < 2 or max(args.sizes) > 60_000:
        parser.error("--n: sizes from 2 to 60,000")
    if args.workers < 1 or args.concurrency < 1:
        parser.error("--workers and --concurrency must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    limit = raise_file_limit()
    if limit < 2 * max(args.sizes) + 1000:
        print(f"warning: open-file limit {limit} may be too low for N={max(args.sizes)}")
    out: Path | None = None
    if args.json is not None:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        out = Path(args.json) if args.json else RESULTS / f"storm-{stamp}.json"
    settings = {k: v for k, v in vars(args).items() if k != "sizes"}
    data: dict[str, Any] = {"benchmark": "join-storm", "machine": machine(), "settings": settings}
    data["runs"] = []
    rows: list[Row] = []
    print(format_table([]), flush=True)
    for n in args.sizes:
        print(f"[{time.strftime('%H:%M:%S')}] N={n}", flush=True)
        measured, baseline = run_n(args, n)
        rows += measured
        data["runs"].append(
            {"n": n, "baseline": baseline, "rows": [dataclasses.asdict(r) for r in measured]}
        )
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(data, indent=1, default=str))
    print()
    print(format_table(rows))
    for run in data["runs"]:
        print(baseline_line(run["n"], run["baseline"]["rtt"]))
    if out is not None:
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
