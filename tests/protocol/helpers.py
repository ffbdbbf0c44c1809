"""Shared helpers for the protocol tests: building connection pairs, pumping bytes, reading alerts.

The identity keys live in ``conftest.py`` as session-scoped fixtures (RSA key generation is slow);
everything here is a plain function that takes them as arguments.
"""

from __future__ import annotations

import datetime
import math
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tlschat.protocol import (
    AlertDescription,
    ClientConnection,
    Connection,
    ConnectionConfig,
    Event,
    HandshakeStep,
    IdentityKey,
    ProtocolError,
    ServerConnection,
    State,
)
from tlschat.protocol.alerts import AlertLevel
from tlschat.protocol.messages import CipherSuite
from tlschat.protocol.record import RECORD_HEADER_LENGTH, RECORD_VERSION, ContentType

AES = CipherSuite.AES_256_GCM_SHA256
CHACHA = CipherSuite.CHACHA20_POLY1305_SHA256
SUITES = (AES, CHACHA)
KEY_TYPES = ("rsa", "ed25519")
NOW = datetime.datetime.now(datetime.UTC)


@dataclass
class Keys:
    """Identity keys generated once per session, and a server certificate for each."""

    identities: dict[str, IdentityKey]
    certificates: dict[str, bytes] = field(default_factory=dict)
    # A second key of each type, for "signed by someone else" tests.
    others: dict[str, IdentityKey] = field(default_factory=dict)

    def __getitem__(self, key_type: str) -> IdentityKey:
        return self.identities[key_type]


def make_pair(
    keys: Keys,
    *,
    server_key: str = "rsa",
    client_key: str = "ed25519",
    client_suites: tuple[int, ...] | None = None,
    server_suites: tuple[int, ...] | None = None,
    certificate: bytes | None = None,
    client_cls: type[ClientConnection] = ClientConnection,
    server_cls: type[ServerConnection] = ServerConnection,
    client_options: dict[str, Any] | None = None,
    server_options: dict[str, Any] | None = None,
    now: float = 0.0,
) -> tuple[ClientConnection, ServerConnection]:
    """A fresh client/server pair; nothing has been sent yet."""
    client_kwargs: dict[str, Any] = dict(client_options or {})
    server_kwargs: dict[str, Any] = dict(server_options or {})
    if client_suites is not None:
        client_kwargs["cipher_suites"] = client_suites
    if server_suites is not None:
        server_kwargs["cipher_suites"] = server_suites
    client_kwargs.setdefault("identity", keys[client_key])
    server_kwargs.setdefault("identity", keys[server_key])
    server_kwargs.setdefault(
        "certificate_der", certificate if certificate is not None else keys.certificates[server_key]
    )
    client = client_cls(ConnectionConfig(**client_kwargs), now=now)
    server = server_cls(ConnectionConfig(**server_kwargs), now=now)
    return client, server


def pump(
    client: ClientConnection,
    server: ServerConnection,
    *,
    trust: bool = True,
    chunk: int | None = None,
) -> tuple[list[Event], list[Event]]:
    """Shuttle data_to_send() between the two until both are quiet.

    The client pauses at ServerAuthenticated; with ``trust`` the helper calls trust_server() then.
    With ``chunk``, bytes are delivered ``chunk`` at a time. Returns (client events, server events).
    """
    client_events: list[Event] = []
    server_events: list[Event] = []
    while True:
        moved = False
        data = client.data_to_send()
        if data:
            moved = True
            server_events += feed(server, data, chunk)
        data = server.data_to_send()
        if data:
            moved = True
            client_events += feed(client, data, chunk)
        if trust and client.state is State.WAIT_TRUST:
            moved = True
            client_events += client.trust_server()
        if not moved:
            return client_events, server_events


def feed(connection: Connection, data: bytes, chunk: int | None = None) -> list[Event]:
    """Deliver ``data`` whole, or ``chunk`` bytes per receive_data() call."""
    if chunk is None:
        return connection.receive_data(data)
    events: list[Event] = []
    for start in range(0, len(data), chunk):
        events += connection.receive_data(data[start : start + chunk])
    return events


def handshake(
    client: ClientConnection, server: ServerConnection, *, chunk: int | None = None
) -> tuple[list[Event], list[Event]]:
    """Run a whole handshake; returns every event each side produced (client's include step 1)."""
    client.start_handshake()
    client_events: list[Event] = list(client.start_events())
    more_client, server_events = pump(client, server, chunk=chunk)
    client_events += more_client
    assert client.state is State.CONNECTED, client.error
    assert server.state is State.CONNECTED, server.error
    return client_events, server_events


def connected_pair(keys: Keys, **kwargs: Any) -> tuple[ClientConnection, ServerConnection]:
    client, server = make_pair(keys, **kwargs)
    handshake(client, server)
    return client, server


def steps(events: Iterable[Event]) -> list[tuple[int, str]]:
    return [(e.step, e.text) for e in events if isinstance(e, HandshakeStep)]


def split_records(data: bytes) -> list[bytes]:
    """Cut a byte stream into whole records (header included); the stream must end on a record."""
    records = []
    position = 0
    while position < len(data):
        assert len(data) - position >= RECORD_HEADER_LENGTH, "partial record header"
        length = int.from_bytes(data[position + 3 : position + 5], "big")
        end = position + RECORD_HEADER_LENGTH + length
        assert end <= len(data), "partial record"
        records.append(data[position:end])
        position = end
    return records


def record(content_type: int, content: bytes, version: int = RECORD_VERSION) -> bytes:
    """A plaintext record, possibly with a wrong version."""
    return (
        bytes([content_type])
        + version.to_bytes(2, "big")
        + len(content).to_bytes(2, "big")
        + content
    )


def flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    """``data`` with one bit (by default) of byte ``index`` flipped."""
    altered = bytearray(data)
    altered[index] ^= mask
    return bytes(altered)


def plaintext_alert(data: bytes) -> AlertDescription:
    """The code of the single fatal plaintext alert record that is ``data``."""
    assert len(data) == RECORD_HEADER_LENGTH + 2, f"expected one alert record, got {data.hex()}"
    assert data[0] == ContentType.alert
    assert int.from_bytes(data[1:3], "big") == RECORD_VERSION
    assert int.from_bytes(data[3:5], "big") == 2
    assert data[5] == AlertLevel.FATAL
    return AlertDescription(data[6])


def assert_failed(
    excinfo: pytest.ExceptionInfo[ProtocolError],
    victim: Connection,
    alert: AlertDescription,
    *,
    received: bool = False,
) -> None:
    """The victim raised ``alert`` from its own checks (or received it) and is now closed."""
    error = excinfo.value
    assert error.alert == alert, str(error)
    assert error.received is received
    assert error.sender == (victim.peer_role if received else victim.role)
    assert victim.state is State.CLOSED
    assert victim.error is error


def assert_plaintext_alert_sent(victim: Connection, alert: AlertDescription) -> bytes:
    data = victim.data_to_send()
    assert plaintext_alert(data) == alert
    return data


def assert_alert_delivered(victim: Connection, peer: Connection, alert: AlertDescription) -> None:
    """The victim's output, fed to its peer, makes the peer raise the same alert, as received."""
    data = victim.data_to_send()
    assert data, "the victim sent no alert"
    with pytest.raises(ProtocolError) as excinfo:
        peer.receive_data(data)
    assert_failed(excinfo, peer, alert, received=True)
    assert excinfo.value.sender == victim.role
    # Nothing answers a fatal alert.
    assert peer.data_to_send() == b""


# ----- RSA keys with another public exponent than 65537 -------------------------------------------


def rsa_public_key_with_exponent(modulus_of: rsa.RSAPrivateKey, exponent: int) -> rsa.RSAPublicKey:
    """``modulus_of``'s modulus with public exponent ``exponent`` (no private key needed)."""
    modulus = modulus_of.public_key().public_numbers().n
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


def rsa_private_key_with_big_exponent(
    primes_of: rsa.RSAPrivateKey, exponent_bits: int = 2000
) -> rsa.RSAPrivateKey:
    """A working private key on ``primes_of``'s primes whose public exponent is a random
    ``exponent_bits``-bit number: about a hundred times the cost of e = 65537 per verification.
    No key generation, so it takes milliseconds."""
    numbers = primes_of.private_numbers()
    p, q = numbers.p, numbers.q
    phi = (p - 1) * (q - 1)
    while True:
        e = secrets.randbits(exponent_bits) | (1 << (exponent_bits - 1)) | 1
        if math.gcd(e, phi) == 1:
            break
    d = pow(e, -1, phi)
    public = rsa.RSAPublicNumbers(e, p * q)
    private = rsa.RSAPrivateNumbers(
        p, q, d, d % (p - 1), d % (q - 1), rsa.rsa_crt_iqmp(p, q), public
    )
    return private.private_key()
