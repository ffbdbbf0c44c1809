"""``python -m benchmarks --cluster``: the room fan-out against 1, 2 and 3 tlschat servers that
share one Redis (``--broker``), and, for reference, one server without it (the embedded default).

Clients are spread over the servers round robin, so a message mostly reaches its room through
Redis and another server. Each row reports delivered messages/s, p50/p99 latency, and the CPU of
every tlschat server plus redis-server (from /proc) per delivered message: what the cluster costs.

--quick  one run of each at N = 100
--full   medians of --repeat runs (3) at N = 100 and 1,000 (the default)
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .runner import run_room
from .servers import (
    HOST,
    START_TIMEOUT,
    Server,
    TLSFiles,
    cpu_seconds,
    free_port,
    rss_bytes,
    start_server,
    stop_process,
)

if TYPE_CHECKING:
    from .__main__ import Session

REDIS = "redis-server"
REDIS_PROCESS = "redis-server"
MODES = ("fixed", "saturation")


@dataclass(frozen=True)
class Layout:
    """One row group of the table: how many tlschat servers, and whether they share Redis."""

    servers: int
    broker: bool

    @property
    def name(self) -> str:
        return f"cluster-{self.servers}" if self.broker else "embedded"

    @property
    def description(self) -> str:
        if not self.broker:
            return "1 server, embedded broker (no Redis)"
        return f"{self.servers} server{'s' if self.servers > 1 else ''} + Redis"


LAYOUTS = (Layout(1, False), Layout(1, True), Layout(2, True), Layout(3, True))


# ----- Redis -----


@dataclass
class RedisProcess:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def answers(self) -> bool:
        """Whether it answers PING now (raw RESP: the benchmark needs no Redis client)."""
        try:
            with socket.create_connection((HOST, self.port), timeout=1.0) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        stop_process(self.process)


def start_redis(directory: Path) -> RedisProcess:
    """redis-server on a free loopback port, in memory only: the benchmark measures the cost of
    the cluster's traffic, not of the disk."""
    binary = shutil.which(REDIS)
    if binary is None:
        raise RuntimeError(f"{REDIS} is not installed (apt-get install -y redis-server)")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = directory / "redis.log"
    command = [
        binary,
        *("--port", str(port), "--bind", HOST, "--protected-mode", "no"),
        *("--save", "", "--appendonly", "no"),
        *("--dir", str(directory), "--daemonize", "no"),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=directory, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    redis = RedisProcess(process, port, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while not redis.answers():
        if process.poll() is not None or time.monotonic() > deadline:
            redis.stop()
            raise RuntimeError(f"{REDIS} did not start:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.05)
    return redis


# ----- a cluster, measured as one server -----


@dataclass
class Cluster:
    """tlschat servers (and their Redis) that :func:`benchmarks.runner.run_room` drives as one
    target: clients spread over ``ports``, CPU summed over every process."""

    layout: Layout
    servers: list[Server]
    redis: RedisProcess | None
    kind: str = "tlschat"

    @property
    def port(self) -> int:
        return self.servers[0].port

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(server.port for server in self.servers)

    @property
    def fingerprint(self) -> str:
        return self.servers[0].fingerprint

    def _pids(self) -> dict[str, int]:
        pids = {f"tlschat-{index}": server.pid for index, server in enumerate(self.servers)}
        if self.redis is not None:
            pids[REDIS_PROCESS] = self.redis.process.pid
        return pids

    def cpu_by_process(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self._pids().items()}

    def cpu_seconds(self) -> float:
        return sum(self.cpu_by_process().values())

    def rss_bytes(self) -> int:
        return sum(rss_bytes(pid) for pid in self._pids().values())

    def log_tail(self, lines: int = 5) -> str:
        return "\n".join(f"--- {s.log_path}\n{s.log_tail(lines)}" for s in self.servers)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        if self.redis is not None:
            self.redis.stop()


def start_cluster(layout: Layout, directory: Path, tls: TLSFiles) -> Cluster:
    """The servers of ``layout`` with the lifted limits of the ``tlschat`` kind, one shared data
    dir (the first server creates the key, the others load it: hence one at a time)."""
    redis = start_redis(directory / "redis") if layout.broker else None
    servers: list[Server] = []
    try:
        for index in range(layout.servers):
            extra = ("--broker", redis.url) if redis is not None else ()
            servers.append(
                start_server(
                    "tlschat", directory / f"tlschat-{index}", tls, directory / "data", extra
                )
            )
    except (RuntimeError, OSError):
        Cluster(layout, servers, redis).stop()
        raise
    fingerprints = {server.fingerprint for server in servers}
    if len(fingerprints) != 1:
        Cluster(layout, servers, redis).stop()
        raise RuntimeError(f"the servers present different keys: {sorted(fingerprints)}")
    return Cluster(layout, servers, redis)


# ----- the session -----


def rows(data: dict[str, Any]) -> Iterator[tuple[str, int, str, dict[str, Any]]]:
    """(layout name, N, mode, result) for each figure, in the table's order."""
    results = data.get("results", {})
    sizes = sorted({int(key.split("/")[2]) for key in results if key.startswith("fanout/")})
    for mode in MODES:
        for n in sizes:
            for layout in LAYOUTS:
                result = results.get(f"fanout/{mode}/{n}/{layout.name}")
                if isinstance(result, dict):
                    yield layout.description, n, mode, result


def _cell(value: Any, digits: int = 0, width: int = 9) -> str:
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}".rjust(width)
    return "-".rjust(width)


def table(data: dict[str, Any]) -> str:
    lines = [
        "Room fan-out, tlschat cluster: messages delivered per second, latency, and the CPU of "
        "all tlschat servers + redis-server per delivered message (redis us: Redis's share)",
        f"{'layout':<38} {'N':>5} {'mode':<10} {'deliv/s':>9} {'p50 ms':>9} {'p99 ms':>9} "
        f"{'CPU us/msg':>10} {'redis us':>9}  limited by",
    ]
    for description, n, mode, r in rows(data):
        delivered = r.get("delivered") or 0
        by_process = r.get("server_cpu_s_by_process") or {}
        redis_s = by_process.get(REDIS_PROCESS)
        redis_us = redis_s / delivered * 1e6 if redis_s is not None and delivered else None
        lines.append(
            f"{description:<38} {n:>5} {mode:<10} {_cell(r.get('delivered_per_s'))} "
            f"{_cell(r.get('p50_ms'), 1)} {_cell(r.get('p99_ms'), 1)} "
            f"{_cell(r.get('cpu_us_per_msg'), 1, 10)} {_cell(redis_us, 1)}  "
            f"{r.get('limited_by', '')}"
        )
    failures = data.get("failures") or []
    lines += [f"FAILED: {failure}" for failure in failures]
    return "\n".join(lines)


def parse_layouts(text: str) -> list[Layout]:
    by_name = {layout.name: layout for layout in LAYOUTS}
    unknown = [name for name in text.split(",") if name not in by_name]
    if unknown:
        raise SystemExit(f"unknown layouts {unknown}; choose from {', '.join(by_name)}")
    return [by_name[name] for name in text.split(",")]


def run(args: argparse.Namespace, session: Session) -> int:
    """The set for ``session`` (its --quick/--full, --repeat, --seconds); the exit code."""
    full = session.full
    session.sizes = [int(x) for x in (args.n or ("100,1000" if full else "100")).split(",")]
    layouts = parse_layouts(args.layouts or ",".join(layout.name for layout in LAYOUTS))
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    name = f"cluster-{'full' if full else 'quick'}-{stamp}.json"
    session.out = args.out or session.out.with_name(name)
    session.data["mode"] = f"cluster-{'full' if full else 'quick'}"
    session.data["settings"].update(
        fanout_sizes=session.sizes,
        layouts=[layout.name for layout in layouts],
        servers=["tlschat"],
        idle=[],
    )
    session.log(f"results go to {session.out}")
    cafile = str(session.tls.cert_pem)
    failures: list[str] = session.data.setdefault("failures", [])
    started = time.monotonic()
    try:
        for run_number in range(1, session.repeat + 1):
            for n in session.sizes:
                for layout in layouts:
                    label = f"{layout.name}-n{n}-run{run_number}"
                    session.log(f"run {run_number}: {layout.description}, fan-out N={n}")
                    try:
                        cluster = start_cluster(layout, session.directory / label, session.tls)
                    except (RuntimeError, OSError) as error:
                        session.log(f"{label} FAILED to start: {error}")
                        failures.append(f"{label}: {error}")
                        continue
                    try:
                        phases = run_room(
                            cluster, cafile, n, session.seconds, warmup=session.warmup
                        )
                    except (RuntimeError, OSError, TimeoutError, ValueError) as error:
                        session.log(f"{label} FAILED: {type(error).__name__}: {error}")
                        session.log(cluster.log_tail())
                        failures.append(f"{label}: {error}")
                        continue
                    finally:
                        cluster.stop()
                    for mode, result in phases.items():
                        session.record(f"fanout/{mode}/{n}/{layout.name}", result)
    except KeyboardInterrupt:
        session.log("interrupted: the results so far are saved")
    finally:
        session.data["elapsed_s"] = time.monotonic() - started
        session.save()
        with contextlib.suppress(OSError):
            shutil.rmtree(session.directory)
    print()
    print(table(session.data))
    print(f"\nJSON: {session.out}")
    return 1 if failures else 0
