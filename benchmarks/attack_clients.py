"""The attacks of issue 13 as a hostile client runs them, each in a worker process of its own:
here the ones on output, commands and disk (parked, flood, history) and what every attack
shares; benchmarks/attack_admission.py has the ones on admission (slots, replay, keys).

An attack prepares (history to replay, connections set up), says ``ready``, runs for a bounded
time when told ``go`` and answers with its figures, a dataclass; benchmarks/attack.py measures
the server meanwhile. Each attack comes from its own addresses (127.0.N.x), away from the
legitimate user's block (127.0.0.0/24).
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing.connection
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from tlschat.protocol import IdentityKey

from .attack_link import (
    LEGIT_SOURCE,
    ChatLink,
    LinkFailed,
    PacedLink,
    measure_legit,
    open_link_retrying,
    wait_until,
)
from .servers import raise_file_limit

ROOM = "#general"
SETUP_TIMEOUT = 60.0
# History every join replays: SEED_LINES lines of SEED_BODY bytes, more than the 64 KiB one
# history frame holds. A key may send its burst (10 lines) at once: one seeder per 10 lines.
SEED_LINES = 50
SEED_BODY = 4000
SEED_BURST = 10
SEED_SOURCE = "127.0.5.1"


@dataclass
class AttackTarget:
    port: int
    server_pid: int
    log_path: Path
    scale: float  # of every attack's timed window


def pairs(count: int) -> list[dict[str, Any]]:
    """``count`` /part #general + /join #general command pairs."""
    part = {"type": "command", "name": "part", "args": ROOM}
    join = {"type": "command", "name": "join", "args": ROOM}
    return [frame for _ in range(count) for frame in (part, join)]


def new_key() -> IdentityKey:
    return IdentityKey.generate("ed25519")


async def seed_history(port: int) -> None:
    """Fill #general's history: SEED_LINES long lines, each acknowledged as stored."""
    for seeder in range(math.ceil(SEED_LINES / SEED_BURST)):
        await _seed_burst(port, f"seed{seeder}")


async def _seed_burst(port: int, nick: str) -> None:
    loop = asyncio.get_running_loop()
    link = await open_link_retrying(port, SEED_SOURCE, new_key(), nick, loop.time() + SETUP_TIMEOUT)
    link.send_frames([link.say(ROOM, "h" * SEED_BODY) for _ in range(SEED_BURST)])
    stored = await wait_until(lambda: link.counts["sent"] >= SEED_BURST, SETUP_TIMEOUT)
    link.close()
    if not stored:
        raise RuntimeError(f"history seeding: {link.counts['sent']} of {SEED_BURST} stored")


class Attack:
    """One attack: ``prepare``, then ``run`` (bounded), then ``close``."""

    name: ClassVar[str]

    def __init__(self, target: AttackTarget) -> None:
        self.target = target
        self.links: list[ChatLink] = []

    @property
    def login_at(self) -> float:
        """When, in seconds into the run, the legitimate user tries a fresh login."""
        return 5.0 * self.target.scale

    async def prepare(self) -> None:
        pass

    async def run(self) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        for link in self.links:
            link.close()
        await asyncio.sleep(0.2)


# ----- parked output -----


@dataclass
class ParkedFigures:
    connections: int
    parked: int  # authenticated, sent their pairs
    dropped_by_server: int  # of those, closed or reset by the server by the end
    not_connected: int
    first_error: str
    settle_s: float


class ParkedOutput(Attack):
    """150 sessions from 3 addresses each send one write of 60 part/join pairs, then never read."""

    name = "parked"
    CONNECTIONS = 150
    SOURCES = ("127.0.1.1", "127.0.2.1", "127.0.3.1")
    PAIRS = 60
    CONCURRENCY = 16
    SETTLE = 10.0

    @property
    def login_at(self) -> float:
        return self.SETTLE * self.target.scale

    async def prepare(self) -> None:
        await seed_history(self.target.port)

    async def run(self) -> ParkedFigures:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETUP_TIMEOUT
        gate = asyncio.Semaphore(self.CONCURRENCY)
        errors: list[str] = []

        async def park(index: int) -> None:
            source = self.SOURCES[index % len(self.SOURCES)]
            async with gate:
                try:
                    link = await open_link_retrying(
                        self.target.port, source, new_key(), f"park{index}", deadline
                    )
                except LinkFailed as error:
                    errors.append(str(error))
                    return
            link.pause_reading()
            link.send_frames(pairs(self.PAIRS))
            self.links.append(link)

        await asyncio.gather(*(park(index) for index in range(self.CONNECTIONS)))
        settle = self.SETTLE * self.target.scale
        await asyncio.sleep(settle)
        return ParkedFigures(
            connections=self.CONNECTIONS,
            parked=len(self.links),
            dropped_by_server=sum(link.server_hung_up() for link in self.links),
            not_connected=len(errors),
            first_error=errors[0] if errors else "",
            settle_s=settle,
        )


# ----- join/part flood -----


@dataclass
class FloodFigures:
    connections: int
    seconds: float
    pairs_sent: int
    bytes_sent: int
    bytes_received: int  # what the server sent them
    reconnects: int  # after the server dropped one
    first_error: str


class JoinPartFlood(Attack):
    """4 sessions (4 keys, one address) write 20 part/join pairs at a time, never looking at
    the answers (they are dropped undecrypted); one the server drops connects again.

    Answers left unread would be no attack: the server stops reading a client whose output
    backs up, so the flood would stall on the first few megabytes.
    """

    name = "flood"
    CONNECTIONS = 4
    SOURCE = "127.0.2.1"
    PAIRS = 20
    BATCH_INTERVAL = 0.02  # at most 50 batches per second per connection
    SECONDS = 15.0

    def __init__(self, target: AttackTarget) -> None:
        super().__init__(target)
        self.keys = [new_key() for _ in range(self.CONNECTIONS)]
        self.lanes: list[ChatLink] = []  # each key's current connection; self.links: all
        self.reconnects = 0
        self.errors: list[str] = []

    async def prepare(self) -> None:
        await seed_history(self.target.port)
        for lane in range(self.CONNECTIONS):
            self.lanes.append(await self._connect(lane, SETUP_TIMEOUT))

    async def _connect(self, lane: int, timeout: float) -> ChatLink:
        deadline = asyncio.get_running_loop().time() + timeout
        port, key = self.target.port, self.keys[lane]
        link = await open_link_retrying(port, self.SOURCE, key, f"flood{lane}", deadline)
        self.links.append(link)
        return link

    async def run(self) -> FloodFigures:
        loop = asyncio.get_running_loop()
        seconds = self.SECONDS * self.target.scale
        deadline = loop.time() + seconds
        lanes = range(self.CONNECTIONS)
        batches = await asyncio.gather(*(self._lane(lane, deadline) for lane in lanes))
        return FloodFigures(
            connections=self.CONNECTIONS,
            seconds=seconds,
            pairs_sent=sum(batches) * self.PAIRS,
            bytes_sent=sum(link.bytes_sent for link in self.links),
            bytes_received=sum(link.bytes_received for link in self.links),
            reconnects=self.reconnects,
            first_error=self.errors[0] if self.errors else "",
        )

    async def _lane(self, lane: int, deadline: float) -> int:
        """Batches written by one key until ``deadline``, connecting again when dropped."""
        loop = asyncio.get_running_loop()
        batches = 0
        self.lanes[lane].discard_input()
        while (remaining := deadline - loop.time()) > 0:
            link = self.lanes[lane]
            if not link.is_open:
                try:
                    self.lanes[lane] = await self._connect(lane, remaining)
                except LinkFailed as error:
                    self.errors.append(str(error))
                    await asyncio.sleep(self.BATCH_INTERVAL)
                    continue
                self.lanes[lane].discard_input()
                self.reconnects += 1
            elif not link.write_buffer_size():
                link.send_frames(pairs(self.PAIRS))
                batches += 1
            await asyncio.sleep(self.BATCH_INTERVAL)
        return batches


# ----- history flood -----


@dataclass
class HistoryFigures:
    keys: int
    seconds: float
    lines_sent: int
    lines_stored: int  # acknowledged with 'sent'
    lines_refused: int  # error frames
    body_bytes: int


class HistoryFlood(Attack):
    """60 fresh keys from one address, each alone in a room of its own, send long lines as fast
    as flood control lets a key: through tlschat's own client, which paces itself to the
    server's limits and sends a refused line again."""

    name = "history"
    KEYS = 60
    SOURCE = "127.0.6.1"
    BODY = 4000
    QUEUED = 20  # lines each client keeps waiting to go out
    PUMP_INTERVAL = 0.05
    SECONDS = 25.0

    def __init__(self, target: AttackTarget) -> None:
        super().__init__(target)
        self.senders: list[PacedLink] = []

    @property
    def login_at(self) -> float:
        return 0.6 * self.SECONDS * self.target.scale

    async def prepare(self) -> None:
        deadline = asyncio.get_running_loop().time() + SETUP_TIMEOUT
        for number in range(self.KEYS):
            link = await open_link_retrying(
                self.target.port, self.SOURCE, new_key(), f"hist{number}", deadline, PacedLink
            )
            assert isinstance(link, PacedLink)
            self.links.append(link)
            self.senders.append(link)
            link.chat.user_input(f"/join {self._room(number)}", time.time())
            link.chat.user_input(f"/part {ROOM}", time.time())
            link.pump()
        ready = await wait_until(
            lambda: all(link.counts["parted"] for link in self.links), SETUP_TIMEOUT
        )
        if not ready:
            raise RuntimeError("history flood: not every key left #general for its own room")

    @staticmethod
    def _room(number: int) -> str:
        return f"#flood{number}"

    async def run(self) -> HistoryFigures:
        seconds = self.SECONDS * self.target.scale
        deadline = asyncio.get_running_loop().time() + seconds
        lanes = enumerate(self.senders)
        await asyncio.gather(*(self._lane(link, number, deadline) for number, link in lanes))
        await asyncio.sleep(0.5)  # the last acknowledgements
        return HistoryFigures(
            keys=self.KEYS,
            seconds=seconds,
            lines_sent=sum(link.lines_sent for link in self.senders),
            lines_stored=sum(link.counts["sent"] for link in self.senders),
            lines_refused=sum(link.counts["error"] for link in self.senders),
            body_bytes=self.BODY,
        )

    async def _lane(self, link: PacedLink, number: int, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        room = self._room(number)
        body = "f" * self.BODY
        while loop.time() < deadline and link.is_open:
            while link.chat.outstanding < self.QUEUED:
                link.chat.say(body, time.time(), target=room)
            link.pump()
            await asyncio.sleep(self.PUMP_INTERVAL)


# ----- the worker processes -----


async def _receive(pipe: multiprocessing.connection.Connection) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, pipe.recv)


async def _attack_session(attack: Attack, pipe: multiprocessing.connection.Connection) -> None:
    try:
        await attack.prepare()
        pipe.send(("ready", attack.login_at))
        await _receive(pipe)  # go
        pipe.send(("result", await attack.run()))
        await _receive(pipe)  # the server was measured: close
    except (LinkFailed, RuntimeError, OSError) as error:
        pipe.send(("error", f"{attack.name}: {type(error).__name__}: {error}"))
    finally:
        await attack.close()


async def _legit_session(port: int, pipe: multiprocessing.connection.Connection) -> None:
    loop = asyncio.get_running_loop()
    try:
        link = await open_link_retrying(
            port, LEGIT_SOURCE, new_key(), "legit", loop.time() + SETUP_TIMEOUT
        )
    except LinkFailed as error:
        pipe.send(("error", f"legitimate user: {error}"))
        return
    pipe.send(("ready", None))
    _, login_at = await _receive(pipe)
    stop = asyncio.ensure_future(_receive(pipe))
    pipe.send(("result", await measure_legit(link, port, login_at, stop)))
    await stop
    link.close()


def attack_worker(kind: type[Attack], target: AttackTarget, pipe: Any) -> None:
    """Entry point of the attacker's process (forked)."""
    raise_file_limit()
    asyncio.run(_attack_session(kind(target), pipe))


def legit_worker(port: int, pipe: Any) -> None:
    """Entry point of the legitimate user's process (forked)."""
    asyncio.run(_legit_session(port, pipe))
