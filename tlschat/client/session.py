"""One connection of the client: handshake and trust decision, then frames both ways between the
socket and the chat client."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..chat.client.receiving import ChatClient
from ..chat.frames import MAX_FRAME, FrameError, decode_frame, encode_frame
from ..chat.lines import Line
from ..protocol import (
    ClientConnection,
    ConnectionClosed,
    ConnectionConfig,
    DataReceived,
    Event,
    HandshakeComplete,
    HandshakeStep,
    IdentityKey,
    KnownHosts,
    ProtocolError,
    ServerAuthenticated,
)
from ..protocol.alerts import AlertDescription
from .addresses import Endpoint
from .home_files import HomeFiles
from .settings import (
    EXIT_CONNECTION_FAILED,
    EXIT_OK,
    EXIT_REFUSED_BY_SERVER,
    EXIT_UNTRUSTED_SERVER,
    ClientSettings,
)
from .terminal import Output, Terminal
from .trouble import (
    Trouble,
    closed_while_connecting,
    lost_while_chatting,
    server_full,
)
from .trust import NOT_TRUSTED, decide, decide_invited, no_terminal_to_ask

READ_SIZE = 65536


CLOSE_GRACE = 3.0


class ChatClientSession:
    def __init__(
        self,
        settings: ClientSettings,
        identity: IdentityKey,
        chat: ChatClient,
        endpoint: Endpoint,
        output: Output | None = None,
        announce: bool = False,
        files: HomeFiles | None = None,
    ) -> None:
        self.settings = settings
        self.terminal: Output = output if output is not None else Terminal(settings)
        self.chat = chat
        self.endpoint = endpoint
        # Say which server answered: worth a line when the user named several.
        self.announce = announce
        # Why the TCP connection could not be opened, if it could not; the sweep over the
        # servers reports it (once per server, not per IP address of one).
        self.connect_error: OSError | None = None
        # Why a connection worth reconnecting ended (``lost``): the session loop says it once.
        self.trouble: Trouble | None = None
        self.known_hosts = KnownHosts(settings.home / "known_hosts")
        self.connection = ClientConnection(
            ConnectionConfig(identity=identity, max_message=MAX_FRAME), now=time.monotonic()
        )
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.closed_cleanly = False
        self.asked_user = False
        # The transport failed (refused, reset, cut without close_notify): worth reconnecting,
        # unlike a clean close, a refusal by the server, or a protocol attack.
        self.lost = False
        # Where what the client showed is kept per network (None: in memory only).
        self.files = files
        self._tick_timer: asyncio.TimerHandle | None = None
        # Frames from the server so far: a line held for the session waits while they come.
        self.frames_received = 0

    def _flush(self) -> None:
        data = self.connection.data_to_send()
        if data and self.writer is not None and not self.writer.is_closing():
            self.writer.write(data)

    def _show_steps(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, HandshakeStep):
                prefix = f"Step {event.step}: " if event.step else ""
                self.terminal.trace(f"[TLS] {prefix}{event.text}")

    async def connect(self, ask: Callable[[str], Awaitable[bool]] | None) -> int:
        """Open the socket and complete the handshake; an exit code if it fails, else EXIT_OK."""
        endpoint = self.endpoint
        self.terminal.status("connecting", str(endpoint))
        try:
            self.reader, self.writer = await asyncio.open_connection(
                endpoint.ip, endpoint.address.port, limit=READ_SIZE
            )
        except OSError as error:
            self.lost = True
            self.connect_error = error
            return EXIT_CONNECTION_FAILED
        if self.announce:
            self.terminal.trace(f"[+] Connected to {endpoint}")
        self.connection.start_handshake()
        self._flush()
        self._show_steps(self.connection.start_events())
        try:
            return await self._finish_handshake(ask)
        except asyncio.CancelledError:  # the user quit: say so if we can, and let go
            self.connection.close()
            self._flush()
            self.shutdown_transport()
            raise
        except ProtocolError as error:
            self._flush()
            where = str(endpoint)
            if error.alert == AlertDescription.truncated:
                self.lose(closed_while_connecting(where, error))
            elif error.alert == AlertDescription.server_busy:
                self.lose(server_full(where, error))
            else:  # the server or someone between broke the protocol: not worth another try
                self.terminal.warn(f"[!] Handshake failed: {error}")
            return EXIT_CONNECTION_FAILED
        except (ConnectionError, OSError) as error:
            self.lose(closed_while_connecting(str(endpoint), error))
            return EXIT_CONNECTION_FAILED

    def lose(self, trouble: Trouble) -> None:
        self.lost, self.trouble = True, trouble

    async def _finish_handshake(self, ask: Callable[[str], Awaitable[bool]] | None) -> int:
        assert self.reader is not None
        while True:
            deadline = self.connection.deadline
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                data = await asyncio.wait_for(self.reader.read(READ_SIZE), timeout)
            except TimeoutError:
                self.connection.handle_timer(time.monotonic())
                continue
            events = self.connection.receive_data(data) if data else self.connection.receive_eof()
            self._flush()
            pending = list(events)
            while pending:
                event = pending.pop(0)
                self._show_steps([event])
                if isinstance(event, ServerAuthenticated):
                    verdict = await self._check_server(event, ask)
                    if verdict != EXIT_OK:
                        return verdict
                    pending = self.connection.trust_server() + pending
                    self._flush()
                elif isinstance(event, HandshakeComplete):
                    self.terminal.trace(
                        f"[TLS] Server {event.peer.fingerprint} | Cipher: {event.suite}"
                    )
                    self.terminal.status("connected", event.peer.fingerprint)
                    if self.files is not None:
                        self.files.use_network(self.chat, event.peer.fingerprint, time.time())
                    hello = self.chat.hello_frame()
                    if self.settings.invitation is not None:
                        # Used only by a key the server does not admit otherwise.
                        hello["invitation"] = self.settings.invitation.secret
                    if self.files is not None:  # the keys it publishes are marked so on disk
                        self.files.save(self.chat)
                    self._send(hello)
                    self._handle_events(pending)
                    return EXIT_OK
                elif isinstance(event, ConnectionClosed):
                    # E.g. a server shutting down: another may answer.
                    self.lose(closed_while_connecting(str(self.endpoint), "close_notify"))
                    return EXIT_CONNECTION_FAILED
            if not data:  # the end of the stream: never read it again (it would return at once)
                raise ConnectionError("the server closed the connection")

    async def _check_server(
        self, event: ServerAuthenticated, ask: Callable[[str], Awaitable[bool]] | None
    ) -> int:
        host, port = self.settings.known_as.host, self.settings.known_as.port
        fingerprint = event.identity.fingerprint
        invitation = self.settings.invitation
        if invitation is not None:
            decision = decide_invited(
                self.known_hosts, host, port, fingerprint, invitation.fingerprint
            )
        else:
            decision = decide(self.known_hosts, host, port, fingerprint, self.settings.pin)
        trusted = decision.trusted
        if decision.is_new:
            if self.settings.refuse_new_keys:
                # Never an answer read from a pipe: that would be the first line to send.
                self.terminal.warn(no_terminal_to_ask(f"{host}:{port}", fingerprint))
                trusted = False
            elif ask is None:
                self.terminal.warn(f"[KNOWN_HOSTS] {decision.message}: accepted and recorded")
            else:
                self.terminal.warn(f"[KNOWN_HOSTS] {decision.message}")
                answer = await self._ask(ask, "Trust this server and remember its key? [y/N] ")
                if answer is None:
                    self.lose(closed_while_connecting(str(self.endpoint), "close_notify"))
                    return EXIT_CONNECTION_FAILED
                trusted, self.asked_user = answer, True
                if not trusted:
                    self.terminal.warn(NOT_TRUSTED)
            if trusted:
                self.known_hosts.add(host, port, fingerprint)
                if self.connection.error is not None:  # the server gave up while the user read
                    raise self.connection.error
        elif decision.remember:
            self.terminal.warn(f"[KNOWN_HOSTS] {decision.message}")
            self.known_hosts.add(host, port, fingerprint)
        elif trusted:
            self.terminal.trace(f"[KNOWN_HOSTS] {decision.message}")
        else:
            self.terminal.warn(decision.message)
        if trusted:
            return EXIT_OK
        self.connection.reject_server("server key not trusted")
        self._flush()
        if self.writer is not None:
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.drain()
        return EXIT_UNTRUSTED_SERVER

    async def _ask(self, ask: Callable[[str], Awaitable[bool]], question: str) -> bool | None:
        """The user's answer to ``question``, reading the server meanwhile: its end of stream or
        an alert ends the handshake (and the question) at once, None if it sent close_notify.
        Only its handshake_timeout leaves the question open: the key the user then accepts is
        recorded, and the next attempt needs no question."""
        assert self.reader is not None
        answer = asyncio.ensure_future(ask(question))
        arrived: asyncio.Future[bytes] | None = None
        try:
            while True:
                arrived = asyncio.ensure_future(self.reader.read(READ_SIZE))
                await asyncio.wait({answer, arrived}, return_when=asyncio.FIRST_COMPLETED)
                if not arrived.done():
                    return answer.result()
                data = arrived.result()
                try:
                    events = (
                        self.connection.receive_data(data)
                        if data
                        else self.connection.receive_eof()
                    )
                except ProtocolError as error:
                    if error.received and error.alert == AlertDescription.handshake_timeout:
                        return await answer
                    raise
                finally:
                    self._flush()
                if any(isinstance(event, ConnectionClosed) for event in events):
                    return None
                if answer.done():
                    return answer.result()
        finally:
            # The question's prompt is gone before anything else is printed: a line printed
            # while it is still leaving goes to it, and is lost if the client ends right then.
            answer.cancel()
            await asyncio.wait({answer})
            if arrived is not None and not arrived.done():
                arrived.cancel()
                await asyncio.wait({arrived})  # the next read must find no reader waiting

    def _send(self, frame: dict[str, Any]) -> None:
        if self.connection.is_connected and not self.connection.close_notify_sent:
            self.connection.send_data(encode_frame(frame))
            self._flush()

    def _handle_events(self, events: list[Event]) -> None:
        now = time.time()
        received = False
        for event in events:
            if isinstance(event, DataReceived):
                received = True
                try:
                    frame = decode_frame(event.data)
                except FrameError as error:
                    self.terminal.show(Line("error", now, f"malformed frame from server: {error}"))
                    continue
                self.frames_received += 1
                self._show(self.chat.handle(frame, now))
            elif isinstance(event, ConnectionClosed):
                self.closed_cleanly = True
        if received:
            self.terminal.changed()
        # Once for all the frames one read brought: their answers in order, one append to the
        # seen file.
        self._send_outbox()

    def _show(self, lines: list[Line]) -> None:
        for line in lines:
            self.terminal.show(line, self.chat.room)

    def _send_outbox(self) -> None:
        frames = self.chat.take_outbox()
        if self.files is not None:
            self.files.save(self.chat)
        for frame in frames:
            self._send(frame)
        self._schedule_tick()

    def _schedule_tick(self) -> None:
        """Have the chat client send its next queued line when its pace allows."""
        if self._tick_timer is not None:
            self._tick_timer.cancel()
            self._tick_timer = None
        wake_at = self.chat.wake_at
        if wake_at is not None and self.connection.is_connected:
            delay = max(0.0, wake_at - time.time())
            self._tick_timer = asyncio.get_running_loop().call_later(delay, self._tick)

    def _tick(self) -> None:
        self._tick_timer = None
        self._show(self.chat.tick(time.time()))
        self._send_outbox()

    def ping(self) -> None:
        """Ask the server for a pong; the chat client measures the round trip (its latency)."""
        self.chat.ping(time.time())
        self._send_outbox()

    def act(self, action: Callable[[float], list[Line]]) -> None:
        """A chat action the UI takes by itself (loading older lines, watching the room whose
        members it shows): its lines shown, what it queued sent."""
        self._show(action(time.time()))
        self._send_outbox()

    def handle_input(self, text: str) -> bool:
        """Act on one line the user typed; False once the user asked to quit."""
        self._show(self.chat.user_input(text, time.time()))
        self._send_outbox()
        return not self.chat.quit_requested

    def holds_input(self) -> bool:
        return self.chat.holds_input(time.time())

    async def receive_until_closed(self) -> int:
        """Show what arrives until the server closes; the exit code that closing deserves."""
        assert self.reader is not None
        try:
            while not self.closed_cleanly:
                data = await self.reader.read(READ_SIZE)
                events = (
                    self.connection.receive_data(data) if data else self.connection.receive_eof()
                )
                self._handle_events(events)
                self._flush()
                if not data:  # the end of the stream after a close_notify: a clean end
                    break
        except ProtocolError as error:
            self._flush()
            if error.alert == AlertDescription.truncated:
                self.lose(lost_while_chatting(error))
            else:  # a record that does not check out: an attack, not worth another try
                self.terminal.warn(f"[!] Connection closed: {error}")
            return EXIT_CONNECTION_FAILED
        except (ConnectionError, OSError) as error:
            self.lose(lost_while_chatting(error))
            return EXIT_CONNECTION_FAILED
        return EXIT_REFUSED_BY_SERVER if self.chat.dismissed else EXIT_OK

    async def close(self) -> None:
        """Send close_notify and give the server a moment to answer with its own."""
        if not self.connection.close_notify_sent:
            self.connection.close()
            self._flush()
        if self.writer is not None:
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.drain()

    def shutdown_transport(self) -> None:
        if self._tick_timer is not None:
            self._tick_timer.cancel()
            self._tick_timer = None
        if self.writer is not None:
            self.writer.close()
