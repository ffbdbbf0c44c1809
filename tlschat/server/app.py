"""The asyncio server: accepts connections and drives protocol + chat for each. Thin glue."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import logging
import signal
import socket
import time
from collections.abc import Callable
from typing import Any, cast

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
    PeerIdentity,
    ProtocolError,
    ServerConnection,
)
from ..protocol.alerts import AlertDescription
from ..store import SQLiteStore
from ..store.base import Store
from ..store.memory import MemoryStore
from .config import ServerSettings
from .keys import load_or_create_server_identity
from .limits import (
    FAILED_HANDSHAKE,
    LIMIT_LOG_INTERVAL,
    NO_HELLO,
    NOFILE_RESERVE,
    HandshakeBuckets,
    LimitLog,
    address_block,
    fit_max_connections,
    open_file_limit,
)
from .retention import RetentionTimer

log = logging.getLogger("tlschat.server")

# The kernel's send buffer for each client, so that max_write_buffer (our own queue) is what
# bounds the memory a client that stops reading can hold, not an autotuned few megabytes.
KERNEL_SEND_BUFFER = 256 * 1024
SHUTDOWN_GRACE = 3.0
# How long a closing connection may take to write what is left before it is cut off.
CLOSE_GRACE = 1.0
DATABASE_FILE = "chat.db"
UNKNOWN_PEER = "(unknown)"


class ClientLink(asyncio.Protocol):
    """One accepted socket and its protocol connection: asyncio calls it as bytes arrive.

    A protocol rather than a stream reader and a task per client: an idle connection then costs
    this object, its transport and the sans-IO connection, and a read costs no coroutine switch.
    """

    def __init__(self, service: ChatService) -> None:
        self.service = service
        self.transport: asyncio.Transport | None = None
        self.connection: ServerConnection  # made in connection_made, by ChatService.accept
        self.session_id = 0
        self.peer = UNKNOWN_PEER
        self.address = ""
        self.block = ""  # the address block, which the per-block limits count
        self.fingerprint = ""  # once the handshake completed and the key's cap admitted it
        self.hello_due: float | None = None  # after the handshake, until a hello arrives
        self.handshaken = False
        self.bye_reason = ""  # why we ended it, when we did
        self.end_reason = "quit"  # why it ended otherwise
        self.registered = False
        self.pinged_at: float | None = None
        self.active_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._ending = False

    # ----- asyncio's calls -----

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's does not derive from asyncio.Transport, hence the cast).
        self.transport = cast(asyncio.Transport, transport)
        self.service.accept(self)

    def data_received(self, data: bytes) -> None:
        if self._ending:
            return
        self.active_at = self.service.loop.time()
        self.pinged_at = None
        self._guard(lambda: self.connection.receive_data(data))

    def eof_received(self) -> bool:
        # After our bye or our own end, the peer hanging up is no truncation.
        if not self.bye_reason and not self._ending:
            self._guard(self.connection.receive_eof)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and not self._ending:
            self.end_reason = "connection lost"
            log.info("[!] %s: connection lost (%s)", self.peer, exc)
        self._ending = True
        if self._timer is not None:
            self._timer.cancel()
        self.service.forget(self)

    def pause_writing(self) -> None:
        # The client reads slower than it is written to: stop reading what it sends until it
        # catches up (its own output is bounded by max_write_buffer in flush).
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
        self.service.account_output(self)

    # ----- ours -----

    def _guard(self, step: Callable[[], list[Event]]) -> None:
        """Run one step of the protocol; any failure ends this connection, never the server."""
        connection = self.connection
        try:
            events = step()
            self.service.handle_events(self, events)
            self.flush()
            if any(isinstance(event, ConnectionClosed) for event in events):
                self.end()
        except ProtocolError as error:
            self.end_reason = f"protocol error: {error.alert.name}"
            log.info("[!] %s: %s", self.peer, error)
            self.end()
        except Exception as error:
            # A bug must cost one connection, never the server or a silent hang.
            self.end_reason = "internal error"
            log.error("[!] %s: internal error %s: %s", self.peer, type(error).__name__, error)
            log.debug("details", exc_info=True)
            connection.abort(AlertDescription.internal_error, "server error")
            self.end()

    def flush(self) -> None:
        transport = self.transport
        data = self.connection.data_to_send()
        if not data or transport is None or transport.is_closing():
            return
        transport.write(data)
        if transport.get_write_buffer_size() > self.service.settings.max_write_buffer:
            self.drop_slow_reader("")
        else:
            self.service.account_output(self)

    def queued(self) -> int:
        """Bytes written and not yet taken by the kernel: what this client holds of our memory."""
        transport = self.transport
        return (
            0 if transport is None or transport.is_closing() else transport.get_write_buffer_size()
        )

    def drop_slow_reader(self, why: str) -> None:
        log.warning("[!] %s stopped reading%s; disconnecting", self.peer, why)
        self.bye_reason = "stopped reading"
        self._ending = True
        if self.transport is not None:
            self.transport.abort()

    def end(self) -> None:
        """Write what is pending, then close; a peer that does not take it is cut off."""
        self.flush()
        self._ending = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
            self.service.loop.call_later(CLOSE_GRACE, self.transport.abort)

    def rearm_timer(self) -> None:
        """For a due time that moved earlier (the timer only ever moves it later itself)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.arm_timer()

    def arm_timer(self) -> None:
        """One timer per connection, re-armed only when it fires: reads do not touch it."""
        due = self._due()
        if due is not None and not self._ending:
            self._timer = self.service.loop.call_at(due, self._on_timer)

    def _due(self) -> float | None:
        connection = self.connection
        settings = self.service.settings
        if connection.deadline is not None:
            return connection.deadline
        if not connection.is_connected:
            return None
        if self.pinged_at is not None:
            due = self.pinged_at + settings.ping_timeout
        else:
            due = self.active_at + settings.idle_timeout
        if self.hello_due is not None:
            return min(due, self.hello_due)
        return due

    def _on_timer(self) -> None:
        self._timer = None
        loop = self.service.loop
        due = self._due()
        if due is not None and loop.time() < due:
            self.arm_timer()  # there was traffic since: not due yet
            return
        connection = self.connection
        if connection.deadline is not None:
            self._guard(lambda: connection.handle_timer(loop.time()))
        elif self.hello_due is not None and loop.time() >= self.hello_due:
            timeout = self.service.settings.hello_timeout
            log.debug("[!] %s: no hello within %g s; closing", self.peer, timeout)
            self.service.limit_log.count(self.block, NO_HELLO, loop.time())
            self.hello_due = None
            self.service.deliver([(self.session_id, bye_frame(f"no hello within {timeout:g} s"))])
            self.end()
            return
        elif self.pinged_at is not None:
            self.service.deliver([(self.session_id, bye_frame("idle: no answer to ping"))])
            self.end()
            return
        elif connection.is_connected:
            self.pinged_at = loop.time()
            self.service.deliver([(self.session_id, {"type": "ping"})])
        self.arm_timer()


class ChatService:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        # First the data directory (0700) and the key: a key file others can read stops the
        # server before it writes anything.
        self.key, self.certificate, self.key_created = load_or_create_server_identity(
            settings.data_dir
        )
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
        self.chat = ChatServer(
            settings.chat_settings(),
            store,
            node,
            self.broker.publish,
            network=self.key.fingerprint,
        )
        self.links: dict[int, ClientLink] = {}
        # Handshakes in progress, oldest first: when there are too many, the oldest is dropped,
        # since a real client finishes in milliseconds and a slowloris never does.
        self.pending: dict[int, ClientLink] = {}
        self.per_address: collections.Counter[str] = collections.Counter()
        self.per_block: collections.Counter[str] = collections.Counter()
        self.per_key: collections.Counter[str] = collections.Counter()
        self.handshakes = HandshakeBuckets(settings.handshakes_per_block, settings.handshake_burst)
        self.limit_log = LimitLog()
        self._tick: asyncio.TimerHandle | None = None
        self.retention: RetentionTimer | None = None
        self._unflushed: dict[int, ClientLink] = {}
        # Bytes queued for each client as last seen, and their sum: the server-wide output budget.
        self.queued: dict[int, int] = {}
        self.queued_total = 0
        self._flush_scheduled = False
        self._ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._config: ConnectionConfig | None = None
        self._all_gone = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.port = settings.port

    async def start(self) -> None:
        key, certificate = self.key, self.certificate
        action = "Created" if self.key_created else "Loaded"
        log.info("[KEY] %s server key %s", action, self.settings.data_dir / "server_key.pem")
        log.info("[KEY] Server fingerprint %s", key.fingerprint)
        self._fit_open_file_limit()
        await self.broker.start(self.chat, self.deliver)
        self.retention = RetentionTimer(self.chat.store, self.settings.retention(), self.loop)
        self.retention.start()
        self._config = ConnectionConfig(
            identity=key,
            certificate_der=certificate,
            handshake_timeout=self.settings.handshake_timeout,
            max_message=MAX_FRAME,
        )
        self._server = await self.loop.create_server(
            lambda: ClientLink(self), self.settings.host, self.settings.port
        )
        self.port = self._server.sockets[0].getsockname()[1]
        loop_module = type(asyncio.get_running_loop()).__module__.split(".")[0]
        log.info("[LOOP] Event loop: %s", "uvloop" if loop_module == "uvloop" else "asyncio")
        log.info("[LISTENING] Server on %s:%d", self.settings.host, self.port)
        self._tick = self.loop.call_later(LIMIT_LOG_INTERVAL, self._on_tick)

    def _fit_open_file_limit(self) -> None:
        """Keep max_connections under the open-file limit (raised first, if it may be)."""
        soft, _ = open_file_limit()
        configured = self.settings.max_connections
        fitted = fit_max_connections(configured, soft)
        if fitted < configured:
            log.warning(
                "[LIMIT] max_connections lowered from %d to %d: the open-file limit is %d and "
                "%d files are kept for the listening socket, the database, logs and the broker",
                configured,
                fitted,
                soft,
                NOFILE_RESERVE,
            )
            self.settings = dataclasses.replace(self.settings, max_connections=fitted)

    def _on_tick(self) -> None:
        """Every LIMIT_LOG_INTERVAL: the per-block summaries, and idle blocks forgotten."""
        now = self.loop.time()
        self.limit_log.flush(now)
        self.handshakes.evict_idle(now)
        self._tick = self.loop.call_later(LIMIT_LOG_INTERVAL, self._on_tick)

    async def stop(self) -> None:
        """Stop accepting, send close_notify to everyone, wait briefly for their answers."""
        if self._server is not None:
            self._server.close()
        if self._tick is not None:
            self._tick.cancel()
        for link in list(self.links.values()):
            connection = link.connection
            with contextlib.suppress(RuntimeError):
                if connection.is_connected:
                    connection.send_data(encode_frame(notice_frame("server is shutting down")))
            connection.close()
            link.flush()
        if self.links:
            self._all_gone.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_gone.wait(), SHUTDOWN_GRACE)
        for link in list(self.links.values()):
            if link.transport is not None:
                link.transport.abort()
        # Let each see its connection end (connection_lost comes in a later loop pass).
        if self.links:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_gone.wait(), SHUTDOWN_GRACE)
        await self.broker.stop()
        if self.retention is not None:
            self.retention.stop()
        self.chat.store.close()
        self.limit_log.flush(self.loop.time())
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

    def account_output(self, link: ClientLink) -> None:
        """Record what ``link`` has queued; past the server's budget, shed the clients that hold
        the most until the rest fits (a client that reads keeps its queue near zero)."""
        size = link.queued() if link.registered else 0
        self.queued_total += size - self.queued.get(link.session_id, 0)
        if size:
            self.queued[link.session_id] = size
        else:
            self.queued.pop(link.session_id, None)
        if self.queued_total > self.settings.max_total_write_buffer:
            self._shed_output()

    def _shed_output(self) -> None:
        """The recorded sizes may be stale (the kernel took more meanwhile): look again, then
        drop the biggest holders until the total is within the budget."""
        for session_id in list(self.queued):
            link = self.links.get(session_id)
            size = link.queued() if link is not None else 0
            if size:
                self.queued[session_id] = size
            else:
                del self.queued[session_id]
        self.queued_total = sum(self.queued.values())
        budget = self.settings.max_total_write_buffer
        for session_id in sorted(self.queued, key=lambda held: -self.queued[held]):
            if self.queued_total <= budget:
                break
            link = self.links.get(session_id)
            if link is not None:
                why = f" (over the server's output budget: {self.queued_total} bytes queued)"
                link.drop_slow_reader(why)
            self.queued_total -= self.queued.pop(session_id)

    def _flush_all(self) -> None:
        """Write what this event-loop pass queued for each client: one record and one write
        per client for a burst of messages, instead of one per message."""
        self._flush_scheduled = False
        unflushed, self._unflushed = self._unflushed, {}
        for link in unflushed.values():
            link.flush()

    def _refusal(self, link: ClientLink) -> str:
        """Why a new connection is not served, or "". Decided on accept, before the ClientHello
        is read: a refused connection costs no signature."""
        settings = self.settings
        if len(self.links) >= settings.max_connections:
            return "the server is full"
        if self.per_address[link.address] >= settings.max_connections_per_ip:
            return "too many connections from your address"
        if self.per_block[link.block] >= settings.max_connections_per_block:
            return "too many connections from your address block"
        if not self.handshakes.admit(link.block, self.loop.time()):
            return "handshake rate"
        return ""

    def _refuse(self, link: ClientLink, reason: str, *, summarized: bool = False) -> None:
        """End a connection that is not served, with server_busy (plaintext before keys).

        ``summarized``: one refused on accept, counted in its block's periodic summary and
        logged alone only at debug level.
        """
        if summarized:
            log.debug("[!] %s: refused: %s", link.peer, reason)
            self.limit_log.count(link.block, reason, self.loop.time())
        else:
            log.info("[!] %s: refused: %s", link.peer, reason)
        link.bye_reason = f"refused: {reason}"
        link.connection.abort(AlertDescription.server_busy, reason)
        link.end()

    def accept(self, link: ClientLink) -> None:
        """A client connected: serve it, or refuse it if a limit says so."""
        transport = link.transport
        assert transport is not None and self._config is not None
        peername = transport.get_extra_info("peername")
        link.address = str(peername[0]) if peername else ""
        settings = self.settings
        link.block = address_block(link.address, settings.block_prefix_v4, settings.block_prefix_v6)
        link.peer = str(tuple(peername[:2])) if peername else UNKNOWN_PEER
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_SEND_BUFFER)
        link.session_id = next(self._ids)
        link.connection = ServerConnection(self._config, now=self.loop.time())
        link.active_at = self.loop.time()
        refusal = self._refusal(link)
        if refusal:
            self._refuse(link, refusal, summarized=True)
            return
        log.info("[+] Client connected from %s", link.peer)
        link.registered = True
        self.links[link.session_id] = link
        self.per_address[link.address] += 1
        self.per_block[link.block] += 1
        self.pending[link.session_id] = link
        if len(self.pending) > self.settings.max_unauthenticated:
            oldest = next(iter(self.pending.values()))
            self.pending.pop(oldest.session_id)
            self._refuse(oldest, "too many handshakes in progress")
        link.arm_timer()

    def forget(self, link: ClientLink) -> None:
        """A connection ended: its session leaves the chat."""
        if not link.registered:
            return
        link.registered = False
        reason = link.bye_reason or link.end_reason
        self.links.pop(link.session_id, None)
        self.pending.pop(link.session_id, None)
        self._unflushed.pop(link.session_id, None)
        self.queued_total -= self.queued.pop(link.session_id, 0)
        self.per_address[link.address] -= 1
        if not self.per_address[link.address]:
            del self.per_address[link.address]
        self.per_block[link.block] -= 1
        if not self.per_block[link.block]:
            del self.per_block[link.block]
        if link.fingerprint:
            self.per_key[link.fingerprint] -= 1
            if not self.per_key[link.fingerprint]:
                del self.per_key[link.fingerprint]
        elif not link.handshaken and not link.bye_reason.startswith("refused"):
            self.limit_log.count(link.block, FAILED_HANDSHAKE, self.loop.time())
        self.deliver(self.chat.disconnect(link.session_id, reason))
        log.info("[-] Client %s disconnected (%s)", link.peer, reason)
        if not self.links:
            self._all_gone.set()

    def handle_events(self, link: ClientLink, events: list[Event]) -> None:
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
                link.handshaken = True
                self._admit_session(link, event.peer)
                link.rearm_timer()  # from the handshake's deadline to the hello or idle timeout
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

    def _admit_session(self, link: ClientLink, identity: PeerIdentity) -> None:
        """A handshake completed: a session of this key, unless the key has too many."""
        cap = self.settings.max_sessions_per_key
        if self.per_key[identity.fingerprint] >= cap:
            self.limit_log.count(link.block, "too many sessions of one key", self.loop.time())
            self.deliver([(link.session_id, bye_frame(f"too many sessions of your key ({cap})"))])
            return
        link.fingerprint = identity.fingerprint
        self.per_key[identity.fingerprint] += 1
        link.hello_due = self.loop.time() + self.settings.hello_timeout
        self.deliver(self.chat.connect(link.session_id, identity, link.peer, time.time()))

    def _on_frame(self, link: ClientLink, data: bytes, now: float) -> list[Outgoing]:
        try:
            frame: dict[str, Any] = decode_frame(data)
        except FrameError as error:
            return [(link.session_id, error_frame(str(error)))]
        if not link.fingerprint:
            return []  # refused by its key's cap: its bye is on the way
        if frame.get("type") == "hello":
            link.hello_due = None
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
