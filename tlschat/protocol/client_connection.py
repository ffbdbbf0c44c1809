"""The client's side of a connection: its handshake, and the pause while the user decides
whether to trust the server's key (section 13 of PROTOCOL.md). Sans-IO."""

from __future__ import annotations

from collections.abc import Callable

from .alerts import AlertDescription, ProtocolError
from .connection import CLIENT_SIGNATURE_CONTEXT, SERVER_SIGNATURE_CONTEXT, Connection, State
from .events import (
    Event,
    HandshakeStep,
    ServerAuthenticated,
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


class ClientConnection(Connection):
    role = "client"
    peer_role = "server"

    def start_handshake(self) -> None:
        """Queue the ClientHello (step 1)."""
        if self.state is not State.START:
            raise RuntimeError("handshake already started")
        self._hello = ClientHello(
            random=self._random,
            versions=self.config.versions,
            cipher_suites=self.config.cipher_suites,
            signature_algorithms=self.config.signature_algorithms,
            key_share=self._key_share,
        )
        self._send_handshake(self._hello)
        self.state = State.WAIT_SERVER_HELLO

    def start_events(self) -> list[Event]:
        """The trace line for the ClientHello just queued."""
        return [HandshakeStep(1, "ClientHello sent")]

    def trust_server(self) -> list[Event]:
        """Accept the authenticated server: send our identity and Finished (step 5)."""
        if self.state is not State.WAIT_TRUST:
            raise RuntimeError(f"no server to trust in state {self.state.name}")
        self._send_handshake(
            Certificate(CertificateType.raw_public_key, self.config.identity.spki_der)
        )
        self._send_handshake(self._sign_transcript(CLIENT_SIGNATURE_CONTEXT))
        self._send_handshake(self._finished(self._client_hs_secret))
        self._derive_application_secrets()
        self._install_application_write_keys()
        self.state = State.WAIT_SERVER_FINISHED
        return [HandshakeStep(5, "Client Finished sent ✅"), *self._guarded(self._process_records)]

    def reject_server(self, reason: str) -> ProtocolError:
        """Refuse the server's identity: send bad_certificate and close."""
        return self.abort(AlertDescription.bad_certificate, reason)

    def _handlers(self) -> dict[tuple[State, type], Callable[[object], None]]:
        return {
            (State.WAIT_SERVER_HELLO, ServerHello): self._on_server_hello,  # type: ignore[dict-item]
            (State.WAIT_SERVER_CERTIFICATE, Certificate): self._on_certificate,  # type: ignore[dict-item]
            (State.WAIT_SERVER_CERTIFICATE_VERIFY, CertificateVerify): self._on_certificate_verify,  # type: ignore[dict-item]
            (State.WAIT_SERVER_FINISHED, Finished): self._on_finished,  # type: ignore[dict-item]
        }

    def _on_server_hello(self, message: ServerHello) -> None:
        if message.version not in self.config.versions:
            raise ProtocolError(
                AlertDescription.illegal_parameter,
                f"server chose version {message.version:#06x}, which was not offered",
            )
        if message.cipher_suite not in self.config.cipher_suites:
            raise ProtocolError(
                AlertDescription.illegal_parameter,
                f"server chose suite {message.cipher_suite:#06x}, which was not offered",
            )
        shared = self._shared_secret(message.key_share)
        self.version = message.version
        self.suite = message.cipher_suite
        self._install_handshake_keys(shared)
        self._records.accept_plain_alerts = True
        self.state = State.WAIT_SERVER_CERTIFICATE

    def _on_certificate(self, message: Certificate) -> None:
        if message.certificate_type != CertificateType.x509:
            raise ProtocolError(
                AlertDescription.unsupported_certificate, "server must send an X.509 certificate"
            )
        self.peer = PeerIdentity.from_certificate(message.data)
        self.state = State.WAIT_SERVER_CERTIFICATE_VERIFY

    def _on_certificate_verify(self, message: CertificateVerify) -> None:
        self._verify_peer_signature(message, SERVER_SIGNATURE_CONTEXT)
        assert self.peer is not None
        self.state = State.WAIT_TRUST
        self._events += [
            HandshakeStep(2, f"ServerHello received and verified ✅ | Cipher: {self.suite_name}"),
            HandshakeStep(3, "Shared secret computed"),
            HandshakeStep(4, "Session key derived (HKDF)"),
            ServerAuthenticated(self.peer),
        ]

    def _on_finished(self, message: Finished) -> None:
        self._verify_finished(message, self._server_hs_secret)
        self._install_application_read_keys()
        self._events.append(HandshakeStep(6, "Server Finished verified ✅"))
        self._complete()
