"""The server's whole path for a room line, in process: ``python -m benchmarks.line_loop``.

A real :class:`~tlschat.server.app.ChatService` (default settings, flood control lifted, history
in a fresh SQLite file, its checkpoint thread running) serves N clients whose transports are
in-memory lists: no sockets, no kernel, no load generator sharing the two cores. Each client runs
the real ``ClientConnection`` and ``ChatClient``, joins, and has its lines signed and sealed before
the timed window. In the window, each event-loop pass takes one line from every client (each read
verified, stored, answered 'sent' and relayed to the room), and the pass's writes commit the batch
and seal a record for every member, as the server does under a flood.

It prints the server's CPU (the whole process, the checkpoint thread included) per line and per
delivered message, median of the runs: the figure of the N=10 saturation scenario without what
the kernel's ``send()`` and the readers cost. A change to the line's path can be timed here in
seconds, on its own, before a full benchmark run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.frames import MAX_FRAME, encode_frame
from tlschat.chat.seen import SeenLedger
from tlschat.protocol import (
    ClientConnection,
    ConnectionConfig,
    DataReceived,
    HandshakeComplete,
    IdentityKey,
    ServerAuthenticated,
)
from tlschat.server.app import ChatService
from tlschat.server.config import ServerSettings
from tlschat.server.link import ClientLink

BODY = "{}: a line of chat about as long as people type it"
# Passes of the event loop, at most, to let the handshakes, hellos and joins through.
SETUP_PASSES = 500


class MemoryTransport:
    """What the server's link asks of an asyncio transport, kept in memory."""

    def __init__(self, port: int) -> None:
        self.peername = ("127.0.0.1", port)
        self.written: list[bytes] = []
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peername if name == "peername" else default

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def take(self) -> bytes:
        data = b"".join(self.written)
        self.written.clear()
        return data


class Member:
    """One client: its protocol and chat state, its server-side link and its transport."""

    def __init__(self, service: ChatService, index: int) -> None:
        identity = IdentityKey.generate("ed25519")
        self.connection = ClientConnection(
            ConnectionConfig(identity=identity, max_message=MAX_FRAME), now=time.monotonic()
        )
        self.chat = ChatClient(identity, f"member{index}")
        self.joined = False
        self.transport = MemoryTransport(40000 + index)
        self.link = ClientLink(service)
        self.link.connection_made(self.transport)  # type: ignore[arg-type]
        self.connection.start_handshake()

    def exchange(self) -> None:
        """Hand the server what this client has to send; read what the server wrote."""
        data = self.connection.data_to_send()
        if data:
            self.link.data_received(data)
        answer = self.transport.take()
        events = list(self.connection.receive_data(answer)) if answer else []
        while events:
            event = events.pop(0)
            if isinstance(event, ServerAuthenticated):
                events.extend(self.connection.trust_server())
            elif isinstance(event, HandshakeComplete):
                self.chat.use_network(event.peer.fingerprint, SeenLedger())
                self.connection.send_data(encode_frame(self.chat.hello_frame()))
            elif isinstance(event, DataReceived) and event.data.startswith(b'{"type":"joined"'):
                self.joined = True

    def sealed_lines(self, count: int) -> list[bytes]:
        now = time.time()
        records = []
        for seq in range(count):
            self.connection.send_data(encode_frame(self.chat.compose(BODY.format(seq), now)))
            records.append(self.connection.data_to_send())
        return records


async def one_run(members: int, lines: int) -> float:
    """CPU seconds per line for ``lines`` lines from ``members`` clients."""
    with tempfile.TemporaryDirectory() as data_dir:
        settings = ServerSettings(
            port=0,
            data_dir=Path(data_dir),
            rate=1e9,
            burst=1_000_000_000,
            max_connections_per_ip=members,
            max_connections_per_block=members,
            handshakes_per_block=1e9,
            handshake_burst=1_000_000_000,
            handshake_rate=1e9,
            handshake_rate_burst=1_000_000_000,
        )
        service = ChatService(settings)
        await service.start()
        room = [Member(service, index) for index in range(members)]
        for _ in range(SETUP_PASSES):
            for member in room:
                member.exchange()
            await asyncio.sleep(0)
            if all(member.joined for member in room):
                break
        else:
            raise SystemExit("not every member joined the room")
        per_member = lines // members
        records = [member.sealed_lines(per_member) for member in room]
        started = time.process_time()
        for seq in range(per_member):
            for member, sealed in zip(room, records, strict=True):
                member.link.data_received(sealed[seq])
            await asyncio.sleep(0)  # the pass's writes: commit, then a record for each member
            for member in room:
                member.transport.written.clear()
        spent = time.process_time() - started
        await service.stop()
    return spent / (per_member * members)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10, help="members of the room")
    parser.add_argument("--lines", type=int, default=4000, help="lines per run")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    per_line = statistics.median(asyncio.run(one_run(args.n, args.lines)) for _ in range(args.runs))
    print(
        f"N={args.n}: {per_line * 1e6:.1f} us of server CPU per line, "
        f"{per_line * 1e6 / (args.n - 1):.2f} per delivered message (median of {args.runs})"
    )


if __name__ == "__main__":
    main()
