"""Fixtures for the client's process tests: the e2e harness (real server and client processes)."""

from __future__ import annotations

from ..e2e.conftest import harness, server

__all__ = ["harness", "server"]
