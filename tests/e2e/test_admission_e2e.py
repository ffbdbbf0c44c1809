"""End to end: admission per address block and per key, the hello deadline, and the handshake
rate per block, with the real server process.

Every connection comes from a loopback address of its own choosing (all of 127.0.0.0/8 is this
machine): 127.0.0.x are one /24 block, 127.0.1.x another. Refusals on accept are counted in one
``[LIMIT]`` summary line per block, logged every 10 s and when the server stops; the tests stop
the server with SIGTERM to read it without waiting.
"""

from __future__ import annotations

import collections
import re
import signal
import socket
import time

from tlschat.chat.frames import MAX_FRAME
from tlschat.protocol import ClientConnection, ConnectionConfig, IdentityKey

from .harness import HOST, WAIT, Harness, Server
from .test_limits_faults_e2e import (
    SERVER_BUSY,
    RawClient,
    read_until_closed,
    stall,
)


def limit_counts(server: Server, block: str) -> collections.Counter[str]:
    """What the server's ``[LIMIT]`` summary lines of ``block`` counted, added up."""
    pattern = re.compile(rf"^\[LIMIT\] {re.escape(block)}: (.*) in the last \d+ s$")
    counts: collections.Counter[str] = collections.Counter()
    for line in server.snapshot():
        found = pattern.match(line)
        if found is None:
            continue
        for part in found.group(1).split(", "):
            number, _, what = part.partition(" ")
            counts[what] += int(number)
    return counts


def stop_server(server: Server) -> None:
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0, server.describe()
    output = server.output() + server.output("stderr")
    assert "Traceback" not in output and "internal error" not in output, server.describe()


def client_with_key(port: int, identity: IdentityKey, source: str = HOST) -> RawClient:
    client = RawClient(port, source=source)
    client.identity = identity
    client.connection = ClientConnection(
        ConnectionConfig(identity=identity, max_message=MAX_FRAME), now=time.monotonic()
    )
    return client


def full_client_hello() -> bytes:
    """One fixed, complete ClientHello record: what a replaying attacker sends again and again."""
    connection = ClientConnection(
        ConnectionConfig(identity=IdentityKey.generate("ed25519")), now=time.monotonic()
    )
    connection.start_handshake()
    return connection.data_to_send()


def test_connections_per_address_block_are_capped_but_another_block_gets_in(
    harness: Harness,
) -> None:
    server = harness.server(
        extra=("--max-connections-per-block", "4", "--max-connections-per-ip", "100")
    )
    hello = full_client_hello()
    stalled: list[socket.socket] = []
    try:
        # Four addresses of 127.0.0.0/24 fill its block (each has only one connection, admitted:
        # the server answered its ClientHello).
        for number in range(1, 5):
            stalled.append(stall(server.port, hello, source=f"127.0.0.{number}"))
            assert stalled[-1].recv(1) == b"\x16"  # the server's flight, a handshake record
        # A fifth address of the same block is refused before any handshake...
        start = server.mark()
        with socket.socket() as fifth:
            fifth.settimeout(WAIT)
            fifth.bind(("127.0.0.5", 0))
            fifth.connect((HOST, server.port))
            assert read_until_closed(fifth) == (SERVER_BUSY, "eof")
        # ...and logged alone only at debug level.
        assert server.find("127.0.0.5", start=start) is None, server.describe()

        # Another block is not affected.
        legit = RawClient(server.port, source="127.0.1.1")
        assert legit.join("legit")["nick"] == "legit"
        legit.close()
    finally:
        for sock in stalled:
            sock.close()
    stop_server(server)
    counts = limit_counts(server, "127.0.0.0/24")
    assert counts["connection refused (too many connections from your address block)"] == 1, (
        server.describe()
    )
    assert not limit_counts(server, "127.0.1.0/24"), server.describe()


def test_sessions_per_key_are_capped(harness: Harness) -> None:
    server = harness.server(extra=("--max-sessions-per-key", "2"))
    identity = IdentityKey.generate("ed25519")
    first, second = (client_with_key(server.port, identity) for _ in range(2))
    first.join("twin")
    second.join("twin2")

    third = client_with_key(server.port, identity, source="127.0.1.1")
    third.handshake()
    _, bye = third.next_frame("bye")
    assert bye["reason"] == "too many sessions of your key (2)", bye
    third.wait_closed()
    assert third.close_notify_received
    server.wait_for_line(
        f"[-] Client {third.address} disconnected (too many sessions of your key (2))"
    )
    third.close()

    # Another key is not affected; once one of the key's sessions leaves, it gets in again.
    other = RawClient(server.port)
    assert other.join("other")["nick"] == "other"
    start = server.mark()
    first.close()
    server.wait_for_line(f"[-] Client {first.address} disconnected (quit)", start=start)
    again = client_with_key(server.port, identity)
    again.join("twin3")
    for client in (second, other, again):
        client.close()
    stop_server(server)
    counts = limit_counts(server, "127.0.1.0/24")
    assert counts["connection refused (too many sessions of one key)"] == 1, server.describe()


def test_a_session_without_hello_is_closed_after_the_hello_deadline(harness: Harness) -> None:
    server = harness.server(extra=("--hello-timeout", "1"))
    silent = RawClient(server.port)
    silent.handshake()
    handshaken = time.monotonic()
    arrived, bye = silent.next_frame("bye", timeout=5.0)
    assert bye["reason"] == "no hello within 1 s", bye
    assert 0.8 <= arrived - handshaken <= 4.0, arrived - handshaken
    silent.wait_closed(timeout=5.0)
    assert silent.close_notify_received
    server.wait_for_line(f"[-] Client {silent.address} disconnected (no hello within 1 s)")
    silent.close()

    # One that says hello in time stays past the deadline.
    talker = RawClient(server.port)
    talker.join("talker")
    time.sleep(1.5)
    talker.send_frame({"type": "command", "name": "rooms", "args": ""})
    talker.next_frame("info")
    talker.close()
    stop_server(server)
    assert limit_counts(server, "127.0.0.0/24")["session closed without hello"] == 1


def test_handshake_burst_from_one_block_is_refused_without_a_signature(harness: Harness) -> None:
    server = harness.server(extra=("--handshakes-per-block", "2", "--handshake-burst", "5"))
    hello = full_client_hello()
    start = server.mark()
    began = time.monotonic()
    admitted = refused = 0
    # One fixed ClientHello replayed on new connections from 30 addresses of 127.0.3.0/24.
    for number in range(1, 31):
        with socket.socket() as sock:
            sock.settimeout(WAIT)
            sock.bind((f"127.0.3.{number}", 0))
            sock.connect((HOST, server.port))
            sock.sendall(hello)
            first = sock.recv(65536)
            if first == SERVER_BUSY:
                refused += 1
                # Nothing else follows the alert: no ServerHello, no signed flight. (A reset:
                # the server closed without reading our ClientHello.)
                assert read_until_closed(sock)[0] == b""
            else:
                assert first[:1] == b"\x16", first[:16]  # a handshake record: the server's flight
                admitted += 1
    elapsed = time.monotonic() - began
    assert admitted + refused == 30
    assert 5 <= admitted <= 5 + 2 * elapsed + 1, (admitted, elapsed)

    # None of them has a line of its own at INFO: the refused ones nor the admitted ones, whose
    # handshakes never finished (their lines are held until a handshake completes).
    assert not [line for line in server.snapshot()[start:] if "'127.0.3." in line]

    # A user of another block gets in at once.
    began = time.monotonic()
    legit = RawClient(server.port, source="127.0.9.1")
    assert legit.join("legit")["nick"] == "legit"
    assert time.monotonic() - began < 2.0
    legit.close()
    stop_server(server)
    counts = limit_counts(server, "127.0.3.0/24")
    refusals = (
        "connections refused (handshake rate)"
        if refused > 1
        else ("connection refused (handshake rate)")
    )
    assert counts[refusals] == refused, server.describe()
    failed = sum(n for what, n in counts.items() if what.startswith("failed handshake"))
    assert failed == admitted, server.describe()  # they never finished theirs
    assert not limit_counts(server, "127.0.9.0/24"), server.describe()
