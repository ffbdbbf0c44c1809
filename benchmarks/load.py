"""The load generator: several worker processes, each an asyncio loop holding many connections.

Every worker speaks the server's own protocol:

- tlschat: the real protocol, :class:`~tlschat.protocol.ClientConnection` for the channel (the
  server's key is pinned to the fingerprint it logged) and :class:`~tlschat.chat.client.ChatClient`
  for the frames; room messages are signed before the timed window (the issue allows it), so that
  client-side signing does not limit the load;
- ssl / tcp relays: plain lines;
- ngircd: NICK/USER, OPER and user mode +F (no flood throttling), JOIN #bench, PRIVMSG.

A room message carries its sender slot and sequence number (``slot:seq:padding``). The sender
stamps its send time into a shared-memory table at ``slot * CAPACITY + seq % CAPACITY`` just before
the write, and every receiver reads the stamp back (CLOCK_MONOTONIC is system-wide), so latency is
end to end even for messages signed long before they are sent.

Ingress, the messages the server accepted, is counted two ways in each window: the ``sent`` frames
tlschat confirms a message with (each counter once per sender), and the messages each sender's
watcher (the next client of its worker) received, which for a relay is every line it read and
relayed. The coordinator picks the one that is exact for the server kind (benchmarks.runner).

Workers and the coordinator talk over pipes: a worker connects its clients and says ``ready``;
the coordinator answers with a phase (``go``: mode, rate, window, t_start, t_end on the monotonic
clock), measures the server's and the workers' CPU from /proc over [t_start, t_end], and collects
each worker's counts and latency histogram.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import math
import multiprocessing
import multiprocessing.connection
import os
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.frames import MAX_FRAME, encode_frame
from tlschat.chat.seen import SeenLedger
from tlschat.protocol import (
    ClientConnection,
    ConnectionConfig,
    DataReceived,
    Event,
    HandshakeComplete,
    IdentityKey,
    ProtocolError,
    ServerAuthenticated,
)

from .servers import HOST, IRC_CHANNEL, IRC_OPERATOR, speaks_tlschat

CAPACITY = 1 << 15  # send-time slots per sender (a ring: seq % CAPACITY)
BODY_BYTES = 64
CONNECT_TIMEOUT = 120.0
HIST_SCALE = 50  # latency histogram: bucket = int(ln(1 + microseconds) * HIST_SCALE), ~2 %
HIST_BUCKETS = 1300
SENT_COUNTER = re.compile(rb'"counter":(\d+)')


def body_text(slot: int, seq: int) -> str:
    head = f"{slot}:{seq}:"
    return head + "x" * max(0, BODY_BYTES - len(head))


def histogram_add(histogram: array.array[int], seconds: float) -> None:
    bucket = int(math.log1p(max(seconds, 0.0) * 1e6) * HIST_SCALE)
    histogram[min(bucket, HIST_BUCKETS - 1)] += 1


def histogram_quantile(histogram: list[int], q: float) -> float | None:
    """The q-quantile in seconds (bucket midpoint), or None if empty."""
    total = sum(histogram)
    if not total:
        return None
    wanted = q * total
    seen = 0
    for bucket, count in enumerate(histogram):
        seen += count
        if seen >= wanted:
            return math.expm1((bucket + 0.5) / HIST_SCALE) / 1e6
    return None


def client_tls_context(cafile: str) -> ssl.SSLContext:
    """A TLS 1.3 client that verifies the benchmark's self-signed certificate; no resumption."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.load_verify_locations(cafile)
    return context


@dataclass
class Target:
    kind: str
    port: int
    fingerprint: str = ""  # tlschat: the server key to pin
    cafile: str = ""  # ssl, ngircd: the certificate to verify against
    # A tlschat cluster: every server's port. Room clients are spread over them round robin by
    # index, so a sender and its watcher (the next index) sit on different servers.
    ports: tuple[int, ...] = ()

    def port_for(self, index: int) -> int:
        return self.ports[index % len(self.ports)] if self.ports else self.port


# ----- clients -----


class Client(asyncio.Protocol):
    """One connection; ``ready`` resolves once it is in the room (idle, handshake: set up)."""

    def __init__(self, worker: Worker | None, index: int, mode: str) -> None:
        self.worker = worker
        self.index = index
        self.mode = mode  # "room", "idle" or "handshake"
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connection lost: {exc}"))
        elif not self.closing and self.worker is not None:
            self.worker.lost += 1

    def _ready(self) -> None:
        if not self.ready.done():
            self.ready.set_result(None)

    def _fail(self, reason: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(reason))
        elif self.worker is not None:
            self.worker.note_error(reason)

    def message_bytes(self, slot: int, seq: int) -> bytes:
        raise NotImplementedError

    def counts(self) -> dict[str, int]:
        """What this client counted besides messages since it connected (summed per worker)."""
        return {}

    def send_bytes(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()


class HandshakeClient(Client):
    """ssl and ngircd handshakes: asyncio calls connection_made once the TLS handshake is done."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._ready()


class LineClient(Client):
    """ssl and tcp relays: every line is a message."""

    def __init__(self, worker: Worker | None, index: int, mode: str) -> None:
        super().__init__(worker, index, mode)
        self._buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._ready()  # with ssl, asyncio calls this once the handshake is done

    def data_received(self, data: bytes) -> None:
        lines = (self._buffer + data).split(b"\n")
        self._buffer = lines.pop()
        worker = self.worker
        if worker is None:
            return
        for line in lines:
            slot, seq, _ = line.split(b":", 2)
            worker.on_message(self, int(slot), int(seq))

    def message_bytes(self, slot: int, seq: int) -> bytes:
        return (body_text(slot, seq) + "\n").encode()


class IRCClient(Client):
    """ngircd: register, become operator, +F, join #bench; PRIVMSG lines are messages."""

    def __init__(self, worker: Worker | None, index: int, mode: str) -> None:
        super().__init__(worker, index, mode)
        self.nick = f"b{os.getpid() % 10000}x{index}"
        self._buffer = b""
        self._prefix = f"PRIVMSG {IRC_CHANNEL} :".encode()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self.mode == "handshake":
            self._ready()
            return
        self.send_bytes(f"NICK {self.nick}\r\nUSER {self.nick} 0 * :bench\r\n".encode())

    def data_received(self, data: bytes) -> None:
        lines = (self._buffer + data).split(b"\r\n")
        self._buffer = lines.pop()
        worker = self.worker
        for line in lines:
            if line.startswith(b":") and b" PRIVMSG " in line:
                if worker is not None:
                    payload = line.split(b" :", 1)[1]
                    slot, seq, _ = payload.split(b":", 2)
                    worker.on_message(self, int(slot), int(seq))
            elif line.startswith(b"PING"):
                self.send_bytes(b"PONG" + line[4:] + b"\r\n")
            else:
                self._numeric(line)

    def _numeric(self, line: bytes) -> None:
        parts = line.split(b" ", 3)
        code = parts[1] if len(parts) > 1 else b""
        if code == b"001":
            if self.mode == "idle":
                self._ready()
            else:
                name, password = IRC_OPERATOR
                self.send_bytes(f"OPER {name} {password}\r\n".encode())
        elif code == b"381":  # you are now an IRC operator
            self.send_bytes(f"MODE {self.nick} +F\r\nJOIN {IRC_CHANNEL}\r\n".encode())
        elif code == b"366":  # end of NAMES: in the channel
            self._ready()
        elif (code[:1] in (b"4", b"5") and len(code) == 3) or line.startswith(b"ERROR"):
            self._fail(line.decode(errors="replace"))

    def message_bytes(self, slot: int, seq: int) -> bytes:
        return self._prefix + body_text(slot, seq).encode() + b"\r\n"


class TlschatClient(Client):
    """The real tlschat client protocol, minus the terminal."""

    def __init__(
        self,
        worker: Worker | None,
        index: int,
        mode: str,
        identity: IdentityKey,
        fingerprint: str,
    ) -> None:
        super().__init__(worker, index, mode)
        self.fingerprint = fingerprint
        self.connection = ClientConnection(
            ConnectionConfig(identity=identity, max_message=MAX_FRAME), now=time.monotonic()
        )
        self.chat = ChatClient(identity, f"b{os.getpid() % 10000}x{index}")
        self.presigned: list[bytes] = []
        self.signed_late = 0
        self.confirmed_counters: set[int] = set()  # ours the server answered 'sent' to

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.connection.start_handshake()
        self._flush()

    def _flush(self) -> None:
        data = self.connection.data_to_send()
        if data and self.transport is not None:
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.connection.receive_data(data)
            self._handle(events)
        except ProtocolError as error:
            self._fail(f"protocol error: {error}")
        self._flush()

    def _handle(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, DataReceived):
                self._frame(event.data)
            elif isinstance(event, ServerAuthenticated):
                if self.fingerprint and event.identity.fingerprint != self.fingerprint:
                    self.connection.reject_server("not the benchmark's server")
                    self._fail("server fingerprint mismatch")
                    return
                self._handle(self.connection.trust_server())
            elif isinstance(event, HandshakeComplete):
                self.chat.use_network(event.peer.fingerprint, SeenLedger())
                if self.mode == "room":
                    self.connection.send_data(encode_frame(self.hello_frame()))
                else:
                    self._ready()

    def hello_frame(self) -> dict[str, Any]:
        return self.chat.hello_frame()

    def _frame(self, data: bytes) -> None:
        if data.startswith(b'{"type":"message"'):
            worker = self.worker
            if worker is not None:
                start = data.index(b'"body":"') + 8
                slot, seq, _ = data[start : data.index(b'"', start)].split(b":", 2)
                worker.on_message(self, int(slot), int(seq))
        elif data.startswith(b'{"type":"sent"'):
            self._sent(data)
        elif data.startswith(b'{"type":"joined"'):
            self._ready()
        elif data.startswith((b'{"type":"error"', b'{"type":"bye"')):
            self._fail(data.decode(errors="replace")[:200])

    def _sent(self, data: bytes) -> None:
        """The server accepted one of our messages (stored and relayed): counted once per
        counter, since the server confirms a message sent again a second time."""
        found = SENT_COUNTER.search(data)
        if found is None:
            self._fail(f"a 'sent' frame without a counter: {data[:200]!r}")
            return
        counter = int(found[1])
        if counter not in self.confirmed_counters and self.worker is not None:
            self.confirmed_counters.add(counter)
            self.worker.on_accepted()

    def presign(self, slot: int, count: int) -> None:
        """Sign ``count`` room messages now, before the timed window."""
        now = time.time()
        self.presigned = [
            encode_frame(self.chat.compose(body_text(slot, seq), now)) for seq in range(count)
        ]

    def message_bytes(self, slot: int, seq: int) -> bytes:
        if seq < len(self.presigned):
            frame = self.presigned[seq]
            self.presigned[seq] = b""
        else:  # ran out of pre-signed messages: sign now (counted and reported)
            self.signed_late += 1
            frame = encode_frame(self.chat.compose(body_text(slot, seq), time.time()))
        self.connection.send_data(frame)
        return self.connection.data_to_send()

    def close(self) -> None:
        if self.connection.is_connected and not self.connection.close_notify_sent:
            self.connection.close()
            self._flush()
        super().close()


# ----- a worker process -----


@dataclass
class SenderState:
    slot: int
    client: Client
    next_seq: int = 0
    acked: int = 0  # messages of this sender its watcher has received


@dataclass
class Phase:
    """What one timed phase asks of the worker."""

    mode: str  # "fixed" or "saturation"
    rate_per_sender: float
    window: int
    t_start: float
    t_end: float


# Makes a room client other than the server kind's own (benchmarks.encrypted_load), in the
# worker: (worker, global index, mode).
ClientFactory = Callable[["Worker", int, str], Client]


@dataclass
class WorkerSpec:
    target: Target
    indices: list[int]  # global client indices
    sender_slots: list[int]  # global slots of this worker's senders (its first clients)
    presign: int = 0
    connect_concurrency: int = 16
    seed_key_type: str = "ed25519"
    # Workers are forked, so this may hold what cannot be pickled (keys, vodozemac accounts).
    client_factory: ClientFactory | None = None


class Worker:
    def __init__(self, spec: WorkerSpec, send_times: Any) -> None:
        self.spec = spec
        self.send_times = send_times
        self.clients: list[Client] = []
        self.senders: dict[int, SenderState] = {}
        self.watchers: dict[int, Client] = {}
        self.lost = 0
        self.errors = 0
        self.first_error = ""
        self.phase: Phase | None = None
        target = spec.target
        self.tls = client_tls_context(target.cafile) if target.kind in ("ssl", "ngircd") else None
        self._reset_counts()

    def _reset_counts(self) -> None:
        self.delivered = 0
        self.confirmed = 0  # 'sent' frames: messages tlschat accepted
        self.watched = 0  # messages each sender's watcher received: what a relay relayed
        self.sent = 0
        self.skipped = 0
        self.histogram = array.array("q", bytes(8 * HIST_BUCKETS))

    def note_error(self, reason: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or reason

    def make_client(self, index: int, mode: str) -> Client:
        if self.spec.client_factory is not None and mode == "room":
            return self.spec.client_factory(self, index, mode)
        kind = self.spec.target.kind
        if speaks_tlschat(kind):
            identity = IdentityKey.generate(self.spec.seed_key_type)
            return TlschatClient(self, index, mode, identity, self.spec.target.fingerprint)
        if kind == "ngircd":
            return IRCClient(self, index, mode)
        return LineClient(self, index, mode)

    async def open(self, client: Client) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_connection(
            lambda: client,
            HOST,
            self.spec.target.port_for(client.index),
            ssl=self.tls,
            server_hostname="localhost" if self.tls else None,
        )
        await asyncio.wait_for(client.ready, CONNECT_TIMEOUT)

    async def connect_all(self, indices: list[int], mode: str) -> int:
        """Open (and join or register) one client per index; the number that failed."""
        semaphore = asyncio.Semaphore(self.spec.connect_concurrency)
        failures = 0

        async def one(index: int) -> Client | None:
            nonlocal failures
            async with semaphore:
                client = self.make_client(index, mode)
                try:
                    await self.open(client)
                except (OSError, RuntimeError, TimeoutError, ssl.SSLError) as error:
                    failures += 1
                    self.note_error(f"connect: {type(error).__name__}: {error}")
                    client.close()
                    return None
                return client

        results = await asyncio.gather(*(one(i) for i in indices))
        self.clients += [c for c in results if c is not None]
        return failures

    def assign_senders(self) -> None:
        """This worker's senders are its first clients; each one's watcher is the next client."""
        self.clients.sort(key=lambda c: c.index)
        count = len(self.clients)
        for position, slot in enumerate(self.spec.sender_slots):
            if position >= count or count < 2:
                break
            client = self.clients[position]
            self.senders[slot] = SenderState(slot, client)
            self.watchers[slot] = self.clients[(position + 1) % count]
            if isinstance(client, TlschatClient) and self.spec.presign:
                client.presign(slot, self.spec.presign)

    # ----- the timed phase -----

    def on_message(self, client: Client, slot: int, seq: int) -> None:
        now = time.monotonic()
        phase = self.phase
        if phase is not None and phase.t_start <= now < phase.t_end:
            self.delivered += 1
            sent_at = self.send_times[slot * CAPACITY + seq % CAPACITY]
            histogram_add(self.histogram, now - sent_at)
        state = self.senders.get(slot)
        if state is not None and self.watchers.get(slot) is client:
            if phase is not None and phase.t_start <= now < phase.t_end and seq >= state.acked:
                self.watched += 1
            state.acked = max(state.acked, seq + 1)
            if phase is not None and phase.mode == "saturation":
                self._fill(state, phase, now)

    def on_accepted(self) -> None:
        """A sender of this worker got the server's confirmation of a message."""
        phase = self.phase
        if phase is not None and phase.t_start <= time.monotonic() < phase.t_end:
            self.confirmed += 1

    def _send(self, state: SenderState, now: float) -> None:
        seq = state.next_seq
        data = state.client.message_bytes(state.slot, seq)
        self.send_times[state.slot * CAPACITY + seq % CAPACITY] = time.monotonic()
        state.client.send_bytes(data)
        state.next_seq += 1
        phase = self.phase
        if phase is not None and phase.t_start <= now < phase.t_end:
            self.sent += 1

    def _fill(self, state: SenderState, phase: Phase, now: float) -> None:
        if now >= phase.t_end:
            return
        while state.next_seq - state.acked < phase.window:
            self._send(state, now)

    async def _paced(self, state: SenderState, phase: Phase) -> None:
        interval = 1.0 / phase.rate_per_sender
        # Spread the senders over one interval so that they do not fire together.
        due = time.monotonic() + interval * (state.slot % 97) / 97
        while True:
            now = time.monotonic()
            if now >= phase.t_end:
                return
            if due > now:
                await asyncio.sleep(due - now)
                continue
            if state.next_seq - state.acked < phase.window:
                self._send(state, now)
            elif phase.t_start <= now < phase.t_end:
                self.skipped += 1
            due += interval

    async def run_phase(self, phase: Phase) -> dict[str, Any]:
        self._reset_counts()
        for state in self.senders.values():
            state.acked = state.next_seq  # forget anything still in flight from before
        self.phase = phase
        now = time.monotonic()
        lead = phase.t_start - now
        if phase.mode == "saturation":
            for state in self.senders.values():
                self._fill(state, phase, now)
            await asyncio.sleep(max(0.0, phase.t_end - time.monotonic()))
        else:
            await asyncio.gather(*(self._paced(s, phase) for s in self.senders.values()))
        # Whatever was in flight at t_end lands after it and is not counted.
        await asyncio.sleep(0.3)
        self.phase = None
        signed_late = sum(
            c.signed_late for c in self.clients if isinstance(c, TlschatClient) and c.signed_late
        )
        counts: dict[str, int] = {}
        for client in self.clients:
            for name, value in client.counts().items():
                counts[name] = counts.get(name, 0) + value
        return {
            "delivered": self.delivered,
            "confirmed": self.confirmed,
            "watched": self.watched,
            "sent": self.sent,
            "skipped": self.skipped,
            "histogram": list(self.histogram),
            "lost": self.lost,
            "errors": self.errors,
            "first_error": self.first_error,
            "signed_late": signed_late,
            "client_counts": counts,
            "lead_s": lead,
        }

    async def close_all(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                client.close()
        await asyncio.sleep(0.2)


async def _receive(pipe: multiprocessing.connection.Connection) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, pipe.recv)


async def _room_worker(
    spec: WorkerSpec, pipe: multiprocessing.connection.Connection, send_times: Any
) -> None:
    worker = Worker(spec, send_times)
    failures = await worker.connect_all(spec.indices, "room")
    worker.assign_senders()
    pipe.send(
        (
            "ready",
            {"connected": len(worker.clients), "failed": failures, "senders": len(worker.senders)},
        )
    )
    while True:
        message = await _receive(pipe)
        if message[0] == "go":
            pipe.send(("result", await worker.run_phase(message[1])))
        else:
            await worker.close_all()
            pipe.send(("closed", {}))
            return


async def _idle_worker(spec: WorkerSpec, pipe: multiprocessing.connection.Connection) -> None:
    """Hold idle connections; each ``connect k`` message opens up to k of them in all."""
    worker = Worker(spec, None)
    while True:
        message = await _receive(pipe)
        if message[0] == "connect":
            wanted = spec.indices[: message[1]]
            missing = wanted[len(worker.clients) :]
            started = time.monotonic()
            failures = await worker.connect_all(missing, "idle")
            pipe.send(
                (
                    "ready",
                    {
                        "connected": len(worker.clients),
                        "failed": failures,
                        "seconds": time.monotonic() - started,
                        "lost": worker.lost,
                        "first_error": worker.first_error,
                    },
                )
            )
        else:
            await worker.close_all()
            pipe.send(("closed", {}))
            return


async def _handshake_worker(
    spec: WorkerSpec, concurrency: int, pipe: multiprocessing.connection.Connection
) -> None:
    """Full handshakes in a loop, ``concurrency`` at a time, each on a new connection."""
    worker = Worker(spec, None)
    target = spec.target
    loop = asyncio.get_running_loop()
    identity = IdentityKey.generate(spec.seed_key_type)
    tls = client_tls_context(target.cafile) if target.kind in ("ssl", "ngircd") else None
    pipe.send(("ready", {}))
    message = await _receive(pipe)
    t_start, t_end = message[1], message[2]
    counts = {"completed": 0, "failed": 0, "total": 0}
    latencies = array.array("q", bytes(8 * HIST_BUCKETS))

    async def loop_handshakes(lane: int) -> None:
        index = lane
        while time.monotonic() < t_end:
            if speaks_tlschat(target.kind):
                client: Client = TlschatClient(
                    worker, index, "handshake", identity, target.fingerprint
                )
            else:
                client = HandshakeClient(worker, index, "handshake")
            index += concurrency
            started = time.monotonic()
            try:
                await loop.create_connection(
                    lambda c=client: c,
                    HOST,
                    target.port,
                    ssl=tls,
                    server_hostname="localhost" if tls else None,
                )
                await asyncio.wait_for(client.ready, 30)
            except (OSError, RuntimeError, TimeoutError, ssl.SSLError) as error:
                counts["failed"] += 1
                worker.note_error(f"{type(error).__name__}: {error}")
                client.close()
                await asyncio.sleep(0.01)
                continue
            done = time.monotonic()
            counts["total"] += 1
            if t_start <= done < t_end:
                counts["completed"] += 1
                histogram_add(latencies, done - started)
            client.close()

    await asyncio.gather(*(loop_handshakes(lane) for lane in range(concurrency)))
    await asyncio.sleep(0.2)
    pipe.send(
        (
            "result",
            {**counts, "histogram": list(latencies), "first_error": worker.first_error},
        )
    )


def worker_main(role: str, spec: WorkerSpec, pipe: Any, extra: Any) -> None:
    """Entry point of a worker process (forked)."""
    from .servers import raise_file_limit

    raise_file_limit()
    try:
        if role == "room":
            asyncio.run(_room_worker(spec, pipe, extra))
        elif role == "idle":
            asyncio.run(_idle_worker(spec, pipe))
        else:
            asyncio.run(_handshake_worker(spec, int(extra), pipe))
    except (KeyboardInterrupt, BrokenPipeError, EOFError):
        pass


@dataclass
class WorkerPool:
    """Worker processes and their pipes, driven by the coordinator."""

    role: str
    specs: list[WorkerSpec]
    extra: Any = None
    processes: list[multiprocessing.process.BaseProcess] = field(default_factory=list)
    pipes: list[multiprocessing.connection.Connection] = field(default_factory=list)

    def start(self) -> None:
        context = multiprocessing.get_context("fork")
        for spec in self.specs:
            mine, theirs = context.Pipe()
            process = context.Process(
                target=worker_main, args=(self.role, spec, theirs, self.extra), daemon=True
            )
            process.start()
            self.processes.append(process)
            self.pipes.append(mine)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    def send_all(self, message: Any) -> None:
        for pipe in self.pipes:
            pipe.send(message)

    def receive_all(self, expected: str, timeout: float) -> list[dict[str, Any]]:
        results = []
        deadline = time.monotonic() + timeout
        for pipe, process in zip(self.pipes, self.processes, strict=True):
            while not pipe.poll(0.1):
                if time.monotonic() > deadline or not process.is_alive():
                    raise RuntimeError(f"worker {process.pid} gave no {expected!r}")
            kind, payload = pipe.recv()
            if kind != expected:
                raise RuntimeError(f"worker {process.pid} sent {kind!r}, not {expected!r}")
            results.append(payload)
        return results

    def stop(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError, BrokenPipeError):
                pipe.send(("close",))
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
