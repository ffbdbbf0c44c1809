"""Fixtures for the full-screen client's tests: the e2e harness (real server processes)."""

from __future__ import annotations

from ..e2e.conftest import harness, server

__all__ = ["harness", "server"]
