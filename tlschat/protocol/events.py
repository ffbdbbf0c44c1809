"""Events a connection hands back from receive_data() and handle_timer()."""

from __future__ import annotations

from dataclasses import dataclass

from .identity import PeerIdentity


@dataclass(frozen=True)
class HandshakeStep:
    """One of the seed's six numbered handshake steps, for the trace the user sees."""

    step: int
    text: str


@dataclass(frozen=True)
class ServerAuthenticated:
    """The server proved it holds ``identity``'s key (client only).

    The handshake pauses here: the application checks the fingerprint (known_hosts, --pin) and
    calls ``trust_server()`` or ``reject_server()``; the client reveals its own identity only after.
    """

    identity: PeerIdentity


@dataclass(frozen=True)
class HandshakeComplete:
    suite: str
    version: int
    peer: PeerIdentity


@dataclass(frozen=True)
class DataReceived:
    """One whole application message, reassembled from however many records carried it."""

    data: bytes


@dataclass(frozen=True)
class KeyUpdated:
    direction: str
    generation: int


@dataclass(frozen=True)
class ConnectionClosed:
    """The peer sent close_notify: nothing was truncated."""


Event = (
    HandshakeStep
    | ServerAuthenticated
    | HandshakeComplete
    | DataReceived
    | KeyUpdated
    | ConnectionClosed
)
