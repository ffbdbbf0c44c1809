"""The real client always ends (issue 12, "Always able to leave"): whatever state it is in, the
server's end of stream and SIGINT or SIGTERM end it promptly, never a hang or a busy loop.

A fake server in the test process plays the protocol honestly (with the test-only key of
tests/data) up to a chosen point, then holds the connection: it keeps reading, answers nothing,
and closes TCP (FIN, no close_notify) when the test says so. The states of the client:

* ``connect-pending``: the TCP connection is not even accepted (the listener's queue is full);
* ``nothing``: connected, its ClientHello unanswered;
* ``server-hello``: only the ServerHello arrived (the handshake under way);
* ``server-flight``: the server's whole flight arrived; ``--plain`` trusts it and sends its own
  flight, ``--line`` asks "Trust this server…" on its terminal (a pty here);
* ``connected``: the handshake completed, the client chats;
* after the client's own close_notify (end of stdin, or Ctrl-D at the ``--line`` prompt);
* the reconnect backoff, after a connected session was cut.

"Promptly" is an upper bound on a wait for the exit (``PROMPTLY``), never a sleep. The server's
end of stream after the client's close_notify is a clean end (docs/PROTOCOL.md section 19): the
client exits 0 without waiting for its close grace (3 s).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import signal
import socket
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.adversarial.evil import split_records
from tlschat.chat.frames import MAX_FRAME
from tlschat.client.sessions import CLOSE_UNANSWERED
from tlschat.protocol import (
    ConnectionClosed,
    ConnectionConfig,
    HandshakeComplete,
    IdentityKey,
    ProtocolError,
    ServerConnection,
)

from .harness import (
    EXIT_WAIT,
    HOST,
    TEST_ONLY_SERVER_CERTIFICATE,
    TEST_ONLY_SERVER_KEY,
    WAIT,
    Client,
    Harness,
)

SERVER_KEY, SERVER_CERTIFICATE = TEST_ONLY_SERVER_KEY, TEST_ONLY_SERVER_CERTIFICATE
PROMPTLY = 2.0  # seconds from the server's FIN or the signal to the client's exit
# A quit the user asks for (a signal, Ctrl-C at the prompt) exits 0 whatever the connection is
# doing; while the trust question waits, it leaves the key untrusted (2).
EXIT_OK, EXIT_CONNECTION_FAILED, EXIT_UNTRUSTED_SERVER = 0, 1, 2
SIGNALS = pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"]
)
TRUST_QUESTION = "Trust this server and remember its key?"
NOT_TRUSTED = "[!] Not trusted; nothing was sent."
# The second attempt after the loss: its words differ from the loss's, so it has a line.
SECOND_ATTEMPT = " closed the connection while connecting; retrying "


class FakeServer:
    """Accepts connections on 127.0.0.1; the first is served honestly up to ``stop``, then held:
    it reads (and decrypts) what the client sends but answers nothing, until :meth:`fin` ends it
    with FIN and no close_notify. Later connections (reconnect attempts) get FIN at once.

    ``on_close_notify``, when the held client sends close_notify: "answer" (close_notify back,
    then FIN: an honest server), "fin" (FIN only: a clean end all the same) or "silent".
    """

    def __init__(self, stop: str, on_close_notify: str = "answer") -> None:
        assert stop in ("connect-pending", "nothing", "server-hello", "server-flight", "connected")
        self.stop = stop
        self.on_close_notify = on_close_notify
        self.reached = threading.Event()  # the first connection is held at ``stop``
        self.close_notify = threading.Event()  # the client sent close_notify
        self.client_closed = threading.Event()  # the client closed its end of the first one
        self.connections = 0
        self.problems: list[BaseException] = []
        self._fin = threading.Event()
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server((HOST, 0), backlog=0)
        self.port: int = self._listener.getsockname()[1]
        if stop == "connect-pending":
            # With backlog 0 the accept queue holds one connection: this one, never accepted.
            # The client's SYN is then dropped, and its connect() stays pending.
            self._sockets.append(socket.create_connection((HOST, self.port), timeout=WAIT))
            self.reached.set()
        else:
            self._listener.settimeout(0.05)
            self._start(self._accept)

    def _start(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name="fake-server", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._sockets.append(sock)
            self.connections += 1
            self._start(self._serve, sock, self.connections == 1)

    def _serve(self, sock: socket.socket, first: bool) -> None:
        try:
            if first:
                self._play(sock)
            else:
                sock.shutdown(socket.SHUT_WR)
                self._read_until_closed(sock)
        except BaseException as error:
            self.problems.append(error)
        finally:
            sock.close()

    def _recv(self, sock: socket.socket) -> bytes:
        """Some bytes, b"" at the client's end; polls so that close() can stop it."""
        while not self._closing.is_set():
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                try:
                    return sock.recv(65536)
                except ConnectionResetError:
                    return b""
        return b""

    def _read_until_closed(self, sock: socket.socket) -> None:
        while self._recv(sock):
            pass

    def _play(self, sock: socket.socket) -> None:
        config = ConnectionConfig(
            identity=SERVER_KEY, certificate_der=SERVER_CERTIFICATE, max_message=MAX_FRAME
        )
        connection = ServerConnection(config, time.monotonic())
        if self.stop != "nothing":
            while not connection.data_to_send() and (data := self._recv(sock)):
                connection.receive_data(data)
                flight = connection.data_to_send()
                if flight:
                    records = split_records(flight)
                    sock.sendall(records[0] if self.stop == "server-hello" else flight)
                    break
        if self.stop == "connected":
            while not connection.is_connected and (data := self._recv(sock)):
                if any(isinstance(e, HandshakeComplete) for e in connection.receive_data(data)):
                    sock.sendall(connection.data_to_send())  # the server's Finished
        self.reached.set()
        self._hold(sock, connection)

    def _hold(self, sock: socket.socket, connection: ServerConnection) -> None:
        fin_sent = False
        while not self._closing.is_set():
            if self._fin.is_set() and not fin_sent:
                sock.shutdown(socket.SHUT_WR)
                fin_sent = True
            readable, _, _ = select.select([sock], [], [], 0.05)
            if not readable:
                continue
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                self.client_closed.set()
                return
            try:
                events = connection.receive_data(data)
            except ProtocolError:
                continue  # e.g. the client's close_notify before its keys: not under test here
            answer = connection.data_to_send()  # what was held back is never sent
            if any(isinstance(e, ConnectionClosed) for e in events):
                self.close_notify.set()
                if fin_sent or self.on_close_notify == "silent":
                    continue
                # The client may be gone already (it closes after its close_notify when it
                # quits mid-handshake): then this meets a reset, which is fine.
                with contextlib.suppress(OSError):
                    if self.on_close_notify == "answer" and self.stop == "connected":
                        sock.sendall(answer)  # only our close_notify
                    sock.shutdown(socket.SHUT_WR)
                fin_sent = True

    def wait_reached(self, timeout: float = WAIT) -> None:
        assert self.reached.wait(timeout), f"the client never reached {self.stop}"

    def fin(self) -> None:
        """End the held connection: FIN, without close_notify."""
        self._fin.set()

    def close(self) -> None:
        self._closing.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        for thread in self._threads:
            thread.join(EXIT_WAIT)
        for sock in self._sockets:
            sock.close()
        assert not self.problems, self.problems


# ----- a --line client on a terminal -----

ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]|\x1b[=>]|\r")


def _own_terminal() -> None:
    """In the child: a session of its own, with the pty (its stdin) as controlling terminal, so
    that Ctrl-C typed while the terminal is not in raw mode is a SIGINT to it, as in a shell."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class TerminalClient:
    """``tlschat client --line`` on a pseudo-terminal (prompt_toolkit needs one), its screen
    output collected as text without escape sequences."""

    def __init__(self, harness: Harness, port: int, home: Path, *extra: str) -> None:
        argv = harness.command(
            "client", "--line", "--host", HOST, "--port", str(port), "--home", str(home), *extra
        )
        self.argv = argv
        master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=harness.env,
            cwd=harness.root,
            preexec_fn=_own_terminal,
        )
        os.close(slave)
        self._master = master
        self._text = ""
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="pty", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # EIO: the client and its children closed the terminal
                chunk = b""
            if not chunk:
                return
            if b"\x1b[6n" in chunk:  # prompt_toolkit asks where the cursor is
                with contextlib.suppress(OSError):
                    os.write(self._master, b"\x1b[1;1R")
            with self._changed:
                self._text += ESCAPES.sub("", chunk.decode("utf-8", "replace"))
                self._changed.notify_all()

    def output(self) -> str:
        with self._changed:
            return self._text

    def wait_for(self, text: str, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while text not in self._text:
                remaining = deadline - time.monotonic()
                assert remaining > 0 and self.proc.poll() is None, (
                    f"no {text!r} on the terminal within {timeout}s "
                    f"(exit code {self.proc.poll()})\n{self._text}"
                )
                self._changed.wait(min(remaining, 0.1))

    def type(self, keys: bytes) -> None:
        os.write(self._master, keys)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"the --line client did not exit within {timeout}s\n{self.output()}"
            ) from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(EXIT_WAIT)
        self._reader.join(2.0)
        with contextlib.suppress(OSError):
            os.close(self._master)


# ----- fixtures and steps -----


@pytest.fixture
def servers() -> Iterator[list[FakeServer]]:
    started: list[FakeServer] = []
    try:
        yield started
    finally:
        for server in started:
            server.close()


@pytest.fixture
def terminals() -> Iterator[list[TerminalClient]]:
    started: list[TerminalClient] = []
    try:
        yield started
    finally:
        for terminal in started:
            terminal.kill()
    for terminal in started:
        assert "Traceback" not in terminal.output(), terminal.output()


def fake_server(
    servers: list[FakeServer], stop: str, on_close_notify: str = "answer"
) -> FakeServer:
    server = FakeServer(stop, on_close_notify)
    servers.append(server)
    return server


def home(harness: Harness, name: str) -> Path:
    """A client home with a fresh Ed25519 identity (made in-process: no keygen run)."""
    path = harness.root / "homes" / name
    IdentityKey.generate("ed25519").save(path / "identity.pem")
    return path


def client_home(harness: Harness) -> Path:
    return harness.root / "homes" / "victim"


def plain_client(harness: Harness, server: FakeServer, *extra: str) -> Client:
    return harness.client("victim", server.port, home=home(harness, "victim"), extra=extra)


def line_client(
    harness: Harness, terminals: list[TerminalClient], server: FakeServer, *extra: str
) -> TerminalClient:
    terminal = TerminalClient(harness, server.port, home(harness, "victim"), *extra)
    terminals.append(terminal)
    return terminal


def plain_in_state(harness: Harness, server: FakeServer, *extra: str) -> Client:
    """A --plain client, once it is where ``server`` holds it."""
    client = plain_client(harness, server, *extra)
    server.wait_reached()
    if server.stop == "connected":
        client.wait_for_line("[TLS] ✅ Handshake complete", stream="stderr")
    elif server.stop == "server-flight":  # it trusted the key and sent its own flight
        client.wait_for_line("[TLS] Step 5: Client Finished sent", stream="stderr")
    elif server.stop == "server-hello":  # shows nothing: until the client has read it
        wait_for_socket(client, lambda state, unread: state == ESTABLISHED and unread == 0)
    elif server.stop == "connect-pending":  # until its connect() is under way
        wait_for_socket(client, lambda state, unread: state == SYN_SENT)
    return client


ESTABLISHED, SYN_SENT = 0x01, 0x02


def wait_for_socket(client: Client, condition: Callable[[int, int], bool]) -> None:
    """Until the client's TCP socket meets ``condition(state, unread bytes)`` (in /proc)."""
    deadline = time.monotonic() + WAIT
    while not any(condition(*entry) for entry in _tcp_sockets(client.pid)):
        assert time.monotonic() < deadline, f"the socket never got there\n{client.describe()}"
        time.sleep(0.01)


def _tcp_sockets(pid: int) -> list[tuple[int, int]]:
    """(state, bytes waiting to be read) of each IPv4 TCP socket of process ``pid``."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    sockets = []
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                sockets.append((int(fields[3], 16), int(fields[4].split(":")[1], 16)))
    return sockets


def after_backoff(client: Client | TerminalClient, server: FakeServer) -> None:
    """Cut the connected session, then wait for the second backoff: the first reconnect attempt
    met an end of stream too (the fake server ends every later connection at once)."""
    server.fin()
    if isinstance(client, Client):
        client.wait_for_line("[*] The server closed the connection unexpectedly; ", stream="stderr")
        line = client.wait_for_line(SECOND_ATTEMPT, stream="stderr")
        assert line.endswith("(attempt 2)…"), line
    else:
        client.wait_for(SECOND_ATTEMPT)
    assert server.connections >= 2


# ----- the server's end of stream -----


@pytest.mark.parametrize("stop", ["nothing", "server-hello", "server-flight"])
def test_end_of_stream_during_the_handshake_ends_the_client(
    harness: Harness, servers: list[FakeServer], stop: str
) -> None:
    """Without --no-reconnect it would try again, as after any lost connection (issue 20)."""
    server = fake_server(servers, stop)
    client = plain_in_state(harness, server, "--no-reconnect", "-v")
    server.fin()
    assert client.wait_exit(PROMPTLY) == EXIT_CONNECTION_FAILED, client.describe()
    client.wait_for_line(
        f"[!] The server at {HOST}:{server.port} closed the connection while connecting.",
        stream="stderr",
    )
    line = client.wait_for_line("    (detail: truncated", stream="stderr")  # -v
    assert "connection ended without close_notify" in line, client.describe()


def test_end_of_stream_while_the_trust_question_waits_ends_the_client(
    harness: Harness, servers: list[FakeServer], terminals: list[TerminalClient]
) -> None:
    server = fake_server(servers, "server-flight")
    client = line_client(harness, terminals, server, "--no-reconnect")
    client.wait_for(TRUST_QUESTION)
    server.fin()
    assert client.wait_exit(PROMPTLY) == EXIT_CONNECTION_FAILED, client.output()
    client._reader.join(EXIT_WAIT)  # its last words, said as it exits
    assert " closed the connection while connecting." in client.output(), client.output()
    assert not server.close_notify.is_set()  # no identity, no flight: it never said more
    known_hosts = client_home(harness) / "known_hosts"
    assert not known_hosts.exists() or SERVER_KEY.fingerprint not in known_hosts.read_text()


def test_end_of_stream_while_chatting_ends_a_client_that_does_not_reconnect(
    harness: Harness, servers: list[FakeServer]
) -> None:
    server = fake_server(servers, "connected")
    client = plain_in_state(harness, server, "--no-reconnect")
    server.fin()
    assert client.wait_exit(PROMPTLY) == EXIT_CONNECTION_FAILED, client.describe()
    client.wait_for_line("[!] The server closed the connection unexpectedly.", stream="stderr")
    assert client.find("reconnecting", stream="stderr") is None, client.describe()


def test_end_of_stream_while_chatting_and_reconnecting_never_busy_loops(
    harness: Harness, servers: list[FakeServer]
) -> None:
    """The cut session and the reconnect attempt the server cuts at once both lead to the
    backoff; the client answers SIGTERM there at once (a busy loop would not)."""
    server = fake_server(servers, "connected")
    client = plain_in_state(harness, server)
    after_backoff(client, server)
    client.signal(signal.SIGTERM)
    assert client.wait_exit(PROMPTLY) == EXIT_OK, client.describe()


@pytest.mark.parametrize("on_close_notify", ["fin", "answer"])
def test_end_of_stream_after_the_clients_close_notify_is_a_clean_end(
    harness: Harness, servers: list[FakeServer], on_close_notify: str
) -> None:
    """The bug of issue 12: FIN without close_notify after the client's close_notify left the
    client spinning at 100% CPU in CLOSE-WAIT, deaf to signals."""
    server = fake_server(servers, "connected", on_close_notify)
    client = plain_in_state(harness, server)
    client.close_stdin()
    assert server.close_notify.wait(WAIT), client.describe()
    assert client.wait_exit(PROMPTLY) == EXIT_OK, client.describe()
    errors = client.output("stderr")
    assert CLOSE_UNANSWERED not in errors and "[!]" not in errors, client.describe()
    assert server.connections == 1  # the user left: no reconnect


def test_end_of_stream_after_ctrl_d_at_the_line_prompt_is_a_clean_end(
    harness: Harness, servers: list[FakeServer], terminals: list[TerminalClient]
) -> None:
    server = fake_server(servers, "connected", "fin")
    client = line_client(harness, terminals, server, "--pin", SERVER_KEY.fingerprint)
    client.wait_for("You:")
    client.type(b"\x04")  # Ctrl-D
    assert server.close_notify.wait(WAIT), client.output()
    assert client.wait_exit(PROMPTLY) == EXIT_OK, client.output()
    assert CLOSE_UNANSWERED not in client.output(), client.output()


# ----- SIGINT and SIGTERM -----


@SIGNALS
@pytest.mark.parametrize("stop", ["connect-pending", "nothing", "server-hello", "server-flight"])
def test_signal_while_connecting_ends_the_client(
    harness: Harness, servers: list[FakeServer], stop: str, signum: int
) -> None:
    server = fake_server(servers, stop)
    client = plain_in_state(harness, server)
    client.signal(signum)
    assert client.wait_exit(PROMPTLY) == EXIT_OK, client.describe()
    assert client.find("Handshake complete", stream="stderr") is None, client.describe()
    if stop != "connect-pending":
        # It let go of the connection (with a close_notify where the keys allow one).
        assert server.client_closed.wait(PROMPTLY), client.describe()


@SIGNALS
def test_signal_while_the_trust_question_waits_ends_the_client(
    harness: Harness,
    servers: list[FakeServer],
    terminals: list[TerminalClient],
    signum: int,
) -> None:
    server = fake_server(servers, "server-flight")
    client = line_client(harness, terminals, server)
    client.wait_for(TRUST_QUESTION)
    client.signal(signum)
    assert client.wait_exit(PROMPTLY) == EXIT_UNTRUSTED_SERVER, client.output()
    assert NOT_TRUSTED in client.output(), client.output()
    assert server.client_closed.wait(PROMPTLY), client.output()
    assert not (client_home(harness) / "known_hosts").exists()


@SIGNALS
def test_signal_while_chatting_quits_cleanly(
    harness: Harness, servers: list[FakeServer], signum: int
) -> None:
    server = fake_server(servers, "connected")
    client = plain_in_state(harness, server)
    client.signal(signum)
    assert client.wait_exit(PROMPTLY) == EXIT_OK, client.describe()
    assert server.close_notify.is_set(), client.describe()
    assert server.connections == 1


@SIGNALS
def test_signal_while_chatting_at_the_line_prompt_quits_cleanly(
    harness: Harness,
    servers: list[FakeServer],
    terminals: list[TerminalClient],
    signum: int,
) -> None:
    server = fake_server(servers, "connected")
    client = line_client(harness, terminals, server, "--pin", SERVER_KEY.fingerprint)
    client.wait_for("You:")
    client.signal(signum)
    assert client.wait_exit(PROMPTLY) == EXIT_OK, client.output()
    assert server.close_notify.is_set(), client.output()


@SIGNALS
def test_signal_after_the_clients_close_notify_ends_the_wait_for_the_answer(
    harness: Harness, servers: list[FakeServer], signum: int
) -> None:
    """The server neither answers the close_notify nor closes: the client would wait its close
    grace (3 s); a signal ends that wait at once."""
    server = fake_server(servers, "connected", "silent")
    client = plain_in_state(harness, server)
    client.close_stdin()
    assert server.close_notify.wait(WAIT), client.describe()
    client.signal(signum)
    assert client.wait_exit(PROMPTLY) == EXIT_OK, client.describe()


@SIGNALS
def test_signal_during_the_reconnect_backoff_ends_the_client(
    harness: Harness, servers: list[FakeServer], signum: int
) -> None:
    server = fake_server(servers, "connected")
    client = plain_in_state(harness, server)
    after_backoff(client, server)
    client.signal(signum)
    assert client.wait_exit(PROMPTLY) == EXIT_OK, client.describe()


@SIGNALS
def test_signal_during_the_reconnect_backoff_ends_the_line_client(
    harness: Harness,
    servers: list[FakeServer],
    terminals: list[TerminalClient],
    signum: int,
) -> None:
    server = fake_server(servers, "connected")
    client = line_client(harness, terminals, server, "--pin", SERVER_KEY.fingerprint)
    client.wait_for("You:")
    after_backoff(client, server)
    client.signal(signum)
    assert client.wait_exit(PROMPTLY) == EXIT_OK, client.output()


def test_ctrl_c_at_the_line_prompt_during_the_backoff_ends_the_client(
    harness: Harness, servers: list[FakeServer], terminals: list[TerminalClient]
) -> None:
    server = fake_server(servers, "connected")
    client = line_client(harness, terminals, server, "--pin", SERVER_KEY.fingerprint)
    client.wait_for("You:")
    after_backoff(client, server)
    # Ctrl-C typed at the prompt: a key in raw mode, a SIGINT if it comes while the prompt is
    # printing a line above itself; either way the end.
    client.type(b"\x03")
    assert client.wait_exit(PROMPTLY) == EXIT_OK, client.output()
