"""Fixtures for the end-to-end tests: a harness that always cleans up its processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import Harness, Server


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    try:
        yield harness
    finally:
        harness.close()
    # Whatever the test checked, no process may have died with a traceback.
    assert not harness.tracebacks(), "\n".join(p.describe() for p in harness.processes)


@pytest.fixture
def server(harness: Harness) -> Server:
    return harness.server()
