"""The server's log levels (issue 20, point 10), counted on a real server process that N real
clients join and leave: -q errors only; by default no line per connection, one summary; -v three
lines per connection; -vv the handshake's seven trace lines on top, as the seed printed them."""

from __future__ import annotations

import re
import signal
import socket
import time

from .harness import EXIT_WAIT, HOST, WAIT, Harness, Process, Server, stop
from .test_chat_e2e import SERVER_TRACE

CLIENTS = 4
# The lines a server logs at start and at stop whatever comes in between.
FRAME = ("[KEY]", "[HISTORY]", "[LOOP]", "[LISTENING]", "[SHUTDOWN]", "[LIMIT]")
SUMMARY = re.compile(
    rf"^\[CONNECTIONS\] {CLIENTS} connected, {CLIENTS} left in the last \d+ s; 0 online$"
)


def join_and_leave(harness: Harness, server: Process, port: int, name: str) -> list[str]:
    """CLIENTS clients join and quit; the server is stopped; its stdout lines."""
    clients = [harness.client(f"{name}{index}", port) for index in range(CLIENTS)]
    for client in clients:
        client.wait_joined()
    for client in clients:
        client.close_stdin()
    for client in clients:
        assert client.wait_exit() == 0, client.describe()
    assert stop(server, signal.SIGINT) == 0, server.describe()
    assert server.output("stderr") == "", server.describe()
    return server.snapshot()


def logged(harness: Harness, name: str, *flags: str) -> list[str]:
    argv = harness.command(
        "server", "--host", HOST, "--port", "0", "--data-dir", str(harness.root / name), *flags
    )
    server = Server(name, argv, harness.env, harness.root)
    harness.processes.append(server)
    return join_and_leave(harness, server, server.port, name)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def wait_listening(process: Process, port: int) -> None:
    deadline = time.monotonic() + WAIT
    while True:
        with socket.socket() as probe:
            if probe.connect_ex((HOST, port)) == 0:
                return
        assert process.running and time.monotonic() < deadline, process.describe()
        time.sleep(0.05)


def connection_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if not line.startswith(FRAME)]


def test_each_level_logs_what_it_says(harness: Harness) -> None:
    # -q: errors only, and there were none (a port given, as it does not say which it took).
    port = free_port()
    quiet = harness.start(
        "quiet",
        "server",
        "--host",
        HOST,
        "--port",
        str(port),
        "--data-dir",
        str(harness.root / "quiet"),
        "-q",
    )
    wait_listening(quiet, port)
    assert join_and_leave(harness, quiet, port, "q") == []

    # Default: nothing per connection; the connections summed up once (here at the stop).
    default = logged(harness, "default")
    assert connection_lines(default) == [line for line in default if SUMMARY.match(line)], (
        "\n".join(default)
    )
    assert len(connection_lines(default)) == 1, "\n".join(default)

    # -v: who connected from where, with which key, and how it ended: three lines each.
    verbose = logged(harness, "verbose", "-v")
    per_connection = [line for line in connection_lines(verbose) if not SUMMARY.match(line)]
    assert len(per_connection) == 3 * CLIENTS, "\n".join(verbose)
    assert sum(line.startswith("[+] Client connected from") for line in verbose) == CLIENTS
    assert sum(bool(re.match(r"\[TLS\] Client .* identity SHA256:", x)) for x in verbose) == CLIENTS
    assert sum(line.endswith("disconnected (quit)") for line in verbose) == CLIENTS
    assert not any("Step" in line for line in verbose)

    # -vv: and the seed's trace for each handshake, right after its connection's first line.
    steps = logged(harness, "steps", "-vv")
    assert len(steps) == len(verbose) + len(SERVER_TRACE) * CLIENTS, "\n".join(steps)
    for index, line in enumerate(steps):
        if line.startswith("[+] Client connected from"):
            assert steps[index + 1 : index + 1 + len(SERVER_TRACE)] == SERVER_TRACE
    assert sum(line == SERVER_TRACE[0] for line in steps) == CLIENTS

    # Between the levels, only the per-connection lines differ.
    assert len(verbose) == len(default) + 3 * CLIENTS


def test_quiet_and_verbose_together_are_refused(harness: Harness) -> None:
    both = harness.start("both", "server", "--port", "0", "-q", "-v")
    assert both.wait_exit(EXIT_WAIT) == 2, both.describe()
    assert both.output("stderr") == "[!] -q (errors only) and -v (more detail): give one"
