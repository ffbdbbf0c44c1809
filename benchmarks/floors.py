"""What any server in tlschat's design must spend, whatever its own code: the floors behind issue
16's targets (docs/BENCHMARKS.md, "Issue 16").

``python -m benchmarks.floors`` prints, in CPU microseconds:

- the *connection floor*: an asyncio server (and a uvloop one) that accepts a TCP connection,
  answers three small reads with three writes (a handshake's round trips: ClientHello, client
  Finished, close_notify) and closes it, with no crypto and no parsing at all: what the event
  loop and the kernel cost per handshake before tlschat does anything;
- the *handshake in process*: the server's side of full handshakes (``ServerConnection``) driven
  in this process by a ``ClientConnection``, with no sockets and no event loop: tlschat's
  sans-IO handshake, crypto included (the crypto floor is benchmarks/crypto_floor.py);
- the *line floor* at N = 10: what the server must do per room line before any Python of its own,
  each timed alone: the sender's Ed25519 check (the server's own, protocol/ed25519_check.py), the
  line's row in SQLite written as the server writes it (insert and counter, 16 lines per
  transaction, the search index in bulk), and the writes to the nine other members (one ``send()``
  per member per event-loop pass carrying 16 lines, as at saturation, to a reader that keeps up).

Each figure is the CPU time of the process doing the work (the server side only), over a fixed
number of repetitions; nothing here is a target, only what the targets compete with.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from tlschat.protocol import (
    ClientConnection,
    ConnectionConfig,
    IdentityKey,
    ServerAuthenticated,
    ServerConnection,
)
from tlschat.protocol.ed25519_check import ed25519_verifies
from tlschat.store import SQLiteStore, StoredMessage

HOST = "127.0.0.1"
CLIENTS = 3
LINES_PER_PASS = 16
RECIPIENTS = 9
LINE_BYTES = 420  # a relayed 64-byte line as a 'message' frame, length prefix included


class Answering(asyncio.Protocol):
    """Three reads, three writes, then the peer closes: a handshake's exchanges, nothing else."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.reads = 0

    def data_received(self, data: bytes) -> None:
        self.reads += 1
        self.transport.write(b"s" * (1500 if self.reads == 1 else 60))


def _serve(port: int, loop_kind: str, seconds: float) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Answering, HOST, port)
        async with server:
            await asyncio.sleep(seconds)

    if loop_kind == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


def _connect_loop(port: int, seconds: float) -> int:
    done = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.create_connection((HOST, port)) as sock:
            for size in (200, 100, 30):
                sock.sendall(b"c" * size)
                sock.recv(4096)
        done += 1
    return done


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def connection_floor(loop_kind: str, seconds: float = 4.0) -> float:
    """CPU microseconds the server process spends per connection."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    server = multiprocessing.Process(target=_serve, args=(port, loop_kind, seconds + 3))
    server.start()
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection((HOST, port)).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the floor's server did not start"
                time.sleep(0.05)
        before = _cpu_seconds(server.pid or 0)
        with multiprocessing.Pool(CLIENTS) as pool:
            done = sum(pool.starmap(_connect_loop, [(port, seconds)] * CLIENTS))
        used = _cpu_seconds(server.pid or 0) - before
    finally:
        server.terminate()
        server.join()
    return used / done * 1e6


def handshake_in_process(repeat: int = 300) -> float:
    """CPU microseconds of the server's side of one full handshake, sockets left out."""
    server_key = IdentityKey.generate("rsa")
    certificate = server_key.self_signed_certificate("floors", datetime.now(UTC))
    server_config = ConnectionConfig(identity=server_key, certificate_der=certificate)
    client_config = ConnectionConfig(identity=IdentityKey.generate("ed25519"))
    spent = 0.0
    for _ in range(repeat):
        client = ClientConnection(client_config, now=0.0)
        started = time.process_time()
        server = ServerConnection(server_config, now=0.0)
        spent += time.process_time() - started
        client.start_handshake()
        data = client.data_to_send()
        while data:
            started = time.process_time()
            server.receive_data(data)
            answer = server.data_to_send()
            spent += time.process_time() - started
            for event in client.receive_data(answer) if answer else ():
                if isinstance(event, ServerAuthenticated):
                    client.trust_server()
            data = client.data_to_send()
        assert server.is_connected, "the in-process handshake did not complete"
    return spent / repeat * 1e6


def verify_floor(repeat: int = 3000) -> float:
    key = IdentityKey.generate("ed25519")
    raw = key.spki_der[-32:]
    data = b"x" * 200
    signature = key.sign(data)
    started = time.process_time()
    for _ in range(repeat):
        ed25519_verifies(raw, data, signature)
    return (time.process_time() - started) / repeat * 1e6


def store_floor(lines: int = 8000) -> float:
    """Per line: the row and its sender's counter, 16 lines per commit, indexed in bulk."""
    with tempfile.TemporaryDirectory() as directory:
        store = SQLiteStore(Path(directory) / "chat.db")
        started = time.process_time()
        for counter in range(1, lines + 1):
            store.append_message(
                StoredMessage(
                    room="#general",
                    sender=f"SHA256:{counter % 10:043d}",
                    nick=f"n{counter % 10}",
                    key_der=bytes(44),
                    counter=counter,
                    timestamp_ms=1_700_000_000_000 + counter,
                    body=f"{counter % 10}:{counter}:".ljust(64, "x"),
                    signature=bytes(64),
                )
            )
            if counter % LINES_PER_PASS == 0:
                store.commit()
        store.commit()
        while store.index_for_search():
            pass
        used = time.process_time() - started
        store.close()
    return used / lines * 1e6


def _drain(sock: socket.socket) -> None:
    while sock.recv(1 << 20):
        pass


def send_floor(passes: int = 2000) -> float:
    """Per line: its share of one send() per member per pass, to readers that keep up."""
    listener = socket.create_server((HOST, 0))
    port = listener.getsockname()[1]
    readers: list[multiprocessing.Process] = []
    writers: list[socket.socket] = []
    for _ in range(RECIPIENTS):
        client = socket.create_connection((HOST, port))
        server_side, _ = listener.accept()
        reader = multiprocessing.Process(target=_drain, args=(client,))
        reader.start()
        client.close()
        readers.append(reader)
        writers.append(server_side)
    payload = b"r" * (LINE_BYTES * LINES_PER_PASS)
    started = time.process_time()
    for _ in range(passes):
        for writer in writers:
            writer.sendall(payload)
    used = time.process_time() - started
    for writer in writers:
        writer.close()
    for reader in readers:
        reader.join(10)
    listener.close()
    return used / (passes * LINES_PER_PASS) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args()
    print("Connection floor (CPU us per connection: accept, 3 reads, 3 writes, close):")
    for kind in ("asyncio", "uvloop"):
        print(f"  {kind:8} {connection_floor(kind):7.1f}")
    print(f"Handshake in process (CPU us, server side, no sockets): {handshake_in_process():.1f}")
    verify, store, send = verify_floor(), store_floor(), send_floor()
    print("Line floor at N = 10 (CPU us per room line):")
    print(f"  Ed25519 check            {verify:6.1f}")
    print(f"  SQLite row, counter, index {store:4.1f}")
    print(f"  send() to 9 members      {send:6.1f}")
    total = verify + store + send
    print(f"  sum                      {total:6.1f}  = {total / RECIPIENTS:.1f} us per delivery")


if __name__ == "__main__":
    main()
