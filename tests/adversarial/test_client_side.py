"""Client-side probes: the evil server against the REAL client process (``tlschat client --plain``).

For every probe: (1) the client exits non-zero and its stderr names the alert; (2) the alert that
reached the wire, decrypted by the evil server with its honest connection state; (3) the client
closed the socket after it, sending nothing more; and, for failures before the client-identity
pause, it never revealed its identity (no client Certificate was ever sent) and did not record the
server in known_hosts. (4) The same client home then joins the real server of the arena and chats
with the two clients connected there since the module started.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.x509.oid import NameOID

from tests.e2e.harness import TEST_ONLY_SERVER_CERTIFICATE, TEST_ONLY_SERVER_KEY, Client
from tlschat.protocol import AlertDescription as A
from tlschat.protocol import IdentityKey

from .conftest import Arena, said
from .evil import EvilServer, ServerKnobs, honest_session_signature, new_identity, x25519_share

# The test-only RSA key and certificate of docs/PROTOCOL.md's worked example (public on purpose).
EVIL_KEY, EVIL_CERTIFICATE = TEST_ONLY_SERVER_KEY, TEST_ONLY_SERVER_CERTIFICATE
EXIT_CONNECTION_FAILED = 1


def _certificate(public_key: rsa.RSAPublicKey, signer: ed25519.Ed25519PrivateKey) -> bytes:
    """A certificate for ``public_key`` signed by someone else: not self-signed."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tlschat")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(signer, None)
    )
    return certificate.public_bytes(serialization.Encoding.DER)


def _weak_rsa_certificate() -> bytes:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tlschat")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(weak.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(weak, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.DER)


def _not_self_signed() -> bytes:
    public_key = EVIL_KEY.public_key
    assert isinstance(public_key, rsa.RSAPublicKey)
    return _certificate(public_key, ed25519.Ed25519PrivateKey.generate())


def _another_keys_certificate(key_type: str) -> bytes:
    """A valid self-signed certificate, but of another key than the one that signs."""
    other = new_identity() if key_type == "ed25519" else IdentityKey.generate("rsa")
    return other.self_signed_certificate("tlschat", datetime.datetime.now(datetime.UTC))


# name: (knobs, alert, reason, failed before the client-identity pause)
PROBES: dict[str, tuple[ServerKnobs, A, str, bool]] = {
    "signature-bit-flipped": (
        ServerKnobs(signature="flip"),
        A.decrypt_error,
        "signature does not verify",
        True,
    ),
    "signature-pkcs1-v1.5-instead-of-pss": (
        ServerKnobs(signature="pkcs1v15"),
        A.decrypt_error,
        "signature does not verify",
        True,
    ),
    "signature-pss-salt-length-0": (
        ServerKnobs(signature="pss-salt-0"),
        A.decrypt_error,
        "signature does not verify",
        True,
    ),
    "signature-pss-salt-length-max": (
        ServerKnobs(signature="pss-salt-max"),
        A.decrypt_error,
        "signature does not verify",
        True,
    ),
    "signature-replayed-from-another-session": (
        ServerKnobs(
            signature="replay",
            replayed_signature=honest_session_signature(EVIL_KEY, EVIL_CERTIFICATE),
        ),
        A.decrypt_error,
        "signature does not verify",
        True,
    ),
    "signature-labelled-ed25519": (
        ServerKnobs(signature="ed25519-scheme"),
        A.illegal_parameter,
        "does not match the",
        True,
    ),
    "certificate-garbage": (
        ServerKnobs(certificate=bytes(range(256)) * 2),
        A.bad_certificate,
        "unparseable X.509 certificate",
        True,
    ),
    "certificate-empty": (ServerKnobs(certificate=b""), A.decode_error, "certificate", True),
    "certificate-truncated": (
        ServerKnobs(certificate=EVIL_CERTIFICATE[:-10]),
        A.bad_certificate,
        "unparseable X.509 certificate",
        True,
    ),
    "certificate-not-self-signed": (
        ServerKnobs(certificate=_not_self_signed()),
        A.bad_certificate,
        "not validly self-signed",
        True,
    ),
    "certificate-of-another-rsa-key": (
        ServerKnobs(certificate=_another_keys_certificate("rsa")),
        A.decrypt_error,
        "signature does not verify",
        True,
    ),
    "certificate-of-an-ed25519-key": (
        ServerKnobs(certificate=_another_keys_certificate("ed25519")),
        A.illegal_parameter,  # an RSA-PSS signature for an Ed25519 key
        "does not match the",
        True,
    ),
    "certificate-rsa-1024": (
        ServerKnobs(certificate=_weak_rsa_certificate()),
        A.insufficient_security,
        "RSA key of 1024 bits",
        True,
    ),
    "certificate-raw-key-type": (
        ServerKnobs(certificate=EVIL_KEY.spki_der, certificate_type=2),
        A.unsupported_certificate,
        "server must send an X.509 certificate",
        True,
    ),
    "server-hello-low-order-share": (
        ServerKnobs(key_share=bytes(32)),
        A.illegal_parameter,
        "low-order point",
        True,
    ),
    "server-hello-31-byte-share": (
        ServerKnobs(key_share=x25519_share()[:31]),
        A.illegal_parameter,
        "X25519 share of 31 bytes",
        True,
    ),
    "server-hello-unoffered-suite": (
        ServerKnobs(cipher_suite=0x1301),
        A.illegal_parameter,
        "which was not offered",
        True,
    ),
    "server-hello-unoffered-version": (
        ServerKnobs(version=0x0304),
        A.illegal_parameter,
        "which was not offered",
        True,
    ),
    "finished-bit-flipped": (
        ServerKnobs(finished="flip"),
        A.decrypt_error,
        "Finished does not verify",
        False,
    ),
    "finished-truncated": (ServerKnobs(finished="truncated"), A.decode_error, "need 32", False),
    "finished-unencrypted": (
        ServerKnobs(finished="plaintext"),
        A.unexpected_message,
        "unprotected handshake record after keys were set",
        False,
    ),
}


def _rejoins_the_real_server(arena: Arena, home: Path) -> None:
    """(4) The victim's home (identity, known_hosts) still works with an honest server."""
    client = arena.harness.client("victim-again", arena.server.port, home=home)
    nick = client.wait_joined()
    text = arena.unique("back from the evil server")
    client.send(text)
    for bystander in (arena.alice, arena.bob):
        bystander.wait_for_line(said(nick, text))
    client.close_stdin()
    assert client.wait_exit() == 0, client.describe()


def _victim(arena: Arena, knobs: ServerKnobs) -> tuple[EvilServer, Client, Path]:
    home = arena.home("victim")
    evil = EvilServer(EVIL_KEY, EVIL_CERTIFICATE, knobs)
    try:
        # The evil server serves one connection: after its close_notify (the control case), a
        # reconnect would find nobody there.
        client = arena.harness.client("victim", evil.port, home=home, extra=("--no-reconnect",))
        client.wait_exit()
        evil.join()
    finally:
        evil.close()
    return evil, client, home


def test_control_the_honest_evil_server_completes_a_handshake(arena: Arena) -> None:
    """Without knobs the evil server is a correct server: the probes fail for their knob only."""
    evil, client, home = _victim(arena, ServerKnobs())
    assert client.proc.returncode == 0, client.describe()
    assert client.find("[TLS] ✅ Handshake complete", stream="stderr"), client.describe()
    assert evil.completed and evil.error is None and evil.client_closed
    assert evil.connection is not None and evil.connection.peer is not None
    assert EVIL_KEY.fingerprint in (home / "known_hosts").read_text()
    _rejoins_the_real_server(arena, home)


@pytest.mark.parametrize(
    ("knobs", "alert", "reason", "before_trust"), PROBES.values(), ids=PROBES.keys()
)
def test_evil_server_is_refused_by_the_real_client(
    arena: Arena, knobs: ServerKnobs, alert: A, reason: str, before_trust: bool
) -> None:
    evil, client, home = _victim(arena, knobs)
    # (1) the client exits non-zero naming the alert, without a traceback
    assert client.proc.returncode == EXIT_CONNECTION_FAILED, client.describe()
    line = client.wait_for_line(
        f"[!] Handshake failed: {alert.name} (client alert raised): ", stream="stderr"
    )
    assert reason in line, line
    assert "Traceback" not in client.output("stderr"), client.describe()
    assert client.find("Handshake complete", stream="stderr") is None
    # (2) its alert reached the wire: the evil server decrypted it (or read it in plaintext)
    assert evil.error is not None, "the client sent no alert"
    assert evil.error.received, f"the evil server failed on its own: {evil.error}"
    assert evil.error.alert == alert, str(evil.error)
    # (3) then it closed, sending nothing after the alert
    assert evil.client_closed and evil.after_error == b""
    connection = evil.connection
    assert connection is not None
    if before_trust:
        # It never revealed who it is: no Certificate, and the server was not remembered.
        assert connection.peer is None
        assert "Certificate" not in connection.received_messages
        assert connection.received_messages == ["ClientHello"]
        known_hosts = home / "known_hosts"
        assert not known_hosts.exists() or EVIL_KEY.fingerprint not in known_hosts.read_text()
    else:
        assert connection.received_messages == [
            "ClientHello",
            "Certificate",
            "CertificateVerify",
            "Finished",
        ]
    # (4) the same identity and known_hosts still work with an honest server
    _rejoins_the_real_server(arena, home)
