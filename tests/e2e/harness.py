"""Real processes for the end-to-end tests: the server, plain clients, and a recording TCP proxy.

Every wait here is bounded by a deadline; nothing sleeps longer than the condition it waits for.
Each process's stdout and stderr are read by background threads into line lists, so a test can
wait for a line without ever blocking on a pipe.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlschat.protocol import IdentityKey

HOST = "127.0.0.1"
# Generous upper bounds: under normal conditions each wait ends in milliseconds.
WAIT = 15.0
EXIT_WAIT = 10.0
LISTENING = re.compile(r"\[LISTENING\] Server on 127\.0\.0\.1:(\d+)")
FINGERPRINT = re.compile(r"\[KEY\] Server fingerprint (SHA256:\S+)")
WELCOME = re.compile(r"You are (\S+) in #general")

Predicate = str | re.Pattern[str] | Callable[[str], bool]


CLOCK = r"\[\d{2}:\d{2}:\d{2}\]"

_DATA = Path(__file__).resolve().parent.parent / "data"
# The worked example's test-only server key and certificate (public on purpose), for the fake
# servers the tests play: another network than any test server's. Loaded from the bytes, since a
# checkout leaves the file readable by others, which IdentityKey.load refuses.
TEST_ONLY_SERVER_KEY = IdentityKey.from_pem(
    (_DATA / "test_only_server_rsa2048_key.pem").read_bytes()
)
TEST_ONLY_SERVER_CERTIFICATE = (_DATA / "test_only_server_cert.der").read_bytes()


def json_event(**fields: Any) -> Callable[[str], bool]:
    """A predicate for --json lines whose object has all of ``fields``."""

    def match(line: str) -> bool:
        try:
            event = json.loads(line)
        except ValueError:
            return False
        return isinstance(event, dict) and all(event.get(k) == v for k, v in fields.items())

    return match


def _matcher(predicate: Predicate) -> Callable[[str], bool]:
    if isinstance(predicate, str):
        return lambda line: predicate in line
    if isinstance(predicate, re.Pattern):
        return lambda line: predicate.search(line) is not None
    return predicate


class Process:
    """A child process whose stdout and stderr lines are collected as they arrive."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.argv = argv
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
        )
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._changed = threading.Condition()
        self._eof = {"stdout": False, "stderr": False}
        self._readers = [
            threading.Thread(
                target=self._read, args=(stream,), name=f"{name}-{stream}", daemon=True
            )
            for stream in ("stdout", "stderr")
        ]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self, stream: str) -> None:
        pipe = self.proc.stdout if stream == "stdout" else self.proc.stderr
        assert pipe is not None
        for line in pipe:
            with self._changed:
                self.lines[stream].append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._eof[stream] = True
            self._changed.notify_all()

    # ----- output -----

    def output(self, stream: str = "stdout") -> str:
        with self._changed:
            return "\n".join(self.lines[stream])

    def snapshot(self, stream: str = "stdout") -> list[str]:
        """A copy of the lines so far (the reader threads keep appending to the original)."""
        with self._changed:
            return list(self.lines[stream])

    def mark(self, stream: str = "stdout") -> int:
        """How many lines ``stream`` has now: pass as ``start`` to wait only for later lines."""
        with self._changed:
            return len(self.lines[stream])

    def find(self, predicate: Predicate, stream: str = "stdout", start: int = 0) -> str | None:
        match = _matcher(predicate)
        with self._changed:
            return next((line for line in self.lines[stream][start:] if match(line)), None)

    def wait_for_line(
        self,
        predicate: Predicate,
        timeout: float = WAIT,
        stream: str = "stdout",
        start: int = 0,
    ) -> str:
        """The first line (from index ``start``) matching ``predicate``; fail after ``timeout``."""
        match = _matcher(predicate)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[stream][start:]:
                    if match(line):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._eof[stream]:
                    break
                self._changed.wait(min(remaining, 0.1))
        if self._eof[stream]:  # the output ended: report how the process ended, too
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(2.0)
        raise AssertionError(
            f"{self.name}: no {stream} line matching {predicate!r} within {timeout}s "
            f"(exit code {self.proc.poll()})\n{self.describe()}"
        )

    def wait_for_lines(
        self,
        predicate: Predicate,
        count: int,
        timeout: float = WAIT,
        stream: str = "stdout",
        start: int = 0,
    ) -> list[str]:
        """The first ``count`` lines (from index ``start``) matching ``predicate``."""
        deadline = time.monotonic() + timeout
        found: list[str] = []
        position = start
        while len(found) < count:
            remaining = max(0.0, deadline - time.monotonic())
            line = self.wait_for_line(predicate, remaining, stream, position)
            position = self.snapshot(stream).index(line, position) + 1
            found.append(line)
        return found

    def describe(self) -> str:
        return (
            f"--- {self.name} {' '.join(self.argv[1:])}\n"
            f"--- stdout:\n{self.output('stdout')}\n--- stderr:\n{self.output('stderr')}"
        )

    # ----- input and lifetime -----

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def send_bytes(self, data: bytes) -> None:
        """Raw bytes on stdin, whatever their encoding."""
        stdin = self.proc.stdin
        assert isinstance(stdin, io.TextIOWrapper)
        stdin.flush()
        stdin.buffer.write(data)
        stdin.buffer.flush()

    def close_stdin(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait_exit(self, timeout: float = EXIT_WAIT) -> int:
        """The exit code, once the process has exited and both pipes are drained."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} did not exit within {timeout}s\n{self.describe()}"
            ) from None
        for reader in self._readers:
            reader.join(timeout)
        return code

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """Teardown: SIGKILL if still running, reap, and release the pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(EXIT_WAIT)
        self.close_stdin()
        for reader in self._readers:
            reader.join(2.0)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


class Server(Process):
    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        super().__init__(name, argv, env, cwd)
        listening = LISTENING.search(self.wait_for_line(LISTENING))
        assert listening is not None
        self.port = int(listening.group(1))
        fingerprint = FINGERPRINT.search(self.wait_for_line(FINGERPRINT))
        assert fingerprint is not None
        self.fingerprint = fingerprint.group(1)


class Client(Process):
    nick = ""

    def wait_joined(self, timeout: float = WAIT) -> str:
        """Wait for the welcome line; the nick the server gave us."""
        line = self.wait_for_line(WELCOME, timeout)
        found = WELCOME.search(line)
        assert found is not None
        self.nick = found.group(1)
        return self.nick


class Harness:
    """Starts processes under one temporary directory and kills whatever is left at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.processes: list[Process] = []
        self.proxies: list[RecordingProxy] = []
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("TLSCHAT_", "PYTHONUNBUFFERED"))
        }
        # No process may fall back to the real user's ~/.config/tlschat.
        self.env["TLSCHAT_HOME"] = str(root / "default-home")
        self.env["XDG_CONFIG_HOME"] = str(root / "xdg")

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "tlschat.cli", *args]

    def server(
        self,
        data_dir: Path | None = None,
        port: int = 0,
        name: str = "server",
        extra: tuple[str, ...] = (),
    ) -> Server:
        """A server that is listening; ``extra`` are more `tlschat server` flags. It logs each
        connection and its handshake's steps (-vv), which the tests read; with ``--verbose`` in
        ``extra``, every refused connection and failed handshake alone too."""
        data_dir = data_dir if data_dir is not None else self.root / name
        argv = self.command(
            "server", "--host", HOST, "--port", str(port), "--data-dir", str(data_dir), "-vv"
        )
        argv += extra
        server = Server(name, argv, self.env, self.root)
        self.processes.append(server)
        return server

    def start(self, name: str, *args: str) -> Process:
        """Any `tlschat` command as a process, without waiting for anything (e.g. a server
        expected to refuse its configuration)."""
        process = Process(name, self.command(*args), self.env, self.root)
        self.processes.append(process)
        return process

    def home(self, name: str, key_type: str | None = "ed25519") -> Path:
        """A client home; with ``key_type``, its identity is made now (`tlschat keygen`)."""
        home = self.root / "homes" / name
        if key_type is not None:
            result = subprocess.run(
                self.command("keygen", "--home", str(home), "--key-type", key_type),
                env=self.env,
                capture_output=True,
                text=True,
                timeout=EXIT_WAIT,
                check=True,
            )
            assert "identity SHA256:" in result.stdout, result
        return home

    def client(
        self,
        nick: str,
        port: int,
        home: Path | None = None,
        json: bool = False,
        pin: str | None = None,
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> Client:
        """A ``--plain`` client; without ``home``, one with a fresh ed25519 identity."""
        home = home if home is not None else self.home(nick)
        argv = self.command(
            "client",
            "--host",
            HOST,
            "--port",
            str(port),
            "--plain",
            "--nick",
            nick,
            "--home",
            str(home),
        )
        if json:
            argv.append("--json")
        if pin is not None:
            argv += ["--pin", pin]
        argv += list(extra)
        client = Client(nick, argv, {**self.env, **(env or {})}, self.root)
        self.processes.append(client)
        return client

    def joined_client(self, nick: str, port: int, **kwargs: Any) -> Client:
        """A client, once the server has welcomed it into #general."""
        client = self.client(nick, port, **kwargs)
        client.wait_joined()
        return client

    def _fingerprint(self, *args: str) -> str:
        result = subprocess.run(
            self.command("fingerprint", *args),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=EXIT_WAIT,
            check=True,
        )
        return result.stdout.strip()

    def fingerprint(self, data_dir: Path) -> str:
        """The fingerprint of the server key in ``data_dir``."""
        return self._fingerprint("--data-dir", str(data_dir))

    def key_fingerprint(self, home: Path) -> str:
        """The fingerprint of the identity in ``home`` (`tlschat fingerprint --home`)."""
        return self._fingerprint("--home", str(home))

    def proxy(self, port: int) -> RecordingProxy:
        proxy = RecordingProxy(port)
        self.proxies.append(proxy)
        return proxy

    def tracebacks(self) -> list[str]:
        return [
            f"{process.name} {stream}"
            for process in self.processes
            for stream in ("stdout", "stderr")
            if "Traceback" in process.output(stream)
        ]

    def close(self) -> None:
        for proxy in self.proxies:
            proxy.close()
        for process in self.processes:
            process.kill()


# ----- the recording, tampering proxy -----

RECORD_HEADER = 5
APPLICATION_DATA = 23
DIRECTIONS = ("c2s", "s2c")


@dataclass
class ProxiedConnection:
    downstream: socket.socket
    upstream: socket.socket
    recorded: dict[str, bytearray] = field(
        default_factory=lambda: {direction: bytearray() for direction in DIRECTIONS}
    )
    records: dict[str, list[bytes]] = field(
        default_factory=lambda: {direction: [] for direction in DIRECTIONS}
    )


class RecordingProxy:
    """A TCP proxy on 127.0.0.1 that records both directions and can corrupt one record.

    It forwards whole records (5-byte header + fragment) and counts application_data records
    (outer type 23: every record once a direction is encrypted) per direction. ``tamper(d, n)``
    flips one ciphertext byte of the ``n``-th such record in direction ``d`` ("c2s" or "s2c");
    ``tamper_next(d)`` arms it for the next one.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.connections: list[ProxiedConnection] = []
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(DIRECTIONS, 0)
        self._tamper_at: dict[str, int | None] = dict.fromkeys(DIRECTIONS, None)
        self.tampered: dict[str, int] = dict.fromkeys(DIRECTIONS, 0)
        self._closed = False
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(0.1)  # accept() polls so that close() can stop it
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._start(self._accept, "proxy-accept")

    def _start(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def tamper(self, direction: str, nth: int) -> None:
        with self._lock:
            self._tamper_at[direction] = nth

    def tamper_next(self, direction: str) -> None:
        with self._lock:
            self._tamper_at[direction] = self._counts[direction] + 1

    def recorded(self, direction: str) -> bytes:
        with self._lock:
            return b"".join(bytes(c.recorded[direction]) for c in self.connections)

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except TimeoutError:
                if self._closed:
                    return
                continue
            except OSError:
                return
            downstream.settimeout(None)
            try:
                upstream = socket.create_connection((HOST, self.upstream_port), timeout=WAIT)
            except OSError:
                downstream.close()
                continue
            upstream.settimeout(None)
            connection = ProxiedConnection(downstream, upstream)
            with self._lock:
                if self._closed:
                    downstream.close()
                    upstream.close()
                    return
                self.connections.append(connection)
            self._start(self._pump, "proxy-c2s", connection, "c2s", downstream, upstream)
            self._start(self._pump, "proxy-s2c", connection, "s2c", upstream, downstream)

    def _pump(
        self,
        connection: ProxiedConnection,
        direction: str,
        source: socket.socket,
        destination: socket.socket,
    ) -> None:
        pending = bytearray()
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                pending += data
                for record in self._whole_records(pending):
                    destination.sendall(self._forward(connection, direction, record))
            if pending:
                destination.sendall(self._forward(connection, direction, bytes(pending)))
            destination.shutdown(socket.SHUT_WR)
        except OSError:
            for sock in (source, destination):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _whole_records(pending: bytearray) -> Iterator[bytes]:
        while len(pending) >= RECORD_HEADER:
            size = RECORD_HEADER + int.from_bytes(pending[3:5], "big")
            if len(pending) < size:
                return
            record = bytes(pending[:size])
            del pending[:size]
            yield record

    def _forward(self, connection: ProxiedConnection, direction: str, record: bytes) -> bytes:
        with self._lock:
            connection.recorded[direction] += record
            connection.records[direction].append(record)
            if record[0] != APPLICATION_DATA or len(record) <= RECORD_HEADER:
                return record
            self._counts[direction] += 1
            if self._counts[direction] != self._tamper_at[direction]:
                return record
            self._tamper_at[direction] = None
            self.tampered[direction] += 1
        corrupted = bytearray(record)
        corrupted[RECORD_HEADER] ^= 0x01  # the first ciphertext byte
        return bytes(corrupted)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections = list(self.connections)
        with contextlib.suppress(OSError):
            self._listener.close()
        for connection in connections:
            for sock in (connection.downstream, connection.upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        for thread in self._threads:
            thread.join(2.0)


def stop(process: Process, signum: int = signal.SIGTERM) -> int:
    process.signal(signum)
    return process.wait_exit()
