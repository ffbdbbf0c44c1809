"""End to end: the real server process with ``--web``, its files and its WebSocket.

The web client here is a Python one: :class:`WebClient` is the tests' :class:`RawClient` (the
real ``tlschat.protocol`` client and the chat's frames) over websockets' client instead of a TCP
socket, which pins the server's fingerprint and cuts what it sends into two messages (any cut
must do). It chats with real ``--plain`` terminal clients over TCP; the limits it meets are
those a TCP client meets.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import re
import signal
import socket
import time
from collections import deque
from pathlib import Path

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tlschat.chat.envelope import SignedMessage
from tlschat.chat.frames import MAX_FRAME, parse_signed_message, say_frame
from tlschat.chat.seen import SeenLedger
from tlschat.chat.verify import Verifier
from tlschat.protocol import ClientConnection, ConnectionConfig, Event, IdentityKey
from tlschat.protocol.events import ServerAuthenticated
from tlschat.protocol.identity import fingerprints_equal

from .harness import CLOCK, HOST, WAIT, Harness, Server
from .test_limits_faults_e2e import (
    SERVER_BUSY,
    RawClient,
    flood_until_dropped,
    read_until_closed,
    said,
    start_clients,
)

WEB = re.compile(r"\[WEB\] Web client on http://127\.0\.0\.1:(\d+)/$")
PACKAGE_STATIC = Path(__file__).resolve().parents[2] / "tlschat" / "web" / "static"
MAX_MESSAGE = 1 << 17


def web_server(harness: Harness, *extra: str) -> tuple[Server, int]:
    server = harness.server(extra=("--web", f"{HOST}:0", *extra))
    found = WEB.search(server.wait_for_line(WEB))
    assert found is not None
    return server, int(found.group(1))


class WebClient(RawClient):
    """RawClient over a WebSocket at /ws, trusting only the server key ``pin``."""

    def __init__(self, port: int, pin: str, *, rcvbuf: int | None = None) -> None:
        self.identity = IdentityKey.generate("ed25519")
        self.pin = pin
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect, so the window it advertises is small too
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(WAIT)
        self.sock.connect((HOST, port))
        self.address = str(tuple(self.sock.getsockname()[:2]))
        self.ws = connect(
            f"ws://{HOST}:{port}/ws",
            sock=self.sock,
            proxy=None,
            compression=None,
            max_size=None,
            max_queue=1,
            open_timeout=WAIT,
            close_timeout=1,
            legacy=True,  # a connection to close by hand, not a context manager
        )
        self.connection = ClientConnection(
            ConnectionConfig(identity=self.identity, max_message=MAX_FRAME), now=time.monotonic()
        )
        self.frames = deque()
        self.connected = False
        self.close_notify_received = False
        self.eof = False

    def _absorb(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, ServerAuthenticated):
                assert fingerprints_equal(event.identity.fingerprint, self.pin), event
        super()._absorb(events)

    def _send_pending(self) -> None:
        data = self.connection.data_to_send()
        if not data:
            return
        cut = max(1, len(data) // 2)
        try:
            for chunk in (data[:cut], data[cut:]):
                if chunk:
                    self.ws.send(chunk)
        except ConnectionClosed:
            if not self.close_notify_received:
                raise  # only our close_notify reply may meet a closed connection

    def _receive(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{self.address}: deadline passed; frames so far {list(self.frames)}"
        try:
            message = self.ws.recv(timeout=remaining)
        except TimeoutError:
            raise AssertionError(f"{self.address}: nothing within {remaining:.1f} s") from None
        except ConnectionClosed:
            self.eof = True
            self._absorb(self.connection.receive_eof())
            return
        assert isinstance(message, bytes), message
        self._absorb(self.connection.receive_data(message))

    def next_message(self, timeout: float = WAIT) -> bytes:
        message = self.ws.recv(timeout=timeout)
        assert isinstance(message, bytes)
        return message

    def wait_close_code(self, timeout: float = WAIT) -> int | None:
        """Skip what comes until the server closes the WebSocket; its close code."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{self.address}: still open after {timeout} s"
            try:
                self.ws.recv(timeout=remaining)
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, ConnectionClosed):
            self.connection.close()
            self.ws.send(self.connection.data_to_send())
        self.ws.close()


def get(port: int, target: str) -> tuple[int, dict[str, str], bytes]:
    """A GET of ``target`` exactly as given (no normalising of ``..``)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=WAIT)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_the_web_port_serves_the_client_files_and_nothing_else(harness: Harness) -> None:
    server, port = web_server(harness)
    assert server.find(f"[LISTENING] Server on {HOST}:{server.port}") is not None
    status, headers, body = get(port, "/js/protocol/client_connection.js")
    expected = (PACKAGE_STATIC / "js" / "protocol" / "client_connection.js").read_bytes()
    assert (status, body) == (200, expected)
    assert headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert headers["Content-Security-Policy"] == (
        "default-src 'self'; "
        f"connect-src 'self' ws://{HOST}:{port}/ws wss://{HOST}:{port}/ws; "
        "script-src 'self' 'wasm-unsafe-eval'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    )
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-cache"
    # The page itself, once the app is there (it is another change's part).
    index = PACKAGE_STATIC / "index.html"
    status, headers, body = get(port, "/")
    if index.is_file():
        assert (status, body) == (200, index.read_bytes())
        assert headers["Content-Type"] == "text/html; charset=utf-8"
    else:
        assert status == 404
    for target in (
        "/missing.js",
        "/js/protocol/",
        "/../pyproject.toml",
        "/%2e%2e/pyproject.toml",
        "/%2e%2e/%2e%2e/pyproject.toml",
        "/js/..%2f..%2f..%2f..%2fpyproject.toml",
        "/../../../../etc/passwd",
    ):
        status, headers, body = get(port, target)
        assert (status, body) == (404, b"not found\n"), target
        assert headers["X-Content-Type-Options"] == "nosniff", target


def test_a_web_client_and_a_terminal_client_chat(harness: Harness) -> None:
    server, port = web_server(harness)
    [alice] = start_clients(harness, server.port, "alice")
    web = WebClient(port, server.fingerprint)
    welcome = web.join("webby")
    assert welcome["nick"] == "webby" and welcome["fingerprint"] == web.identity.fingerprint
    alice.wait_for_line(re.compile(rf"^{CLOCK} \*\*\* webby joined #general$"))

    text = "from the browser's tab 7f7f"
    signed = SignedMessage.create(
        web.identity, server.fingerprint, "#general", 1, int(time.time() * 1000), text
    )
    web.send_frame(say_frame(signed))
    _, sent = web.next_frame("sent")
    assert (sent["target"], sent["counter"]) == ("#general", 1)
    alice.wait_for_line(said("webby", text))  # ✓: alice's client verified it

    alice.send("and back over TCP 8e8e")
    _, message = web.next_frame("message")
    verifier = Verifier(web.identity.fingerprint)
    verifier.use_network(server.fingerprint, SeenLedger())
    verdict = verifier.check(
        parse_signed_message(message),
        base64.b64decode(message["key"]),
        ["#general"],
        "",
        time.time(),
    )
    assert verdict.verified, verdict
    assert (message["from"], message["body"]) == ("alice", "and back over TCP 8e8e")

    web.close()
    server.wait_for_line(f"[-] Client {web.address} disconnected (quit)")
    alice.wait_for_line(re.compile(rf"^{CLOCK} \*\*\* webby left #general"))
    alice.close_stdin()
    assert alice.wait_exit() == 0, alice.describe()


def test_a_web_client_hears_the_shutdown(harness: Harness) -> None:
    server, port = web_server(harness)
    web = WebClient(port, server.fingerprint)
    web.join("webby")
    start = server.mark()
    server.signal(signal.SIGTERM)
    web.wait_closed()  # the notice, close_notify (answered), then the end of the WebSocket
    assert web.close_notify_received
    assert server.wait_exit() == 0, server.describe()
    assert any(frame["text"] == "server is shutting down" for _, frame in web.frames)
    server.wait_for_line(f"[-] Client {web.address} disconnected (quit)", start=start)
    assert server.find("[SHUTDOWN] Server stopped", start=start) is not None


def test_websocket_connections_meet_the_tcp_limits(harness: Harness) -> None:
    # --verbose: refusals on accept are logged one by one only at debug level.
    server, port = web_server(harness, "--max-connections-per-ip", "2", "--verbose")
    first, second = WebClient(port, server.fingerprint), WebClient(port, server.fingerprint)
    first.join("first")
    second.join("second")
    third = WebClient(port, server.fingerprint)
    assert third.next_message() == SERVER_BUSY  # the alert TCP gets, byte for byte
    assert third.wait_close_code() == 1000
    server.wait_for_line(f"[!] {third.address}: refused: too many connections from your address")
    # A TCP client from the same address is refused too: one count for both transports.
    with socket.create_connection((HOST, server.port), timeout=WAIT) as tcp:
        assert read_until_closed(tcp) == (SERVER_BUSY, "eof")

    first.ws.send("a text message")
    assert first.wait_close_code() == 1003
    server.wait_for_line(f"[!] {first.address}: connection lost (sent a text message)")
    server.wait_for_line(f"[-] Client {first.address} disconnected (connection lost)")
    second.ws.send(b"\x17" * (MAX_MESSAGE + 1))
    assert second.wait_close_code() == 1009
    too_big = f"sent a message of more than {MAX_MESSAGE} bytes"
    server.wait_for_line(f"[!] {second.address}: connection lost ({too_big})")
    server.wait_for_line(f"[-] Client {second.address} disconnected (connection lost)")
    # Both places are free again.
    again = WebClient(port, server.fingerprint)
    assert again.join("again")["nick"] == "again"
    again.close()
    for client in (first, second, third):
        client.ws.close()


def test_a_web_client_that_stops_reading_is_dropped(harness: Harness) -> None:
    max_write_buffer = 65536
    server, port = web_server(
        harness, "--max-write-buffer", str(max_write_buffer), "--rate", "1000", "--burst", "1000"
    )
    sender, carol = start_clients(harness, server.port, "sender", "carol")
    slow = WebClient(port, server.fingerprint, rcvbuf=4096)
    slow.join("slow")  # and from now on never reads: websockets holds one message, then stops
    sender.wait_for_line(re.compile(rf"^{CLOCK} \*\*\* slow joined #general$"))

    flood_until_dropped(server, sender, carol, slow.address, max_write_buffer)
    slow.sock.close()
    for client in (sender, carol):
        client.close_stdin()
    for client in (sender, carol):
        assert client.wait_exit() == 0, client.describe()
