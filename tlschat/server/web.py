"""The web port (``--web HOST:PORT``, issue 17): the web client's files, and a WebSocket at /ws
over which a browser is served as a TCP client is, by the same ChatService in the same event loop
(web_transport.py). Off unless ``web`` is set.

Before a connection to the web port is a WebSocket session (a request for a file, an opening
handshake), it is bounded here: at most ``max_unauthenticated`` such connections, and
``max_connections_per_ip`` from one address, each done within ``handshake_timeout``. Once it is a
session, ChatService admits it, or refuses it, as it does a TCP connection.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from pathlib import Path

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from .limits import address_block
from .link import ClientLink, LinkOwner
from .web_static import WS_PATH, StaticFiles
from .web_transport import (
    MAX_MESSAGE,
    WRITE_HIGH,
    WRITE_LOW,
    LinkedConnection,
    WebSocketTransport,
)

log = logging.getLogger("tlschat.server")
# websockets' own lines: its warnings and errors only (its info and debug lines are one or more
# per connection and per message, which the server's levels keep to its own log lines).
websockets_log = logging.getLogger("tlschat.server.websockets")

STATIC_ROOT = Path(__file__).resolve().parent.parent / "web" / "static"
# How long a closing handshake may take before the connection is cut (a closing TCP link is cut
# after CLOSE_GRACE anyway, link.py).
CLOSE_TIMEOUT = 2.0
REFUSED_OPENING = "too many web connections opening"


class OpeningGate:
    """The connections to the web port that are not WebSocket sessions (yet). Past the bounds a
    new one is closed at once, unread, and counted in its address block's summary."""

    def __init__(self, owner: LinkOwner) -> None:
        self.owner = owner
        self.opening: dict[LinkedConnection, str] = {}
        self.per_address: collections.Counter[str] = collections.Counter()

    def admit(self, connection: LinkedConnection) -> bool:
        settings = self.owner.settings
        peername = connection.transport.get_extra_info("peername")
        address = str(peername[0]) if peername else ""
        if (
            len(self.opening) >= settings.max_unauthenticated
            or self.per_address[address] >= settings.max_connections_per_ip
        ):
            block = address_block(address, settings.block_prefix_v4, settings.block_prefix_v6)
            self.owner.limit_log.count(block, REFUSED_OPENING, self.owner.loop.time())
            return False
        self.opening[connection] = address
        self.per_address[address] += 1
        return True

    def release(self, connection: LinkedConnection) -> None:
        """``connection`` ended, or is a WebSocket session now (ChatService counts it)."""
        address = self.opening.pop(connection, None)
        if address is None:
            return
        self.per_address[address] -= 1
        if not self.per_address[address]:
            del self.per_address[address]


class WebEndpoint:
    def __init__(self, server: Server, gate: OpeningGate, url: str) -> None:
        self.server = server
        self.gate = gate
        self.url = url

    @classmethod
    async def start(cls, owner: LinkOwner) -> WebEndpoint:
        """Listen on ``owner.settings.web``."""
        settings = owner.settings
        host, port = settings.web_address()
        static = StaticFiles(STATIC_ROOT)
        gate = OpeningGate(owner)
        websockets_log.setLevel(max(logging.WARNING, log.getEffectiveLevel()))

        # websockets makes each connection from a class: this endpoint's own, with its gate.
        class Connection(LinkedConnection):
            pass

        Connection.gate = gate

        def answer(connection: ServerConnection, request: Request) -> Response | None:
            """A file, or None: the WebSocket's opening handshake goes on (at /ws only)."""
            if request.path.partition("?")[0] == WS_PATH:
                return None
            headers = request.headers
            hosts, tags = headers.get_all("Host"), headers.get_all("If-None-Match")
            page = static.answer(
                request.path,
                hosts[0] if len(hosts) == 1 else None,
                tags[0] if len(tags) == 1 else None,
            )
            status, reply = page.status, Headers([*page.headers, ("Connection", "close")])
            return Response(status.value, status.phrase, reply, page.body)

        async def serve_link(ws: ServerConnection) -> None:
            assert isinstance(ws, LinkedConnection)
            gate.release(ws)
            await WebSocketTransport(ws, ClientLink(owner)).run()

        try:
            server = await serve(
                serve_link,
                host,
                port,
                process_request=answer,
                server_header=None,
                compression=None,  # records are encrypted: nothing to gain, CPU to lose
                open_timeout=settings.handshake_timeout,
                close_timeout=CLOSE_TIMEOUT,
                max_size=MAX_MESSAGE,
                max_queue=1,  # while the link does not read, websockets holds one message
                write_limit=(WRITE_HIGH, WRITE_LOW),
                logger=websockets_log,
                create_connection=Connection,
            )
        except OSError as error:
            raise OSError(error.errno, f"{error.strerror} (web client on {host}:{port})") from None
        port = server.sockets[0].getsockname()[1]
        url = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
        log.info("[WEB] Web client on %s", url)
        return cls(server, gate, url)

    def close(self) -> None:
        """Stop listening; what is still opening ends now. WebSocket sessions are ChatService's
        to end, as TCP ones are."""
        self.server.close(close_connections=False)
        for connection in list(self.gate.opening):
            connection.transport.abort()

    async def wait_closed(self, timeout: float) -> None:
        """Until every connection's handler has returned, or ``timeout``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.server.wait_closed(), timeout)
