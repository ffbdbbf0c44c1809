"""The cluster tests' processes: a private ``redis-server`` and tlschat servers sharing it.

:class:`RedisServer` is loopback only, on a free port, its files in the test's temporary
directory, and every write is on disk before it is acknowledged (AOF, fsync always), so a stop or
even a SIGKILL followed by :meth:`RedisServer.restart` keeps the data. The tlschat processes are
the e2e harness's (tests/e2e/harness.py), which waits, times out and cleans up for us.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..e2e.harness import EXIT_WAIT, HOST, WAIT, Client, Harness, Server

BINARY = "redis-server"
POLL = 0.05  # between PINGs while Redis starts: it usually answers within a few of them
JOINED = re.compile(r"\[CLUSTER\] Joined the cluster at (\S+) as node (\S+)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server process; :meth:`restart` brings it back on the same port and dir."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which(BINARY)
        if binary is None:
            # Not a skip: the cluster tests are part of the suite, and CI installs it (.ci/run).
            pytest.fail(
                f"{BINARY} is not installed: the cluster tests need it "
                "(Debian/Ubuntu: apt-get install -y redis-server)",
                pytrace=False,
            )
        self.binary = binary
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log_path = directory / "redis.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def argv(self) -> list[str]:
        return [
            self.binary,
            *("--port", str(self.port), "--bind", HOST),
            # Bound to loopback only, so protected mode would add nothing but refusals.
            *("--protected-mode", "no"),
            *("--save", ""),  # no RDB snapshots: the AOF alone is the durable copy
            *("--appendonly", "yes", "--appendfsync", "always"),
            *("--dir", str(self.directory)),
            *("--daemonize", "no"),
        ]

    def start(self) -> None:
        """Start it and return once it answers PING; fail with its log if it does not."""
        assert not self.running, "redis-server is already running"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        deadline = time.monotonic() + WAIT
        while not self.ping():
            if not self.running or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"redis-server did not answer PING\n{self.describe()}")
            time.sleep(POLL)

    def client(self) -> redis.Redis:
        """A synchronous client; close it after use."""
        return redis.Redis(
            host=HOST, port=self.port, db=0, socket_timeout=WAIT, socket_connect_timeout=WAIT
        )

    def ping(self) -> bool:
        """Whether it answers PING now (False while it is down or still loading the AOF)."""
        try:
            # One attempt: the client's own retries would turn "down" into seconds of waiting.
            with redis.Redis(
                host=HOST,
                port=self.port,
                socket_timeout=1.0,
                socket_connect_timeout=1.0,
                retry=Retry(NoBackoff(), 0),
            ) as probe:
                return bool(probe.ping())
        except redis.exceptions.ConnectionError:  # also BusyLoadingError, a subclass
            return False

    def stop(self) -> int:
        """SIGTERM, as an operator would stop it (it flushes the AOF); the exit code."""
        return self._end(signal.SIGTERM)

    def kill(self) -> int:
        """SIGKILL: a crash. Nothing acknowledged is lost (appendfsync always)."""
        return self._end(signal.SIGKILL)

    def restart(self) -> None:
        """Stop it if it still runs, then start it again on the same port with the same data."""
        if self.running:
            self.stop()
        self.start()

    def _end(self, signum: int) -> int:
        process = self.process
        assert process is not None, "redis-server was never started"
        if process.poll() is None:
            process.send_signal(signum)
        try:
            return process.wait(EXIT_WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(EXIT_WAIT)
            raise AssertionError(
                f"redis-server did not exit on signal {signum}\n{self.describe()}"
            ) from None

    def describe(self) -> str:
        log = ""
        with contextlib.suppress(OSError):
            log = self.log_path.read_text(errors="replace")
        code = None if self.process is None else self.process.poll()
        return f"--- redis-server {' '.join(self.argv()[1:])} (exit code {code})\n{log}"

    def close(self) -> None:
        """Teardown: gone whatever state it is in (killed: its data is the test's to discard)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(EXIT_WAIT)


# ----- tlschat servers sharing one Redis -----


@dataclass
class Cluster:
    """N tlschat servers with one data dir and one Redis; ``servers[i].port`` is server i's."""

    redis: RedisServer
    servers: list[Server]
    data_dir: Path
    node_ids: list[str]

    @property
    def ports(self) -> list[int]:
        return [server.port for server in self.servers]

    def hosts(self, *indices: int) -> str:
        """A ``--host`` value naming these servers, in this order: "127.0.0.1:P1,127.0.0.1:P2"."""
        return ",".join(f"{HOST}:{self.servers[index].port}" for index in indices)


# The ``make_cluster`` fixture: ``make_cluster(count=3, extra=())``.
StartCluster = Callable[..., Cluster]


def start_cluster(
    harness: Harness, redis_server: RedisServer, count: int, extra: tuple[str, ...] = ()
) -> Cluster:
    """``count`` servers with ``--broker`` and the flags ``extra`` (each server needs them all:
    e.g. ``--operator FP``), sharing ``harness.root / "cluster-data"``; each has joined."""
    data_dir = harness.root / "cluster-data"
    servers: list[Server] = []
    node_ids: list[str] = []
    # One at a time: the first creates the server key in the shared dir, the others load it
    # (harness.server returns once a server is [LISTENING]).
    for index in range(count):
        server = harness.server(
            data_dir=data_dir, name=f"server{index}", extra=("--broker", redis_server.url, *extra)
        )
        joined = JOINED.search(server.wait_for_line(JOINED))
        assert joined is not None
        assert f"{HOST}:{redis_server.port}" in joined.group(1), server.describe()
        servers.append(server)
        node_ids.append(joined.group(2))
    return Cluster(redis_server, servers, data_dir, node_ids)


def cluster_client(harness: Harness, nick: str, hosts: str, home: Path | None = None) -> Client:
    """A ``--plain`` client given several servers in one ``--host`` (see ``Cluster.hosts``): it
    connects to the first that answers and, when that connection is lost, fails over to the next.
    """
    home = home if home is not None else harness.home(nick)
    argv = harness.command(
        "client", "--host", hosts, "--plain", "--nick", nick, "--home", str(home)
    )
    client = Client(nick, argv, harness.env, harness.root)
    harness.processes.append(client)  # the harness kills it at the end, like its own clients
    return client
