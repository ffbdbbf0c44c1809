"""Where the browser tests find their browser: Debian's Chromium (`apt-get install chromium`),
driven by PyPI's playwright package. Playwright's own browser download is not used (nor
reachable from CI), so nothing here imports playwright: this only says what is missing. Each test
module calls :func:`require` before it imports playwright, so that without either the whole
directory is skipped with the reason, however pytest is started (a skip in conftest.py would be
an error when the directory is named on the command line)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")


def missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is missing: pip install -e '.[dev]' (make test installs it)"
    if not CHROMIUM.is_file():
        return f"Chromium is missing at {CHROMIUM}: apt-get install chromium (.ci/run does)"
    return None


def require() -> None:
    """Skip the calling test module, saying why, when the browser tests cannot run here."""
    reason = missing()
    if reason is not None:
        pytest.skip(reason, allow_module_level=True)
