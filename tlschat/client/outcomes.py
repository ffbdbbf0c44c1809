"""The end of a client's input: waiting for the outcome of every line sent, and saying which
lines were not delivered."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol

from ..chat.client.receiving import ChatClient
from ..chat.lines import Line

EXIT_OK = 0
EXIT_NOT_DELIVERED = 4
# At the end of input: how long the client waits for the outcome of a line it sent (the queue's
# pace aside), and for all of them across reconnects.
OUTCOME_PATIENCE = 10.0
OUTCOME_DEADLINE = 60.0
OUTCOME_POLL = 0.05


class Reporter(Protocol):
    def show(self, line: Line, current_room: str = "") -> None: ...

    def warn(self, text: str) -> None: ...


def still_owed(chat: ChatClient, ended_at: float) -> bool:
    """Lines of an input that ended at ``ended_at`` still wait for an outcome, and the wait is
    not over."""
    return chat.outstanding > 0 and time.monotonic() < ended_at + OUTCOME_DEADLINE


# Why the lines still without an outcome at the end were not delivered.
STOPPED = "the client stopped before the server answered"
NEVER_CONNECTED = "the client never connected to a server"


def report_undelivered(chat: ChatClient, reporter: Reporter, code: int, why: str = STOPPED) -> int:
    """The session is over: every line still without an outcome is not delivered (``why``), and
    the user hears which lines were not (the exit code says so too, unless another failure
    does)."""
    for line in chat.give_up(why, time.time()):
        reporter.show(line, chat.room)
    if not chat.undelivered:
        return code
    count = len(chat.undelivered)
    reporter.warn(f"[!] {count} {'line was' if count == 1 else 'lines were'} not delivered:")
    for line in chat.undelivered:
        reporter.warn(f"[!]   {line.text!r}: {line.problem or line.text}")
    return EXIT_NOT_DELIVERED if code == EXIT_OK else code


async def await_outcomes(
    chat: ChatClient, receiving: asyncio.Future[int], quit_requested: asyncio.Event
) -> None:
    """The input ended (or the user typed /quit): wait while the lines sent or queued still get
    their outcomes, for as long as they keep coming (the queue is paced), at most
    OUTCOME_PATIENCE without one, and not past a signal or the connection's end."""
    outstanding, progress_at = chat.outstanding, time.monotonic()
    while chat.outstanding and not receiving.done() and not quit_requested.is_set():
        if chat.outstanding < outstanding:
            outstanding, progress_at = chat.outstanding, time.monotonic()
        if time.monotonic() - progress_at > OUTCOME_PATIENCE:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(receiving), OUTCOME_POLL)
