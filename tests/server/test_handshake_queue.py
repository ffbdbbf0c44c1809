"""The handshake pacer's asyncio side (server/handshake_queue.py) in a real ChatService: waiting
connections are not read, start in turn with a fresh handshake deadline, and are refused after
their wait limit, removed when they hang up, and refused when the server stops.

Clients are non-blocking sockets on loopback in the same event loop; every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tlschat.chat.frames import MAX_FRAME
from tlschat.protocol import (
    ClientConnection,
    ConnectionConfig,
    HandshakeComplete,
    IdentityKey,
    ServerAuthenticated,
)
from tlschat.server.app import ChatService
from tlschat.server.config import ServerSettings
from tlschat.server.handshake_queue import WAITED_TOO_LONG
from tlschat.server.limits import LEFT_WAITING
from tlschat.server.link import MAX_HELD_WHILE_WAITING

HOST = "127.0.0.1"
BLOCK = "127.0.0.0/24"
SERVER_BUSY = bytes.fromhex("15 0001 0002 02 cc")  # a plaintext fatal server_busy alert
DEADLINE = 10.0


def run(
    tmp_path: Path,
    scenario: Callable[[ChatService], Awaitable[None]],
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
    **settings: Any,
) -> None:
    """``scenario`` against a ChatService listening on a free port, on the loop made by
    ``loop_factory`` (asyncio's own by default)."""

    async def main() -> None:
        service = ChatService(
            ServerSettings(host=HOST, port=0, data_dir=tmp_path / "data", **settings)
        )
        await service.start()
        try:
            await scenario(service)
        finally:
            if not service.stopping:
                await service.stop()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"not within {DEADLINE} s: {what}"
        await asyncio.sleep(0.01)


class Peer:
    """A client socket in the test's event loop, with its protocol connection."""

    def __init__(self, sock: socket.socket, client: ClientConnection) -> None:
        self.sock = sock
        self.client = client

    async def recv(self, timeout: float = DEADLINE) -> bytes:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.sock_recv(self.sock, 65536), timeout)

    async def send(self, data: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def read_to_end(self) -> bytes:
        """Everything the server sends until it closes: a refused connection's alert is
        followed by a reset, as the server closes with our ClientHello unread."""
        received = bytearray()
        while True:
            try:
                data = await self.recv()
            except ConnectionResetError:
                return bytes(received)
            if not data:
                return bytes(received)
            received += data

    async def finish_handshake(self) -> None:
        while True:
            data = await self.recv()
            assert data, "the server closed during the handshake"
            events = self.client.receive_data(data)
            if any(isinstance(event, ServerAuthenticated) for event in events):
                events += self.client.trust_server()
            await self.send(self.client.data_to_send())
            if any(isinstance(event, HandshakeComplete) for event in events):
                return

    def close(self) -> None:
        self.sock.close()


async def connect_and_hello(service: ChatService, trailer: bytes = b"") -> Peer:
    """A connection that has sent its ClientHello (and ``trailer`` after it)."""
    client = ClientConnection(
        ConnectionConfig(identity=IdentityKey.generate("ed25519"), max_message=MAX_FRAME),
        now=time.monotonic(),
    )
    client.start_handshake()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    peer = Peer(sock, client)
    await asyncio.wait_for(
        asyncio.get_running_loop().sock_connect(sock, (HOST, service.port)), DEADLINE
    )
    await peer.send(client.data_to_send() + trailer)
    return peer


def counts(service: ChatService) -> dict[str, int]:
    return dict(service.limit_log.counts.get(BLOCK, {}))


def loops() -> list[Any]:
    factories: list[Any] = [pytest.param(None, id="asyncio")]
    try:
        import uvloop
    except ImportError:
        return factories
    return [*factories, pytest.param(uvloop.new_event_loop, id="uvloop")]


@pytest.mark.parametrize("loop_factory", loops())
def test_waiting_connections_start_in_turn_and_their_handshake_timeout_counts_from_then(
    tmp_path: Path, loop_factory: Callable[[], asyncio.AbstractEventLoop] | None
) -> None:
    async def scenario(service: ChatService) -> None:
        began = time.monotonic()
        peers = [await connect_and_hello(service) for _ in range(3)]
        await until(lambda: len(service.links) == 3, "three connections accepted")
        assert len(service.handshake_queue) == 2
        done: list[float] = []

        async def one(peer: Peer) -> None:
            await peer.finish_handshake()
            done.append(time.monotonic() - began)

        await asyncio.gather(*(one(peer) for peer in peers))
        # One started at once, then 4 a second: the third waited at least half a second, past
        # the 0.3 s handshake timeout, which therefore counted from its turn, not from accept.
        assert sorted(done)[2] >= 0.5 - 0.01, done
        assert len(service.handshake_queue) == 0
        assert counts(service) == {}
        for peer in peers:
            peer.close()

    run(
        tmp_path,
        scenario,
        loop_factory,
        handshake_rate=4.0,
        handshake_rate_burst=1,
        handshake_timeout=0.3,
    )


@pytest.mark.parametrize("loop_factory", loops())
def test_a_waiting_connection_is_not_answered_and_is_refused_after_its_wait_limit(
    tmp_path: Path, loop_factory: Callable[[], asyncio.AbstractEventLoop] | None
) -> None:
    async def scenario(service: ChatService) -> None:
        service.handshake_queue.pacer.max_wait = 0.5
        first = await connect_and_hello(service)
        await until(lambda: len(service.pending) == 1, "the first handshake started")
        began = time.monotonic()
        waiting = await connect_and_hello(service)
        await until(lambda: len(service.handshake_queue) == 1, "the second waits")
        # Nothing but the refusal: its ClientHello was never answered (no signature made).
        assert await waiting.read_to_end() == SERVER_BUSY
        assert time.monotonic() - began >= 0.5
        await until(lambda: len(service.links) == 1, "the refused one forgotten")
        assert counts(service) == {WAITED_TOO_LONG: 1}
        for peer in (first, waiting):
            peer.close()

    run(tmp_path, scenario, loop_factory, handshake_rate=0.01, handshake_rate_burst=1)


@pytest.mark.parametrize("loop_factory", loops())
def test_a_connection_that_hangs_up_while_waiting_leaves_the_queue(
    tmp_path: Path, loop_factory: Callable[[], asyncio.AbstractEventLoop] | None
) -> None:
    async def scenario(service: ChatService) -> None:
        first = await connect_and_hello(service)
        await until(lambda: len(service.pending) == 1, "the first handshake started")
        gone = await connect_and_hello(service)
        third = await connect_and_hello(service)
        await until(lambda: len(service.handshake_queue) == 2, "two wait")
        gone.close()
        await until(lambda: len(service.handshake_queue) == 1, "the one that hung up left")
        await until(lambda: len(service.links) == 2, "and is forgotten")
        assert counts(service) == {LEFT_WAITING: 1}
        # The other still waits, unanswered.
        with pytest.raises(TimeoutError):
            await third.recv(timeout=0.2)
        for peer in (first, third):
            peer.close()

    run(tmp_path, scenario, loop_factory, handshake_rate=0.01, handshake_rate_burst=1)


def test_past_max_unauthenticated_a_newcomer_that_would_wait_is_refused(tmp_path: Path) -> None:
    async def scenario(service: ChatService) -> None:
        first = await connect_and_hello(service)
        await until(lambda: len(service.pending) == 1, "the first handshake started")
        waiting = await connect_and_hello(service)
        await until(lambda: len(service.handshake_queue) == 1, "the second waits")
        refused = await connect_and_hello(service)
        assert await refused.read_to_end() == SERVER_BUSY
        assert counts(service) == {"too many handshakes waiting": 1}
        # The ones there before are untouched.
        assert len(service.pending) == 1 and len(service.handshake_queue) == 1
        for peer in (first, waiting, refused):
            peer.close()

    run(tmp_path, scenario, handshake_rate=0.01, handshake_rate_burst=1, max_unauthenticated=2)


def test_a_reload_to_a_higher_rate_starts_the_waiting_sooner(tmp_path: Path) -> None:
    async def scenario(service: ChatService) -> None:
        first = await connect_and_hello(service)
        await until(lambda: len(service.pending) == 1, "the first handshake started")
        second = await connect_and_hello(service)
        await until(lambda: len(service.handshake_queue) == 1, "the second waits")
        faster = ServerSettings(
            host=HOST, port=0, data_dir=service.settings.data_dir, handshake_rate=100.0
        )
        service.apply_settings(faster, service.chat.settings)
        # At 0.01 a second its turn was 100 s away; now it comes within a tick.
        await asyncio.wait_for(second.finish_handshake(), 2.0)
        for peer in (first, second):
            peer.close()

    run(tmp_path, scenario, handshake_rate=0.01, handshake_rate_burst=1)


def test_stopping_the_server_refuses_the_waiting_connections(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(service: ChatService) -> None:
        first = await connect_and_hello(service)
        await until(lambda: len(service.pending) == 1, "the first handshake started")
        waiting = await connect_and_hello(service)
        await until(lambda: len(service.handshake_queue) == 1, "the second waits")
        stopping = asyncio.ensure_future(service.stop())
        assert await waiting.read_to_end() == SERVER_BUSY
        await asyncio.wait_for(stopping, DEADLINE)
        assert len(service.handshake_queue) == 0 and not service.links
        for peer in (first, waiting):
            peer.close()

    with caplog.at_level(logging.INFO, logger="tlschat.server"):
        run(tmp_path, scenario, handshake_rate=0.01, handshake_rate_burst=1)
    messages = [record.getMessage() for record in caplog.records]
    assert any(
        message.startswith(f"[LIMIT] {BLOCK}: 1 connection refused (the server is shutting down)")
        for message in messages
    ), messages


def test_what_uvloop_reads_before_a_waiting_connection_pauses_is_bounded(tmp_path: Path) -> None:
    uvloop = pytest.importorskip("uvloop")

    async def scenario(service: ChatService) -> None:
        first = await connect_and_hello(service)
        await until(lambda: len(service.pending) == 1, "the first handshake started")
        # A ClientHello and then far more than any client sends before the server answers, all
        # in the kernel before the server accepts: uvloop reads it at once, whatever was asked.
        flood = await connect_and_hello(service, trailer=bytes(MAX_HELD_WHILE_WAITING))
        assert await flood.read_to_end() == SERVER_BUSY
        await until(lambda: len(service.links) == 1, "the refused one forgotten")
        assert counts(service) == {"too much data before its handshake": 1}
        assert len(service.handshake_queue) == 0
        for peer in (first, flood):
            peer.close()

    run(tmp_path, scenario, uvloop.new_event_loop, handshake_rate=0.01, handshake_rate_burst=1)
