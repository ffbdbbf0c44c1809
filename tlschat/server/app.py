"""The asyncio server: accepts connections and drives protocol + chat for each. Thin glue."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import signal
import socket
import time
from typing import Any

from ..broker import Broker, LocalBroker
from ..chat.frames import MAX_FRAME, FrameError, decode_frame, encode_frame
from ..chat.server import ChatServer, Outgoing, bye_frame, error_frame, notice_frame
from ..protocol import (
    ConnectionClosed,
    ConnectionConfig,
    DataReceived,
    Event,
    HandshakeComplete,
    HandshakeStep,
    KeyUpdated,
    ProtocolError,
    ServerConnection,
)
from ..protocol.alerts import AlertDescription
from ..store import SQLiteStore
from ..store.base import Store
from ..store.memory import MemoryStore
from .config import ServerSettings
from .keys import load_or_create_server_identity

log = logging.getLogger("tlschat.server")

READ_SIZE = 65536
# The kernel's send buffer for each client, so that max_write_buffer (our own queue) is what
# bounds the memory a client that stops reading can hold, not an autotuned few megabytes.
KERNEL_SEND_BUFFER = 256 * 1024
SHUTDOWN_GRACE = 3.0
DATABASE_FILE = "chat.db"


class ClientLink:
    """One accepted socket and its protocol connection."""

    def __init__(
        self, session_id: int, connection: ServerConnection, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        self.session_id = session_id
        self.connection = connection
        self.writer = writer
        self.peer = peer
        self.finished = asyncio.Event()
        self.bye_reason = ""
        self.pinged = False

    def flush(self, max_buffer: int) -> None:
        data = self.connection.data_to_send()
        if not data or self.writer.is_closing():
            return
        self.writer.write(data)
        if self.writer.transport.get_write_buffer_size() > max_buffer:
            log.warning("[!] %s stopped reading; disconnecting", self.peer)
            self.bye_reason = "stopped reading"
            self.writer.transport.abort()


class ChatService:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.broker: Broker
        store: Store
        node = "local"
        if settings.broker:
            from ..broker.redis import RedisBroker

            redis_broker = RedisBroker(settings.broker, settings.history)
            self.broker, node = redis_broker, redis_broker.node
            store = MemoryStore(settings.history)  # the cluster's replica, loaded from Redis
        else:
            self.broker = LocalBroker()
            store = SQLiteStore(settings.data_dir / DATABASE_FILE)
        self.chat = ChatServer(settings.chat_settings(), store, node, self.broker.publish)
        self.links: dict[int, ClientLink] = {}
        # Handshakes in progress, oldest first: when there are too many, the oldest is dropped,
        # since a real client finishes in milliseconds and a slowloris never does.
        self.pending: dict[int, ClientLink] = {}
        self.per_address: collections.Counter[str] = collections.Counter()
        self._unflushed: dict[int, ClientLink] = {}
        self._flush_scheduled = False
        self._ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._config: ConnectionConfig | None = None
        self.port = settings.port

    async def start(self) -> None:
        key, certificate, created = load_or_create_server_identity(self.settings.data_dir)
        action = "Created" if created else "Loaded"
        log.info("[KEY] %s server key %s", action, self.settings.data_dir / "server_key.pem")
        log.info("[KEY] Server fingerprint %s", key.fingerprint)
        await self.broker.start(self.chat, self.deliver)
        self._config = ConnectionConfig(
            identity=key,
            certificate_der=certificate,
            handshake_timeout=self.settings.handshake_timeout,
            max_message=MAX_FRAME,
        )
        self._server = await asyncio.start_server(
            self._handle, self.settings.host, self.settings.port, limit=READ_SIZE
        )
        self.port = self._server.sockets[0].getsockname()[1]
        loop_module = type(asyncio.get_running_loop()).__module__.split(".")[0]
        log.info("[LOOP] Event loop: %s", "uvloop" if loop_module == "uvloop" else "asyncio")
        log.info("[LISTENING] Server on %s:%d", self.settings.host, self.port)

    async def stop(self) -> None:
        """Stop accepting, send close_notify to everyone, wait briefly for their answers."""
        if self._server is not None:
            self._server.close()
        for link in list(self.links.values()):
            connection = link.connection
            with contextlib.suppress(RuntimeError):
                if connection.is_connected:
                    connection.send_data(encode_frame(notice_frame("server is shutting down")))
            connection.close()
            link.flush(self.settings.max_write_buffer)
        waiters = [link.finished.wait() for link in self.links.values()]
        if waiters:
            await asyncio.wait([asyncio.ensure_future(w) for w in waiters], timeout=SHUTDOWN_GRACE)
        stragglers = list(self.links.values())
        for link in stragglers:
            link.writer.transport.abort()
        # Let their handlers see the connection end; left to asyncio.run's cancellation they
        # would log "disconnected (quit)" and, on Python 3.11, a CancelledError traceback.
        if stragglers:
            await asyncio.wait(
                [asyncio.ensure_future(link.finished.wait()) for link in stragglers],
                timeout=SHUTDOWN_GRACE,
            )
        await self.broker.stop()
        self.chat.store.close()
        log.info("[SHUTDOWN] Server stopped")

    def deliver(self, outgoing: list[Outgoing]) -> None:
        encoded: dict[int, bytes] = {}
        for session_id, frame in outgoing:
            link = self.links.get(session_id)
            if link is None or not link.connection.is_connected:
                continue
            if link.connection.close_notify_sent:
                continue
            data = encoded.get(id(frame))
            if data is None:
                data = encoded[id(frame)] = encode_frame(frame)
            link.connection.send_data(data)
            if frame["type"] == "bye":
                link.bye_reason = str(frame.get("reason", ""))
                link.connection.close()
            self._unflushed[link.session_id] = link
        if self._unflushed and not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_all)

    def _flush_all(self) -> None:
        """Write what this event-loop pass queued for each client: one record and one write
        per client for a burst of messages, instead of one per message."""
        self._flush_scheduled = False
        unflushed, self._unflushed = self._unflushed, {}
        for link in unflushed.values():
            link.flush(self.settings.max_write_buffer)

    def _refusal(self, address: str) -> str:
        if len(self.links) >= self.settings.max_connections:
            return "the server is full"
        if self.per_address[address] >= self.settings.max_connections_per_ip:
            return "too many connections from your address"
        return ""

    def _refuse(self, link: ClientLink, reason: str) -> None:
        """End a connection that is not served, with server_busy (plaintext before keys)."""
        log.info("[!] %s: refused: %s", link.peer, reason)
        link.bye_reason = f"refused: {reason}"
        link.connection.abort(AlertDescription.server_busy, reason)
        link.flush(self.settings.max_write_buffer)
        link.writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        peername = writer.get_extra_info("peername")
        address = str(peername[0]) if peername else ""
        peer = str(tuple(peername[:2])) if peername else "(unknown)"
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_SEND_BUFFER)
        assert self._config is not None
        connection = ServerConnection(self._config, now=loop.time())
        link = ClientLink(next(self._ids), connection, writer, peer)
        refusal = self._refusal(address)
        if refusal:
            self._refuse(link, refusal)
            return
        log.info("[+] Client connected from %s", peer)
        self.links[link.session_id] = link
        self.per_address[address] += 1
        self.pending[link.session_id] = link
        if len(self.pending) > self.settings.max_unauthenticated:
            oldest = next(iter(self.pending.values()))
            self.pending.pop(oldest.session_id)
            self._refuse(oldest, "too many handshakes in progress")
        reason = "quit"
        try:
            await self._serve(link, reader)
        except ProtocolError as error:
            reason = f"protocol error: {error.alert.name}"
            log.info("[!] %s: %s", peer, error)
            link.flush(self.settings.max_write_buffer)
        except (ConnectionError, OSError) as error:
            reason = "connection lost"
            log.info("[!] %s: connection lost (%s)", peer, error)
        except Exception as error:
            # A bug must cost one connection, never the server or a silent hang.
            reason = "internal error"
            log.error("[!] %s: internal error %s: %s", peer, type(error).__name__, error)
            log.debug("details", exc_info=True)
            connection.abort(AlertDescription.internal_error, "server error")
            link.flush(self.settings.max_write_buffer)
        finally:
            link.flush(self.settings.max_write_buffer)
            reason = link.bye_reason or reason
            self.links.pop(link.session_id, None)
            self.pending.pop(link.session_id, None)
            self.per_address[address] -= 1
            if not self.per_address[address]:
                del self.per_address[address]
            self.deliver(self.chat.disconnect(link.session_id, reason))
            with contextlib.suppress(ConnectionError, OSError):
                await asyncio.wait_for(writer.drain(), timeout=1.0)
            writer.close()
            link.finished.set()
            log.info("[-] Client %s disconnected (%s)", peer, reason)

    async def _serve(self, link: ClientLink, reader: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        connection = link.connection
        settings = self.settings
        while True:
            if connection.deadline is not None:
                timeout: float | None = connection.deadline - loop.time()
            elif connection.is_connected:
                timeout = settings.ping_timeout if link.pinged else settings.idle_timeout
            else:
                timeout = None
            try:
                # asyncio.timeout schedules one timer; wait_for would also wrap each read in a task.
                async with asyncio.timeout(timeout):
                    data = await reader.read(READ_SIZE)
            except TimeoutError:
                if connection.deadline is not None:
                    connection.handle_timer(loop.time())
                    continue
                if link.pinged:
                    self.deliver([(link.session_id, bye_frame("idle: no answer to ping"))])
                    return
                link.pinged = True
                self.deliver([(link.session_id, {"type": "ping"})])
                continue
            link.pinged = False
            if not data and link.bye_reason:
                return  # we ended it ourselves (e.g. aborted a slow reader): not a truncation
            events = connection.receive_data(data) if data else connection.receive_eof()
            self._handle_events(link, events)
            link.flush(self.settings.max_write_buffer)
            if not data or any(isinstance(e, ConnectionClosed) for e in events):
                return
            await link.writer.drain()

    def _handle_events(self, link: ClientLink, events: list[Event]) -> None:
        # The trace lines of one read are logged in one call: logging costs as much per call as
        # a good part of the handshake's own crypto.
        trace: list[str] = []
        for event in events:
            if isinstance(event, HandshakeStep):
                prefix = f"Step {event.step}: " if event.step else ""
                trace.append(f"[TLS] {prefix}{event.text}")
                continue
            if isinstance(event, HandshakeComplete):
                trace.append(f"[TLS] Client {link.peer} identity {event.peer.fingerprint}")
            if trace:
                log.info("%s", "\n".join(trace))
                trace.clear()
            if isinstance(event, HandshakeComplete):
                self.pending.pop(link.session_id, None)
                self.deliver(self.chat.connect(link.session_id, event.peer, link.peer, time.time()))
            elif isinstance(event, DataReceived):
                self.deliver(self._on_frame(link, event.data, time.time()))
            elif isinstance(event, KeyUpdated):
                log.debug(
                    "[TLS] %s %s key updated (generation %d)",
                    link.peer,
                    event.direction,
                    event.generation,
                )
        if trace:
            log.info("%s", "\n".join(trace))

    def _on_frame(self, link: ClientLink, data: bytes, now: float) -> list[Outgoing]:
        try:
            frame: dict[str, Any] = decode_frame(data)
        except FrameError as error:
            return [(link.session_id, error_frame(str(error)))]
        return self.chat.receive(link.session_id, frame, now)


async def serve(settings: ServerSettings) -> None:
    """Run until SIGINT or SIGTERM, then shut down cleanly."""
    service = ChatService(settings)
    await service.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("[SHUTDOWN] Signal received; closing connections")
    await service.stop()
