"""The clients of the attack benchmark (benchmarks/attack.py): one tlschat connection from a
chosen loopback address, and the legitimate user measured while an attack runs.

Every connection is bound to a source address of 127.0.0.0/8 so that an attack can come from
several addresses and /24 blocks, as a real one would. Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.envelope import SignedMessage
from tlschat.chat.frames import MAX_FRAME, decode_frame, encode_frame, say_frame
from tlschat.chat.seen import SeenLedger
from tlschat.protocol import (
    ClientConnection,
    ConnectionConfig,
    DataReceived,
    Event,
    HandshakeComplete,
    IdentityKey,
    ProtocolError,
    ServerAuthenticated,
)

from .servers import HOST

CONNECT_TIMEOUT = 10.0
# A connection refused on accept (a cap or the handshake rate) is tried again after this long.
REFUSED_RETRY = 0.1
REFUSED_ON_ACCEPT = "alert server_busy"
# struct tcp_info (linux/tcp.h) starts with tcpi_state.
TCP_ESTABLISHED = 1
TCP_INFO_SIZE = 8
# The server writes every frame as compact JSON with "type" first.
FRAME_TYPE = re.compile(rb'\{"type":"([a-z_]+)"')
PRESENCE_FRAMES = ("join", "leave")
LEGIT_SOURCE = "127.0.0.1"
PING_INTERVAL = 0.05
PING_TIMEOUT = 5.0
# The legitimate user gives up measuring after this long even if it is never told to stop.
MAX_MEASURE = 300.0


class LinkFailed(Exception):
    """A connection that did not get in: the alert, the bye, a timeout or a socket error."""


def frame_type(data: bytes) -> str:
    match = FRAME_TYPE.match(data)
    return match.group(1).decode() if match else ""


def block_of(address: str) -> str:
    return address.rsplit(".", 1)[0] + ".0/24"


class ChatLink(asyncio.Protocol):
    """A tlschat client connection: the handshake, then, given a nick, hello and #general.

    ``ready`` resolves True once in (in #general with a nick, else at the end of the handshake),
    False if the server ended it first; ``failure`` then says how.
    """

    def __init__(self, identity: IdentityKey, nick: str = "") -> None:
        config = ConnectionConfig(identity=identity, max_message=MAX_FRAME)
        self.connection = ClientConnection(config, now=time.monotonic())
        self.identity = identity
        self.nick = nick
        self.source = ""
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[bool] = loop.create_future()
        self.closed: asyncio.Future[float] = loop.create_future()  # the loop time it closed
        self.network = ""
        self.failure = ""
        self.counts: collections.Counter[str] = collections.Counter()
        self.on_frame: Callable[[str], None] | None = None
        self.bytes_sent = 0
        self.bytes_received = 0
        self.discarding = False
        self._pong: asyncio.Future[None] | None = None
        self._counter = time.time_ns() // 1000

    # ----- asyncio's calls -----

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.source = str(transport.get_extra_info("sockname")[0])
        self.connection.start_handshake()
        self._flush()

    def data_received(self, data: bytes) -> None:
        self.bytes_received += len(data)
        if self.discarding:
            return
        try:
            self._handle(self.connection.receive_data(data))
        except ProtocolError as error:
            self.failure = self.failure or (
                f"alert {error.alert.name}" if error.received else f"protocol error: {error}"
            )
            self.abort()
            return
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and not self.failure:
            self.failure = f"{type(exc).__name__}: {exc}"
        self._set_ready(False)
        if not self.closed.done():
            self.closed.set_result(asyncio.get_running_loop().time())

    # ----- the protocol -----

    def _handle(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, ServerAuthenticated):
                self._handle(self.connection.trust_server())
            elif isinstance(event, HandshakeComplete):
                self.network = event.peer.fingerprint
                if self.nick:
                    self.send_frames([{"type": "hello", "nick": self.nick}])
                else:
                    self._set_ready(True)
            elif isinstance(event, DataReceived):
                self._frame(event.data)

    def _frame(self, data: bytes) -> None:
        kind = frame_type(data)
        self.counts[kind] += 1
        if kind == "joined":
            self._set_ready(True)
        elif kind == "pong" and self._pong is not None and not self._pong.done():
            self._pong.set_result(None)
        elif kind == "bye":
            self.failure = f"bye: {json.loads(data).get('reason', '')}"
        if self.on_frame is not None:
            self.on_frame(kind)

    def _set_ready(self, admitted: bool) -> None:
        if not self.ready.done():
            self.ready.set_result(admitted)

    def _flush(self) -> None:
        data = self.connection.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            self.bytes_sent += len(data)

    # ----- ours -----

    @property
    def is_open(self) -> bool:
        return not self.closed.done()

    def send_frames(self, frames: list[dict[str, Any]]) -> None:
        """The frames in one write (one record each)."""
        if not self.connection.is_connected:
            return
        for frame in frames:
            self.connection.send_data(encode_frame(frame))
        self._flush()

    def say(self, target: str, body: str) -> dict[str, Any]:
        """A chat line signed for this network, as the real client signs it."""
        self._counter = max(self._counter + 1, time.time_ns() // 1000)
        message = SignedMessage.create(
            self.identity, self.network, target, self._counter, time.time_ns() // 1_000_000, body
        )
        return say_frame(message)

    async def ping(self, timeout: float = PING_TIMEOUT) -> float | None:
        """The round trip of one ping in seconds; None if no pong came in time."""
        loop = asyncio.get_running_loop()
        self._pong = loop.create_future()
        started = loop.time()
        self.send_frames([{"type": "ping"}])
        try:
            await asyncio.wait_for(self._pong, timeout)
        except TimeoutError:
            return None
        return loop.time() - started

    async def wait_closed(self, timeout: float) -> bool:
        """Whether the connection closed within ``timeout``."""
        done, _ = await asyncio.wait([self.closed], timeout=timeout)
        return bool(done)

    def pause_reading(self) -> None:
        """Read nothing more: what the server sends waits in its buffers."""
        if self.transport is not None:
            self.transport.pause_reading()

    def discard_input(self) -> None:
        """Take what the server sends off the socket and drop it undecrypted: it never waits
        in the server's buffers, and costs this side next to nothing."""
        self.discarding = True

    def write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport is not None else 0

    def server_hung_up(self) -> bool:
        """Whether the server closed or reset the connection (seen even while not reading)."""
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        if not self.is_open or sock is None:
            return True
        try:
            state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_SIZE)[0]
        except OSError:
            return True
        return bool(state != TCP_ESTABLISHED)

    def close(self) -> None:
        if self.connection.is_connected and not self.connection.close_notify_sent:
            self.connection.close()
            self._flush()
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class PacedLink(ChatLink):
    """A link whose lines and commands go through tlschat's own ChatClient, as the real client
    sends them: paced to the server's flood control and work budget, sent again when refused."""

    def __init__(self, identity: IdentityKey, nick: str = "") -> None:
        super().__init__(identity, nick)
        self.chat = ChatClient(identity, nick)
        self.lines_sent = 0

    def _frame(self, data: bytes) -> None:
        super()._frame(data)
        if not self.chat.network:
            self.chat.use_network(self.network, SeenLedger())
        self.chat.handle(decode_frame(data), time.time())
        self.pump()

    def pump(self) -> None:
        """Send what the client's pace allows now."""
        self.chat.tick(time.time())
        frames = self.chat.take_outbox()
        self.lines_sent += sum(frame["type"] == "say" for frame in frames)
        self.send_frames(frames)


LinkFactory = Callable[[IdentityKey, str], ChatLink]


async def open_link(
    port: int,
    source: str,
    identity: IdentityKey,
    nick: str = "",
    timeout: float = CONNECT_TIMEOUT,
    make: LinkFactory = ChatLink,
) -> ChatLink:
    """A connection from ``source`` that got in (see :class:`ChatLink`), or LinkFailed."""
    loop = asyncio.get_running_loop()
    link = make(identity, nick)
    try:
        await asyncio.wait_for(
            loop.create_connection(lambda: link, HOST, port, local_addr=(source, 0)), timeout
        )
        admitted = await asyncio.wait_for(asyncio.shield(link.ready), timeout)
    except TimeoutError:
        link.abort()
        raise LinkFailed("timeout") from None
    except OSError as error:
        link.abort()
        raise LinkFailed(f"{type(error).__name__}: {error.strerror}") from None
    if not admitted:
        link.abort()
        raise LinkFailed(link.failure or "closed")
    return link


async def open_link_retrying(
    port: int,
    source: str,
    identity: IdentityKey,
    nick: str,
    deadline: float,
    make: LinkFactory = ChatLink,
) -> ChatLink:
    """:func:`open_link`, tried again while it is refused on accept, until ``deadline``."""
    loop = asyncio.get_running_loop()
    while True:
        timeout = min(CONNECT_TIMEOUT, deadline - loop.time())
        try:
            return await open_link(port, source, identity, nick, timeout, make)
        except LinkFailed as error:
            if str(error) != REFUSED_ON_ACCEPT or loop.time() + REFUSED_RETRY >= deadline:
                raise
        await asyncio.sleep(REFUSED_RETRY)


async def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank q-quantile, or None if there are no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


# ----- the legitimate user -----


@dataclass
class LegitFigures:
    """What a legitimate user in #general saw while an attack ran."""

    seconds: float = 0.0
    pings: int = 0
    lost_pings: int = 0
    ping_p50_ms: float | None = None
    ping_p99_ms: float | None = None
    ping_max_ms: float | None = None
    presence_notices: int = 0
    presence_per_s: float = 0.0
    presence_peak_per_s: int = 0
    login_ms: float | None = None  # a new login from the same block during the attack
    login_error: str = ""
    disconnected: str = ""  # why its own session ended, if it did


@dataclass
class PresenceCounter:
    """Join and leave notices, counted per second of the loop's clock."""

    per_second: collections.Counter[int] = field(default_factory=collections.Counter)

    def note(self, kind: str) -> None:
        if kind in PRESENCE_FRAMES:
            self.per_second[int(asyncio.get_running_loop().time())] += 1


async def fresh_login(port: int, delay: float) -> tuple[float | None, str]:
    """After ``delay``: how long a new user takes to get into #general (ms), or why it failed."""
    await asyncio.sleep(delay)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        link = await open_link(port, LEGIT_SOURCE, IdentityKey.generate("ed25519"), "newcomer")
    except LinkFailed as error:
        return None, str(error)
    elapsed = loop.time() - started
    link.close()
    return elapsed * 1000, ""


async def measure_legit(
    link: ChatLink, port: int, login_at: float, stop: asyncio.Future[Any]
) -> LegitFigures:
    """Ping every PING_INTERVAL until ``stop`` resolves; a fresh login ``login_at`` s in."""
    loop = asyncio.get_running_loop()
    presence = PresenceCounter()
    link.on_frame = presence.note
    login = asyncio.ensure_future(fresh_login(port, login_at))
    started = loop.time()
    rtts: list[float] = []
    lost = 0
    while not stop.done() and link.is_open and loop.time() - started < MAX_MEASURE:
        due = loop.time() + PING_INTERVAL
        rtt = await link.ping()
        if rtt is None:
            lost += 1
        else:
            rtts.append(rtt)
        await asyncio.wait([stop], timeout=max(0.0, due - loop.time()))
    seconds = loop.time() - started
    if seconds < login_at:
        login.cancel()
        login_ms, login_error = None, "not tried: the attack ended first"
    else:
        login_ms, login_error = await login
    count = sum(presence.per_second.values())
    return LegitFigures(
        seconds=seconds,
        pings=len(rtts) + lost,
        lost_pings=lost,
        ping_p50_ms=_ms(percentile(rtts, 0.50)),
        ping_p99_ms=_ms(percentile(rtts, 0.99)),
        ping_max_ms=_ms(max(rtts, default=None)),
        presence_notices=count,
        presence_per_s=count / seconds if seconds else 0.0,
        presence_peak_per_s=max(presence.per_second.values(), default=0),
        login_ms=login_ms,
        login_error=login_error,
        disconnected="" if link.is_open else link.failure or "closed",
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000
