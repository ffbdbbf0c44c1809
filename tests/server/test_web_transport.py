"""The web port in a real ChatService (server/web.py, server/web_transport.py): a WebSocket
session is served by the same ClientLink as a TCP one, under the same limits, pacing, timeouts
and output bounds; the files come from a fixture directory; connections still opening are
bounded too.

The clients are websockets' asyncio client and plain sockets, on loopback, in the server's event
loop; every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection as WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tlschat.chat.frames import MAX_FRAME, decode_frame, encode_frame
from tlschat.protocol import (
    ClientConnection,
    ConnectionConfig,
    DataReceived,
    HandshakeComplete,
    IdentityKey,
    ServerAuthenticated,
)
from tlschat.server import web
from tlschat.server.app import ChatService
from tlschat.server.web_transport import WebSocketTransport

from . import test_handshake_queue as queue_tests
from .test_handshake_queue import DEADLINE, HOST, SERVER_BUSY, until

HANDSHAKE_TIMEOUT = bytes.fromhex("15 0001 0002 02 ca")
INDEX = b"<!doctype html><title>fixture</title>"


def run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scenario: Callable[[ChatService], Awaitable[None]],
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
    **settings: Any,
) -> None:
    """``scenario`` against a ChatService with a web port, serving a fixture directory, on the
    loop made by ``loop_factory`` (asyncio's own by default)."""
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_bytes(INDEX)
    monkeypatch.setattr(web, "STATIC_ROOT", static)

    queue_tests.run(tmp_path, scenario, loop_factory, web=f"{HOST}:0", **settings)


def web_port(service: ChatService) -> int:
    assert service.web is not None
    return int(service.web.url.rsplit(":", 1)[1].rstrip("/"))


async def open_ws(service: ChatService, **options: Any) -> WebSocket:
    uri = f"ws://{HOST}:{web_port(service)}/ws"
    return await connect(uri, proxy=None, compression=None, max_size=None, **options)


class WebPeer:
    """A protocol client over a WebSocket, in the server's loop."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.client = ClientConnection(
            ConnectionConfig(identity=IdentityKey.generate("ed25519"), max_message=MAX_FRAME),
            now=time.monotonic(),
        )
        self.frames: list[dict[str, Any]] = []

    async def send_pending(self) -> None:
        data = self.client.data_to_send()
        if data:
            await self.ws.send(data)

    async def join(self, nick: str) -> None:
        self.client.start_handshake()
        await self.send_pending()
        connected = False
        while not connected:
            events = self.client.receive_data(await self.recv())
            for event in events:
                if isinstance(event, ServerAuthenticated):
                    events += self.client.trust_server()
                connected = connected or isinstance(event, HandshakeComplete)
            await self.send_pending()
        self.client.send_data(encode_frame({"type": "hello", "nick": nick}))
        await self.send_pending()
        await self.next_frame("welcome")

    async def recv(self) -> bytes:
        message = await asyncio.wait_for(self.ws.recv(), DEADLINE)
        assert isinstance(message, bytes)
        return message

    async def next_frame(self, kind: str) -> dict[str, Any]:
        while True:
            for event in self.client.receive_data(await self.recv()):
                if isinstance(event, DataReceived):
                    frame = decode_frame(event.data)
                    if frame["type"] == kind:
                        return frame


def web_links(service: ChatService) -> list[Any]:
    return [
        link for link in service.links.values() if isinstance(link.transport, WebSocketTransport)
    ]


def loop_factories() -> list[Any]:
    """asyncio's loop, and uvloop's (the server's --event-loop uvloop) when it is installed."""
    factories = [pytest.param(None, id="asyncio")]
    with contextlib.suppress(ImportError):
        import uvloop

        factories.append(pytest.param(uvloop.new_event_loop, id="uvloop"))
    return factories


@pytest.mark.parametrize("loop_factory", loop_factories())
def test_a_websocket_session_is_counted_and_served_as_a_tcp_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loop_factory: Any
) -> None:
    async def scenario(service: ChatService) -> None:
        peer = WebPeer(await open_ws(service))
        await peer.join("webby")
        [link] = web_links(service)
        assert (link.address, link.block) == (HOST, "127.0.0.0/24")
        assert service.per_address[HOST] == 1 and service.online() == 1
        assert link.peer == str(peer.ws.local_address[:2])
        peer.client.send_data(encode_frame({"type": "command", "name": "rooms", "args": ""}))
        await peer.send_pending()
        await peer.next_frame("info")
        peer.client.close()
        await peer.send_pending()
        await until(lambda: not service.links, "the session to end")
        assert link.end_reason == "quit" and service.per_address == {}
        await peer.ws.close()

    run(tmp_path, monkeypatch, scenario, loop_factory)


def test_the_files_come_from_the_static_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(service: ChatService) -> None:
        reader, writer = await asyncio.open_connection(HOST, web_port(service))
        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), DEADLINE)  # until the server closes
        writer.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and body == INDEX
        assert b"\r\nContent-Type: text/html; charset=utf-8\r\n" in head
        assert b"\r\nConnection: close" in head
        assert not service.links  # a request for a file is no chat session

    run(tmp_path, monkeypatch, scenario)


def test_limits_and_handshake_timeout_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(service: ChatService) -> None:
        first, second = await open_ws(service), await open_ws(service)
        third = await open_ws(service)  # the WebSocket opens; the chat refuses it
        assert await asyncio.wait_for(third.recv(), DEADLINE) == SERVER_BUSY
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(third.recv(), DEADLINE)
        assert service.limit_log.counts["127.0.0.0/24"] == {
            "too many connections from your address": 1
        }
        # The two admitted ones never send a ClientHello: handshake_timeout ends them.
        for ws in (first, second):
            assert await asyncio.wait_for(ws.recv(), DEADLINE) == HANDSHAKE_TIMEOUT
        await until(lambda: not service.links, "the silent ones to be dropped")

    run(
        tmp_path,
        monkeypatch,
        scenario,
        max_connections_per_ip=2,
        handshake_timeout=0.5,
    )


def test_a_session_waiting_for_its_handshakes_turn_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(service: ChatService) -> None:
        first = WebPeer(await open_ws(service))
        await first.join("first")  # the one token
        waiting = WebPeer(await open_ws(service))
        waiting.client.start_handshake()
        await waiting.send_pending()
        await until(lambda: len(service.handshake_queue) == 1, "the second to wait")
        [link] = [link for link in web_links(service) if link.held is not None]
        await asyncio.sleep(0.2)
        assert link.held == bytearray()  # its ClientHello is left with websockets, unread
        assert not link.transport.is_reading()
        await first.ws.close()  # it hangs up: its link ends (as truncated)
        await until(lambda: len(service.links) == 1, "the first to be gone")
        await service.stop()
        assert await asyncio.wait_for(waiting.ws.recv(), DEADLINE) == SERVER_BUSY

    run(tmp_path, monkeypatch, scenario, handshake_rate=0.01, handshake_rate_burst=1)


@pytest.mark.parametrize("loop_factory", loop_factories())
def test_a_websocket_that_stops_reading_is_dropped_as_a_slow_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loop_factory: Any
) -> None:
    async def scenario(service: ChatService) -> None:
        peer = WebPeer(await open_ws(service))
        await peer.join("slow")
        [link] = web_links(service)
        # From now on the client reads nothing: websockets stops reading its socket after one
        # message, and its receive window is small; the server's writes back up.
        peer.ws.transport.pause_reading()
        paused: list[bool] = []
        notice = {"type": "notice", "text": "x" * 3000}
        for _ in range(2000):
            if link.session_id not in service.links:
                break
            service.deliver([(link.session_id, notice)])
            await asyncio.sleep(0)
            paused.append(not link.transport.is_reading())
        await until(lambda: not service.links, "the slow reader to be dropped")
        assert link.bye_reason == "stopped reading"
        assert any(paused)  # pause_writing reached the link before the drop
        assert service.outflow.queued_total == 0

    run(tmp_path, monkeypatch, scenario, loop_factory, max_write_buffer=65536)


def test_connections_still_opening_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(service: ChatService) -> None:
        loop = asyncio.get_running_loop()
        port = web_port(service)
        silent = []
        for _ in range(2):
            sock = socket.socket()
            sock.setblocking(False)
            await loop.sock_connect(sock, (HOST, port))
            silent.append(sock)
        assert service.web is not None
        gate = service.web.gate
        await until(lambda: len(gate.opening) == 2, "two opening")
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, (HOST, port))
        # Closed before anything is read or answered.
        assert await asyncio.wait_for(loop.sock_recv(sock, 100), DEADLINE) == b""
        sock.close()
        assert service.limit_log.counts["127.0.0.0/24"] == {"too many web connections opening": 1}
        for sock in silent:
            sock.close()
        await until(lambda: not gate.opening, "the opening ones to be forgotten")
        peer = WebPeer(await open_ws(service))
        await peer.join("after")
        await peer.ws.close()
        await until(lambda: not service.links, "the last to be gone")

    run(tmp_path, monkeypatch, scenario, max_connections_per_ip=2)
