"""End to end: connection limits, timeouts, slow readers and faults, with the real server process.

The attackers and misbehaving peers here are in-test protocol clients (:class:`RawClient`, built on
``tlschat.protocol`` over a blocking socket whose every read has a deadline) or bare sockets; the
well-behaved users are real ``--plain`` client processes. Refusals before any keys are the
plaintext ``server_busy`` alert record, byte for byte.

Every wait is bounded: by the harness's deadlines, by socket timeouts, or by an explicit deadline.
The only deliberate sleep is the one that proves an idle client with keepalive is *not* dropped.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import signal
import socket
import sqlite3
import struct
import time
from collections import deque
from pathlib import Path
from typing import Any

from tlschat.chat.frames import MAX_FRAME, decode_frame, encode_frame
from tlschat.protocol import (
    ClientConnection,
    ConnectionClosed,
    ConnectionConfig,
    DataReceived,
    Event,
    HandshakeComplete,
    IdentityKey,
    ServerAuthenticated,
)

from .harness import CLOCK, HOST, WAIT, Client, Harness, Server, json_event

# Plaintext alert records (type 21, version 0x0001, length 2, level fatal, description).
SERVER_BUSY = bytes.fromhex("15 0001 0002 02 cc")  # 204
HANDSHAKE_TIMEOUT = bytes.fromhex("15 0001 0002 02 ca")  # 202
LEGIT_SOURCE = "127.0.0.2"  # all of 127.0.0.0/8 is loopback: another address, same machine
EXIT_CONNECTION_FAILED = 1
CUT = ("protocol error: truncated", "connection lost")  # how a vanished peer is logged


def said(nick: str, text: str, room: str = "") -> re.Pattern[str]:
    """A whole plain line: a verified room message (``room`` when not the current room)."""
    where = f"{re.escape(room)} " if room else ""
    return re.compile(rf"^{CLOCK} {where}✓ <{re.escape(nick)}> {re.escape(text)}$")


def home_with_key(harness: Harness, name: str) -> Path:
    """A client home with an Ed25519 identity, made in-process (no `tlschat keygen` process)."""
    home = harness.root / "homes" / name
    IdentityKey.load_or_create(home / "identity.pem", "ed25519")
    return home


def start_clients(
    harness: Harness, port: int, *nicks: str, extra: tuple[str, ...] = ()
) -> list[Client]:
    """Start the clients together (their start-ups overlap), then wait until each has joined.

    They join in no particular order; once each has its welcome, all are in #general.
    """
    clients = [
        harness.client(nick, port, home=home_with_key(harness, nick), extra=extra) for nick in nicks
    ]
    for client in clients:
        client.wait_joined()
    return clients


def half_client_hello() -> bytes:
    """The first half of a real ClientHello record: what a slowloris sends before stalling."""
    connection = ClientConnection(
        ConnectionConfig(identity=IdentityKey.generate("ed25519")), now=time.monotonic()
    )
    connection.start_handshake()
    hello = connection.data_to_send()
    return hello[: len(hello) // 2]


def stall(port: int, half_hello: bytes, source: str = HOST) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(WAIT)
    sock.bind((source, 0))
    sock.connect((HOST, port))
    sock.sendall(half_hello)
    return sock


def peer(sock: socket.socket) -> str:
    """How the server names this connection in its log: "('127.0.0.1', 40000)"."""
    return str(tuple(sock.getsockname()[:2]))


def read_until_closed(sock: socket.socket, timeout: float = WAIT) -> tuple[bytes, str]:
    """Everything the server sends until it closes ("eof" or "reset"); fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    received = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"still open after {timeout}s; received {bytes(received)!r}"
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return bytes(received), "reset"
        if not data:
            return bytes(received), "eof"
        received += data


def nothing_received(sock: socket.socket) -> bool:
    """True if nothing has arrived and the connection is still open (does not wait)."""
    timeout = sock.gettimeout()
    sock.settimeout(0.0)  # with a timeout, Python would first wait for the socket to be readable
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.settimeout(timeout)
    return False  # data, or the end of the stream


def peak_rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a live process in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


class RawClient:
    """A protocol client in the test process: handshake, hello, frames, with a deadline per read.

    It trusts any server key and answers nothing on its own except the close_notify reply the
    protocol library queues; whatever else it does, the test does explicitly.
    """

    def __init__(self, port: int, *, source: str = HOST, rcvbuf: int | None = None) -> None:
        self.identity = IdentityKey.generate("ed25519")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect, so the window it advertises is small too
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(WAIT)
        self.sock.bind((source, 0))
        self.sock.connect((HOST, port))
        self.address = peer(self.sock)
        self.connection = ClientConnection(
            ConnectionConfig(identity=self.identity, max_message=MAX_FRAME), now=time.monotonic()
        )
        self.frames: deque[tuple[float, dict[str, Any]]] = deque()
        self.connected = False
        self.close_notify_received = False
        self.eof = False

    def _send_pending(self) -> None:
        data = self.connection.data_to_send()
        if not data:
            return
        if self.close_notify_received:
            # Only our close_notify reply: the server may be gone already.
            with contextlib.suppress(OSError):
                self.sock.sendall(data)
            return
        self.sock.sendall(data)

    def _absorb(self, events: list[Event]) -> None:
        arrived = time.monotonic()
        for event in events:
            if isinstance(event, ServerAuthenticated):
                self._absorb(self.connection.trust_server())
            elif isinstance(event, HandshakeComplete):
                self.connected = True
            elif isinstance(event, DataReceived):
                self.frames.append((arrived, decode_frame(event.data)))
            elif isinstance(event, ConnectionClosed):
                self.close_notify_received = True
        self._send_pending()

    def _receive(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{self.address}: deadline passed; frames so far {list(self.frames)}"
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            if not self.close_notify_received:
                raise
            data = b""  # the server closed after its close_notify; our reply met a closed socket
        if not data:
            self.eof = True
            self._absorb(self.connection.receive_eof())
        else:
            self._absorb(self.connection.receive_data(data))

    def handshake(self, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        self.connection.start_handshake()
        self._send_pending()
        while not self.connected:
            assert not self.eof, f"{self.address}: closed during the handshake"
            self._receive(deadline)

    def send_frame(self, frame: dict[str, Any]) -> None:
        self.connection.send_data(encode_frame(frame))
        self._send_pending()

    def next_frame(self, kind: str, timeout: float = WAIT) -> tuple[float, dict[str, Any]]:
        """The next frame of type ``kind`` and when it arrived (earlier frames are dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            while self.frames:
                arrived, frame = self.frames.popleft()
                if frame["type"] == kind:
                    return arrived, frame
            assert not self.eof, f"{self.address}: closed while waiting for a {kind!r} frame"
            self._receive(deadline)

    def join(self, nick: str, timeout: float = WAIT) -> dict[str, Any]:
        """Handshake, hello, and the welcome; returns once the server has put us in #general."""
        deadline = time.monotonic() + timeout
        self.handshake(timeout)
        self.send_frame({"type": "hello", "nick": nick})
        _, welcome = self.next_frame("welcome", deadline - time.monotonic())
        self.next_frame("joined", deadline - time.monotonic())
        return welcome

    def wait_closed(self, timeout: float = WAIT) -> None:
        """Read until the server's close_notify and then the end of the stream."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            self._receive(deadline)

    def close(self) -> None:
        """close_notify, then the socket; quietly, whatever state the connection is in."""
        with contextlib.suppress(OSError, RuntimeError):
            self.connection.close()
            self.sock.sendall(self.connection.data_to_send())
        self.sock.close()


# ----- 1. limits -----


def test_slowloris_from_one_address_does_not_lock_out_a_legitimate_client(
    harness: Harness,
) -> None:
    # Refusals are logged one by one only at debug level (--verbose; at INFO, a summary per
    # address block); the handshake rate per block is not what this test is about.
    flags = ("--handshake-timeout", "3", "--max-connections-per-ip", "50", "--verbose")
    server = harness.server(extra=(*flags, "--handshake-burst", "1000"))
    half_hello = half_client_hello()
    start = server.mark()

    def judged(line: str) -> bool:
        return "[+] Client connected from" in line or "refused: too many connections" in line

    stalled: list[socket.socket] = []
    opened: list[float] = []
    try:
        # In batches, each waited for in the server's log: the accept queue (backlog 100) never
        # overflows, so the server sees them in this order and the first 50 are the admitted ones.
        for batch in range(12):
            for _ in range(25):
                opened.append(time.monotonic())
                stalled.append(stall(server.port, half_hello))
            server.wait_for_lines(judged, 25 * (batch + 1), start=start)

        began = time.monotonic()
        legit = RawClient(server.port, source=LEGIT_SOURCE)
        welcome = legit.join("legit")
        elapsed = time.monotonic() - began
        assert welcome["nick"] == "legit"
        assert elapsed < 1.0, f"the legitimate client needed {elapsed:.2f}s"
        # The attack was still going on while it got in.
        assert server.find("handshake_timeout", start=start) is None, server.describe()

        outcomes = []
        for sock, opened_at in zip(stalled, opened, strict=True):
            data, how = read_until_closed(sock, timeout=3.0 + WAIT)
            outcomes.append((data, how, time.monotonic() - opened_at))
        for data, how, _ in outcomes[50:]:
            assert data == SERVER_BUSY and how in ("eof", "reset"), (data, how)
        for data, how, lasted in outcomes[:50]:
            assert data == HANDSHAKE_TIMEOUT and how in ("eof", "reset"), (data, how)
            assert lasted >= 2.9, f"a stalled handshake was cut after {lasted:.2f}s"
    finally:
        for sock in stalled:
            sock.close()

    refusals = server.wait_for_lines("refused: too many connections from your address", 250)
    assert all("('127.0.0.1'," in line for line in refusals)
    server.wait_for_lines("disconnected (protocol error: handshake_timeout)", 50, start=start)
    # The legitimate client outlived the attack and is still served.
    legit.send_frame({"type": "command", "name": "rooms", "args": ""})
    legit.next_frame("info")
    legit.close()
    server.wait_for_line(f"[-] Client {legit.address} disconnected (quit)")
    assert "Traceback" not in server.output() + server.output("stderr")


def test_oldest_handshake_in_progress_is_evicted(harness: Harness) -> None:
    # --verbose: the connections' own lines (at INFO, a failed handshake is only counted).
    server = harness.server(
        extra=("--max-unauthenticated", "5", "--max-connections-per-ip", "1000", "--verbose")
    )
    half_hello = half_client_hello()
    stalled: list[socket.socket] = []
    try:
        for _ in range(5):
            start = server.mark()
            stalled.append(stall(server.port, half_hello))
            server.wait_for_line(f"[+] Client connected from {peer(stalled[-1])}", start=start)
        start = server.mark()
        stalled.append(stall(server.port, half_hello))

        assert read_until_closed(stalled[0])[0] == SERVER_BUSY
        server.wait_for_line(
            f"[!] {peer(stalled[0])}: refused: too many handshakes in progress", start=start
        )
        server.wait_for_line(f"[-] Client {peer(stalled[0])} disconnected (refused:", start=start)
        server.wait_for_line(f"[+] Client connected from {peer(stalled[5])}", start=start)
        assert all(nothing_received(sock) for sock in stalled[1:]), server.describe()

        # A real client still gets in: it is the newest handshake, so it evicts the next oldest.
        legit = RawClient(server.port)
        assert legit.join("legit")["nick"] == "legit"
        assert read_until_closed(stalled[1])[0] == SERVER_BUSY
        assert all(nothing_received(sock) for sock in stalled[2:])
        legit.close()
    finally:
        for sock in stalled:
            sock.close()


def test_max_connections_refuses_with_server_busy_until_one_leaves(harness: Harness) -> None:
    # --verbose: refusals on accept are logged one by one only at debug level.
    server = harness.server(extra=("--max-connections", "3", "--verbose"))
    members = [RawClient(server.port) for _ in range(3)]
    for number, member in enumerate(members):
        member.join(f"member{number}")

    start = server.mark()
    with socket.create_connection((HOST, server.port), timeout=WAIT) as fourth:
        address = peer(fourth)
        assert read_until_closed(fourth) == (SERVER_BUSY, "eof")
    server.wait_for_line(f"[!] {address}: refused: the server is full", start=start)
    # The real client, refused, says why (and, --no-reconnect, exits rather than retry).
    refused = harness.client(
        "dave", server.port, home=home_with_key(harness, "dave"), extra=("--no-reconnect",)
    )
    assert refused.wait_exit() == EXIT_CONNECTION_FAILED, refused.describe()
    assert refused.find(
        f"[!] The server at {HOST}:{server.port} is full (too many connections).",
        stream="stderr",
    ), refused.describe()
    assert refused.find("You are") is None

    start = server.mark()
    members[0].close()
    server.wait_for_line(f"[-] Client {members[0].address} disconnected (quit)", start=start)
    newcomer = harness.client("erin", server.port, home=home_with_key(harness, "erin"))
    assert newcomer.wait_joined() == "erin"
    while members[1].next_frame("join")[1]["nick"] != "erin":  # the others see erin arrive
        pass
    for member in members[1:]:
        member.close()
    newcomer.close_stdin()
    assert newcomer.wait_exit() == 0, newcomer.describe()


# ----- 2. timeouts -----


def test_idle_client_is_pinged_then_dismissed_but_a_live_one_stays(harness: Harness) -> None:
    server = harness.server(extra=("--idle-timeout", "1", "--ping-timeout", "1"))
    alice, bob = start_clients(harness, server.port, "alice", "bob")
    joined = time.monotonic()

    mute = RawClient(server.port)
    mute.join("mute")
    welcomed = time.monotonic()
    pinged, ping = mute.next_frame("ping", timeout=5.0)
    assert ping == {"type": "ping"}
    dismissed, bye = mute.next_frame("bye", timeout=5.0)
    assert "idle" in bye["reason"], bye
    mute.wait_closed(timeout=5.0)
    assert mute.close_notify_received, "bye must be followed by close_notify"
    # About one second each; the lower bounds are what matter (no early ping, no early bye).
    assert 0.5 <= pinged - welcomed <= 4.0, pinged - welcomed
    assert 0.5 <= dismissed - pinged <= 4.0, dismissed - pinged
    server.wait_for_line(f"[-] Client {mute.address} disconnected (idle: no answer to ping)")
    mute.close()

    # alice and bob said nothing for five idle timeouts, but their clients answered every ping.
    time.sleep(max(0.0, joined + 5.0 - time.monotonic()))
    assert alice.running and bob.running
    dismissed_lines = [line for line in server.snapshot() if "disconnected (idle" in line]
    assert dismissed_lines == [f"[-] Client {mute.address} disconnected (idle: no answer to ping)"]
    alice.send("still here after five seconds 1a1a")
    bob.wait_for_line(said("alice", "still here after five seconds 1a1a"))
    bob.send("me too 2b2b")
    alice.wait_for_line(said("bob", "me too 2b2b"))
    for client in (alice, bob):
        assert client.find("!!!") is None, client.describe()
        client.close_stdin()
    for client in (alice, bob):
        assert client.wait_exit() == 0, client.describe()


# ----- 3. slow readers -----


def kernel_send_buffer_max() -> int:
    """The most a TCP socket's send buffer may autotune to (tcp_wmem's maximum)."""
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        return 4 * 1024 * 1024


def send_until_logged(
    server: Server,
    sender: Client,
    reader: Client,
    logged: str,
    start: int,
    most: int,
    batch: int,
    body: int = 3900,
) -> list[str]:
    """``sender`` says numbered lines of ``body`` bytes, ``batch`` at a time (each batch seen by
    ``reader``), until the server logs ``logged``; at most ``most`` bytes in all. The lines."""
    lines: list[str] = []
    while server.find(logged, start=start) is None:
        assert len(lines) * body < most, f"{logged!r} never logged after {len(lines)} lines"
        numbers = range(len(lines), len(lines) + batch)
        sent = [f"{number:05d} " + "x" * body for number in numbers]
        for line in sent:
            sender.send(line)
        lines += sent
        reader.wait_for_line(said("sender", sent[-1]), timeout=30.0)
    return lines


def flood_until_dropped(
    server: Server, sender: Client, carol: Client, slow_address: str, max_write_buffer: int
) -> None:
    """``sender`` floods #general until the server drops the reader at ``slow_address`` that
    stopped reading: the server says so, the room sees it leave, and carol got every line, in
    order."""
    # A generous bound: the kernel counts its overhead too, so it holds less than its maximum.
    most = (kernel_send_buffer_max() + 2 * max_write_buffer) * 3 // 2
    start = server.mark()
    lines = send_until_logged(server, sender, carol, "stopped reading", start, most, batch=100)
    server.wait_for_line(f"[!] {slow_address} stopped reading; disconnecting", start=start)
    server.wait_for_line(f"[-] Client {slow_address} disconnected (stopped reading)", start=start)
    carol.wait_for_line(re.compile(rf"^{CLOCK} \*\*\* slow left #general \(stopped reading\)$"))
    received = [line.split("> ", 1)[1] for line in carol.snapshot() if "✓ <sender> " in line]
    assert received == lines


def test_slow_reader_is_dropped_and_memory_stays_bounded(harness: Harness) -> None:
    """Policy: the server never holds an unbounded backlog for a client that stopped reading.

    What the server writes goes to the kernel first: the socket's send buffer (autotuned, up to
    tcp_wmem's maximum, 4 MB by default) and the peer's receive window. Whatever the kernel cannot
    take waits in the server's own transport buffer; once that exceeds --max-write-buffer, the
    server aborts the connection (RST, no goodbye: the peer is not reading anyway) and logs
    "<peer> stopped reading; disconnecting". Its rooms see it leave; everyone else keeps chatting
    and nothing they were sent is lost; the server's memory stays small.

    The sender therefore writes batches until the server gives up, bounded by what the kernel
    could possibly have absorbed plus the limit.
    """
    max_write_buffer = 65536
    server = harness.server(
        extra=("--max-write-buffer", str(max_write_buffer), "--rate", "1000", "--burst", "1000")
    )
    sender, carol = start_clients(harness, server.port, "sender", "carol")
    slow = RawClient(server.port, rcvbuf=4096)
    slow.join("slow")  # and from now on never reads
    sender.wait_for_line(re.compile(rf"^{CLOCK} \*\*\* slow joined #general$"))

    flood_until_dropped(server, sender, carol, slow.address, max_write_buffer)
    assert not [line for line in server.snapshot() if slow.address in line and "truncated" in line]

    rss, peak = peak_rss_mb(server.pid)
    assert rss < 200 and peak < 200, f"server RSS {rss:.0f} MB, peak {peak:.0f} MB"
    # The slow reader's connection is gone (what it had buffered, then the end).
    read_until_closed(slow.sock)
    slow.sock.close()

    carol.send("carol still chats 3c3c")
    sender.wait_for_line(said("carol", "carol still chats 3c3c"))
    sender.send("so does the sender 4d4d")
    carol.wait_for_line(said("sender", "so does the sender 4d4d"))
    assert server.running
    for client in (sender, carol):
        client.close_stdin()
    for client in (sender, carol):
        assert client.wait_exit() == 0, client.describe()


def test_slow_readers_past_the_servers_output_budget_are_shed_biggest_first(
    harness: Harness,
) -> None:
    """Policy: however many clients stop reading, what waits for all of them together stays
    within --max-total-write-buffer: past it the server drops the ones holding the most, each
    under its own --max-write-buffer, logging why; readers keep chatting."""
    budget = 256 * 1024
    server = harness.server(
        extra=(
            "--max-write-buffer",
            str(4 * 1024 * 1024),
            "--max-total-write-buffer",
            str(budget),
            "--rate",
            "1000",
            "--burst",
            "1000",
        )
    )
    sender, carol = start_clients(harness, server.port, "sender", "carol")
    slow = [RawClient(server.port, rcvbuf=4096) for _ in range(3)]
    for index, client in enumerate(slow):
        client.join(f"slow{index}")  # and from now on never reads
        sender.wait_for_line(re.compile(rf"^{CLOCK} \*\*\* slow{index} joined #general$"))

    most = (3 * kernel_send_buffer_max() + 2 * budget) * 3 // 2
    start = server.mark()
    lines = send_until_logged(
        server, sender, carol, "over the server's output budget", start, most, batch=50
    )
    shed = server.wait_for_line("over the server's output budget", start=start)
    assert any(client.address in shed for client in slow), shed
    assert "disconnecting" in shed
    # Each slow reader held far less than its own 4 MiB cap: the budget is what dropped it.
    assert server.find("stopped reading; disconnecting", start=start) is None
    carol.send("carol still chats 5e5e")
    sender.wait_for_line(said("carol", "carol still chats 5e5e"))
    received = [line.split("> ", 1)[1] for line in carol.snapshot() if "✓ <sender> " in line]
    assert received == lines
    for client in slow:
        client.sock.close()
    for client in (sender, carol):
        client.close_stdin()
    for client in (sender, carol):
        assert client.wait_exit() == 0, client.describe()


# ----- 4. faults -----


def stored_bodies(database: Path, server_running: bool = True) -> list[str]:
    """The message bodies in the server's history; read-only beside a running server (WAL)."""
    uri = f"file:{database}?mode=ro" if server_running else f"file:{database}"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=1.0)) as db:
            return [row[0] for row in db.execute("SELECT body FROM messages ORDER BY id")]
    except sqlite3.OperationalError:  # e.g. the table is not there yet
        return []


def test_sigterm_flushes_everything_relayed_and_history_survives(harness: Harness) -> None:
    data_dir = harness.root / "server-data"
    flags = ("--rate", "1000", "--burst", "1000", "--history", "100")
    server = harness.server(data_dir=data_dir, extra=flags)
    # Without reconnecting, they end with the server's clean shutdown below.
    alice, bob = start_clients(harness, server.port, "alice", "bob", extra=("--no-reconnect",))

    texts = [f"numbered message {number:02d}" for number in range(1, 51)]
    for text in texts:
        alice.send(text)
    # Stored and relayed happen in one step on the server: once the last is stored, every
    # message has been handed to bob's connection. Then at once, SIGTERM.
    deadline = time.monotonic() + WAIT
    while texts[-1] not in stored_bodies(data_dir / "chat.db"):
        assert time.monotonic() < deadline, server.describe()
        time.sleep(0.01)
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0, server.describe()

    relayed = stored_bodies(data_dir / "chat.db", server_running=False)
    assert relayed == texts
    assert bob.wait_exit() == 0, bob.describe()
    received = [line.split("> ", 1)[1] for line in bob.snapshot() if "✓ <alice> " in line]
    assert received == relayed, bob.describe()
    assert bob.find("server is shutting down") is not None
    assert alice.wait_exit() == 0, alice.describe()

    again = harness.server(data_dir=data_dir, name="server-again", extra=flags)
    carol = harness.client("carol", again.port, home=home_with_key(harness, "carol"), json=True)
    carol.wait_for_line(json_event(kind="message", history=True, text=texts[-1]))
    replayed = [
        json.loads(line)["text"]
        for line in carol.snapshot()
        if json_event(kind="message", history=True, nick="alice", verified=True)(line)
    ]
    assert replayed == texts, carol.describe()
    carol.close_stdin()
    assert carol.wait_exit() == 0, carol.describe()


def test_client_reconnects_with_backoff_and_rejoins_its_rooms(harness: Harness) -> None:
    data_dir = harness.root / "server-data"
    server = harness.server(data_dir=data_dir)
    port = server.port
    alice = start_clients(harness, port, "alice")[0]
    # quitter keeps its stdin open: it must exit on its own when the server goes.
    quitter = start_clients(harness, port, "quitter", extra=("--no-reconnect",))[0]
    quitter_start = quitter.mark("stderr")
    alice.send("/join #rust")
    alice.wait_for_line("You are alice in #rust")
    out, err = alice.mark(), alice.mark("stderr")

    server.signal(signal.SIGKILL)
    server.wait_exit()
    # One line for the loss, one when the next attempt finds nobody listening.
    alice.wait_for_line("; reconnecting ", stream="stderr", start=err)  # "in 0.6 s…" or "now…"
    unreachable = f"[*] Can't reach {HOST}:{port} (nothing is listening there); retrying "
    line = alice.wait_for_line(unreachable, stream="stderr", start=err)
    assert line.endswith("(attempt 2)…"), line
    # --no-reconnect: the same loss ends that client, with the "connection failed" code.
    assert quitter.wait_exit() == EXIT_CONNECTION_FAILED, quitter.describe()
    assert quitter.find("reconnecting", stream="stderr", start=quitter_start) is None

    restarted = harness.server(data_dir=data_dir, port=port, name="server-restarted")
    alice.wait_for_line("You are alice in #general", start=out, timeout=20.0)
    alice.wait_for_line("You are alice in #rust", start=out)
    bob = start_clients(harness, port, "bob")[0]
    bob.send("/join #rust")
    bob.wait_for_line("You are bob in #rust with alice")
    alice.send("back in rust after the restart 5e5e")
    bob.wait_for_line(said("alice", "back in rust after the restart 5e5e"))
    bob.send("welcome back 6f6f")
    alice.wait_for_line(said("bob", "welcome back 6f6f"))

    trace = "\n".join(alice.snapshot("stderr")[err:])
    assert f"Server key {restarted.fingerprint} matches known_hosts" in trace, trace
    assert "CHANGED" not in trace and "New server" not in trace and "[y/N]" not in trace, trace
    assert alice.running
    alice.close_stdin()
    assert alice.wait_exit() == 0, alice.describe()
    bob.close_stdin()
    assert bob.wait_exit() == 0, bob.describe()


def test_clients_vanishing_mid_conversation(harness: Harness) -> None:
    server = harness.server(extra=("--rate", "1000", "--burst", "1000"))
    nicks = [f"user{number}" for number in range(6)]
    clients = start_clients(harness, server.port, *nicks)
    peers = {}
    for nick in nicks:
        fingerprint = IdentityKey.load(harness.root / "homes" / nick / "identity.pem").fingerprint
        line = server.wait_for_line(f"identity {fingerprint}")
        found = re.search(r"\[TLS\] Client (\('127\.0\.0\.1', \d+\)) identity", line)
        assert found is not None, line
        peers[nick] = found.group(1)

    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    order = rng.sample(range(6), 6)
    victims, survivors = order[:3], sorted(order[3:])
    # Each victim dies differently, at a random point of the conversation: right after writing
    # a line; while sending a long one; while a burst from the others is arriving for it.
    kill_rounds = dict(zip(victims, rng.sample(range(1, 9), 3), strict=True))
    ways = dict(zip(victims, ("after-line", "mid-message", "while-receiving"), strict=True))
    for round_number in range(10):
        for index in range(6):
            client = clients[index]
            if not client.running:
                continue
            if kill_rounds.get(index) == round_number:
                way = ways[index]
                if way == "after-line":
                    client.send(f"last words of {nicks[index]}")
                elif way == "mid-message":
                    client.send("y" * 4000)
                    time.sleep(rng.uniform(0.0, 0.02))
                else:
                    for other in survivors:
                        clients[other].send("z" * 3000)
                    time.sleep(rng.uniform(0.0, 0.05))
                client.signal(signal.SIGKILL)
                continue
            client.send(f"round {round_number} from {nicks[index]}")
        time.sleep(rng.uniform(0.0, 0.03))
    for index in victims:
        clients[index].wait_exit()

    context = f"(seed {seed}, victims {[nicks[v] for v in victims]}, ways {ways})"
    for index in victims:
        line = server.wait_for_line(f"[-] Client {peers[nicks[index]]} disconnected (")
        assert any(f"({reason})" in line for reason in CUT), f"{line} {context}"

    # A raw client that sends half of an application record, then ends with FIN, then with RST.
    for ending in ("fin", "rst"):
        raw = RawClient(server.port)
        raw.join(f"half{ending}")
        raw.connection.send_data(encode_frame({"type": "command", "name": "rooms", "args": ""}))
        record = raw.connection.data_to_send()
        raw.sock.sendall(record[: len(record) // 2])
        if ending == "rst":
            raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.sock.close()
        line = server.wait_for_line(f"[-] Client {raw.address} disconnected (")
        assert any(f"({reason})" in line for reason in CUT), line

    assert server.running
    for index in survivors:
        client = clients[index]
        for victim in victims:
            client.wait_for_line(
                re.compile(
                    rf"^{CLOCK} \*\*\* {nicks[victim]} left #general \((?:{'|'.join(CUT)})\)$"
                )
            )
        client.send(f"after the storm from {nicks[index]}")
    for index in survivors:
        for other in survivors:
            if other != index:
                clients[index].wait_for_line(
                    said(nicks[other], f"after the storm from {nicks[other]}")
                )
    for index in survivors:
        clients[index].close_stdin()
    for index in survivors:
        assert clients[index].wait_exit() == 0, clients[index].describe()
    output = server.output() + server.output("stderr")
    assert "Traceback" not in output and "internal error" not in output, context
