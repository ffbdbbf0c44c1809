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
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..broker import Broker, LocalBroker
from ..chat.frames import MAX_FRAME, FrameError, decode_frame, encode_frame
from ..chat.server.events import ChatServer
from ..chat.server.model import ChatSettings, Outgoing
from ..chat.server.replies import bye_frame, notice_frame
from ..local_files import UnusableFile
from ..protocol import (
    ConnectionConfig,
    DataReceived,
    Event,
    HandshakeComplete,
    HandshakeStep,
    KeyUpdated,
    PeerIdentity,
    ServerConnection,
    State,
)
from ..protocol.alerts import AlertDescription
from ..protocol.connection import framed_message
from ..store import SQLiteStore
from ..store.base import Store
from ..store.memory import MemoryStore
from ..store.sqlite_checkpoint import WalCheckpointer
from .checkpoints import CheckpointTimer
from .config import ServerSettings
from .handshake_queue import HandshakeQueue
from .keys import load_or_create_server_identity
from .limits import (
    LEFT_WAITING,
    LIMIT_LOG_INTERVAL,
    HandshakeBuckets,
    LimitLog,
    address_block,
    failed_handshake,
    fit_to_open_file_limit,
)
from .link import UNKNOWN_PEER, ClientLink
from .logs import CONNECTION, HANDSHAKE, ConnectionSummary
from .outflow import Outflow
from .reload import ConfigSource, Reloader
from .retention import RetentionTimer
from .search_index import SearchIndexTimer
from .standalone_history import warn_of_standalone_history

if TYPE_CHECKING:
    from .web import WebEndpoint

log = logging.getLogger("tlschat.server")

# The kernel's send buffer for each client, so that max_write_buffer (our own queue) is what
# bounds the memory a client that stops reading can hold, not an autotuned few megabytes.
KERNEL_SEND_BUFFER = 256 * 1024
SHUTDOWN_GRACE = 3.0
# How often join and leave notices held back by a room's presence budget are looked at again.
PRESENCE_TICK = 0.2
DATABASE_FILE = "chat.db"


def open_database(path: Path) -> SQLiteStore:
    """The server's database; one that SQLite cannot open is one line saying what to do."""
    try:
        return SQLiteStore(path)
    except sqlite3.DatabaseError as error:
        raise UnusableFile(
            f"{path} is not a database tlschat can open ({error}): restore it from a backup, "
            "or move it away to start with no history, nicks or bans"
        ) from None


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
        # The embedded database's log is checkpointed on a thread of its own (checkpoints.py).
        self.checkpoints: CheckpointTimer | None = None
        if settings.broker:
            from ..broker.redis import RedisBroker

            redis_broker = RedisBroker(settings.broker, settings.history)
            self.broker, node = redis_broker, redis_broker.node
            store = MemoryStore(settings.history)  # the cluster's replica, loaded from Redis
        else:
            self.broker = LocalBroker()
            store = open_database(settings.data_dir / DATABASE_FILE)
            self.checkpoints = CheckpointTimer(
                WalCheckpointer(settings.data_dir / DATABASE_FILE), asyncio.get_running_loop()
            )
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
        self._presence_tick: asyncio.TimerHandle | None = None
        self.retention: RetentionTimer | None = None
        self.search_index = SearchIndexTimer(store, asyncio.get_running_loop())
        self.stopping = False
        self._ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self.web: WebEndpoint | None = None  # the web client's port (--web), when it is on
        self._config: ConnectionConfig | None = None
        self._all_gone = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.outflow = Outflow(
            self.loop,
            store,
            self.links.get,
            lambda: self.settings.max_total_write_buffer,
            self.chat.forget_lines,
        )
        # The whole server's handshakes per second: in a reconnect storm the rest wait their
        # turn, unread, instead of taking the CPU that users already online need.
        self.handshake_queue = HandshakeQueue(
            self, settings.handshake_rate, settings.handshake_rate_burst
        )
        self.port = settings.port
        self.summary = ConnectionSummary(self.loop.time())

    async def start(self) -> None:
        key, certificate = self.key, self.certificate
        action = "Created" if self.key_created else "Loaded"
        log.info("[KEY] %s server key %s", action, self.settings.data_dir / "server_key.pem")
        log.info("[KEY] Server fingerprint %s", key.fingerprint)
        self.settings = fit_to_open_file_limit(self.settings)
        await self.broker.start(self.chat, self.deliver)
        if self.settings.broker:
            await warn_of_standalone_history(
                self.settings.data_dir / DATABASE_FILE, self.settings.broker
            )
        self.retention = RetentionTimer(self.chat.store, self.settings.retention(), self.loop)
        self.retention.start()
        self.search_index.start()
        if self.checkpoints is not None:
            self.checkpoints.start()
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
        if self.settings.web:
            from .web import WebEndpoint  # websockets is imported only for a server with --web

            self.web = await WebEndpoint.start(self)
        self._tick = self.loop.call_later(LIMIT_LOG_INTERVAL, self._on_tick)

    def apply_settings(self, settings: ServerSettings, chat: ChatSettings) -> list[Outgoing]:
        """A reloaded configuration's settings (those that need a restart as they were): used
        from now on, by new connections and by the chat; the frames the chat sends for them."""
        self.settings = fit_to_open_file_limit(settings)
        self.handshakes.resize(settings.handshakes_per_block, settings.handshake_burst)
        self.handshake_queue.resize(settings.handshake_rate, settings.handshake_rate_burst)
        if self._config is not None:
            self._config = dataclasses.replace(
                self._config, handshake_timeout=settings.handshake_timeout
            )
        if self.retention is not None:
            self.retention.retention = settings.retention()
        return self.chat.reconfigure(chat)

    def _on_tick(self) -> None:
        """Every LIMIT_LOG_INTERVAL: the per-block summaries, and idle blocks forgotten; the
        connections summary when it is due."""
        now = self.loop.time()
        self.limit_log.flush(now)
        self.summary.flush(now, self.online())
        self.handshakes.evict_idle(now)
        self.deliver(self.chat.tick(time.time()))
        self._tick = self.loop.call_later(LIMIT_LOG_INTERVAL, self._on_tick)

    async def stop(self) -> None:
        """Stop accepting, send close_notify to everyone, wait briefly for their answers."""
        if self._server is not None:
            self._server.close()
        if self.web is not None:
            self.web.close()
        for timer in (self._tick, self._presence_tick):
            if timer is not None:
                timer.cancel()
        for waiting in self.handshake_queue.close():
            self.refuse(waiting, "the server is shutting down")
        # What clients send from now on is not acted on (their clients send it again to the
        # server they reconnect to, as nothing acknowledged it); what they sent before is
        # committed and acknowledged (a cluster's server waits for its log), and only then does
        # each client hear close_notify.
        self.stopping = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.broker.drain(), SHUTDOWN_GRACE)
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
        if self.web is not None:
            await self.web.wait_closed(SHUTDOWN_GRACE)
        await self.broker.stop()
        if self.retention is not None:
            self.retention.stop()
        self.search_index.stop()
        if self.checkpoints is not None:
            await self.checkpoints.stop()
        self.chat.store.close()
        self.limit_log.flush(self.loop.time())
        self.summary.flush(self.loop.time(), self.online(), every=0)
        log.info("[SHUTDOWN] Server stopped")

    def online(self) -> int:
        """Sessions whose handshake completed and that their key's cap admitted."""
        return sum(self.per_key.values())

    def deliver(self, outgoing: list[Outgoing]) -> None:
        # Once per recipient of every line: the loop keeps to what each recipient needs. A room's
        # recipients share one frame object, so each frame is encoded once.
        links, soon, connected = self.links.get, self.outflow.soon, State.CONNECTED
        frame_of: object = None
        framed, bye = b"", False
        for session_id, frame in outgoing:
            link = links(session_id)
            if link is None:
                continue
            connection = link.connection
            if connection.state is not connected or connection.close_notify_sent:
                continue
            if frame is not frame_of:
                frame_of, bye = frame, frame["type"] == "bye"
                framed = framed_message(encode_frame(frame))
            connection.send_framed(framed)
            if bye:
                link.bye_reason = str(frame.get("reason", ""))
                connection.close()
            soon(link)
        if self.chat.presence_waiting and self._presence_tick is None:
            self._presence_tick = self.loop.call_later(PRESENCE_TICK, self._on_presence_tick)

    def _on_presence_tick(self) -> None:
        self._presence_tick = None
        self.deliver(self.chat.tick(time.time()))

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
        unauthenticated = len(self.pending) + len(self.handshake_queue)
        if self.handshake_queue.must_wait() and unauthenticated >= settings.max_unauthenticated:
            # Those waiting are no slowloris (they wait for us): the newcomer is refused, and
            # handshakes in progress plus those waiting stay within max_unauthenticated.
            return "too many handshakes waiting"
        if not self.handshakes.admit(link.block, self.loop.time()):
            return "handshake rate"
        return ""

    def refuse(self, link: ClientLink, reason: str) -> None:
        """End a connection that is not served, with server_busy (plaintext before keys). It is
        counted in its block's periodic summary, and logged alone only at debug level."""
        log.debug("[!] %s: refused: %s", link.peer, reason)
        self.limit_log.count(link.block, reason, self.loop.time())
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
            self.refuse(link, refusal)
            return
        link.note(f"[+] Client connected from {link.peer}")
        link.registered = True
        self.links[link.session_id] = link
        self.per_address[link.address] += 1
        self.per_block[link.block] += 1
        if self.handshake_queue.admit(link):
            self._begin_handshake(link)

    def start_handshake(self, link: ClientLink, now: float) -> None:
        """A connection that waited for its turn (handshake_queue.py): its handshake starts now,
        and its handshake_timeout counts from now."""
        assert self._config is not None
        link.connection = ServerConnection(self._config, now=now)
        link.active_at = now
        self._begin_handshake(link)
        link.take_turn()

    def _begin_handshake(self, link: ClientLink) -> None:
        self.pending[link.session_id] = link
        if len(self.pending) > self.settings.max_unauthenticated:
            oldest = next(iter(self.pending.values()))
            self.pending.pop(oldest.session_id)
            self.refuse(oldest, "too many handshakes in progress")
        link.arm_timer()

    def forget(self, link: ClientLink) -> None:
        """A connection ended: its session leaves the chat."""
        if not link.registered:
            return
        link.registered = False
        reason = link.bye_reason or link.end_reason
        self.links.pop(link.session_id, None)
        self.pending.pop(link.session_id, None)
        self.handshake_queue.leave(link)
        self.outflow.forget(link.session_id)
        self.per_address[link.address] -= 1
        if not self.per_address[link.address]:
            del self.per_address[link.address]
        self.per_block[link.block] -= 1
        if not self.per_block[link.block]:
            del self.per_block[link.block]
        if link.fingerprint:
            self.summary.left += 1
            self.per_key[link.fingerprint] -= 1
            if not self.per_key[link.fingerprint]:
                del self.per_key[link.fingerprint]
        elif not link.handshaken and not link.bye_reason.startswith("refused"):
            what = LEFT_WAITING if reason == LEFT_WAITING else failed_handshake(reason)
            self.limit_log.count(link.block, what, self.loop.time())
        self.deliver(self.chat.disconnect(link.session_id, reason))
        link.note(f"[-] Client {link.peer} disconnected ({reason})")
        if not self.links:
            self._all_gone.set()

    def handle_events(self, link: ClientLink, events: list[Event]) -> None:
        # The trace lines of one read are logged in one call: logging costs as much per call as
        # a good part of the handshake's own crypto. Lines the log's level hides are not made.
        trace: list[str] = []
        for event in events:
            if isinstance(event, HandshakeStep):
                if log.isEnabledFor(HANDSHAKE):
                    prefix = f"Step {event.step}: " if event.step else ""
                    trace.append(f"[TLS] {prefix}{event.text}")
                continue
            if isinstance(event, HandshakeComplete):
                if log.isEnabledFor(CONNECTION):
                    trace.append(f"[TLS] Client {link.peer} identity {event.peer.fingerprint}")
                link.handshake_completed(trace)
                trace = []
                self.pending.pop(link.session_id, None)
                self._admit_session(link, event.peer)
                link.rearm_timer()  # from the handshake's deadline to the hello or idle timeout
                continue
            if trace:
                link.note("\n".join(trace), HANDSHAKE)
                trace = []
            if isinstance(event, DataReceived):
                self.deliver(self._on_frame(link, event.data, time.time()))
            elif isinstance(event, KeyUpdated):
                log.debug(
                    "[TLS] %s %s key updated (generation %d)",
                    link.peer,
                    event.direction,
                    event.generation,
                )
        if trace:
            link.note("\n".join(trace), HANDSHAKE)

    def _admit_session(self, link: ClientLink, identity: PeerIdentity) -> None:
        """A handshake completed: a session of this key, unless the key has too many."""
        cap = self.settings.max_sessions_per_key
        if self.per_key[identity.fingerprint] >= cap:
            self.limit_log.count(link.block, "too many sessions of one key", self.loop.time())
            self.deliver([(link.session_id, bye_frame(f"too many sessions of your key ({cap})"))])
            return
        link.fingerprint = identity.fingerprint
        self.per_key[identity.fingerprint] += 1
        self.summary.connected += 1
        link.hello_due = self.loop.time() + self.settings.hello_timeout
        self.deliver(self.chat.connect(link.session_id, identity, link.peer, time.time()))

    def _on_frame(self, link: ClientLink, data: bytes, now: float) -> list[Outgoing]:
        try:
            frame: dict[str, Any] = decode_frame(data)
        except FrameError as error:
            return self.chat.refuse_frame(link.session_id, str(error), now)
        if not link.fingerprint or self.stopping:
            return []  # refused by its key's cap (its bye is on the way), or too late
        if frame.get("type") == "hello":
            link.hello_due = None
        return self.chat.receive(link.session_id, frame, now)


def attach_reloader(
    service: ChatService, settings: ServerSettings, source: ConfigSource
) -> Reloader:
    """What reloads ``service``'s configuration (``settings``, as loaded from ``source``) for
    SIGHUP and for its operators' /reload."""
    reloader = Reloader(source, settings, lambda: service.chat.settings, service.apply_settings)
    service.chat.reloader = reloader.reload
    return reloader


async def serve(settings: ServerSettings, source: ConfigSource | None = None) -> None:
    """Run until SIGINT or SIGTERM, then shut down cleanly; SIGHUP (and an operator's /reload)
    reloads the configuration file of ``source``."""
    # Before the start (and its [LISTENING] line): a signal that comes as the server starts stops
    # it cleanly once it has started.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    service = ChatService(settings)
    await service.start()
    reloader = attach_reloader(service, settings, source or ConfigSource())
    loop.add_signal_handler(
        signal.SIGHUP, lambda: service.deliver(list(reloader.reload("SIGHUP").out))
    )
    await stop.wait()
    log.info("[SHUTDOWN] Signal received; closing connections")
    await service.stop()
