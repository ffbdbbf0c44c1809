"""A TCP proxy on loopback that can cut one server off from Redis in three ways.

- ``FORWARD``: bytes pass both ways.
- ``PAUSE``: connections stay open (old and new) but nothing is forwarded; what was held goes
  through, late, once forwarding resumes. A partition where packets are dropped, not refused.
- ``RESET``: every open connection is reset (RST), and so is every new one at once.
- ``REFUSE``: every open connection is reset and the port is closed: connecting is refused.

It runs an asyncio loop in a thread of its own, so the harness drives it with plain calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from ..e2e.harness import HOST, WAIT

T = TypeVar("T")
CHUNK = 65536
# SO_LINGER on, zero seconds: closing sends RST instead of FIN.
RESET_ON_CLOSE = struct.pack("ii", 1, 0)


class ProxyMode(StrEnum):
    FORWARD = "forward"
    PAUSE = "pause"
    RESET = "reset"
    REFUSE = "refuse"


@dataclass(eq=False)  # kept in a set, by identity
class Link:
    """One client connection and the upstream connection opened for it."""

    downstream: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    pumps: list[asyncio.Task[None]] = field(default_factory=list)


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST: the peer sees 'connection reset', not an orderly end."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
    writer.transport.abort()


class FaultProxy:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``upstream_port`` until told otherwise."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.mode = ProxyMode.FORWARD
        self.accepted = 0
        self._links: set[Link] = set()
        self._server: asyncio.Server | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy")
        self._thread.start()
        self._forwarding = asyncio.Event()
        self._forwarding.set()
        self.port = self._call(self._listen, 0)

    # ----- the harness's side: blocking calls -----

    def set_mode(self, mode: ProxyMode) -> None:
        self._call(self._apply, mode)

    def close(self) -> None:
        """Reset every connection, stop listening and end the thread (idempotent)."""
        if self._loop.is_closed():
            return
        with contextlib.suppress(RuntimeError, TimeoutError):
            self._call(self._shut_down)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(WAIT)
        self._loop.close()

    def _call(self, work: Callable[..., Coroutine[Any, Any, T]], *args: object) -> T:
        """Run ``work(*args)`` on the proxy's loop and wait (bounded) for its result."""
        return asyncio.run_coroutine_threadsafe(work(*args), self._loop).result(WAIT)

    # ----- the loop's side -----

    async def _listen(self, port: int) -> int:
        self._server = await asyncio.start_server(self._accept, HOST, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _apply(self, mode: ProxyMode) -> None:
        self.mode = mode
        if mode == ProxyMode.PAUSE:
            self._forwarding.clear()
            return
        self._forwarding.set()
        if mode in (ProxyMode.RESET, ProxyMode.REFUSE):
            self._reset_all()
        if mode == ProxyMode.REFUSE:
            await self._stop_listening()
        elif self._server is None:
            await self._listen(self.port)  # back on the same port, where the server points

    async def _shut_down(self) -> None:
        self._reset_all()
        await self._stop_listening()

    def _reset_all(self) -> None:
        for link in list(self._links):
            self._drop(link)

    def _drop(self, link: Link) -> None:
        self._links.discard(link)
        for pump in link.pumps:
            pump.cancel()
        reset(link.downstream)
        reset(link.upstream)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        # REFUSE too: a connection the kernel completed just before the port closed.
        if self.mode in (ProxyMode.RESET, ProxyMode.REFUSE):
            reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.upstream_port)
        except OSError:
            reset(writer)
            return
        link = Link(writer, up_writer)
        self._links.add(link)
        link.pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        await asyncio.gather(*link.pumps, return_exceptions=True)
        if link in self._links:  # an orderly end from one side: pass it on, as TCP would
            self._links.discard(link)
            for end in (writer, up_writer):
                end.close()

    async def _pump(self, source: asyncio.StreamReader, destination: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await source.read(CHUNK):
                # Read, then held while paused: the bytes go through late, as after a partition.
                await self._forwarding.wait()
                destination.write(data)
                await destination.drain()
            if destination.can_write_eof():
                destination.write_eof()
