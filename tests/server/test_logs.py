"""The server's log levels and its connections summary (server/logs.py), without a process:
tests/e2e/test_server_log_levels_e2e.py counts the lines of a real server at each level."""

from __future__ import annotations

import logging

import pytest

from tlschat.server.logs import CONNECTION, HANDSHAKE, ConnectionSummary, level


def test_each_flag_picks_its_level() -> None:
    assert level(0, quiet=True) == logging.ERROR
    assert [level(count, quiet=False) for count in range(5)] == [
        logging.INFO,
        CONNECTION,
        HANDSHAKE,
        logging.DEBUG,
        logging.DEBUG,
    ]
    assert logging.DEBUG < HANDSHAKE < CONNECTION < logging.INFO


def test_the_summary_comes_once_a_minute_and_only_when_someone_came_or_went(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tlschat.server")
    summary = ConnectionSummary(now=100.0)
    summary.flush(now=170.0, online=0)  # a quiet minute: no line
    summary.connected += 3
    summary.flush(now=200.0, online=3)  # not a minute since the last look
    assert caplog.messages == []
    summary.left += 1
    summary.flush(now=230.0, online=2)
    assert caplog.messages == ["[CONNECTIONS] 3 connected, 1 left in the last 60 s; 2 online"]
    summary.flush(now=400.0, online=2)  # counted afresh: nothing since
    summary.left += 2
    summary.flush(now=410.0, online=0, every=0)  # at the stop, whatever the time
    assert caplog.messages[1:] == ["[CONNECTIONS] 0 connected, 2 left in the last 10 s; 0 online"]
