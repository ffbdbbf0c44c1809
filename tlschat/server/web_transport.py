"""A WebSocket as the stream transport a :class:`~tlschat.server.link.ClientLink` is served
over (issue 17): the browser's connection gets the same handler, handshake, record layer, limits
and budgets as a TCP one, and its bytes are those a TCP client exchanges, in binary messages.

Each binary message the browser sends is a chunk of the byte stream (cut anywhere); each write
of the server is one binary message. A text message, or one larger than ``MAX_MESSAGE``, ends
the connection (close codes 1003 and 1009).

What is written goes straight into the WebSocket's socket (``websockets.broadcast``, which does
not wait), so the write buffer the link sees, and its pause_writing and resume_writing, are
those of that socket's transport, as for a TCP client: a browser that stops reading is dropped
as a slow reader under the same ``max_write_buffer`` and output budget.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar, Protocol

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK
from websockets.frames import CloseCode
from websockets.protocol import State

# What one message from a browser may carry: several whole records (a record is at most 5 + 16401
# bytes), so that a client that batches its writes is served, and no more.
MAX_MESSAGE = 1 << 17
# asyncio's own defaults for a socket's write buffer: past HIGH the link stops reading its client.
WRITE_HIGH = 64 * 1024
WRITE_LOW = WRITE_HIGH // 4


class TextMessage(ConnectionError):
    """The browser sent a text message: the chat's bytes go in binary ones."""


class Gate(Protocol):
    """What bounds the connections to the web port before they are WebSocket sessions (web.py)."""

    def admit(self, connection: LinkedConnection) -> bool: ...
    def release(self, connection: LinkedConnection) -> None: ...


def ended(closed: ConnectionClosedError) -> ConnectionError:
    """How a WebSocket that failed ended, in the server's words: the peer's close reason is
    text it chose, which the log does not take."""
    sent, received = closed.sent, closed.rcvd
    if sent is not None and sent.code == CloseCode.MESSAGE_TOO_BIG:
        return ConnectionError(f"sent a message of more than {MAX_MESSAGE} bytes")
    if sent is not None:
        return ConnectionError(f"WebSocket failed, code {int(sent.code)}")
    if received is not None:
        return ConnectionError(f"WebSocket closed, code {int(received.code)}")
    return ConnectionError("WebSocket cut off")


class LinkedConnection(ServerConnection):
    """websockets' connection, which also tells the transport over it when its socket's write
    buffer passes its marks (the calls asyncio makes to a TCP link directly), and its gate when
    it opens and ends."""

    link_transport: WebSocketTransport | None = None
    gate: ClassVar[Gate | None] = None  # set by the server's own subclass (web.py)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self.gate is not None and not self.gate.admit(self):
            self.transport.abort()  # before anything is read: it costs nothing more

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.gate is not None:
            self.gate.release(self)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.link_transport is not None:
            self.link_transport.protocol.pause_writing()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.link_transport is not None:
            self.link_transport.protocol.resume_writing()


class WebSocketTransport(asyncio.Transport):
    """The asyncio.Transport calls ClientLink and ChatService make, over one WebSocket."""

    def __init__(self, ws: LinkedConnection, protocol: asyncio.Protocol) -> None:
        # The socket under the WebSocket: the server sizes its kernel send buffer, and the
        # handshake queue polls it for a peer that hung up, as for TCP.
        sock = ws.transport.get_extra_info("socket")
        super().__init__({"peername": ws.remote_address, "socket": sock})
        self.ws = ws
        self.protocol = protocol
        self._reading = asyncio.Event()
        self._reading.set()
        self._closing = False
        self._close_task: asyncio.Task[None] | None = None
        ws.link_transport = self

    async def run(self) -> None:
        """Serve the WebSocket until it ends: the protocol's connection_made, data_received for
        each message, then eof_received (a clean close by the peer) and connection_lost."""
        self.protocol.connection_made(self)
        lost: Exception | None = None
        try:
            await self._read()
        except ConnectionClosedOK:
            if not self._closing:
                self.protocol.eof_received()
        except ConnectionClosedError as error:
            lost = ended(error)
        except TextMessage as error:
            lost = error
        finally:
            closing, self._closing = self._closing, True
            self.ws.link_transport = None
            if self._close_task is not None:
                self._close_task.cancel()
            self.protocol.connection_lost(None if closing else lost)

    async def _read(self) -> None:
        ws = self.ws
        while True:
            if not self._reading.is_set():
                await self._resumed_or_closed()
            message = await ws.recv()
            if isinstance(message, str):
                await ws.close(CloseCode.UNSUPPORTED_DATA, "tlschat records go in binary messages")
                raise TextMessage("sent a text message")
            self.protocol.data_received(message)

    async def _resumed_or_closed(self) -> None:
        """While reading is paused nothing is taken from websockets (which then stops reading the
        socket after a message or two); its end is still seen."""
        resumed = asyncio.ensure_future(self._reading.wait())
        closed = asyncio.ensure_future(self.ws.wait_closed())
        try:
            await asyncio.wait((resumed, closed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            resumed.cancel()
            closed.cancel()

    # ----- asyncio.Transport -----

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if data and not self.is_closing():
            broadcast([self.ws], bytes(data))

    def get_write_buffer_size(self) -> int:
        return self.ws.transport.get_write_buffer_size()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.ws.transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.ws.transport.get_write_buffer_limits()

    def pause_reading(self) -> None:
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    def is_reading(self) -> bool:
        return self._reading.is_set() and not self.is_closing()

    def is_closing(self) -> bool:
        return self._closing or self.ws.state is not State.OPEN

    def close(self) -> None:
        """What was written is already in the socket's buffer: the close frame follows it."""
        if self._closing:
            return
        self._closing = True
        self._close_task = asyncio.ensure_future(self.ws.close())

    def abort(self) -> None:
        self._closing = True
        self.ws.transport.abort()

    def can_write_eof(self) -> bool:
        return False

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        raise NotImplementedError("a WebSocket link keeps its protocol")
