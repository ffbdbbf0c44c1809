"""Fixtures for the full-screen client's tests: the e2e harness (real server processes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..e2e.harness import Harness, Server


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    try:
        yield harness
    finally:
        harness.close()
    assert not harness.tracebacks(), "\n".join(p.describe() for p in harness.processes)


@pytest.fixture
def server(harness: Harness) -> Server:
    return harness.server()
