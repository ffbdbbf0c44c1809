"""The protocol's share of a delivery, in process: ``python -m benchmarks.deliver_loop``.

100 connected ``ServerConnection``s; each pass queues 5 relayed lines for all of them, then takes
every connection's ``data_to_send`` (one sealed record each), as the server's delivery loop and
its outflow do. Two ways of queueing a line are timed, in CPU microseconds per delivery (median
of 5 runs):

- ``send_data`` for each recipient, which frames the line again for each;
- ``framed_message`` once and ``send_framed`` for each recipient, as ``ChatService.deliver`` does
  since issue 16's second round.

No sockets and no event loop: what is left of a delivery's cost beyond this is the ``send()``
and the work of each event-loop pass (docs/BENCHMARKS.md, "Issue 16, second round").
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from tlschat.protocol import (
    ClientConnection,
    ConnectionConfig,
    IdentityKey,
    ServerAuthenticated,
    ServerConnection,
    State,
)
from tlschat.protocol.connection import framed_message

RECIPIENTS = 100
LINES_PER_PASS = 5
PASSES = 400
RUNS = 5
FRAME = b'{"type":"message"' + b"x" * 300  # about a relayed 64-byte line's frame


def connected(server_config: ConnectionConfig, client_config: ConnectionConfig) -> ServerConnection:
    server = ServerConnection(server_config, now=0.0)
    client = ClientConnection(client_config, now=0.0)
    client.start_handshake()
    data = client.data_to_send()
    while data:
        server.receive_data(data)
        answer = server.data_to_send()
        for event in client.receive_data(answer) if answer else ():
            if isinstance(event, ServerAuthenticated):
                client.trust_server()
        data = client.data_to_send()
    server.data_to_send()
    return server


def each_framed_again(connections: list[ServerConnection]) -> None:
    for connection in connections:
        if connection.is_connected and not connection.close_notify_sent:
            connection.send_data(FRAME)


def framed_once(connections: list[ServerConnection]) -> None:
    framed, ready = framed_message(FRAME), State.CONNECTED
    for connection in connections:
        if connection.state is ready and not connection.close_notify_sent:
            connection.send_framed(framed)


def per_delivery(
    queue_line: Callable[[list[ServerConnection]], None], connections: list[ServerConnection]
) -> float:
    started = time.process_time()
    for _ in range(PASSES):
        for _ in range(LINES_PER_PASS):
            queue_line(connections)
        for connection in connections:
            connection.data_to_send()
    spent = time.process_time() - started
    return spent / (PASSES * LINES_PER_PASS * len(connections)) * 1e6


def main() -> None:
    server_key = IdentityKey.generate("rsa")
    certificate = server_key.self_signed_certificate("deliver-loop", datetime.now(UTC))
    server_config = ConnectionConfig(identity=server_key, certificate_der=certificate)
    client_config = ConnectionConfig(identity=IdentityKey.generate("ed25519"))
    connections = [connected(server_config, client_config) for _ in range(RECIPIENTS)]
    for name, queue_line in (
        ("send_data for each recipient", each_framed_again),
        ("framed once, send_framed for each", framed_once),
    ):
        median = statistics.median(per_delivery(queue_line, connections) for _ in range(RUNS))
        print(f"{name:36s} {median:5.2f} us per delivery, sealing included")


if __name__ == "__main__":
    main()
