"""What both sides of a connection share: the record layer's state machine, alerts, KeyUpdate,
closure and the handshake's key schedule; each side's handshake is in ``client_connection`` and
``server_connection``.

Sans-IO: feed received bytes to :meth:`Connection.receive_data`, act on the events it returns,
and write whatever :meth:`Connection.data_to_send` hands back. Time only enters through the
``now`` arguments. Every failure raises :class:`ProtocolError` after queueing the alert, and
leaves the connection closed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, auto

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from .alerts import AlertDescription, AlertLevel, ProtocolError
from .events import (
    ConnectionClosed,
    DataReceived,
    Event,
    HandshakeComplete,
    HandshakeStep,
    KeyUpdated,
)
from .identity import IdentityKey, PeerIdentity, verify_signature
from .keyschedule import KeySchedule, finished_verify_data
from .messages import (
    RANDOM_LENGTH,
    SUITE_NAMES,
    X25519_SHARE_LENGTH,
    CertificateVerify,
    CipherSuite,
    Finished,
    HandshakeMessage,
    HandshakeReassembler,
    HandshakeType,
    KeyUpdate,
    SignatureScheme,
    encode_handshake,
)
from .record import (
    DEFAULT_KEY_UPDATE_AFTER,
    KEY_UPDATE_LIMIT,
    MAX_PLAINTEXT,
    ContentType,
    DirectionKeys,
    RecordReader,
    plaintext_record,
)

PROTOCOL_VERSION = 0x0004
SUPPORTED_VERSIONS = (PROTOCOL_VERSION,)
DEFAULT_SUITES = (CipherSuite.AES_256_GCM_SHA256, CipherSuite.CHACHA20_POLY1305_SHA256)
DEFAULT_SIGNATURE_ALGORITHMS = (SignatureScheme.rsa_pss_rsae_sha256, SignatureScheme.ed25519)
SERVER_SIGNATURE_CONTEXT = b"tlschat v1, server CertificateVerify"
CLIENT_SIGNATURE_CONTEXT = b"tlschat v1, client CertificateVerify"
MESSAGE_LENGTH_BYTES = 3
DEFAULT_MAX_MESSAGE = 1 << 20
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
# Records that carry no application data (empty records, warning alerts, KeyUpdates) accepted in a
# row; past this the peer is wasting our CPU, not talking.
DEFAULT_MAX_IDLE_RECORDS = 64


def signed_content(context: bytes, transcript_digest: bytes) -> bytes:
    """What a CertificateVerify signs: 64 spaces, the context, a zero byte, the transcript hash."""
    return b" " * 64 + context + b"\x00" + transcript_digest


@dataclass
class ConnectionConfig:
    """Settings shared by both roles; the server also needs ``certificate_der``."""

    identity: IdentityKey
    certificate_der: bytes | None = None
    cipher_suites: tuple[int, ...] = DEFAULT_SUITES
    versions: tuple[int, ...] = SUPPORTED_VERSIONS
    signature_algorithms: tuple[int, ...] = DEFAULT_SIGNATURE_ALGORITHMS
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    key_update_after: int = DEFAULT_KEY_UPDATE_AFTER
    max_message: int = DEFAULT_MAX_MESSAGE
    max_idle_records: int = DEFAULT_MAX_IDLE_RECORDS
    entropy: Callable[[int], bytes] = field(default=os.urandom)

    def __post_init__(self) -> None:
        if not 1 <= self.key_update_after <= KEY_UPDATE_LIMIT:
            raise ValueError(f"key_update_after must be in [1, {KEY_UPDATE_LIMIT}]")
        if not 0 <= self.max_message < 1 << (8 * MESSAGE_LENGTH_BYTES):
            raise ValueError("max_message must fit the 3-byte application message length")
        if self.handshake_timeout <= 0 or self.max_idle_records < 0:
            raise ValueError("handshake_timeout must be positive and max_idle_records >= 0")


class State(Enum):
    START = auto()
    WAIT_CLIENT_HELLO = auto()
    WAIT_SERVER_HELLO = auto()
    WAIT_SERVER_CERTIFICATE = auto()
    WAIT_SERVER_CERTIFICATE_VERIFY = auto()
    WAIT_TRUST = auto()
    WAIT_SERVER_FINISHED = auto()
    WAIT_CLIENT_CERTIFICATE = auto()
    WAIT_CLIENT_CERTIFICATE_VERIFY = auto()
    WAIT_CLIENT_FINISHED = auto()
    CONNECTED = auto()
    CLOSED = auto()


def framed_message(data: bytes) -> bytes:
    """One application message as the record layer carries it: its length, then itself."""
    if len(data) >= 1 << (8 * MESSAGE_LENGTH_BYTES):
        raise ValueError(f"message of {len(data)} bytes cannot be framed")
    return len(data).to_bytes(MESSAGE_LENGTH_BYTES, "big") + data


def _unexpected(what: str, state: State) -> ProtocolError:
    return ProtocolError(AlertDescription.unexpected_message, f"{what} in state {state.name}")


class Connection:
    """What both roles share: records, transcript, keys, alerts, application messages."""

    role = ""
    peer_role = ""

    def __init__(self, config: ConnectionConfig, now: float) -> None:
        self.config = config
        self.state = State.START
        self.deadline: float | None = now + config.handshake_timeout
        self.peer: PeerIdentity | None = None
        self.suite: int | None = None
        self.version: int | None = None
        self.close_notify_received = False
        self.close_notify_sent = False
        self.error: ProtocolError | None = None
        self._records = RecordReader()
        self._handshake = HandshakeReassembler()
        self._transcript = hashlib.sha256()
        self._schedule = KeySchedule()
        self._outgoing = bytearray()
        self._write_keys: DirectionKeys | None = None
        self._client_hs_secret = b""
        self._server_hs_secret = b""
        self._application_secrets = (b"", b"")
        self._application_buffer = bytearray()
        # Application messages queued but not yet sealed: data_to_send() seals them together.
        self._unsealed = bytearray()
        self._idle_records = 0
        ephemeral = X25519PrivateKey.from_private_bytes(config.entropy(X25519_SHARE_LENGTH))
        self._ephemeral: X25519PrivateKey | None = ephemeral
        self._key_share = ephemeral.public_key().public_bytes_raw()
        self._random = config.entropy(RANDOM_LENGTH)
        self._events: list[Event] = []

    # ----- public API -----

    @property
    def is_connected(self) -> bool:
        return self.state is State.CONNECTED

    @property
    def read_generation(self) -> int:
        keys = self._records.read_keys
        return keys.generation if keys else 0

    @property
    def write_generation(self) -> int:
        return self._write_keys.generation if self._write_keys else 0

    def data_to_send(self) -> bytes:
        """Everything queued, with the application messages sent since the last call sealed
        together into as few records as they fit (one AEAD operation for a burst)."""
        unsealed, keys = self._unsealed, self._write_keys
        if (
            unsealed
            and len(unsealed) <= MAX_PLAINTEXT
            and not self._outgoing
            and keys is not None
            and not keys.needs_update
        ):
            # The common case, a record's worth of messages and nothing else, without the copies
            # of the general path (send_framed seals every full record as it comes).
            record = keys.seal(ContentType.application_data, bytes(unsealed))
            unsealed.clear()
            return record
        self._seal_pending()
        data = bytes(self._outgoing)
        self._outgoing.clear()
        return data

    def receive_data(self, data: bytes) -> list[Event]:
        """Process received bytes; return the events they complete."""
        if self.state is State.CLOSED:
            if data and self.close_notify_received:
                self.error = ProtocolError(
                    AlertDescription.unexpected_message, "data after close_notify", self.role
                )
                raise self.error
            return []
        self._records.feed(data)
        return self._guarded(self._process_records)

    def receive_eof(self) -> list[Event]:
        """The transport reached end of stream: truncation unless either side had closed."""
        if self.close_notify_received or self.close_notify_sent or self.error is not None:
            self.state = State.CLOSED
            return []
        self.close_notify_sent = True  # the transport is gone: no alert can be written
        return self._guarded(self._raise_truncated)

    def _raise_truncated(self) -> list[Event]:
        raise ProtocolError(AlertDescription.truncated, "connection ended without close_notify")

    def handle_timer(self, now: float) -> list[Event]:
        """Fail the handshake if its deadline has passed."""
        if self.deadline is not None and now >= self.deadline and self.state is not State.CLOSED:
            return self._guarded(self._raise_timeout)
        return []

    def _raise_timeout(self) -> list[Event]:
        raise ProtocolError(AlertDescription.handshake_timeout, "handshake did not finish in time")

    def send_data(self, data: bytes) -> None:
        """Queue one application message, split into as many records as it needs."""
        self.send_framed(framed_message(data))

    def send_framed(self, framed: bytes) -> None:
        """Queue one application message as :func:`framed_message` made it: a server relaying
        one message to many makes it once, not once per recipient."""
        if self.state is not State.CONNECTED or self.close_notify_sent:
            raise RuntimeError(f"cannot send application data in state {self.state.name}")
        size = len(framed) - MESSAGE_LENGTH_BYTES
        if size > self.config.max_message:
            raise ValueError(f"message of {size} bytes exceeds {self.config.max_message}")
        unsealed = self._unsealed
        unsealed += framed
        while len(unsealed) >= MAX_PLAINTEXT:
            self._seal_chunk()

    def send_raw_record(self, content_type: int, content: bytes) -> None:
        """Protect and queue one record as it is (tests and the evil peer build on this)."""
        self._send_protected(content_type, content)

    def update_keys(self, request_peer: bool = False) -> None:
        """Send KeyUpdate and switch to the next write key (TLS 1.3 section 4.6.3)."""
        if self.state is not State.CONNECTED or self.close_notify_sent:
            raise RuntimeError(f"cannot update keys in state {self.state.name}")
        self._seal_pending()
        self._send_key_update(request_peer)

    def abort(self, alert: AlertDescription, reason: str) -> ProtocolError:
        """End the connection from above (the application failed): send ``alert`` and close."""
        error = ProtocolError(alert, reason, self.role)
        self._fail(error)
        return error

    def close(self) -> None:
        """Send close_notify; the peer answers with its own."""
        if self.close_notify_sent or (self.state is State.CLOSED and self.error is not None):
            return
        self._send_alert(AlertLevel.WARNING, AlertDescription.close_notify)
        self.close_notify_sent = True
        if self.close_notify_received or self.state is not State.CONNECTED:
            self.state = State.CLOSED

    # ----- records -----

    def _guarded(self, step: Callable[[], list[Event]]) -> list[Event]:
        try:
            return step()
        except ProtocolError as error:
            self._fail(error)
            raise
        except Exception as error:
            # A bug of ours must still end in an alert and a closed connection, not a hang.
            failure = ProtocolError(
                AlertDescription.internal_error, f"{type(error).__name__}: {error}"
            )
            self._fail(failure)
            raise failure from error

    def _fail(self, error: ProtocolError) -> None:
        if not error.sender:
            error.sender = self.peer_role if error.received else self.role
        self.error = error
        if not error.received and not self.close_notify_sent and self.state is not State.CLOSED:
            self._send_alert(AlertLevel.FATAL, error.alert)
            self.close_notify_sent = True
        self.state = State.CLOSED
        self.deadline = None

    def _seal_chunk(self) -> None:
        chunk = bytes(self._unsealed[:MAX_PLAINTEXT])
        del self._unsealed[:MAX_PLAINTEXT]
        self._protect(ContentType.application_data, chunk)

    def _seal_pending(self) -> None:
        while self._unsealed:
            self._seal_chunk()

    def _send_protected(self, content_type: int, content: bytes) -> None:
        """Queue one record, after the application data queued before it."""
        self._seal_pending()
        self._protect(content_type, content)

    def _protect(self, content_type: int, content: bytes) -> None:
        keys = self._write_keys
        if keys is None:
            self._outgoing += plaintext_record(content_type, content)
            return
        if keys.needs_update and content_type != ContentType.alert:
            self._send_key_update(False)
            keys = self._write_keys
            assert keys is not None
        self._outgoing += keys.seal(content_type, content)

    def _send_key_update(self, request_peer: bool) -> None:
        """KeyUpdate under the current key, then switch; callers seal pending data first."""
        assert self._write_keys is not None
        message = encode_handshake(KeyUpdate(request_update=request_peer))
        self._outgoing += self._write_keys.seal(ContentType.handshake, message)
        self._write_keys.update()

    def _send_alert(self, level: AlertLevel, description: AlertDescription) -> None:
        self._send_protected(ContentType.alert, bytes([level, description]))

    def _send_handshake(self, message: HandshakeMessage) -> None:
        raw = encode_handshake(message)
        self._transcript.update(raw)
        for start in range(0, len(raw), MAX_PLAINTEXT):
            self._send_protected(ContentType.handshake, raw[start : start + MAX_PLAINTEXT])

    def _transcript_digest(self) -> bytes:
        return self._transcript.copy().digest()

    def _process_records(self) -> list[Event]:
        self._events = []
        while self.state is not State.CLOSED:
            record = self._records.next_record()
            if record is None:
                break
            content_type, content = record
            read_keys = self._records.read_keys
            is_key_update = content_type == ContentType.handshake and content[:1] == bytes(
                [HandshakeType.key_update]
            )
            if read_keys is not None and read_keys.sequence > read_keys.limit and not is_key_update:
                raise ProtocolError(
                    AlertDescription.key_exhausted,
                    f"record {read_keys.limit} under one key was not a KeyUpdate",
                )
            if self.state is State.WAIT_TRUST and content_type != ContentType.alert:
                # The server sends nothing until our Finished, but it may time out or otherwise
                # fail while the user decides on its fingerprint: its alert must still be read.
                raise _unexpected("record before the client's identity was sent", self.state)
            if content_type == ContentType.alert:
                self._handle_alert(content)
            elif content_type == ContentType.handshake:
                self._handle_handshake_record(content)
            else:
                self._handle_application_data(content)
        return self._events

    def _count_idle_record(self) -> None:
        self._idle_records += 1
        if self._idle_records > self.config.max_idle_records:
            raise ProtocolError(
                AlertDescription.too_many_records,
                f"more than {self.config.max_idle_records} records in a row without data",
            )

    def _handle_alert(self, content: bytes) -> None:
        if len(content) != 2:
            raise ProtocolError(AlertDescription.decode_error, f"alert of {len(content)} bytes")
        level, code = content
        if level not in (AlertLevel.WARNING, AlertLevel.FATAL):
            raise ProtocolError(AlertDescription.illegal_parameter, f"alert level {level}")
        if self._handshake.pending:
            raise _unexpected("alert inside a split handshake message", self.state)
        if code == AlertDescription.close_notify:
            self.close_notify_received = True
            self._events.append(ConnectionClosed())
            if not self.close_notify_sent:
                self._send_alert(AlertLevel.WARNING, AlertDescription.close_notify)
                self.close_notify_sent = True
            self.state = State.CLOSED
            self.deadline = None
            if self._records.pending:
                raise ProtocolError(AlertDescription.unexpected_message, "data after close_notify")
            return
        try:
            description = AlertDescription(code)
        except ValueError:
            description = AlertDescription.internal_error
        if level == AlertLevel.WARNING and description == AlertDescription.user_canceled:
            self._count_idle_record()
            return
        raise ProtocolError(
            description, f"peer sent alert {code} (level {level})", self.peer_role, received=True
        )

    def _handle_application_data(self, content: bytes) -> None:
        if self.state is not State.CONNECTED:
            raise _unexpected("application data", self.state)
        if not content:
            self._count_idle_record()
            return
        self._idle_records = 0
        buffer = self._application_buffer
        buffer += content
        while len(buffer) >= MESSAGE_LENGTH_BYTES:
            length = int.from_bytes(buffer[:MESSAGE_LENGTH_BYTES], "big")
            if length > self.config.max_message:
                raise ProtocolError(
                    AlertDescription.record_overflow,
                    f"application message of {length} bytes exceeds {self.config.max_message}",
                )
            end = MESSAGE_LENGTH_BYTES + length
            if len(buffer) < end:
                break
            self._events.append(DataReceived(bytes(buffer[MESSAGE_LENGTH_BYTES:end])))
            del buffer[:end]

    def _handle_handshake_record(self, content: bytes) -> None:
        if not content:
            raise ProtocolError(AlertDescription.unexpected_message, "empty handshake record")
        messages = self._handshake.feed(content)
        for index, (message, raw) in enumerate(messages):
            keys_before = (self._records.read_keys, self.read_generation)
            self._handle_handshake(message, raw)
            keys_changed = keys_before != (self._records.read_keys, self.read_generation)
            last = index == len(messages) - 1 and not self._handshake.pending
            if keys_changed and not last:
                raise ProtocolError(
                    AlertDescription.unexpected_message,
                    "handshake data after a key change in the same record",
                )

    def _handle_handshake(self, message: HandshakeMessage, raw: bytes) -> None:
        if isinstance(message, KeyUpdate):
            if self.state is not State.CONNECTED:
                raise _unexpected("KeyUpdate", self.state)
            self._count_idle_record()
            assert self._records.read_keys is not None
            self._records.read_keys.update()
            self._events.append(KeyUpdated("read", self.read_generation))
            if message.request_update and not self.close_notify_sent:
                self._seal_pending()
                self._send_key_update(False)
                self._events.append(KeyUpdated("write", self.write_generation))
            return
        handler = self._handlers().get((self.state, type(message)))
        if handler is None:
            raise _unexpected(type(message).__name__, self.state)
        self._transcript_before = self._transcript_digest()
        self._transcript.update(raw)
        handler(message)

    def _handlers(self) -> dict[tuple[State, type], Callable[[object], None]]:
        raise NotImplementedError

    # ----- shared handshake steps -----

    def _shared_secret(self, share: bytes) -> bytes:
        if len(share) != X25519_SHARE_LENGTH:
            raise ProtocolError(
                AlertDescription.illegal_parameter, f"X25519 share of {len(share)} bytes"
            )
        try:
            if self._ephemeral is None:
                raise ProtocolError(AlertDescription.internal_error, "ephemeral key already used")
            shared = self._ephemeral.exchange(X25519PublicKey.from_public_bytes(share))
        except ValueError:
            raise ProtocolError(
                AlertDescription.illegal_parameter, "X25519 share is a low-order point"
            ) from None
        # Forward secrecy: the ephemeral key is not needed again, so nothing keeps it alive.
        self._ephemeral = None
        return shared

    def _install_handshake_keys(self, shared_secret: bytes) -> None:
        assert self.suite is not None
        self._schedule.set_shared_secret(shared_secret)
        self._client_hs_secret, self._server_hs_secret = self._schedule.handshake_traffic_secrets(
            self._transcript_digest()
        )
        mine, theirs = self._own_and_peer(self._client_hs_secret, self._server_hs_secret)
        # KeyUpdate is only allowed once connected, so the handshake keys (a few records each)
        # must not inherit a small configured limit: it would force a KeyUpdate mid-handshake.
        self._write_keys = DirectionKeys(self.suite, mine, KEY_UPDATE_LIMIT)
        self._records.read_keys = DirectionKeys(self.suite, theirs, KEY_UPDATE_LIMIT)

    def _derive_application_secrets(self) -> None:
        """Over the transcript through the client's Finished, which both sides then hold."""
        client, server = self._schedule.application_traffic_secrets(self._transcript_digest())
        self._application_secrets = self._own_and_peer(client, server)

    def _install_application_write_keys(self) -> None:
        assert self.suite is not None
        # We update our key after key_update_after records; the peer may use up to the
        # protocol's limit, whatever it configured.
        limit = self.config.key_update_after
        self._write_keys = DirectionKeys(self.suite, self._application_secrets[0], limit)

    def _install_application_read_keys(self) -> None:
        assert self.suite is not None
        secret = self._application_secrets[1]
        self._records.read_keys = DirectionKeys(self.suite, secret, KEY_UPDATE_LIMIT)

    def _own_and_peer(self, client: bytes, server: bytes) -> tuple[bytes, bytes]:
        return (client, server) if self.role == "client" else (server, client)

    def _sign_transcript(self, context: bytes) -> CertificateVerify:
        identity = self.config.identity
        signature = identity.sign(signed_content(context, self._transcript_digest()))
        return CertificateVerify(algorithm=identity.scheme, signature=signature)

    def _verify_peer_signature(self, message: CertificateVerify, context: bytes) -> None:
        assert self.peer is not None
        if message.algorithm not in self.config.signature_algorithms:
            raise ProtocolError(
                AlertDescription.illegal_parameter,
                f"signature scheme {message.algorithm:#06x} was not offered",
            )
        verify_signature(
            self.peer.public_key,
            message.algorithm,
            signed_content(context, self._transcript_before),
            message.signature,
        )

    def _finished(self, secret: bytes) -> Finished:
        return Finished(finished_verify_data(secret, self._transcript_digest()))

    def _verify_finished(self, message: Finished, secret: bytes) -> None:
        expected = finished_verify_data(secret, self._transcript_before)
        if not hmac.compare_digest(expected, message.verify_data):
            raise ProtocolError(AlertDescription.decrypt_error, "Finished does not verify")

    def _complete(self) -> None:
        assert self.suite is not None and self.version is not None and self.peer is not None
        # Only the current traffic secrets are needed from here on; a later memory disclosure
        # should find no handshake or master secret to derive the rest from.
        self._schedule.handshake_secret = self._schedule.master_secret = b""
        self._client_hs_secret = self._server_hs_secret = b""
        self._application_secrets = (b"", b"")
        self.state = State.CONNECTED
        self.deadline = None
        self._records.accept_plain_alerts = False
        self._events.append(HandshakeStep(0, "✅ Handshake complete — Secure channel established"))
        self._events.append(
            HandshakeComplete(SUITE_NAMES[CipherSuite(self.suite)], self.version, self.peer)
        )

    @property
    def suite_name(self) -> str:
        return SUITE_NAMES[CipherSuite(self.suite)] if self.suite is not None else ""
