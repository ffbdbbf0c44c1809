"""The processes of one chaos scenario: a Redis, optionally the fault proxy in front of it for
server 0, tlschat servers sharing both, and ``--json`` clients that know every server.

Built on the cluster tests' :class:`RedisServer` and the e2e :class:`Harness`, which kill whatever
is left when :meth:`ChaosCluster.close` runs.
"""

from __future__ import annotations

import contextlib
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..cluster.harness import JOINED, RedisServer
from ..e2e.harness import HOST, Client, Harness, Server
from .proxy import FaultProxy

# Senders type 2 lines/s: a flood limit of 4/s keeps refusals down to the faults'. The history
# replayed on a (re)join covers the longest gap of these scenarios (a 10 s cut at 12 lines/s), so
# a "lost" line is the cluster's, not the replay window's.
SERVER_FLAGS = ("--rate", "4", "--burst", "20", "--history", "200")
FAULTED = 0  # the server that the proxy cuts off, that is killed or restarted


@dataclass
class ChaosCluster:
    harness: Harness
    redis: RedisServer
    # In front of Redis for server FAULTED only, in the scenarios that cut it off.
    proxy: FaultProxy | None
    servers: list[Server]
    broker_urls: list[str]

    @classmethod
    def start(cls, root: Path, count: int, proxied: bool, tree: Path | None = None) -> ChaosCluster:
        """With ``tree``, the servers and clients run the tlschat of that checkout (say, the
        commit before a fix, from ``git archive``) instead of this one."""
        harness = Harness(root)
        if tree is not None:
            harness.env["PYTHONPATH"] = str(tree.resolve())
        redis = RedisServer(root / "redis")
        cluster = cls(harness, redis, None, [], [])
        try:
            redis.start()
            urls = [redis.url] * count
            if proxied:
                cluster.proxy = FaultProxy(redis.port)
                urls[FAULTED] = f"redis://{HOST}:{cluster.proxy.port}/0"
            cluster.broker_urls = urls
            # Together: servers sharing a data dir agree on the key the first one writes.
            with ThreadPoolExecutor(count) as pool:
                cluster.servers = list(pool.map(cluster._start_server, range(count)))
        except BaseException:
            cluster.close()
            raise
        return cluster

    def _start_server(self, index: int, port: int = 0, name: str = "") -> Server:
        server = self.harness.server(
            data_dir=self.harness.root / "cluster-data",
            port=port,
            name=name or f"server{index}",
            extra=("--broker", self.broker_urls[index], *SERVER_FLAGS),
        )
        server.wait_for_line(JOINED)
        return server

    def restart_server(self, index: int) -> None:
        """Start server ``index`` again on its port (after it stopped), as a rolling restart."""
        old = self.servers[index]
        self.servers[index] = self._start_server(index, old.port, f"{old.name}-restarted")

    def hosts(self, first: int) -> str:
        """A ``--host`` naming every server, from ``first`` on: where a client fails over to."""
        count = len(self.servers)
        order = [(first + offset) % count for offset in range(count)]
        return ",".join(f"{HOST}:{self.servers[index].port}" for index in order)

    def client(self, name: str, first: int) -> Client:
        """A ``--plain --json`` client named ``name`` that connects to server ``first`` first."""
        argv = self.harness.command(
            *("client", "--host", self.hosts(first), "--nick", name),
            *("--plain", "--json", "--quiet", "--key-type", "ed25519"),
            *("--home", str(self.harness.root / "homes" / name)),
        )
        client = Client(name, argv, self.harness.env, self.harness.root)
        self.harness.processes.append(client)
        return client

    def save_logs(self, directory: Path) -> None:
        """Every process's output, one file per stream, and Redis's log."""
        directory.mkdir(parents=True, exist_ok=True)
        for process in self.harness.processes:
            for stream in ("stdout", "stderr"):
                (directory / f"{process.name}.{stream}.log").write_text(
                    process.output(stream) + "\n", encoding="utf-8"
                )
        with contextlib.suppress(OSError):
            shutil.copyfile(self.redis.log_path, directory / "redis.log")

    def close(self) -> None:
        """Clients and servers first, so that the end of Redis is no outage for anyone."""
        self.harness.close()
        if self.proxy is not None:
            self.proxy.close()
        self.redis.close()
