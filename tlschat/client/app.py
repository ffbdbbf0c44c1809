"""The asyncio client: handshake, trust decision, then chat in interactive or line mode."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..chat.client.receiving import ChatClient
from ..chat.frames import MAX_FRAME, FrameError, decode_frame, encode_frame
from ..chat.lines import PENDING, Line
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
from .addresses import Endpoint, ServerAddress, sweep_order
from .outcomes import await_outcomes, report_undelivered, still_owed
from .seen_file import SeenFiles
from .trust import decide
from .user_input import UserInput, ask_interactively

READ_SIZE = 65536
CLOSE_GRACE = 3.0
EXIT_OK = 0
EXIT_CONNECTION_FAILED = 1
EXIT_UNTRUSTED_SERVER = 2
EXIT_REFUSED_BY_SERVER = 3
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0


@dataclass
class ClientSettings:
    home: Path
    host: str = "localhost"
    port: int = 8443
    nick: str = ""
    plain: bool = False
    json: bool = False
    pin: str | None = None
    quiet: bool = False
    key_type: str = "rsa"
    reconnect: bool = True
    fullscreen: bool = False
    bell: bool = True
    # The servers of one cluster, tried in this order; empty means host:port alone.
    servers: tuple[ServerAddress, ...] = ()

    @property
    def addresses(self) -> tuple[ServerAddress, ...]:
        return self.servers or (ServerAddress(self.host, self.port),)

    @property
    def known_as(self) -> ServerAddress:
        """The name the server's key is checked under in known_hosts, whichever server answers:
        the first one given (a cluster's servers all present one key)."""
        return self.addresses[0]


class Output(Protocol):
    """Where a session's output goes: :class:`Terminal` here, the full-screen UI in tui.py."""

    def trace(self, text: str) -> None: ...

    def warn(self, text: str) -> None: ...

    def show(self, line: Line, current_room: str = "") -> None: ...

    def status(self, state: str, detail: str = "") -> None:
        """The connection's state changed: connecting, connected (detail: the server's
        fingerprint), reconnecting (detail: when), or disconnected."""


class Terminal:
    """Where output goes: line mode splits data (stdout) from trace (stderr)."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings

    def _write(self, text: str, stream: Any) -> None:
        if self.settings.plain:
            print(text, file=stream, flush=True)
        else:
            from prompt_toolkit import print_formatted_text

            print_formatted_text(text)

    def trace(self, text: str) -> None:
        if not self.settings.quiet:
            self._write(text, sys.stderr)

    def warn(self, text: str) -> None:
        self._write(text, sys.stderr)

    def show(self, line: Line, current_room: str = "") -> None:
        if line.delivery == PENDING and not self.settings.json:
            return  # the line as typed is on screen already; its outcome follows
        if self.settings.json:
            self._write(json.dumps(line.to_json(), ensure_ascii=False), sys.stdout)
        else:
            self._write(line.render(current_room), sys.stdout)

    def status(self, state: str, detail: str = "") -> None:
        """Line modes say it all in trace and warning lines already."""


class ChatClientSession:
    def __init__(
        self,
        settings: ClientSettings,
        identity: IdentityKey,
        chat: ChatClient,
        endpoint: Endpoint,
        output: Output | None = None,
        announce: bool = False,
        seen: SeenFiles | None = None,
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
        self.seen = seen
        self._tick_timer: asyncio.TimerHandle | None = None

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
            self.lost = error.alert in (AlertDescription.truncated, AlertDescription.server_busy)
            self.terminal.warn(f"[!] Handshake failed: {error}")
            return EXIT_CONNECTION_FAILED
        except (ConnectionError, OSError) as error:
            self.lost = True
            self.terminal.warn(f"[!] Connection lost during the handshake: {error}")
            return EXIT_CONNECTION_FAILED

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
                    if self.seen is not None:
                        self.seen.use(self.chat, event.peer.fingerprint, time.time())
                    self._send(self.chat.hello_frame())
                    self._handle_events(pending)
                    return EXIT_OK
                elif isinstance(event, ConnectionClosed):
                    self.lost = True  # e.g. a server shutting down: another may answer
                    self.terminal.warn("[!] Server closed the connection during the handshake")
                    return EXIT_CONNECTION_FAILED
            if not data:  # the end of the stream: never read it again (it would return at once)
                raise ConnectionError("the server closed the connection")

    async def _check_server(
        self, event: ServerAuthenticated, ask: Callable[[str], Awaitable[bool]] | None
    ) -> int:
        host, port = self.settings.known_as.host, self.settings.known_as.port
        fingerprint = event.identity.fingerprint
        decision = decide(self.known_hosts, host, port, fingerprint, self.settings.pin)
        trusted = decision.trusted
        if decision.is_new:
            if ask is None:
                self.terminal.warn(f"[KNOWN_HOSTS] {decision.message}: accepted and recorded")
            else:
                self.terminal.warn(f"[KNOWN_HOSTS] {decision.message}")
                answer = await self._ask(ask, "Trust this server and remember its key? [y/N] ")
                if answer is None:
                    self.lost = True
                    self.terminal.warn("[!] Server closed the connection during the handshake")
                    return EXIT_CONNECTION_FAILED
                trusted, self.asked_user = answer, True
            if trusted:
                self.known_hosts.add(host, port, fingerprint)
                if self.connection.error is not None:  # the server gave up while the user read
                    raise self.connection.error
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
            answer.cancel()
            if arrived is not None and not arrived.done():
                arrived.cancel()
                await asyncio.wait({arrived})  # the next read must find no reader waiting

    def _send(self, frame: dict[str, Any]) -> None:
        if self.connection.is_connected and not self.connection.close_notify_sent:
            self.connection.send_data(encode_frame(frame))
            self._flush()

    def _handle_events(self, events: list[Event]) -> None:
        now = time.time()
        for event in events:
            if isinstance(event, DataReceived):
                try:
                    frame = decode_frame(event.data)
                except FrameError as error:
                    self.terminal.show(Line("error", now, f"malformed frame from server: {error}"))
                    continue
                self._show(self.chat.handle(frame, now))
            elif isinstance(event, ConnectionClosed):
                self.closed_cleanly = True
        # Once for all the frames one read brought: their answers in order, one append to the
        # seen file.
        self._send_outbox()

    def _show(self, lines: list[Line]) -> None:
        for line in lines:
            self.terminal.show(line, self.chat.room)

    def _send_outbox(self) -> None:
        for frame in self.chat.take_outbox():
            self._send(frame)
        if self.seen is not None:
            self.seen.save(self.chat)
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

    def handle_input(self, text: str) -> bool:
        """Act on one line the user typed; False once the user asked to quit."""
        self._show(self.chat.user_input(text, time.time()))
        self._send_outbox()
        return not self.chat.quit_requested

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
            self.lost = error.alert == AlertDescription.truncated
            self.terminal.warn(f"[!] Connection closed: {error}")
            return EXIT_CONNECTION_FAILED
        except (ConnectionError, OSError) as error:
            self.lost = True
            self.terminal.warn(f"[!] Connection lost: {error}")
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


async def run_client(settings: ClientSettings) -> int:
    identity, created = IdentityKey.load_or_create(
        settings.home / "identity.pem", settings.key_type
    )
    # Refused before connecting (InsecureFileError) if others may change it.
    KnownHosts(settings.home / "known_hosts").check_file()
    chat = ChatClient(identity, settings.nick)
    if settings.fullscreen:
        from .tui import run_tui

        return await run_tui(settings, identity, chat, created)
    terminal = Terminal(settings)
    if created:
        terminal.warn(f"[KEY] Created your identity key {identity.fingerprint} in {settings.home}")
    ask = None if settings.plain else ask_interactively
    quit_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, quit_requested.set)
    user_input = UserInput(settings.plain, None if settings.plain else quit_requested)
    if settings.plain:
        return await _sessions(settings, identity, chat, ask, user_input, quit_requested)
    from prompt_toolkit.patch_stdout import patch_stdout

    with patch_stdout(raw=True):
        try:
            return await _sessions(settings, identity, chat, ask, user_input, quit_requested)
        finally:
            user_input.stop()


async def _resolve(addresses: tuple[ServerAddress, ...], terminal: Output) -> list[Endpoint]:
    """Every IP address of every server, in the order given, each once (two names of one
    address are one server); a name that does not resolve is reported and skipped."""
    loop = asyncio.get_running_loop()
    endpoints: list[Endpoint] = []
    seen: set[tuple[str, int]] = set()
    for address in addresses:
        try:
            found = await loop.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
        except OSError as error:
            terminal.warn(f"[!] Cannot connect to {address}: {error}")
            continue
        for *_, sockaddr in found:
            ip = str(sockaddr[0])
            if (ip, address.port) not in seen:
                seen.add((ip, address.port))
                endpoints.append(Endpoint(address, ip))
    return endpoints


async def _connect_any(
    settings: ClientSettings,
    identity: IdentityKey,
    chat: ChatClient,
    ask: Callable[[str], Awaitable[bool]] | None,
    terminal: Output,
    last: Endpoint | None,
    seen: SeenFiles | None = None,
) -> tuple[ChatClientSession | None, int]:
    """Try each server once, from the one after ``last``: the session of the first to answer.

    A server refused for its key ends the sweep: the others present the same key.
    """
    endpoints = await _resolve(settings.addresses, terminal)
    # One --host (even a name of several addresses) keeps the trace it always had.
    announce = len(settings.addresses) > 1
    order = sweep_order(endpoints, last)
    refusals: dict[ServerAddress, list[OSError]] = {}
    session: ChatClientSession | None = None
    code = EXIT_CONNECTION_FAILED
    for index, endpoint in enumerate(order):
        if session is not None:
            session.shutdown_transport()
        session = ChatClientSession(settings, identity, chat, endpoint, terminal, announce, seen)
        code = await session.connect(ask)
        if code == EXIT_CONNECTION_FAILED and session.asked_user:
            # The server may have timed the handshake out while the user read the fingerprint;
            # the key is in known_hosts now, so a second attempt needs no question.
            session.shutdown_transport()
            session.terminal.warn("[*] Reconnecting with the server's key now trusted")
            session = ChatClientSession(
                settings, identity, chat, endpoint, terminal, announce, seen
            )
            code = await session.connect(ask)
        if session.connect_error is not None:
            errors = refusals.setdefault(endpoint.address, [])
            errors.append(session.connect_error)
            # Like asyncio for one name: one line once every IP address of the server failed.
            if all(later.address != endpoint.address for later in order[index + 1 :]):
                terminal.warn(f"[!] Cannot connect to {endpoint.address}: {_described(errors)}")
        if code == EXIT_OK or not session.lost:
            break
    return session, code


def _described(errors: list[OSError]) -> str:
    """As asyncio words the failure of every address of one name."""
    if len(errors) == 1:
        return str(errors[0])
    return "Multiple exceptions: " + ", ".join(str(error) for error in errors)


async def _sessions(
    settings: ClientSettings,
    identity: IdentityKey,
    chat: ChatClient,
    ask: Callable[[str], Awaitable[bool]] | None,
    user_input: UserInput,
    quit_requested: asyncio.Event,
    output: Output | None = None,
) -> int:
    """Connect, chat, and after a lost connection reconnect with backoff, rejoining rooms.

    Each attempt tries the servers round robin, from the one after the server that was lost.
    """
    terminal: Output = output if output is not None else Terminal(settings)
    attempt = 0
    chatted = False
    last: Endpoint | None = None
    seen = SeenFiles(settings.home)
    code = EXIT_CONNECTION_FAILED
    while True:
        connecting = asyncio.ensure_future(
            _connect_any(settings, identity, chat, ask, terminal, last, seen)
        )
        if not await _unless_quit(connecting, quit_requested):
            terminal.status("disconnected")
            return code
        session, code = connecting.result()
        if session is not None and code == EXIT_OK:
            if not chatted:
                await user_input.start()
            chatted, attempt, last = True, 0, session.endpoint
            code = await _chat(session, user_input, quit_requested)
        if session is not None:
            session.shutdown_transport()
        # No session: no name resolved. A kick or a ban is final, however the connection ended.
        lost = (session is None or session.lost) and not chat.dismissed
        if not (settings.reconnect and chatted and lost):
            return _finish(chat, terminal, code)
        if quit_requested.is_set() or (
            user_input.ended and not still_owed(chat, user_input.ended_at)
        ):
            return _finish(chat, terminal, code)
        chat.prepare_reconnect()
        delay = min(MAX_BACKOFF, FIRST_BACKOFF * 2**attempt)
        attempt += 1
        terminal.warn(f"[*] Connection lost; reconnecting in {delay:.0f} s (attempt {attempt})")
        terminal.status("reconnecting", f"in {delay:.0f} s (attempt {attempt})")
        # What the user types meanwhile is queued (and shown as waiting) for the next session.
        typing = (
            asyncio.ensure_future(user_input.feed(session))
            if session is not None and not user_input.ended
            else None
        )
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(quit_requested.wait(), delay)
                return _finish(chat, terminal, code)
        finally:
            if typing is not None:
                typing.cancel()


def _finish(chat: ChatClient, terminal: Output, code: int) -> int:
    terminal.status("disconnected")
    return report_undelivered(chat, terminal, code)


async def _chat(
    session: ChatClientSession, user_input: UserInput, quit_requested: asyncio.Event
) -> int:
    receiving = asyncio.ensure_future(session.receive_until_closed())
    feeding = asyncio.ensure_future(user_input.feed(session))
    quitting = asyncio.ensure_future(quit_requested.wait())
    waiting: set[asyncio.Future[Any]] = {receiving, feeding, quitting}
    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    feeding.cancel()
    quitting.cancel()
    if not receiving.done() and not quit_requested.is_set():
        await await_outcomes(session.chat, receiving, quit_requested)
    if receiving.done():
        if session.closed_cleanly:
            session.terminal.warn("[*] Server closed the connection")
            session.lost = True  # a clean shutdown or restart: reconnect as after a crash
        return receiving.result()
    await session.close()
    # A while for the server's close_notify (or its end of stream). A signal after a quit from
    # the input cuts it short; after a quit by signal, nothing does.
    interrupt = asyncio.Event() if quit_requested.is_set() else quit_requested
    if await _unless_quit(receiving, interrupt, CLOSE_GRACE):
        return receiving.result()
    if not interrupt.is_set():
        session.terminal.warn("[!] Server did not answer close_notify in time")
    return EXIT_OK


async def _unless_quit(
    work: asyncio.Future[Any], quit_requested: asyncio.Event, timeout: float | None = None
) -> bool:
    """Wait for ``work`` until the user quits (or ``timeout``): True if it is done; if not, it
    is cancelled (and has let go of what it held) when this returns."""
    quitting = asyncio.ensure_future(quit_requested.wait())
    try:
        done, _ = await asyncio.wait(
            {work, quitting}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        quitting.cancel()
        if not work.done():
            work.cancel()
    if work in done:
        return True
    await asyncio.wait({work})
    return False
