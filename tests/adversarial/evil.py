"""The evil peer: a misbehaving client and server for probing the REAL tlschat processes.

In the spirit of BoringSSL's BoGo runner and tlsfuzzer's conversations, a test drives one side of
the protocol by hand against the other side running as a real process, then checks how the victim
failed. Three parts:

* **crafting**: records and handshake messages built byte by byte (any type, version, length and
  body), and the well-formed messages the wrong-state probes send;
* :class:`EvilClient`: an :class:`EvilClientConnection` (a ``ClientConnection`` whose handshake the
  test performs step by step, so that it can stop, split, coalesce, reorder, repeat or corrupt any
  step) on a real TCP socket. It keeps the honest connection state, so it can decrypt whatever the
  victim answers, alerts included;
* :class:`EvilServer`: a one-connection threaded TCP server on 127.0.0.1 driving an
  :class:`EvilServerConnection` (a ``ServerConnection`` with :class:`ServerKnobs` that forge
  signatures, certificates, Finished messages and hellos) for the real client process to connect
  to; and :class:`RewritingProxy`, a man in the middle that rewrites records in transit.

Every socket operation has a timeout and every wait a deadline: a victim that hangs fails the
probe, it never hangs the suite.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from tests.e2e.harness import ProxiedConnection, RecordingProxy
from tlschat.chat.envelope import SignedMessage
from tlschat.chat.frames import MAX_FRAME, decode_frame, encode_frame, say_frame
from tlschat.protocol import (
    AlertDescription,
    ClientConnection,
    ConnectionClosed,
    ConnectionConfig,
    DataReceived,
    Event,
    HandshakeComplete,
    IdentityKey,
    ProtocolError,
    ServerConnection,
    State,
)
from tlschat.protocol.alerts import AlertLevel
from tlschat.protocol.connection import (
    CLIENT_SIGNATURE_CONTEXT,
    PROTOCOL_VERSION,
    signed_content,
)
from tlschat.protocol.messages import (
    Certificate,
    CertificateType,
    CertificateVerify,
    CipherSuite,
    ClientHello,
    Finished,
    HandshakeMessage,
    HandshakeType,
    KeyUpdate,
    ServerHello,
    SignatureScheme,
    encode_handshake,
)
from tlschat.protocol.record import (
    MAX_PLAINTEXT,
    RECORD_HEADER_LENGTH,
    RECORD_VERSION,
    TAG_LENGTH,
    ContentType,
    plaintext_record,
)

HOST = "127.0.0.1"
IO_TIMEOUT = 5.0  # one socket operation, or one wait for the victim's next answer
CLOSE_WAIT = 5.0  # how long a victim may take to close after it failed
# A protected alert: header, 2 alert bytes, the inner content type, the AEAD tag.
PROTECTED_ALERT_LENGTH = RECORD_HEADER_LENGTH + 2 + 1 + TAG_LENGTH
APPLICATION_LENGTH_BYTES = 3


# ----- crafting -----------------------------------------------------------------------------------


def record(
    content_type: int, content: bytes, *, version: int = RECORD_VERSION, length: int | None = None
) -> bytes:
    """A plaintext record; ``version`` and ``length`` may lie about the header."""
    size = len(content) if length is None else length
    return bytes([content_type]) + version.to_bytes(2, "big") + size.to_bytes(2, "big") + content


def record_header(content_type: int, length: int, version: int = RECORD_VERSION) -> bytes:
    return record(content_type, b"", version=version, length=length)


def handshake_message(msg_type: int, body: bytes, *, length: int | None = None) -> bytes:
    """A handshake message whose u24 length may lie about the body."""
    size = len(body) if length is None else length
    return bytes([msg_type]) + size.to_bytes(3, "big") + body


def alert_record(
    description: int, level: int = AlertLevel.FATAL, *, version: int = RECORD_VERSION
) -> bytes:
    """A plaintext alert record, as a peer without write keys sends it."""
    return record(ContentType.alert, bytes([level, description]), version=version)


def split_records(data: bytes) -> list[bytes]:
    """Cut a byte stream into whole records, headers included."""
    records, position = [], 0
    while position < len(data):
        assert len(data) - position >= RECORD_HEADER_LENGTH, f"partial header in {data.hex()}"
        end = position + RECORD_HEADER_LENGTH + int.from_bytes(data[position + 3 : position + 5])
        assert end <= len(data), f"partial record in {data.hex()}"
        records.append(data[position:end])
        position = end
    return records


def flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    """``data`` with bit(s) ``mask`` of byte ``index`` flipped."""
    altered = bytearray(data)
    altered[index] ^= mask
    return bytes(altered)


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


def x25519_share() -> bytes:
    return X25519PrivateKey.generate().public_key().public_bytes_raw()


def sample_messages(identity: IdentityKey) -> dict[str, bytes]:
    """One well-formed message of each handshake type, for sending where it does not belong.

    The bodies decode cleanly, so a receiver can only refuse them for their state.
    """
    messages: dict[str, HandshakeMessage] = {
        "ClientHello": ClientHello(
            random=bytes(32),
            versions=(PROTOCOL_VERSION,),
            cipher_suites=tuple(CipherSuite),
            signature_algorithms=tuple(SignatureScheme),
            key_share=x25519_share(),
        ),
        "ServerHello": ServerHello(
            version=PROTOCOL_VERSION,
            random=bytes(32),
            cipher_suite=CipherSuite.AES_256_GCM_SHA256,
            key_share=x25519_share(),
        ),
        "Certificate": Certificate(CertificateType.raw_public_key, identity.spki_der),
        "CertificateVerify": CertificateVerify(identity.scheme, bytes(64)),
        "Finished": Finished(bytes(32)),
        "KeyUpdate": KeyUpdate(request_update=False),
    }
    return {name: encode_handshake(message) for name, message in messages.items()}


def new_identity() -> IdentityKey:
    """A fresh Ed25519 identity: quick to make, so every evil peer can have its own."""
    return IdentityKey.generate("ed25519")


def signed_say(
    network: str,
    identity: IdentityKey,
    body: str,
    target: str = "#general",
    *,
    counter: int | None = None,
) -> dict[str, Any]:
    """A ``say`` frame signed honestly by ``identity`` for ``network`` (counter from the clock,
    like the client)."""
    now = time.time()
    message = SignedMessage.create(
        identity,
        network,
        target,
        counter if counter is not None else int(now * 1_000_000),
        int(now * 1000),
        body,
    )
    return say_frame(message)


# ----- the evil client --------------------------------------------------------------------------


class EvilClientConnection(ClientConnection):
    """A ClientConnection whose handshake the test performs one step at a time.

    ``build_*`` make a message of the honest handshake and add it to the transcript; ``emit_*`` put
    bytes on the wire under whatever write keys are current (none: plaintext), split as asked. The
    two are separate so that a test can send what it built in any order, split, coalesced, twice,
    altered, or not at all. The read side is untouched: the honest state machine decrypts and checks
    everything the victim sends back, alerts included.
    """

    def build_client_hello(
        self,
        *,
        versions: tuple[int, ...] | None = None,
        cipher_suites: tuple[int, ...] | None = None,
        signature_algorithms: tuple[int, ...] | None = None,
        key_share: bytes | None = None,
        trailing: bytes = b"",
    ) -> bytes:
        """The ClientHello, optionally with a forged field or bytes after its last field."""
        if self.state is not State.START:
            raise RuntimeError("the ClientHello was already built")
        hello = ClientHello(
            random=self._random,
            versions=self.config.versions if versions is None else versions,
            cipher_suites=self.config.cipher_suites if cipher_suites is None else cipher_suites,
            signature_algorithms=(
                self.config.signature_algorithms
                if signature_algorithms is None
                else signature_algorithms
            ),
            key_share=self._key_share if key_share is None else key_share,
        )
        raw = handshake_message(HandshakeType.client_hello, hello.encode_body() + trailing)
        self._transcript.update(raw)
        self.state = State.WAIT_SERVER_HELLO
        return raw

    def build_certificate(
        self, certificate_type: int = CertificateType.raw_public_key, data: bytes | None = None
    ) -> bytes:
        data = self.config.identity.spki_der if data is None else data
        return self._take(encode_handshake(Certificate(certificate_type, data)))

    def build_certificate_verify(self) -> bytes:
        """A valid signature over the transcript so far (so: after build_certificate)."""
        return self._take(encode_handshake(self._sign_transcript(CLIENT_SIGNATURE_CONTEXT)))

    def build_finished(self) -> bytes:
        return self._take(encode_handshake(self._finished(self._client_hs_secret)))

    def build_client_flight(self) -> list[bytes]:
        """Certificate, CertificateVerify, Finished: what trust_server() sends."""
        return [self.build_certificate(), self.build_certificate_verify(), self.build_finished()]

    def _take(self, raw: bytes) -> bytes:
        self._transcript.update(raw)
        return raw

    def switch_to_application_keys(self) -> None:
        """After the Finished was emitted: write with the client application key from now on."""
        self._derive_application_secrets()
        self._install_application_write_keys()
        self.state = State.WAIT_SERVER_FINISHED

    def emit_handshake(self, raw: bytes, *, fragment: int = MAX_PLAINTEXT) -> None:
        """Handshake bytes in records of at most ``fragment`` bytes, under the current keys."""
        for piece in chunks(raw, fragment):
            self._send_protected(ContentType.handshake, piece)

    def emit_record(self, content_type: int, content: bytes) -> None:
        """One record of any (inner) type and size, under the current keys."""
        self._send_protected(content_type, content)

    def emit_application(
        self, payload: bytes, *, length: int | None = None, fragment: int = MAX_PLAINTEXT
    ) -> None:
        """An application message whose u24 length may lie, in records of ``fragment`` bytes."""
        size = len(payload) if length is None else length
        framed = size.to_bytes(APPLICATION_LENGTH_BYTES, "big") + payload
        for piece in chunks(framed, fragment):
            self._send_protected(ContentType.application_data, piece)

    @property
    def pending_input(self) -> int:
        """Received bytes not yet processed (e.g. after a fatal alert)."""
        return self._records.pending


class EvilClient:
    """An :class:`EvilClientConnection` on a TCP socket to the victim server.

    ``label`` is how the server names this peer in its log: ``('127.0.0.1', PORT)``.
    """

    @property
    def network(self) -> str:
        """The server key's fingerprint: what this client's chat lines are signed for."""
        assert self.conn.peer is not None, "the server has not authenticated yet"
        return self.conn.peer.fingerprint

    def __init__(
        self,
        port: int,
        *,
        identity: IdentityKey | None = None,
        cipher_suites: tuple[int, ...] | None = None,
    ) -> None:
        self.identity = identity if identity is not None else new_identity()
        options: dict[str, Any] = {"identity": self.identity, "max_message": MAX_FRAME}
        if cipher_suites is not None:
            options["cipher_suites"] = cipher_suites
        self.conn = EvilClientConnection(ConnectionConfig(**options), now=time.monotonic())
        self.sock = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        host, local_port = self.sock.getsockname()[:2]
        self.label = str((host, local_port))
        self.received = bytearray()
        self.events: list[Event] = []
        self.frames: list[dict[str, Any]] = []
        self.eof = False
        self.reset = False
        self.mark = 0  # where this peer's lines start in the victim's log (set by the caller)

    def __enter__(self) -> EvilClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- raw I/O -----

    def send(self, data: bytes) -> None:
        self.sock.settimeout(IO_TIMEOUT)
        self.sock.sendall(data)

    def send_bytewise(self, data: bytes) -> None:
        """One send() per byte (TCP_NODELAY is on): the stream arrives in tiny pieces."""
        for index in range(len(data)):
            self.send(data[index : index + 1])

    def drip(self, data: bytes, interval: float) -> int:
        """Send ``data`` a byte every ``interval`` seconds until done or the victim answers;
        how many bytes were sent."""
        for index in range(len(data)):
            readable, _, _ = select.select([self.sock], [], [], interval)
            if readable:
                return index
            self.send(data[index : index + 1])
        return len(data)

    def output(self) -> bytes:
        """What the connection queued, taken without sending (to tamper with it first)."""
        return self.conn.data_to_send()

    def flush(self) -> bytes:
        data = self.conn.data_to_send()
        if data:
            self.send(data)
        return data

    def _recv(self, timeout: float) -> bytes | None:
        """Some bytes; b"" once the victim closed; None if nothing came within ``timeout``."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return None
        except ConnectionResetError:
            self.reset = True
            data = b""
        if not data:
            self.eof = True
        self.received += data
        return data

    def half_close(self) -> None:
        """FIN: we send nothing more, but keep reading."""
        self.sock.shutdown(socket.SHUT_WR)

    def abort(self) -> None:
        """RST: close with SO_LINGER 0, as a crashed or hostile peer does."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    # ----- reading through the connection -----

    def _feed(self, data: bytes) -> list[Event]:
        events = self.conn.receive_data(data)
        self.events += events
        for event in events:
            if isinstance(event, DataReceived):
                self.frames.append(decode_frame(event.data))
        return events

    def read_until(self, done: Callable[[], bool], what: str, timeout: float = IO_TIMEOUT) -> None:
        """Read and process the victim's bytes until ``done()``; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.label}: no {what} within {timeout}s")
            data = self._recv(remaining)
            if data == b"":
                raise AssertionError(
                    f"{self.label}: the victim closed while we waited for {what}; "
                    f"its last bytes: {bytes(self.received[-48:]).hex()}"
                )
            if data:
                self._feed(data)

    def read_until_closed(self, timeout: float = CLOSE_WAIT) -> bytes:
        """Everything the victim sends from now until it closes; fail unless it closes in time."""
        start = len(self.received)
        deadline = time.monotonic() + timeout
        while not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.label}: the victim did not close the connection within {timeout}s"
                )
            self._recv(remaining)
        assert not self.reset, (
            f"{self.label}: the victim reset the connection instead of closing it"
        )
        return bytes(self.received[start:])

    def silent_for(self, seconds: float) -> bool:
        """True if the victim sent nothing and kept the connection open for ``seconds``."""
        data = self._recv(seconds)
        if data:
            self._feed(data)
        return data is None

    # ----- what the victim answered -----

    def expect_alert(self, alert: AlertDescription, *, plaintext: bool = False) -> bytes:
        """The victim sent one fatal ``alert``, as the last thing it sent, then closed.

        The reply is read until the victim closes and fed to our connection, which decrypts it
        with its honest keys (or reads a plaintext alert) and must report the alert as received.
        With ``plaintext``, the reply must be exactly that one plaintext alert record.
        """
        data = self.read_until_closed()
        assert data, f"{self.label}: the victim closed without sending {alert.name}"
        if plaintext:
            assert data == alert_record(alert), (
                f"{self.label}: expected the plaintext alert record "
                f"{alert_record(alert).hex()}, got {data.hex()}"
            )
        try:
            self._feed(data)
        except ProtocolError as error:
            assert error.received, f"{self.label}: our own check failed first: {error}"
            assert error.alert == alert, f"{self.label}: expected {alert.name}, got {error}"
            assert f"(level {AlertLevel.FATAL})" in error.reason, str(error)
            assert self.conn.pending_input == 0, f"{self.label}: bytes after the fatal alert"
            return data
        raise AssertionError(f"{self.label}: no alert in the victim's reply {data.hex()}")

    def expect_closed_without_alert(self) -> bytes:
        """The victim closed and nothing it sent (if anything) was an alert."""
        data = self.read_until_closed()
        self._feed(data)  # raises if an alert (or anything malformed) was in it
        assert self.conn.pending_input == 0, f"{self.label}: a partial record before the close"
        return data

    # ----- the honest handshake and chat, as building blocks -----

    def send_client_hello(self, **forged: Any) -> bytes:
        self.conn.emit_handshake(self.conn.build_client_hello(**forged))
        return self.flush()

    def to_wait_trust(self, **forged: Any) -> None:
        """ClientHello sent, the server's flight read and verified: the client-identity pause."""
        self.send_client_hello(**forged)
        self.read_until(lambda: self.conn.state is State.WAIT_TRUST, "server flight")

    def finish_handshake(self) -> None:
        """From the pause: the honest client flight, then the server's Finished."""
        self.conn.trust_server()
        self.flush()
        self.wait_connected()

    def wait_connected(self) -> None:
        self.read_until(lambda: self.conn.is_connected, "server Finished")

    def handshake(self) -> None:
        self.to_wait_trust()
        self.finish_handshake()

    def send_frame(self, frame: dict[str, Any]) -> None:
        self.conn.send_data(encode_frame(frame))
        self.flush()

    def wait_frame(
        self, match: Callable[[dict[str, Any]], bool], what: str, start: int = 0
    ) -> dict[str, Any]:
        """The first frame from index ``start`` that matches."""

        def found() -> dict[str, Any] | None:
            return next((f for f in self.frames[start:] if match(f)), None)

        self.read_until(lambda: found() is not None, what)
        frame = found()
        assert frame is not None
        return frame

    def join_chat(self, nick: str = "evil") -> dict[str, Any]:
        """Say hello and wait until the server put us in #general; the welcome frame."""
        start = len(self.frames)
        self.send_frame({"type": "hello", "nick": nick})
        self.wait_frame(
            lambda f: f.get("type") == "joined" and f.get("room") == "#general", "joined", start
        )
        return next(f for f in self.frames[start:] if f.get("type") == "welcome")

    def say(self, body: str, target: str = "#general") -> dict[str, Any]:
        frame = signed_say(self.network, self.identity, body, target)
        self.send_frame(frame)
        return frame

    def close_cleanly(self) -> None:
        """close_notify, the server's close_notify back, then the end of the stream."""
        self.conn.close()
        self.flush()
        self._feed(self.read_until_closed())
        assert any(isinstance(e, ConnectionClosed) for e in self.events), (
            f"{self.label}: no close_notify from the server"
        )


# ----- the evil server --------------------------------------------------------------------------


@dataclass
class ServerKnobs:
    """What the evil server breaks; the defaults are an honest server.

    ``signature``: honest | flip (one bit of the signature) | pkcs1v15 (RSA PKCS#1 v1.5 instead
    of PSS) | pss-salt-0 / pss-salt-max (PSS with another salt length) | replay
    (``replayed_signature``, made in another session) | ed25519-scheme (an RSA signature labelled
    Ed25519).
    ``finished``: honest | flip | truncated (31 bytes) | plaintext (not encrypted).
    ``certificate`` / ``certificate_type``: sent instead of the real certificate.
    ``key_share`` / ``version`` / ``cipher_suite``: forged ServerHello fields.
    """

    signature: str = "honest"
    replayed_signature: bytes = b""
    certificate: bytes | None = None
    certificate_type: int = CertificateType.x509
    finished: str = "honest"
    key_share: bytes | None = None
    version: int | None = None
    cipher_suite: int | None = None


class EvilServerConnection(ServerConnection):
    """A ServerConnection that lies where its knobs say, and records what it received."""

    def __init__(self, config: ConnectionConfig, now: float, knobs: ServerKnobs) -> None:
        super().__init__(config, now)
        self.knobs = knobs
        self.signatures: list[bytes] = []
        self.received_messages: list[str] = []

    def _handle_handshake(self, message: HandshakeMessage, raw: bytes) -> None:
        self.received_messages.append(type(message).__name__)
        super()._handle_handshake(message, raw)

    def _sign_transcript(self, context: bytes) -> CertificateVerify:
        identity = self.config.identity
        content = signed_content(context, self._transcript_digest())
        mode = self.knobs.signature
        algorithm: int = identity.scheme
        if mode in ("honest", "ed25519-scheme"):
            signature = identity.sign(content)
            if mode == "ed25519-scheme":
                algorithm = SignatureScheme.ed25519
        elif mode == "flip":
            signature = flip(identity.sign(content), 7)
        elif mode == "replay":
            signature = self.knobs.replayed_signature
        else:
            key = identity.private_key
            assert isinstance(key, rsa.RSAPrivateKey), "these forgeries need an RSA server key"
            schemes: dict[str, padding.AsymmetricPadding] = {
                "pkcs1v15": padding.PKCS1v15(),
                "pss-salt-0": padding.PSS(padding.MGF1(hashes.SHA256()), 0),
                "pss-salt-max": padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.MAX_LENGTH),
            }
            signature = key.sign(content, schemes[mode], hashes.SHA256())
        self.signatures.append(signature)
        return CertificateVerify(algorithm, signature)

    def _send_handshake(self, message: HandshakeMessage) -> None:
        knobs = self.knobs
        if isinstance(message, ServerHello):
            message = ServerHello(
                version=message.version if knobs.version is None else knobs.version,
                random=message.random,
                cipher_suite=(
                    message.cipher_suite if knobs.cipher_suite is None else knobs.cipher_suite
                ),
                key_share=message.key_share if knobs.key_share is None else knobs.key_share,
            )
        elif isinstance(message, Certificate) and knobs.certificate is not None:
            message = Certificate(knobs.certificate_type, knobs.certificate)
        elif isinstance(message, Finished):
            if knobs.finished == "flip":
                message = Finished(flip(message.verify_data, 0))
            elif knobs.finished == "truncated":
                message = Finished(message.verify_data[:-1])
            elif knobs.finished == "plaintext":
                raw = encode_handshake(message)
                self._transcript.update(raw)
                self._outgoing += plaintext_record(ContentType.handshake, raw)
                return
        super()._send_handshake(message)


@dataclass
class EvilServer:
    """Accepts one connection on 127.0.0.1 and serves it with an :class:`EvilServerConnection`.

    It runs in a thread: start the victim client, then :meth:`join`. Afterwards ``error`` is the
    ProtocolError the connection ended with (the victim's alert, decrypted, if it sent one),
    ``client_closed`` whether the victim closed its end, ``after_error`` whatever it sent after
    its alert, and ``completed`` whether the handshake completed (it then says goodbye with
    close_notify).
    """

    identity: IdentityKey
    certificate_der: bytes
    knobs: ServerKnobs = field(default_factory=ServerKnobs)
    connection: EvilServerConnection | None = None
    error: ProtocolError | None = None
    completed: bool = False
    client_closed: bool = False
    after_error: bytes = b""
    problem: BaseException | None = None

    def __post_init__(self) -> None:
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(2 * IO_TIMEOUT)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name="evil-server", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except BaseException as error:  # reported by join()
            self.problem = error
            return
        finally:
            self._listener.close()
        with sock:
            try:
                self._serve(sock)
            except BaseException as error:
                self.problem = error

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(IO_TIMEOUT)
        config = ConnectionConfig(
            identity=self.identity, certificate_der=self.certificate_der, max_message=MAX_FRAME
        )
        connection = self.connection = EvilServerConnection(config, time.monotonic(), self.knobs)
        while True:
            data = sock.recv(65536)
            if not data:
                self.client_closed = True
                return
            try:
                events = connection.receive_data(data)
            except ProtocolError as error:
                self.error = error
                sock.sendall(connection.data_to_send())
                break
            if any(isinstance(e, HandshakeComplete) for e in events):
                self.completed = True
            if any(isinstance(e, ConnectionClosed) for e in events):
                sock.sendall(connection.data_to_send())
                break
            if any(isinstance(e, DataReceived) for e in events):
                connection.close()  # the control case: a chat frame arrived, say goodbye
            sock.sendall(connection.data_to_send())
        deadline = time.monotonic() + CLOSE_WAIT
        while time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                self.client_closed = True
                return
            self.after_error += data

    def join(self, timeout: float = 2 * IO_TIMEOUT) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the evil server is still serving"
        if self.problem is not None:
            raise AssertionError(f"evil server failed: {self.problem!r}") from self.problem

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.close()
        self._thread.join(2 * IO_TIMEOUT)


def honest_session_signature(identity: IdentityKey, certificate_der: bytes) -> bytes:
    """A CertificateVerify signature the evil server made in another (in-memory) session."""
    server = EvilServerConnection(
        ConnectionConfig(identity=identity, certificate_der=certificate_der), 0.0, ServerKnobs()
    )
    client = ClientConnection(ConnectionConfig(identity=new_identity()), 0.0)
    client.start_handshake()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    assert client.state is State.WAIT_TRUST
    (signature,) = server.signatures
    return signature


# ----- the man in the middle --------------------------------------------------------------------


Rewrite = Callable[[str, int, bytes], bytes]


class RewritingProxy(RecordingProxy):
    """The e2e recording proxy, rewriting whole records in transit.

    ``rewrite(direction, index, record)`` sees the ``index``-th record of one direction ("c2s" or
    "s2c") of any connection and returns what to forward instead.
    """

    def __init__(self, upstream_port: int, rewrite: Rewrite) -> None:
        self._rewrite = rewrite
        self._indexes = {"c2s": 0, "s2c": 0}
        self.forwarded: dict[str, list[bytes]] = {"c2s": [], "s2c": []}
        super().__init__(upstream_port)

    def _forward(self, connection: ProxiedConnection, direction: str, data: bytes) -> bytes:
        data = super()._forward(connection, direction, data)
        with self._lock:
            index = self._indexes[direction]
            self._indexes[direction] += 1
        forwarded = self._rewrite(direction, index, data)
        with self._lock:
            self.forwarded[direction].append(forwarded)
        return forwarded

    def records(self, direction: str) -> list[bytes]:
        with self._lock:
            return list(self.forwarded[direction])
