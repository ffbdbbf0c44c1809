"""What the fuzz targets share: fixed keys, fixed entropy, real flights and the crash rules.

Everything here is deterministic (fixed Ed25519 seeds, a certificate with a fixed serial and
dates, constant entropy), so a corpus file replays the same way on every run and every machine:
a recorded server flight still decrypts for the fuzzed client, whose key share never changes.

The rule every target enforces: the library may reject input only with its own exception
(:class:`ProtocolError`, or :class:`FrameError` for chat frames). Anything else escapes and
crashes the fuzzer. A ``ProtocolError(internal_error)`` that wraps another exception is how a
connection reports a bug of its own, so the targets unwrap and re-raise the cause.
"""

from __future__ import annotations

import datetime
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from tlschat.protocol import (
    AlertDescription,
    ClientConnection,
    Connection,
    ConnectionClosed,
    ConnectionConfig,
    DataReceived,
    HandshakeComplete,
    HandshakeStep,
    IdentityKey,
    KeyUpdated,
    ProtocolError,
    ServerAuthenticated,
    ServerConnection,
    State,
)
from tlschat.protocol.record import RECORD_HEADER_LENGTH, DirectionKeys, plaintext_record

EVENT_TYPES = (
    HandshakeStep,
    ServerAuthenticated,
    HandshakeComplete,
    DataReceived,
    KeyUpdated,
    ConnectionClosed,
)


def _ed25519(seed: int) -> IdentityKey:
    return IdentityKey(ed25519.Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32))


SERVER_IDENTITY = _ed25519(0x51)
CLIENT_IDENTITY = _ed25519(0xC1)
# A chat user other than the fuzzed client, who signs the messages in the frame corpus.
PEER_IDENTITY = _ed25519(0xA1)


def _certificate(identity: IdentityKey) -> bytes:
    """A self-signed certificate whose bytes never change (Ed25519 signatures are deterministic)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tlschat-fuzz")])
    assert isinstance(identity.private_key, ed25519.Ed25519PrivateKey)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(identity.public_key)
        .serial_number(1)
        .not_valid_before(datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC))
        .not_valid_after(datetime.datetime(2035, 1, 1, tzinfo=datetime.UTC))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(identity.private_key, None)
    )
    return certificate.public_bytes(serialization.Encoding.DER)


SERVER_CERTIFICATE = _certificate(SERVER_IDENTITY)


def fixed_entropy(byte: int) -> Callable[[int], bytes]:
    def entropy(n: int) -> bytes:
        return bytes([byte]) * n

    return entropy


def client_config(**options: Any) -> ConnectionConfig:
    return ConnectionConfig(identity=CLIENT_IDENTITY, entropy=fixed_entropy(0x11), **options)


def server_config(**options: Any) -> ConnectionConfig:
    return ConnectionConfig(
        identity=SERVER_IDENTITY,
        certificate_der=SERVER_CERTIFICATE,
        entropy=fixed_entropy(0x22),
        **options,
    )


def new_client(**options: Any) -> ClientConnection:
    return ClientConnection(client_config(**options), now=0.0)


def new_server(**options: Any) -> ServerConnection:
    return ServerConnection(server_config(**options), now=0.0)


def split_records(data: bytes) -> Iterator[bytes]:
    """``data`` cut where its record headers say records end; any tail comes last as it is."""
    position = 0
    while len(data) - position >= RECORD_HEADER_LENGTH:
        end = position + RECORD_HEADER_LENGTH + int.from_bytes(data[position + 3 : position + 5])
        if end > len(data):
            break
        yield data[position:end]
        position = end
    if position < len(data):
        yield data[position:]


def unwrap_internal_error(error: ProtocolError) -> None:
    """Re-raise the exception behind a connection's internal_error: it is a bug, not a reject."""
    if error.alert == AlertDescription.internal_error and not error.received:
        cause = error.__cause__
        if cause is not None:
            raise cause
        raise AssertionError(f"internal_error without a cause: {error}")


def deliver(connection: Connection, data: bytes) -> bool:
    """Feed ``data`` and check the outcome; False once the connection has failed or closed.

    A success returns only known events; a ProtocolError must be the library's own rejection
    (not a wrapped bug), leave the connection closed with ``error`` set and, when the
    connection could still write, an alert queued.
    """
    could_send = not connection.close_notify_sent and connection.state is not State.CLOSED
    try:
        events = connection.receive_data(data)
    except ProtocolError as error:
        unwrap_internal_error(error)
        assert connection.state is State.CLOSED, connection.state
        assert connection.error is error
        if could_send and not error.received:
            assert connection.data_to_send(), f"no alert queued for {error}"
        return False
    for event in events:
        assert isinstance(event, EVENT_TYPES), event
    return connection.state is not State.CLOSED


def exercise_connected(connection: Connection) -> None:
    """What an application does with a live connection: send, update keys, close."""
    if connection.state is State.CONNECTED and not connection.close_notify_sent:
        connection.send_data(b"fuzz")
        connection.update_keys(request_peer=True)
        connection.close()
        assert connection.data_to_send()


def after_close(connection: Connection) -> None:
    """A closed connection accepts nothing more, and says so only with ProtocolError."""
    if connection.state is State.CLOSED:
        try:
            assert connection.receive_data(b"\x17\x00\x01\x00\x00") == []
        except ProtocolError as error:
            unwrap_internal_error(error)
            assert connection.state is State.CLOSED


def seal_for(connection: Connection, record: bytes) -> bytes:
    """``record`` (type, version, length, content) re-sealed under the connection's read key.

    The fuzzer cannot forge an AEAD tag, so in "sealed" mode its records are protected for it:
    the record's type becomes the inner content type and its content reaches the handshake and
    application layers encrypted, as a peer holding the keys would send it.
    """
    keys = connection._records.read_keys
    if keys is None or len(record) < RECORD_HEADER_LENGTH:
        return record
    forger = DirectionKeys(keys.suite, keys.secret, keys.limit)
    forger.sequence = keys.sequence
    return forger.seal(record[0], record[RECORD_HEADER_LENGTH:])


def run_connection(
    connection: Connection,
    data: bytes,
    on_wait_trust: Callable[[], None] | None = None,
    sealed: bool = False,
) -> None:
    """Deliver ``data`` record by record (the client's trust decision between records).

    With ``sealed``, each record is re-sealed under the current read key first (see seal_for).
    """
    for record in split_records(data):
        chunk = seal_for(connection, record) if sealed else record
        if not deliver(connection, chunk):
            break
        if connection.state is State.WAIT_TRUST and on_wait_trust is not None:
            on_wait_trust()
    exercise_connected(connection)
    after_close(connection)


def client_hello_flight() -> bytes:
    client = new_client()
    client.start_handshake()
    return client.data_to_send()


CLIENT_HELLO = client_hello_flight()


def inner_records(receiver: Connection, stream: bytes, trust: bool = False) -> bytes:
    """``stream`` as the receiver reads it: every record decrypted, re-framed as plaintext.

    The result is the "sealed" mode's form of a real flight: fed to a target with sealed=True,
    it is protected again under the right keys and completes the same handshake.
    """
    records = receiver._records
    read = records.next_record
    seen: list[bytes] = []

    def recording() -> tuple[int, bytes] | None:
        record = read()
        if record is not None:
            seen.append(plaintext_record(*record))
        return record

    records.next_record = recording  # type: ignore[method-assign]
    for record in split_records(stream):
        receiver.receive_data(record)
        if trust and receiver.state is State.WAIT_TRUST:
            receiver.trust_server()  # type: ignore[attr-defined]
    return b"".join(seen)


def transcript(
    messages: tuple[bytes, ...] = (b"hello from the client", b""),
    replies: tuple[bytes, ...] = (b"hello from the server",),
) -> tuple[list[bytes], list[bytes]]:
    """A whole deterministic session; each side's writes, flight by flight.

    Client: ClientHello | Certificate+CertificateVerify+Finished | data, KeyUpdate | close_notify.
    Server: ServerHello..CertificateVerify | Finished | data, KeyUpdate (answer) | close_notify.
    """
    client, server = new_client(), new_server()
    client.start_handshake()
    client_out = [client.data_to_send()]
    server.receive_data(client_out[0])
    server_out = [server.data_to_send()]
    client.receive_data(server_out[0])
    assert client.state is State.WAIT_TRUST, client.state
    client.trust_server()
    client_out.append(client.data_to_send())
    server.receive_data(client_out[1])
    server_out.append(server.data_to_send())
    client.receive_data(server_out[1])
    assert client.is_connected and server.is_connected
    for message in messages:
        client.send_data(message)
    client.update_keys(request_peer=True)
    client_out.append(client.data_to_send())
    server.receive_data(client_out[2])
    for reply in replies:
        server.send_data(reply)
    server_out.append(server.data_to_send())
    client.receive_data(server_out[2])
    client.close()
    client_out.append(client.data_to_send())
    server.receive_data(client_out[3])
    server_out.append(server.data_to_send())
    client.receive_data(server_out[3])
    assert client.state is State.CLOSED and server.state is State.CLOSED
    return client_out, server_out


def _launcher(module: str) -> str:
    """An executable that runs ``python -m module``, for libFuzzer to re-execute.

    -merge, -minimize_crash and -fork run argv[0] again as a program; a module run with -m has
    no such program, so one is written (keeping the caller's working directory and paths).
    """
    root = Path(__file__).resolve().parents[1]
    path = Path(tempfile.gettempdir()) / f"tlschat-{module.replace('.', '-')}-{os.getuid()}"
    script = f'#!/bin/sh\nPYTHONPATH="{root}" exec "{sys.executable}" -m {module} "$@"\n'
    if not path.exists() or path.read_text() != script:
        path.write_text(script)
        path.chmod(0o755)
    return str(path)


def fuzz_main(module: str, check: Callable[[bytes], None], *options: str) -> None:
    """Run ``check`` under atheris with this process's libFuzzer arguments (plus ``options``)."""
    import atheris

    atheris.instrument_all()
    atheris.Setup([_launcher(module), *sys.argv[1:], *options], check)
    atheris.Fuzz()
