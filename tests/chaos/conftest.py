"""The ``chaos`` marker: ``pytest -m "not chaos"`` leaves out the scenarios (about 40 s)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "chaos: issue 19's fault-injection scenarios at their bounded size"
    )
