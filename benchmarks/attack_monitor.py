"""The attacked server's figures during a run of ``python -m benchmarks.attack``: RSS, CPU, log,
data directory and database, sampled from /proc and the file system."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from .runner import machine_busy_seconds
from .servers import Server, cpu_seconds, rss_bytes

DATABASE = "chat.db"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _directory_size(directory: Path) -> int:
    return sum(_size(path) for path in directory.rglob("*"))


@dataclass
class Sample:
    rss: int
    cpu: float
    log_bytes: int
    disk_bytes: int  # everything in the data directory
    database_bytes: int  # chat.db and its WAL
    database_file_bytes: int  # chat.db alone

    @classmethod
    def take(cls, server: Server, data_dir: Path) -> Sample:
        database = data_dir / DATABASE
        return cls(
            rss=rss_bytes(server.pid),
            cpu=cpu_seconds(server.pid),
            log_bytes=_size(server.log_path),
            disk_bytes=_directory_size(data_dir),
            database_bytes=_size(database) + _size(database.with_name(DATABASE + "-wal")),
            database_file_bytes=_size(database),
        )


@dataclass
class ServerFigures:
    seconds: float
    rss_start_mib: float
    rss_peak_mib: float
    rss_end_mib: float
    cpu_s: float
    clients_cpu_s: float  # the attacker's, the legitimate user's and this coordinator's
    other_cpu_s: float  # every other process on the machine: how busy it was besides
    log_bytes: int
    log_lines: int
    disk_growth_bytes: int
    database_peak_bytes: int
    database_file_peak_bytes: int
    database_bytes_each_second: list[int]
    alive: bool


class Monitor:
    """The server's figures from the start of an attack's run to now."""

    def __init__(self, server: Server, data_dir: Path, client_pids: list[int]) -> None:
        self.server = server
        self.data_dir = data_dir
        self.client_pids = client_pids
        self.started = time.monotonic()
        self.first = Sample.take(server, data_dir)
        self.first_client_cpu = self._client_cpu()
        self.first_machine_cpu = machine_busy_seconds()
        self.peak_rss = self.first.rss
        self.peak_database = self.first.database_bytes
        self.peak_database_file = self.first.database_file_bytes
        self.each_second: list[int] = []

    def sample(self) -> None:
        if not self.server.alive():
            return
        now = Sample.take(self.server, self.data_dir)
        self.peak_rss = max(self.peak_rss, now.rss)
        self.peak_database = max(self.peak_database, now.database_bytes)
        self.peak_database_file = max(self.peak_database_file, now.database_file_bytes)
        if time.monotonic() - self.started >= len(self.each_second):
            self.each_second.append(now.database_bytes)

    def _client_cpu(self) -> float:
        total = 0.0
        for pid in self.client_pids:
            with contextlib.suppress(OSError):
                total += cpu_seconds(pid)
        return total

    def figures(self) -> ServerFigures:
        self.sample()
        alive = self.server.alive()
        last = Sample.take(self.server, self.data_dir) if alive else self.first
        server_cpu = last.cpu - self.first.cpu
        client_cpu = self._client_cpu() - self.first_client_cpu
        machine_cpu = machine_busy_seconds() - self.first_machine_cpu
        with self.server.log_path.open("rb") as log:
            log.seek(self.first.log_bytes)
            grown = log.read()
        return ServerFigures(
            seconds=time.monotonic() - self.started,
            rss_start_mib=self.first.rss / 2**20,
            rss_peak_mib=self.peak_rss / 2**20,
            rss_end_mib=last.rss / 2**20,
            cpu_s=server_cpu,
            clients_cpu_s=client_cpu,
            other_cpu_s=max(0.0, machine_cpu - server_cpu - client_cpu),
            log_bytes=len(grown),
            log_lines=grown.count(b"\n"),
            disk_growth_bytes=last.disk_bytes - self.first.disk_bytes,
            database_peak_bytes=self.peak_database,
            database_file_peak_bytes=self.peak_database_file,
            database_bytes_each_second=self.each_second,
            alive=alive,
        )
