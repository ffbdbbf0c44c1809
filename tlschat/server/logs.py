"""How much the server logs: levels that fit an operator's day, and the connections summary.

| flag   | shows                                                                               |
| ------ | ----------------------------------------------------------------------------------- |
| -q     | errors only                                                                         |
| (none) | start and stop, warnings, errors, configuration and cluster changes, the per-block  |
|        | summaries of refused connections, and one line a minute on connections (if any)     |
| -v     | and each connection: who connected from where with which key, and how it ended      |
| -vv    | and each handshake's six steps, as the original demo printed them                   |
| -vvv   | and every refused connection and failed handshake alone, key updates (debug)        |

A connection's lines are held until its handshake completes (below -vvv): one that never
completes one (a port scan, a replayed ClientHello) is only counted in its block's summary.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("tlschat.server")

# Between INFO (20) and DEBUG (10): -v and -vv.
CONNECTION = 15
HANDSHAKE = 12
LEVELS = (logging.INFO, CONNECTION, HANDSHAKE, logging.DEBUG)
# How often the connections summary is logged (when anything happened).
SUMMARY_INTERVAL = 60.0


def level(verbose: int, quiet: bool) -> int:
    """The logging level of ``-v`` given ``verbose`` times, or ``-q``."""
    if quiet:
        return logging.ERROR
    return LEVELS[min(verbose, len(LEVELS) - 1)]


def configure(verbose: int, quiet: bool) -> None:
    """The server's log: plain lines on stdout, from the level the flags ask for."""
    logging.addLevelName(CONNECTION, "CONNECTION")
    logging.addLevelName(HANDSHAKE, "HANDSHAKE")
    logging.basicConfig(level=level(verbose, quiet), format="%(message)s", stream=sys.stdout)


class ConnectionSummary:
    """Sessions started and ended since the last summary line."""

    def __init__(self, now: float) -> None:
        self.since = now
        self.connected = 0
        self.left = 0

    def line(self, now: float, online: int) -> str:
        """The summary of what was counted since the last one, or "" if nothing was; counts
        start again."""
        if not self.connected and not self.left:
            self.since = now
            return ""
        seconds = max(1, round(now - self.since))
        line = (
            f"[CONNECTIONS] {self.connected} connected, {self.left} left in the last "
            f"{seconds} s; {online} online"
        )
        self.since, self.connected, self.left = now, 0, 0
        return line

    def flush(self, now: float, online: int, every: float = SUMMARY_INTERVAL) -> None:
        """Log the summary if ``every`` seconds have passed since the last one (0: now)."""
        if now - self.since >= every:
            line = self.line(now, online)
            if line:
                log.info("%s", line)
