"""The storm's users (:mod:`benchmarks.join_storm`): worker processes, each one asyncio loop.

A storm user speaks the real client protocol through :class:`benchmarks.load.TlschatClient` (the
channel with the server's key pinned, ``hello``, then the server's own join of #general), from a
loopback address block of its own (:func:`address_for`). It reads everything the server sends and
only counts it, except the last joiner, whose :class:`MemberView` follows #general's members.

A worker joins all its users at once, a bounded number of connects in flight. Armed for a restart,
it waits for each user's connection to drop and brings the user back as a real client would: after
:func:`backoff_delay`, then again with the wait doubled, until it is in #general again.

Worker and coordinator talk over a pipe, one answer per request; what the users read, how many are
in #general and how many connections dropped after joining go to a shared array (:data:`STATS`
slots per worker) every :data:`PUBLISH_INTERVAL`, for the coordinator's progress and settling.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing.connection
import random
import time
from dataclasses import dataclass
from typing import Any

from tlschat.chat.frames import encode_frame
from tlschat.chat.runs import RunAssembler
from tlschat.protocol import IdentityKey

from .load import TlschatClient
from .servers import HOST, raise_file_limit

ROOM = "#general"
ATTEMPT_TIMEOUT = 60.0  # one join attempt: connect, handshake, hello, until `joined`
PUBLISH_INTERVAL = 0.25
STATS = 4  # per worker in the shared array: frames, bytes, users in #general, connections lost
FRAMES, BYTES, JOINED, LOST = range(STATS)
# Full jitter (backoff_delay): the first reconnect within 1 s, each failure doubles that, to 30 s.
BACKOFF_FIRST = 1.0
BACKOFF_CAP = 30.0


def address_for(index: int) -> str:
    """User ``index``'s source address, 127.(1 + i // 250).(i % 250 + 1).1: a /24 block each."""
    if not 0 <= index < 250 * 250:
        raise ValueError(f"no address block for user {index}")
    return f"127.{1 + index // 250}.{index % 250 + 1}.1"


def backoff_delay(
    attempt: int, rng: random.Random, first: float = BACKOFF_FIRST, cap: float = BACKOFF_CAP
) -> float:
    """How long to wait before reconnect ``attempt`` (0: the first after the loss): full jitter,
    uniform in [0, min(cap, first * 2**attempt)], so that clients that lost the same server
    spread out instead of coming back together."""
    return rng.uniform(0.0, min(cap, first * 2.0 ** min(attempt, 64)))


class MemberView:
    """One room's members as a client knows them (docs/PROTOCOL.md, "Runs" and "Large rooms"):
    the ``joined`` run's list, or, for a large room (``lazy``), the ``members`` run that
    ``watch`` answers; then every ``join``, ``leave`` and ``presence`` change. Keyed by
    fingerprint (the server lists one entry per key).

    ``handle`` returns the frames the client sends in answer (the ``watch`` of a large room).
    """

    def __init__(self, room: str) -> None:
        self.room = room
        self.members: set[str] = set()
        self.joined = False
        self.listed = 0  # how many the member list (joined's or members') carried
        self._runs = RunAssembler()

    @property
    def count(self) -> int:
        return len(self.members)

    def handle(self, frame: dict[str, Any]) -> list[dict[str, Any]]:
        """Apply one frame from the server; what to send in answer."""
        kind = frame.get("type")
        if self._runs.expecting:
            if kind != self._runs.expecting:
                self._runs.interrupted(str(kind))
            else:
                whole = self._runs.add(frame)
                return self._whole(whole) if whole is not None else []
        if frame.get("room") != self.room:
            return []
        if kind in ("join", "leave"):
            self._change(frame)
            return []
        run = RUNS.get(kind)
        if run is None:
            return []
        key, continuation = run
        whole = self._runs.start(frame, key, continuation, ("room",))
        return self._whole(whole) if whole is not None else []

    def _whole(self, frame: dict[str, Any]) -> list[dict[str, Any]]:
        if frame.get("room") != self.room:
            return []
        kind = frame["type"]
        if kind == "joined":
            self.joined = True
            if frame.get("lazy"):
                return [{"type": "command", "name": "watch", "args": self.room}]
            self._listed(frame["members"])
        elif kind == "members":
            self._listed(frame["members"])
        else:
            for change in frame["changes"]:
                self._change(change)
        return []

    def _listed(self, members: list[Any]) -> None:
        self.members = {
            m["fingerprint"]
            for m in members
            if isinstance(m, dict) and isinstance(m.get("fingerprint"), str)
        }
        self.listed = len(members)

    def _change(self, change: dict[str, Any]) -> None:
        fingerprint = change.get("fingerprint")
        if not self.joined or not isinstance(fingerprint, str):
            return
        if change.get("type") == "join":
            self.members.add(fingerprint)
        elif change.get("type") == "leave":
            self.members.discard(fingerprint)


# The runs that speak of a room's members: the list they carry and their continuation's type.
RUNS: dict[Any, tuple[str, str]] = {
    "joined": ("members", "members"),
    "members": ("members", ""),
    "presence": ("changes", ""),
}


@dataclass
class Tally:
    """What one worker's users have read, summed."""

    frames: int = 0
    bytes: int = 0


class StormConnection(TlschatClient):
    """One connection of a storm user: counts what it reads; the last joiner's feeds its view."""

    def __init__(self, user: StormUser) -> None:
        super().__init__(None, user.index, "room", user.identity, user.server_fingerprint)
        self.user = user

    def data_received(self, data: bytes) -> None:
        self.user.tally.bytes += len(data)
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.user.connection_lost(self)

    def _frame(self, data: bytes) -> None:
        user = self.user
        user.tally.frames += 1
        if user.view is not None:
            for answer in user.observe(json.loads(data)):
                self.connection.send_data(encode_frame(answer))
                self._flush()
        if data.startswith(b'{"type":"joined"'):
            self._ready()  # the server's join of #general: nothing else is asked for
        elif not self.ready.done() and data.startswith((b'{"type":"error"', b'{"type":"bye"')):
            self._fail(data.decode(errors="replace")[:200])


class StormUser:
    """One user: its key and address for good, one connection at a time."""

    def __init__(self, index: int, port: int, server_fingerprint: str, tally: Tally) -> None:
        self.index = index
        self.address = address_for(index)
        self.identity = IdentityKey.generate("ed25519")
        self.port = port
        self.server_fingerprint = server_fingerprint
        self.tally = tally
        self.connection: StormConnection | None = None
        self.joined_at: float | None = None  # when its current connection got `joined`
        self.offline = asyncio.Event()  # set while it has no joined connection
        self.offline.set()
        self.lost = 0  # joined connections that dropped
        self.attempts = 0
        self.view: MemberView | None = None
        self.expected = 0  # members the view must reach to be complete
        self.complete = asyncio.Event()
        self.complete_at: float | None = None

    async def join(self, timeout: float) -> None:
        """One attempt: connect, handshake, hello, until the ``joined`` reply; raises if not."""
        self.attempts += 1
        connection = StormConnection(self)
        self.connection = connection
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(
                    lambda: connection, HOST, self.port, local_addr=(self.address, 0)
                )
                await connection.ready
        except BaseException:
            # Its outcome may still come (a lost connection): nobody waits for it any more.
            connection.ready.add_done_callback(forget_outcome)
            connection.close()
            raise
        self.joined_at = time.monotonic()
        self.offline.clear()

    def connection_lost(self, connection: StormConnection) -> None:
        if connection is not self.connection:
            return
        if self.joined_at is not None:
            self.lost += 1
        self.joined_at = None
        self.offline.set()

    def watch(self, expected: int) -> MemberView:
        """Follow #general's members from the next join on, until ``expected`` are known."""
        self.view = MemberView(ROOM)
        self.expected = expected
        self.complete_at = None
        self.complete.clear()
        return self.view

    def observe(self, frame: dict[str, Any]) -> list[dict[str, Any]]:
        """Feed the view; what the client must send in answer."""
        view = self.view
        if view is None:
            return []
        answers = view.handle(frame)
        if self.complete_at is None and view.joined and view.count >= self.expected:
            self.complete_at = time.monotonic()
            self.complete.set()
        return answers

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def forget_outcome(future: asyncio.Future[None]) -> None:
    """A done callback for a future nobody awaits any more: its exception is not logged."""
    if not future.cancelled():
        future.exception()


@dataclass
class StormSpec:
    """One worker's share: its users' global indices (the last joiner's too, when it holds it)."""

    slot: int
    indices: list[int]
    last_index: int | None
    port: int
    fingerprint: str
    concurrency: int
    seed: int


class StormWorker:
    def __init__(self, spec: StormSpec) -> None:
        self.tally = Tally()
        self.users = [
            StormUser(i, spec.port, spec.fingerprint, self.tally)
            for i in spec.indices
            if i != spec.last_index
        ]
        self.last = (
            StormUser(spec.last_index, spec.port, spec.fingerprint, self.tally)
            if spec.last_index is not None
            else None
        )
        self.rng = random.Random(spec.seed)
        self.semaphore = asyncio.Semaphore(spec.concurrency)
        self.rejoining: asyncio.Future[list[str | None]] | None = None

    def everyone(self) -> list[StormUser]:
        return self.users + ([self.last] if self.last is not None else [])

    async def _attempt(self, user: StormUser, deadline: float) -> str | None:
        """One join attempt when a slot is free, by ``deadline`` (monotonic) and within
        ATTEMPT_TIMEOUT: None once joined, else what went wrong."""
        async with self.semaphore:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "no time left for an attempt"
            try:
                await user.join(min(ATTEMPT_TIMEOUT, remaining))
            except (OSError, RuntimeError, TimeoutError) as error:
                return f"{type(error).__name__}: {error}"
        return None

    def _joined_stats(self, errors: list[str | None]) -> dict[str, Any]:
        failed = [error for error in errors if error is not None]
        times = [u.joined_at for u in self.users if u.joined_at is not None]
        attempts = [u.attempts for u in self.users]
        return {
            "joined": len(errors) - len(failed),
            "failed": len(failed),
            "first_error": failed[0] if failed else "",
            "last_joined_at": max(times, default=None),
            "attempts": sum(attempts),
            "max_attempts": max(attempts, default=0),
        }

    async def storm(self, timeout: float) -> dict[str, Any]:
        """Every user but the last joiner at once: one attempt each."""
        deadline = time.monotonic() + timeout
        for user in self.users:
            user.attempts = 0
        errors = await asyncio.gather(*(self._attempt(u, deadline) for u in self.users))
        return self._joined_stats(list(errors))

    def arm_restart(self, within: float) -> None:
        """From now on each user whose connection drops comes back with backoff."""
        deadline = time.monotonic() + within
        for user in self.users:
            user.attempts = 0
        self.rejoining = asyncio.gather(*(self._rejoin(u, deadline) for u in self.users))

    async def _rejoin(self, user: StormUser, deadline: float) -> str | None:
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await user.offline.wait()
        except TimeoutError:
            return "its connection never dropped"
        attempt, error = 0, "no time left to reconnect"
        while True:
            delay = backoff_delay(attempt, self.rng)
            if time.monotonic() + delay >= deadline:
                return error
            await asyncio.sleep(delay)
            outcome = await self._attempt(user, deadline)
            if outcome is None:
                return None
            error = outcome
            attempt += 1

    async def rejoined(self) -> dict[str, Any]:
        """Once every user is back in #general or gave up (the deadline of arm_restart)."""
        if self.rejoining is None:
            raise RuntimeError("not armed for a restart")
        errors = await self.rejoining
        self.rejoining = None
        return self._joined_stats(errors)

    async def last_join(self, expected: int, timeout: float) -> dict[str, Any]:
        """The last joiner joins and follows #general until it knows ``expected`` members."""
        user = self.last
        if user is None:
            raise RuntimeError("this worker holds no last joiner")
        view = user.watch(expected)
        started = time.monotonic()
        deadline = started + timeout
        error = await self._attempt(user, deadline)
        if error is None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await user.complete.wait()
        user.view = None
        return {
            "started_at": started,
            "joined_at": user.joined_at,
            "complete_at": user.complete_at,
            "members": view.count,
            "listed": view.listed,
            "expected": expected,
            "error": error or "",
        }

    async def publish(self, shared: Any, slot: int) -> None:
        base = slot * STATS
        while True:
            users = self.everyone()
            shared[base + FRAMES] = self.tally.frames
            shared[base + BYTES] = self.tally.bytes
            shared[base + JOINED] = sum(u.joined_at is not None for u in users)
            shared[base + LOST] = sum(u.lost for u in users)
            await asyncio.sleep(PUBLISH_INTERVAL)

    async def close_all(self) -> None:
        if self.rejoining is not None:
            self.rejoining.cancel()
        for user in self.everyone():
            with contextlib.suppress(Exception):
                user.close()
        await asyncio.sleep(0.5)


async def receive(pipe: multiprocessing.connection.Connection) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, pipe.recv)


async def _serve(spec: StormSpec, pipe: multiprocessing.connection.Connection, shared: Any) -> None:
    worker = StormWorker(spec)
    publisher = asyncio.ensure_future(worker.publish(shared, spec.slot))
    pipe.send(("ready", {"users": len(worker.everyone())}))
    while True:
        message = await receive(pipe)
        kind = message[0]
        if kind == "storm":
            pipe.send(("joined", await worker.storm(message[1])))
        elif kind == "arm":
            worker.arm_restart(message[1])
            pipe.send(("armed", {}))
        elif kind == "rejoined":
            pipe.send(("joined", await worker.rejoined()))
        elif kind == "last":
            pipe.send(("last", await worker.last_join(message[1], message[2])))
        else:
            await worker.close_all()
            publisher.cancel()
            pipe.send(("closed", {}))
            return


def storm_worker_main(spec: StormSpec, shared: Any, pipe: Any) -> None:
    """Entry point of a worker process (forked)."""
    raise_file_limit()
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError, EOFError):
        asyncio.run(_serve(spec, pipe, shared))
