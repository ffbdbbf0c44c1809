"""ChatClients with device keys and a real ChatServer, wired in memory through the wire encoding,
with each client's end-to-end state written and read back as the glue does (``take_dirty``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tlschat.chat.client.crypto import ClientCrypto
from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.frames import decode_frame, encode_frame
from tlschat.chat.lines import Line
from tlschat.chat.seen import SeenLedger
from tlschat.chat.server.events import ChatServer
from tlschat.protocol.identity import IdentityKey

from .helpers import NETWORK, NOW, connect

PICKLE_KEY = bytes(range(32))
# Frames from the server to one session, changed (or dropped: None) on their way: a hostile
# server, or a network that loses them.
Tamper = Callable[[int, dict[str, Any]], dict[str, Any] | None]


@dataclass
class Device:
    """One client home: its identity, its state files (as the glue keeps them), its client."""

    identity: IdentityKey
    nick: str
    files: dict[str, str] = field(default_factory=dict)
    client: ChatClient | None = None
    # Everything shown, in order; a line with a ref replaces the earlier one with that ref.
    shown: list[Line] = field(default_factory=list)

    def start(self) -> ChatClient:
        """A new client process on this home: state read from the files."""
        crypto = ClientCrypto(self.identity, PICKLE_KEY, dict(self.files))
        self.client = ChatClient(self.identity, self.nick, crypto=crypto)
        self.client.use_network(NETWORK, SeenLedger())
        self.save()
        return self.client

    def save(self) -> None:
        assert self.client is not None and self.client.crypto is not None
        self.files.update(self.client.crypto.take_dirty())

    def screen(self) -> list[Line]:
        """What the user sees now: each line with a ref as its latest version."""
        latest: dict[int, Line] = {}
        for line in self.shown:
            if line.ref:
                latest[line.ref] = line
        seen: set[int] = set()
        out = []
        for line in self.shown:
            if not line.ref:
                out.append(line)
            elif line.ref not in seen:
                seen.add(line.ref)
                out.append(latest[line.ref])
        return out

    def texts(self, kind: str = "") -> list[str]:
        return [line.text for line in self.screen() if not kind or line.kind == kind]

    def messages(self) -> list[Line]:
        return [line for line in self.screen() if line.kind in ("message", "action", "private")]


class E2eNet:
    """A ChatServer and devices connected to it by session id."""

    def __init__(self, server: ChatServer) -> None:
        self.server = server
        self.sessions: dict[int, Device] = {}
        self.tamper: Tamper | None = None
        # Frames from a client that never reach the server (lost with a connection).
        self.lose: Callable[[int, dict[str, Any]], bool] | None = None
        self.sent: list[tuple[int, dict[str, Any]]] = []
        self.received: list[tuple[int, dict[str, Any]]] = []

    def connect(self, session_id: int, device: Device, now: float = NOW) -> None:
        client = device.client or device.start()
        self.sessions[session_id] = device
        assert connect(self.server, session_id, client.identity, now) == []
        self._deliver(self.server.receive(session_id, client.hello_frame(), now), now)
        self.pump(now)

    def disconnect(self, session_id: int, now: float = NOW) -> None:
        device = self.sessions.pop(session_id)
        assert device.client is not None
        device.client.prepare_reconnect()
        self._deliver(self.server.disconnect(session_id, "quit"), now)
        self.pump(now)

    def type(self, session_id: int, text: str, now: float = NOW) -> None:
        device = self.sessions[session_id]
        assert device.client is not None
        device.shown += device.client.user_input(text, now)
        self.pump(now)

    def tick(self, now: float) -> None:
        for device in list(self.sessions.values()):
            assert device.client is not None
            device.shown += device.client.tick(now)
        self._deliver(self.server.tick(now), now)
        self.pump(now)

    def pump(self, now: float = NOW) -> None:
        """Every client's frames to the server, and the answers back, until all are quiet. Each
        client's state is saved before its frames go, as the glue does."""
        for _ in range(10_000):
            busy = False
            for session_id, device in list(self.sessions.items()):
                assert device.client is not None
                device.save()
                frames = device.client.take_outbox()
                for frame in frames:
                    busy = True
                    wire = decode_frame(encode_frame(frame))
                    if self.lose is not None and self.lose(session_id, wire):
                        continue
                    self.sent.append((session_id, wire))
                    self._deliver(self.server.receive(session_id, wire, now), now)
            if not busy:
                return
        raise AssertionError("the clients and the server never went quiet")

    def _deliver(self, out: list[tuple[int, dict[str, Any]]], now: float) -> None:
        for session_id, frame in out:
            device = self.sessions.get(session_id)
            if device is None or device.client is None:
                continue
            wire = decode_frame(encode_frame(frame))
            if self.tamper is not None:
                changed = self.tamper(session_id, wire)
                if changed is None:
                    continue
                wire = decode_frame(encode_frame(changed))
            self.received.append((session_id, wire))
            device.shown += device.client.handle(wire, now)
