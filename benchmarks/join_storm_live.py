"""The live user of the join-storm benchmark (:mod:`benchmarks.join_storm`), in a process of its
own so that the storm's workers do not delay its clock.

It is in #general before the storm and reads everything the server sends like any member, so the
notices queued ahead of an acknowledgement count in its round trip. Every ``interval`` it signs a
line for its own room (by default :data:`LIVE_ROOM`, not #general: ten lines a second to every
member would add a fan-out of its own to what is measured) and times it until the server's ``sent``
for its counter. When the server restarts it reconnects at once, every :data:`RECONNECT_PAUSE`: it
is the instrument, not part of the storm.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import multiprocessing.connection
import time
from dataclasses import dataclass
from typing import Any

from tlschat.chat.frames import encode_frame
from tlschat.protocol import IdentityKey

from .join_storm_clients import ATTEMPT_TIMEOUT, ROOM, forget_outcome, receive
from .load import TlschatClient
from .servers import HOST, raise_file_limit

LIVE_ROOM = "#live"
LIVE_ADDRESS = "127.254.0.1"  # a block of its own, past every storm user's
RECONNECT_PAUSE = 0.1


class LiveConnection(TlschatClient):
    """One connection of the live user: ready once in #general, ``in_room`` once in its room."""

    def __init__(self, live: LiveUser) -> None:
        super().__init__(None, 0, "room", live.identity, live.fingerprint)
        self.live = live
        self.in_room = asyncio.Event()
        self.gone = asyncio.Event()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.gone.set()

    def _fail(self, reason: str) -> None:
        """Before it is in #general the attempt fails; after, the channel is no use: closed, so
        that the live user connects again."""
        self.live.note(reason)
        if self.ready.done():
            self.close()
        super()._fail(reason)

    @property
    def talking(self) -> bool:
        """In its room, on a channel that still carries data."""
        channel = self.connection
        return self.in_room.is_set() and channel.is_connected and not channel.close_notify_sent

    def _frame(self, data: bytes) -> None:
        if data.startswith(b'{"type":"sent"'):
            counter = json.loads(data).get("counter")
            if isinstance(counter, int):
                self.live.acknowledged(counter)
        elif data.startswith(b'{"type":"joined"'):
            room = json.loads(data).get("room")
            if room == ROOM and not self.ready.done():
                self._ready()
                if self.live.room != ROOM:
                    command = {"type": "command", "name": "join", "args": self.live.room}
                    self.connection.send_data(encode_frame(command))
            if room == self.live.room:
                self.in_room.set()
        elif data.startswith((b'{"type":"error"', b'{"type":"bye"')):
            text = data.decode(errors="replace")[:200]
            if not self.ready.done():
                self._fail(text)
                return
            self.live.refused += "counter" in json.loads(data)
            self.live.note(text)

    def say(self, body: str) -> int:
        """Sign and send one line for the live room; its counter."""
        frame = self.chat.compose(body, time.time(), self.live.room)
        self.connection.send_data(encode_frame(frame))
        self._flush()
        return int(frame["counter"])


class LiveUser:
    def __init__(self, port: int, fingerprint: str, room: str) -> None:
        self.identity = IdentityKey.generate("ed25519")
        self.port = port
        self.fingerprint = fingerprint
        self.room = room
        self.connection: LiveConnection | None = None
        self.sends: list[float] = []  # monotonic send times
        self.rtts: list[float | None] = []  # None: no `sent` came
        self.pending: dict[int, int] = {}  # counter -> index in sends
        self.offline: list[float] = []  # when a line was due and it was not in its room
        self.refused = 0
        self.reconnects = 0
        self.errors: list[str] = []

    def note(self, error: str) -> None:
        if error not in self.errors and len(self.errors) < 5:
            self.errors.append(error)

    def acknowledged(self, counter: int) -> None:
        index = self.pending.pop(counter, None)
        if index is not None:
            self.rtts[index] = time.monotonic() - self.sends[index]

    async def _connect(self) -> LiveConnection:
        connection = LiveConnection(self)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(ATTEMPT_TIMEOUT):
                await loop.create_connection(
                    lambda: connection, HOST, self.port, local_addr=(LIVE_ADDRESS, 0)
                )
                await connection.ready
                await connection.in_room.wait()
        except BaseException:
            connection.ready.add_done_callback(forget_outcome)
            connection.close()
            raise
        return connection

    async def stay_connected(self, stopping: asyncio.Event, shared: Any, slot: int) -> None:
        """Connected and in both rooms whenever the server lets it, until ``stopping``."""
        while not stopping.is_set():
            try:
                connection = await self._connect()
            except (OSError, RuntimeError, TimeoutError) as error:
                self.note(f"{type(error).__name__}: {error}")
                await asyncio.sleep(RECONNECT_PAUSE)
                continue
            self.connection = connection
            shared[slot] = 1
            waits = [asyncio.ensure_future(e.wait()) for e in (connection.gone, stopping)]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for wait in waits:
                wait.cancel()
            shared[slot] = 0
            self.connection = None
            self.pending.clear()  # what was in flight is never acknowledged: stays None
            if not stopping.is_set():
                self.reconnects += 1
                await asyncio.sleep(RECONNECT_PAUSE)
        if self.connection is not None:
            self.connection.close()

    async def send_lines(self, interval: float, stopping: asyncio.Event) -> None:
        due = time.monotonic()
        while not stopping.is_set():
            now = time.monotonic()
            if now < due:
                await asyncio.sleep(due - now)
                continue
            connection = self.connection
            if connection is not None and connection.talking:
                counter = connection.say(f"live {len(self.sends)}")
                self.pending[counter] = len(self.sends)
                self.sends.append(now)
                self.rtts.append(None)
            else:
                self.offline.append(now)
            due = max(due + interval, now)


@dataclass
class LiveSpec:
    slot: int  # its place in the shared array: 1 while it is in its rooms
    port: int
    fingerprint: str
    room: str
    interval: float


async def _serve(spec: LiveSpec, pipe: multiprocessing.connection.Connection, shared: Any) -> None:
    live = LiveUser(spec.port, spec.fingerprint, spec.room)
    stopping = asyncio.Event()
    keeper = asyncio.ensure_future(live.stay_connected(stopping, shared, spec.slot))
    deadline = time.monotonic() + ATTEMPT_TIMEOUT
    while live.connection is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    pipe.send(("ready" if live.connection is not None else "failed", {"errors": live.errors}))
    sender: asyncio.Future[None] | None = None
    while True:
        message = await receive(pipe)
        if message[0] == "go" and sender is None:
            sender = asyncio.ensure_future(live.send_lines(spec.interval, stopping))
        elif message[0] == "stop":
            break
    stopping.set()
    for task in (sender, keeper):
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 5.0)
    pipe.send(
        (
            "samples",
            {
                "sends": live.sends,
                "rtts": live.rtts,
                "offline": live.offline,
                "refused": live.refused,
                "reconnects": live.reconnects,
                "errors": live.errors,
            },
        )
    )


def live_main(spec: LiveSpec, shared: Any, pipe: Any) -> None:
    """Entry point of the live user's process (forked)."""
    raise_file_limit()
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError, EOFError):
        asyncio.run(_serve(spec, pipe, shared))


def quantile(values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least ``q`` of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summarize_rtt(samples: dict[str, Any], start: float, end: float) -> dict[str, Any]:
    """The live user's round trips for the lines sent in [start, end), in milliseconds."""
    inside = [
        rtt
        for sent, rtt in zip(samples["sends"], samples["rtts"], strict=True)
        if start <= sent < end
    ]
    answered = [rtt * 1000 for rtt in inside if rtt is not None]
    summary: dict[str, Any] = {
        "sent": len(inside),
        "unanswered": len(inside) - len(answered),
        "offline": sum(start <= t < end for t in samples["offline"]),
        "p50_ms": None,
        "p99_ms": None,
        "max_ms": None,
    }
    if answered:
        summary.update(
            p50_ms=quantile(answered, 0.5),
            p99_ms=quantile(answered, 0.99),
            max_ms=max(answered),
        )
    return summary
