"""The fault proxy's modes against an echo server: forward, pause, reset, refuse, and back."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from ..e2e.harness import HOST
from .proxy import FaultProxy, ProxyMode

TIMEOUT = 5.0
HELD = 0.3  # long enough to see that nothing came through while paused


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):  # the proxy resets it, on purpose
            while data := self.request.recv(4096):
                self.request.sendall(data)


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    with EchoServer((HOST, 0), Echo) as echo:
        serving = threading.Thread(target=echo.serve_forever, daemon=True)
        serving.start()
        proxy = FaultProxy(int(echo.server_address[1]))
        try:
            yield proxy
        finally:
            proxy.close()
            echo.shutdown()


def connect(proxy: FaultProxy) -> socket.socket:
    return socket.create_connection((HOST, proxy.port), timeout=TIMEOUT)


def echoed(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    return sock.recv(4096)


def test_forward_passes_bytes_both_ways(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        assert echoed(sock, b"ping") == b"ping"


def test_pause_holds_bytes_until_forwarding_resumes(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        assert echoed(sock, b"before") == b"before"
        proxy.set_mode(ProxyMode.PAUSE)
        sock.sendall(b"held")
        sock.settimeout(HELD)
        with pytest.raises(TimeoutError):
            sock.recv(4096)
        # A new connection is accepted but not forwarded either.
        with connect(proxy) as late:
            late.sendall(b"late")
            proxy.set_mode(ProxyMode.FORWARD)
            sock.settimeout(TIMEOUT)
            assert sock.recv(4096) == b"held"
            assert late.recv(4096) == b"late"


def test_reset_resets_open_and_new_connections(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        assert echoed(sock, b"before") == b"before"
        proxy.set_mode(ProxyMode.RESET)
        with pytest.raises(ConnectionResetError):
            echoed(sock, b"after")
    # Reset at once: the RST may even beat connect() returning.
    with pytest.raises(ConnectionResetError), connect(proxy) as sock:
        echoed(sock, b"new")
    proxy.set_mode(ProxyMode.FORWARD)
    with connect(proxy) as sock:
        assert echoed(sock, b"healed") == b"healed"


def test_refuse_closes_the_port_then_listens_again_on_it(proxy: FaultProxy) -> None:
    port = proxy.port
    with connect(proxy) as sock:
        assert echoed(sock, b"before") == b"before"
        proxy.set_mode(ProxyMode.REFUSE)
        with pytest.raises(ConnectionResetError):
            echoed(sock, b"after")
    with pytest.raises(ConnectionRefusedError):
        connect(proxy)
    proxy.set_mode(ProxyMode.FORWARD)
    assert proxy.port == port
    with connect(proxy) as sock:
        assert echoed(sock, b"healed") == b"healed"
