"""The faults a scenario injects at a fixed time and heals ``duration`` seconds later."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import Protocol

from ..e2e.harness import EXIT_WAIT
from .cluster import FAULTED, ChaosCluster
from .proxy import ProxyMode


class Fault(Protocol):
    @property
    def duration(self) -> float:
        """Seconds between :meth:`inject` and :meth:`heal`."""

    def describe(self) -> str: ...

    def inject(self, cluster: ChaosCluster) -> None: ...

    def heal(self, cluster: ChaosCluster) -> None: ...


@dataclass(frozen=True)
class CutOff:
    """Server FAULTED loses Redis: the proxy between them pauses, resets or refuses."""

    mode: ProxyMode
    duration: float

    def describe(self) -> str:
        return f"server {FAULTED} cut off from Redis ({self.mode}) for {self.duration:g} s"

    def inject(self, cluster: ChaosCluster) -> None:
        assert cluster.proxy is not None, "a cut-off needs the scenario's proxy"
        cluster.proxy.set_mode(self.mode)

    def heal(self, cluster: ChaosCluster) -> None:
        assert cluster.proxy is not None
        cluster.proxy.set_mode(ProxyMode.FORWARD)


@dataclass(frozen=True)
class RedisStall:
    """Redis stops answering (SIGSTOP) with every connection open, then resumes (SIGCONT)."""

    duration: float

    def describe(self) -> str:
        return f"Redis stopped (SIGSTOP) for {self.duration:g} s"

    def inject(self, cluster: ChaosCluster) -> None:
        os.kill(self._pid(cluster), signal.SIGSTOP)

    def heal(self, cluster: ChaosCluster) -> None:
        os.kill(self._pid(cluster), signal.SIGCONT)

    @staticmethod
    def _pid(cluster: ChaosCluster) -> int:
        assert cluster.redis.process is not None
        return cluster.redis.process.pid


@dataclass(frozen=True)
class RedisCrash:
    """Redis killed (kill -9), started again on its port and data ``duration`` s later."""

    duration: float

    def describe(self) -> str:
        return f"Redis killed (kill -9), restarted {self.duration:g} s later"

    def inject(self, cluster: ChaosCluster) -> None:
        cluster.redis.kill()

    def heal(self, cluster: ChaosCluster) -> None:
        cluster.redis.start()


@dataclass(frozen=True)
class ServerCrash:
    """Server FAULTED killed (kill -9) for good: its clients fail over to the others."""

    duration: float = 0.0

    def describe(self) -> str:
        return f"server {FAULTED} killed (kill -9); its clients fail over"

    def inject(self, cluster: ChaosCluster) -> None:
        server = cluster.servers[FAULTED]
        server.signal(signal.SIGKILL)
        server.wait_exit(EXIT_WAIT)

    def heal(self, cluster: ChaosCluster) -> None:
        """Nothing: the others carry on without it."""


@dataclass(frozen=True)
class ServerRestart:
    """Server FAULTED stopped cleanly (SIGTERM), started again on its port ``duration`` s after
    it exited: one step of a rolling restart."""

    duration: float

    def describe(self) -> str:
        return f"server {FAULTED} stopped (SIGTERM), restarted {self.duration:g} s later"

    def inject(self, cluster: ChaosCluster) -> None:
        server = cluster.servers[FAULTED]
        server.signal(signal.SIGTERM)
        code = server.wait_exit(EXIT_WAIT)
        assert code == 0, f"a clean stop exits 0, not {code}\n{server.describe()}"

    def heal(self, cluster: ChaosCluster) -> None:
        cluster.restart_server(FAULTED)
