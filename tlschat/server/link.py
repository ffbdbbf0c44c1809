"""One client connection's glue: the socket's asyncio calls, its timers, its writes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol, cast

from ..chat.server.model import Outgoing
from ..chat.server.replies import bye_frame
from ..protocol import ConnectionClosed, Event, ProtocolError, ServerConnection
from ..protocol.alerts import AlertDescription
from ..protocol.record import MAX_PLAINTEXT, RECORD_HEADER_LENGTH
from .config import ServerSettings
from .limits import LEFT_WAITING, NO_HELLO, LimitLog
from .logs import CONNECTION
from .outflow import Outflow

log = logging.getLogger("tlschat.server")

# How long a closing connection may take to write what is left before it is cut off.
CLOSE_GRACE = 1.0
# What a connection waiting for its handshake's turn may have read before its reading stopped
# (uvloop starts reading after connection_made, whatever it asked): a ClientHello fits in one
# record, and a client sends nothing else before the server answers.
MAX_HELD_WHILE_WAITING = RECORD_HEADER_LENGTH + MAX_PLAINTEXT
UNKNOWN_PEER = "(unknown)"


class LinkOwner(Protocol):
    """What a link asks of the service that accepted it."""

    settings: ServerSettings
    limit_log: LimitLog
    loop: asyncio.AbstractEventLoop
    outflow: Outflow

    def accept(self, link: ClientLink) -> None: ...
    def forget(self, link: ClientLink) -> None: ...
    def refuse(self, link: ClientLink, reason: str) -> None: ...
    def handle_events(self, link: ClientLink, events: list[Event]) -> None: ...
    def deliver(self, outgoing: list[Outgoing]) -> None: ...


class ClientLink(asyncio.Protocol):
    """One accepted socket and its protocol connection: asyncio calls it as bytes arrive.

    A protocol rather than a stream reader and a task per client: an idle connection then costs
    this object, its transport and the sans-IO connection, and a read costs no coroutine switch.
    """

    def __init__(self, service: LinkOwner) -> None:
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
        # While it waits for its handshake's turn (handshake_queue.py): what was read meanwhile.
        self.held: bytearray | None = None
        # Its log lines until its handshake completes: a connection that never completes one (a
        # replayed ClientHello, a port scan) is only counted in its block's periodic summary.
        # Only lines the log's level shows are held.
        self.held_log: list[str] = []

    # ----- asyncio's calls -----

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's does not derive from asyncio.Transport, hence the cast).
        self.transport = cast(asyncio.Transport, transport)
        self.service.accept(self)

    def data_received(self, data: bytes) -> None:
        if self._ending:
            return
        if self.held is not None:
            self._hold(data)
            return
        self.active_at = self.service.loop.time()
        self.pinged_at = None
        self._guard(lambda: self.connection.receive_data(data))

    def eof_received(self) -> bool:
        if self.held is not None:
            return False  # it left while it waited: connection_lost says so
        # After our bye or our own end, the peer hanging up is no truncation.
        if not self.bye_reason and not self._ending:
            self._guard(self.connection.receive_eof)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.held is not None and not self._ending:
            self.end_reason = LEFT_WAITING
        elif exc is not None and not self._ending:
            self.end_reason = "connection lost"
            self.note(f"[!] {self.peer}: connection lost ({exc})")
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
        self._account()

    # ----- ours -----

    def note(self, line: str, level: int = CONNECTION) -> None:
        """Log a line about this connection at ``level`` (logs.py), if the log shows that level:
        held until its handshake completes, unless the log shows debug detail, where
        everything is shown as it happens."""
        if not log.isEnabledFor(level):
            return
        if self.handshaken or log.isEnabledFor(logging.DEBUG):
            log.log(level, "%s", line)
        else:
            self.held_log.append(line)

    def wait_for_turn(self) -> None:
        """Its handshake waits for a turn: what the client sends stays in the kernel."""
        self.held = bytearray()
        if self.transport is not None:
            self.transport.pause_reading()

    def take_turn(self) -> None:
        """Its turn came (its connection is new, its handshake timer armed): what was read while
        it waited first, then the socket."""
        held, self.held = self.held, None
        if held:
            self.data_received(bytes(held))
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def _hold(self, data: bytes) -> None:
        held = self.held
        assert held is not None
        if self.transport is not None:
            self.transport.pause_reading()
        held += data
        if len(held) > MAX_HELD_WHILE_WAITING:
            self.service.refuse(self, "too much data before its handshake")

    def handshake_completed(self, trace: list[str]) -> None:
        """Log what was held, then ``trace`` (lines the log's level shows): from now on, lines
        are logged as they come."""
        self.handshaken = True
        lines, self.held_log = [*self.held_log, *trace], []
        if lines:
            log.log(CONNECTION, "%s", "\n".join(lines))

    def _guard(self, step: Callable[[], list[Event]]) -> None:
        """Run one step of the protocol; any failure ends this connection, never the server."""
        connection = self.connection
        try:
            # First in the pass's writes: a sender hears that its line was taken before the
            # others hear the line.
            self.service.outflow.soon(self)
            events = step()
            self.service.handle_events(self, events)
            if any(isinstance(event, ConnectionClosed) for event in events):
                self.end()
        except ProtocolError as error:
            self.end_reason = f"protocol error: {error.alert.name}"
            self.note(f"[!] {self.peer}: {error}")
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
        if transport is None or transport.is_closing():
            return
        self.service.outflow.commit()  # nothing leaves before the lines it names are stored
        data = self.connection.data_to_send()
        if not data or transport.is_closing():
            return
        transport.write(data)
        buffered = transport.get_write_buffer_size()
        if buffered > self.service.settings.max_write_buffer:
            self.drop_slow_reader("")
        else:
            self._account(buffered)

    def _account(self, buffered: int | None = None) -> None:
        """Tell the outflow what this client holds of our memory: its transport's buffer
        (``buffered``, when the caller has just asked for it), none before it registered."""
        transport = self.transport
        if not self.registered or transport is None or transport.is_closing():
            held = 0
        elif buffered is None:
            held = transport.get_write_buffer_size()
        else:
            held = buffered
        self.service.outflow.account(self, held)

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

    def drop_unsent(self, why: str) -> None:
        """End at once, without writing what is queued."""
        log.warning("[!] %s: %s; disconnecting", self.peer, why)
        self.end_reason = why
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
