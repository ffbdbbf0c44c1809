"""Fixtures for the cluster tests: a private Redis, and tlschat servers sharing it (started and
cleaned up by the e2e ``harness``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..e2e.conftest import harness
from ..e2e.harness import Harness
from .harness import Cluster, RedisServer, StartCluster, start_cluster

__all__ = ["harness"]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def make_cluster(redis_server: RedisServer, harness: Harness) -> Iterator[StartCluster]:
    """``make_cluster(count, extra=(...))``: that many servers, each with the flags ``extra``."""
    started: list[Cluster] = []

    def make(count: int = 3, extra: tuple[str, ...] = ()) -> Cluster:
        cluster = start_cluster(harness, redis_server, count, extra)
        started.append(cluster)
        return cluster

    yield make
    # The servers end before their Redis does, whichever of redis_server and harness a test
    # happened to set up first: teardown is not a Redis outage.
    for cluster in started:
        for server in cluster.servers:
            server.kill()


@pytest.fixture
def cluster(make_cluster: StartCluster) -> Cluster:
    """Three servers sharing one Redis and one data dir, no other flags."""
    return make_cluster(3)
