"""The tlschat secure channel: a sans-IO protocol library (no sockets, no event loop, no clock)."""

from .alerts import AlertDescription, ProtocolError
from .client_connection import ClientConnection
from .connection import (
    PROTOCOL_VERSION,
    Connection,
    ConnectionConfig,
    State,
)
from .events import (
    ConnectionClosed,
    DataReceived,
    Event,
    HandshakeComplete,
    HandshakeStep,
    KeyUpdated,
    ServerAuthenticated,
)
from .identity import IdentityKey, KnownHosts, PeerIdentity, fingerprint_of_spki
from .server_connection import ServerConnection

__all__ = [
    "PROTOCOL_VERSION",
    "AlertDescription",
    "ClientConnection",
    "Connection",
    "ConnectionClosed",
    "ConnectionConfig",
    "DataReceived",
    "Event",
    "HandshakeComplete",
    "HandshakeStep",
    "IdentityKey",
    "KeyUpdated",
    "KnownHosts",
    "PeerIdentity",
    "ProtocolError",
    "ServerAuthenticated",
    "ServerConnection",
    "State",
    "fingerprint_of_spki",
]
