"""The server's side of a connection: its handshake, from the ClientHello to the client's
Finished. Sans-IO."""

from __future__ import annotations

from collections.abc import Callable

from .alerts import AlertDescription, ProtocolError
from .connection import (
    CLIENT_SIGNATURE_CONTEXT,
    SERVER_SIGNATURE_CONTEXT,
    Connection,
    ConnectionConfig,
    State,
)
from .events import (
    HandshakeStep,
)
from .identity import PeerIdentity
from .messages import (
    Certificate,
    CertificateType,
    CertificateVerify,
    ClientHello,
    Finished,
    ServerHello,
)


class ServerConnection(Connection):
    role = "server"
    peer_role = "client"

    def __init__(self, config: ConnectionConfig, now: float) -> None:
        if config.certificate_der is None:
            raise ValueError("a server needs a certificate")
        super().__init__(config, now)
        self.state = State.WAIT_CLIENT_HELLO

    def _handlers(self) -> dict[tuple[State, type], Callable[[object], None]]:
        return {
            (State.WAIT_CLIENT_HELLO, ClientHello): self._on_client_hello,  # type: ignore[dict-item]
            (State.WAIT_CLIENT_CERTIFICATE, Certificate): self._on_certificate,  # type: ignore[dict-item]
            (State.WAIT_CLIENT_CERTIFICATE_VERIFY, CertificateVerify): self._on_certificate_verify,  # type: ignore[dict-item]
            (State.WAIT_CLIENT_FINISHED, Finished): self._on_finished,  # type: ignore[dict-item]
        }

    def _on_client_hello(self, message: ClientHello) -> None:
        self._events.append(HandshakeStep(1, "ClientHello received"))
        versions = [v for v in self.config.versions if v in message.versions]
        if not versions:
            raise ProtocolError(
                AlertDescription.protocol_version,
                f"no common version in {[hex(v) for v in message.versions]}",
            )
        suites = [s for s in self.config.cipher_suites if s in message.cipher_suites]
        if not suites:
            raise ProtocolError(AlertDescription.handshake_failure, "no common cipher suite")
        identity = self.config.identity
        if identity.scheme not in message.signature_algorithms:
            raise ProtocolError(
                AlertDescription.handshake_failure,
                f"client cannot verify {identity.scheme.name} signatures",
            )
        shared = self._shared_secret(message.key_share)
        self.version = max(versions)
        self.suite = suites[0]
        self._send_handshake(
            ServerHello(
                version=self.version,
                random=self._random,
                cipher_suite=self.suite,
                key_share=self._key_share,
            )
        )
        self._install_handshake_keys(shared)
        self._records.accept_plain_alerts = True
        assert self.config.certificate_der is not None
        self._send_handshake(Certificate(CertificateType.x509, self.config.certificate_der))
        self._send_handshake(self._sign_transcript(SERVER_SIGNATURE_CONTEXT))
        self.state = State.WAIT_CLIENT_CERTIFICATE
        self._events += [
            HandshakeStep(2, f"ServerHello + Certificate sent | Cipher: {self.suite_name}"),
            HandshakeStep(3, "Shared secret derived via ECDHE"),
            HandshakeStep(4, "Session key derived (HKDF)"),
        ]

    def _on_certificate(self, message: Certificate) -> None:
        if message.certificate_type != CertificateType.raw_public_key:
            raise ProtocolError(
                AlertDescription.unsupported_certificate,
                "client must send its raw public key",
            )
        self.peer = PeerIdentity.from_spki(message.data)
        self.state = State.WAIT_CLIENT_CERTIFICATE_VERIFY

    def _on_certificate_verify(self, message: CertificateVerify) -> None:
        self._verify_peer_signature(message, CLIENT_SIGNATURE_CONTEXT)
        self.state = State.WAIT_CLIENT_FINISHED

    def _on_finished(self, message: Finished) -> None:
        self._verify_finished(message, self._client_hs_secret)
        self._events.append(HandshakeStep(5, "Client Finished verified ✅"))
        self._derive_application_secrets()
        self._install_application_read_keys()
        self._send_handshake(self._finished(self._server_hs_secret))
        self._install_application_write_keys()
        self._events.append(HandshakeStep(6, "Server Finished sent ✅"))
        self._complete()
