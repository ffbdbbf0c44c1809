"""One test (or a few) per rule of DESIGN.md section 2, each expecting its specific alert.

Every failure is checked four ways: the alert, the side that raised it, the victim's CLOSED state,
and the alert that actually reached the wire (a plaintext record read directly, or an encrypted
one fed to the peer, which must raise the same alert as received).
"""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tlschat.protocol import (
    AlertDescription,
    ClientConnection,
    ConnectionClosed,
    ConnectionConfig,
    DataReceived,
    HandshakeComplete,
    IdentityKey,
    KeyUpdated,
    ProtocolError,
    ServerConnection,
    State,
)
from tlschat.protocol.alerts import AlertLevel
from tlschat.protocol.connection import (
    CLIENT_SIGNATURE_CONTEXT,
    SERVER_SIGNATURE_CONTEXT,
    signed_content,
)
from tlschat.protocol.identity import (
    PeerIdentity,
    check_public_key,
    load_public_key_der,
    public_key_der,
)
from tlschat.protocol.messages import (
    MAX_HANDSHAKE_BODY,
    Certificate,
    CertificateType,
    CertificateVerify,
    Finished,
    KeyUpdate,
    SignatureScheme,
    encode_handshake,
)
from tlschat.protocol.record import (
    MAX_CIPHERTEXT,
    MAX_PLAINTEXT,
    RECORD_HEADER_LENGTH,
    ContentType,
    DirectionKeys,
)

from .helpers import (
    AES,
    CHACHA,
    NOW,
    Keys,
    assert_alert_delivered,
    assert_failed,
    assert_plaintext_alert_sent,
    connected_pair,
    flip,
    handshake,
    make_pair,
    pump,
    record,
    rsa_private_key_with_big_exponent,
    rsa_public_key_with_exponent,
    split_records,
)

# Offsets into the first record of each hello: record header, handshake header, then the body.
BODY = RECORD_HEADER_LENGTH + 4
CH_RANDOM = BODY  # ClientHello: random(32) || versions<u8> || suites<u8> || sigalgs<u8> || share
SH_VERSION = BODY  # ServerHello: version(2) || random(32) || suite(2) || share<u8>
SH_RANDOM = BODY + 2
SH_SUITE = BODY + 34

LOW_ORDER_POINT = bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")


def client_hello(client: ClientConnection) -> bytes:
    client.start_handshake()
    return client.data_to_send()


def to_wait_trust(client: ClientConnection, server: ServerConnection) -> None:
    """ClientHello to the server, its flight back: the client waits for trust_server()."""
    server.receive_data(client_hello(client))
    client.receive_data(server.data_to_send())
    assert client.state is State.WAIT_TRUST


def expect_error(call: Any, *args: Any) -> pytest.ExceptionInfo[ProtocolError]:
    with pytest.raises(ProtocolError) as excinfo:
        call(*args)
    return excinfo


def replace_at(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


# ----- 2. transcript: tampering in transit diverges the keys --------------------------------------


def test_tampered_client_hello_random_breaks_the_handshake_keys(keys: Keys) -> None:
    client, server = make_pair(keys)
    hello = client_hello(client)
    server.receive_data(flip(hello, CH_RANDOM + 5))  # the server hashes what it received
    flight = server.data_to_send()
    # The ServerHello is plaintext and acceptable; the first record under the server's handshake
    # key (derived from the other transcript) does not authenticate.
    excinfo = expect_error(client.receive_data, flight)
    assert_failed(excinfo, client, AlertDescription.bad_record_mac)
    assert client.peer is None  # the certificate was never read
    # The client's alert is under its own (diverged) handshake key: the server cannot read it
    # either and fails with bad_record_mac of its own.
    alert = client.data_to_send()
    assert split_records(alert) == [alert] and alert[0] == ContentType.application_data
    excinfo = expect_error(server.receive_data, alert)
    assert_failed(excinfo, server, AlertDescription.bad_record_mac)


def test_client_hello_suite_downgrade_in_transit_is_caught(keys: Keys) -> None:
    """A MITM rewrites the offered suites so the server picks ChaCha: the transcripts differ."""
    client, server = make_pair(keys, client_suites=(AES, CHACHA), server_suites=(AES, CHACHA))
    hello = client_hello(client)
    suites_at = CH_RANDOM + 32 + 1 + 2 * len(client.config.versions)
    assert hello[suites_at] == 4  # two suites
    assert hello[suites_at + 1 : suites_at + 5] == b"\x00\x01\x00\x02"
    forged = replace_at(hello, suites_at + 1, b"\x00\x02")
    server.receive_data(forged)
    assert server.suite == CHACHA
    excinfo = expect_error(client.receive_data, server.data_to_send())
    assert_failed(excinfo, client, AlertDescription.bad_record_mac)
    assert client.suite == CHACHA  # offered, so accepted on its face; the keys gave it away


def test_tampered_server_hello_random_breaks_the_handshake_keys(keys: Keys) -> None:
    client, server = make_pair(keys)
    server.receive_data(client_hello(client))
    flight = server.data_to_send()
    excinfo = expect_error(client.receive_data, flip(flight, SH_RANDOM + 3))
    assert_failed(excinfo, client, AlertDescription.bad_record_mac)
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.bad_record_mac)


def test_tampered_server_hello_suite_within_the_offer_is_caught(keys: Keys) -> None:
    client, server = make_pair(keys, client_suites=(AES, CHACHA))
    server.receive_data(client_hello(client))
    flight = server.data_to_send()
    assert flight[SH_SUITE : SH_SUITE + 2] == b"\x00\x01"
    excinfo = expect_error(client.receive_data, replace_at(flight, SH_SUITE, b"\x00\x02"))
    assert_failed(excinfo, client, AlertDescription.bad_record_mac)


class WrongContextServer(ServerConnection):
    """Signs with the client's context string instead of its own."""

    def _sign_transcript(self, context: bytes) -> CertificateVerify:
        assert context == SERVER_SIGNATURE_CONTEXT
        return super()._sign_transcript(CLIENT_SIGNATURE_CONTEXT)


class WrongTranscriptServer(ServerConnection):
    """Signs a transcript hash other than the one both sides hold."""

    def _sign_transcript(self, context: bytes) -> CertificateVerify:
        identity = self.config.identity
        other = hashlib.sha256(b"some other transcript").digest()
        return CertificateVerify(identity.scheme, identity.sign(signed_content(context, other)))


@pytest.mark.parametrize("server_cls", [WrongContextServer, WrongTranscriptServer])
@pytest.mark.parametrize("server_key", ["rsa", "ed25519"])
def test_server_signature_over_the_wrong_transcript_is_decrypt_error(
    keys: Keys, server_cls: type[ServerConnection], server_key: str
) -> None:
    client, server = make_pair(keys, server_key=server_key, server_cls=server_cls)
    server.receive_data(client_hello(client))
    excinfo = expect_error(client.receive_data, server.data_to_send())
    assert_failed(excinfo, client, AlertDescription.decrypt_error)
    assert_alert_delivered(client, server, AlertDescription.decrypt_error)


@pytest.mark.parametrize("server_key", ["rsa", "ed25519"])
def test_certificate_of_another_key_is_decrypt_error(keys: Keys, server_key: str) -> None:
    someone_else = keys.others[server_key].self_signed_certificate("tlschat", NOW)
    client, server = make_pair(keys, server_key=server_key, certificate=someone_else)
    server.receive_data(client_hello(client))
    excinfo = expect_error(client.receive_data, server.data_to_send())
    assert_failed(excinfo, client, AlertDescription.decrypt_error)
    assert_alert_delivered(client, server, AlertDescription.decrypt_error)


def test_signature_scheme_not_matching_the_certificate_key_is_illegal_parameter(
    keys: Keys,
) -> None:
    """An Ed25519-signing server presenting an RSA certificate: the scheme cannot be right."""
    client, server = make_pair(
        keys,
        server_options={"identity": keys["ed25519"], "certificate_der": keys.certificates["rsa"]},
    )
    server.receive_data(client_hello(client))
    excinfo = expect_error(client.receive_data, server.data_to_send())
    assert_failed(excinfo, client, AlertDescription.illegal_parameter)
    assert_alert_delivered(client, server, AlertDescription.illegal_parameter)


def make_certificate(public_key: Any, signing_key: Any, algorithm: Any = None) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tlschat")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=1))
    )
    certificate = builder.sign(signing_key, algorithm)
    return certificate.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(
    ("certificate", "alert"),
    [
        (lambda keys: b"this is not a certificate", AlertDescription.bad_certificate),
        (
            lambda keys: keys.certificates["rsa"][:-10],  # truncated DER
            AlertDescription.bad_certificate,
        ),
        (
            # The server's key, but signed by another: not self-signed.
            lambda keys: make_certificate(
                keys["ed25519"].public_key, keys.others["ed25519"].private_key
            ),
            AlertDescription.bad_certificate,
        ),
        (
            lambda keys: make_certificate(
                (weak := rsa.generate_private_key(65537, 1024)).public_key(),
                weak,
                hashes.SHA256(),
            ),
            AlertDescription.insufficient_security,
        ),
        (
            # Validly self-signed, but verifying with its key costs ~100 ordinary verifications.
            lambda keys: make_certificate(
                (big := rsa_private_key_with_big_exponent(keys["rsa"].private_key)).public_key(),
                big,
                hashes.SHA256(),
            ),
            AlertDescription.insufficient_security,
        ),
        (
            # e = 3 (signed by another key: the key is refused before the signature is looked at,
            # else this would be bad_certificate).
            lambda keys: make_certificate(
                rsa_public_key_with_exponent(keys["rsa"].private_key, 3),
                keys["rsa"].private_key,
                hashes.SHA256(),
            ),
            AlertDescription.insufficient_security,
        ),
    ],
    ids=["garbage", "truncated", "not-self-signed", "rsa-1024", "rsa-exponent-2000-bits", "rsa-e3"],
)
def test_bad_server_certificates(keys: Keys, certificate: Any, alert: AlertDescription) -> None:
    client, server = make_pair(keys, server_key="ed25519", certificate=certificate(keys))
    server.receive_data(client_hello(client))
    excinfo = expect_error(client.receive_data, server.data_to_send())
    assert_failed(excinfo, client, alert)
    assert client.peer is None
    assert_alert_delivered(client, server, alert)


def test_server_sending_a_raw_key_is_unsupported_certificate(keys: Keys) -> None:
    class RawKeyServer(ServerConnection):
        def _send_handshake(self, message: Any) -> None:
            if isinstance(message, Certificate):
                message = Certificate(CertificateType.raw_public_key, self.config.identity.spki_der)
            super()._send_handshake(message)

    client, server = make_pair(keys, server_cls=RawKeyServer)
    server.receive_data(client_hello(client))
    excinfo = expect_error(client.receive_data, server.data_to_send())
    assert_failed(excinfo, client, AlertDescription.unsupported_certificate)
    assert_alert_delivered(client, server, AlertDescription.unsupported_certificate)


# ----- suites and versions ------------------------------------------------------------------------


@pytest.mark.parametrize("forged_suite", [b"\x00\x02", b"\x12\x34"])
def test_server_choosing_an_unoffered_suite_is_illegal_parameter(
    keys: Keys, forged_suite: bytes
) -> None:
    client, server = make_pair(keys, client_suites=(AES,))
    server.receive_data(client_hello(client))
    flight = replace_at(server.data_to_send(), SH_SUITE, forged_suite)
    excinfo = expect_error(client.receive_data, flight)
    assert_failed(excinfo, client, AlertDescription.illegal_parameter)
    assert client.suite is None
    # The client had no keys yet: its alert is plaintext, and the server accepts that.
    data = assert_plaintext_alert_sent(client, AlertDescription.illegal_parameter)
    excinfo = expect_error(server.receive_data, data)
    assert_failed(excinfo, server, AlertDescription.illegal_parameter, received=True)


@pytest.mark.parametrize(
    "versions",
    [(1,), (2,), (3,), (5,)],
    ids=["version-1-client", "version-2-client", "version-3-client", "unknown"],
)
def test_client_offering_only_an_unknown_version_gets_protocol_version(
    keys: Keys, versions: tuple[int, ...]
) -> None:
    # A version-1 client (before chat lines were bound to a network), a version-2 one (before
    # the end-to-end layer) or a version-3 one (before runs and large rooms) gets a clear alert.
    client, server = make_pair(keys, client_options={"versions": versions})
    excinfo = expect_error(server.receive_data, client_hello(client))
    assert_failed(excinfo, server, AlertDescription.protocol_version)
    data = assert_plaintext_alert_sent(server, AlertDescription.protocol_version)
    excinfo = expect_error(client.receive_data, data)
    assert_failed(excinfo, client, AlertDescription.protocol_version, received=True)


def test_client_offering_future_and_current_versions_gets_the_common_one(keys: Keys) -> None:
    client, server = make_pair(keys, client_options={"versions": (7, 4, 3, 2, 1)})
    client_events, _ = handshake(client, server)
    assert client.version == server.version == 4
    assert isinstance(client_events[-1], HandshakeComplete) and client_events[-1].version == 4


def test_a_version_4_client_facing_a_version_3_server_gets_protocol_version(keys: Keys) -> None:
    client, server = make_pair(keys, server_options={"versions": (3,)})
    excinfo = expect_error(server.receive_data, client_hello(client))
    assert_failed(excinfo, server, AlertDescription.protocol_version)
    data = assert_plaintext_alert_sent(server, AlertDescription.protocol_version)
    excinfo = expect_error(client.receive_data, data)
    assert_failed(excinfo, client, AlertDescription.protocol_version, received=True)


@pytest.mark.parametrize("forged_version", [b"\x00\x03", b"\x03\x04", b"\x00\x00"])
def test_server_selecting_an_unoffered_version_is_illegal_parameter(
    keys: Keys, forged_version: bytes
) -> None:
    client, server = make_pair(keys)
    server.receive_data(client_hello(client))
    flight = server.data_to_send()
    assert flight[SH_VERSION : SH_VERSION + 2] == b"\x00\x04"
    excinfo = expect_error(client.receive_data, replace_at(flight, SH_VERSION, forged_version))
    assert_failed(excinfo, client, AlertDescription.illegal_parameter)
    data = assert_plaintext_alert_sent(client, AlertDescription.illegal_parameter)
    excinfo = expect_error(server.receive_data, data)
    assert_failed(excinfo, server, AlertDescription.illegal_parameter, received=True)


# ----- 5. Finished --------------------------------------------------------------------------------


class BadFinishedClient(ClientConnection):
    def _finished(self, secret: bytes) -> Finished:
        return Finished(flip(super()._finished(secret).verify_data, 17))


class BadFinishedServer(ServerConnection):
    def _finished(self, secret: bytes) -> Finished:
        return Finished(flip(super()._finished(secret).verify_data, 0, 0x80))


def test_bad_client_finished_is_decrypt_error_at_the_server(keys: Keys) -> None:
    client, server = make_pair(keys, client_cls=BadFinishedClient)
    to_wait_trust(client, server)
    client.trust_server()
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.decrypt_error)
    assert server.peer is not None  # the signature was fine; only Finished failed
    assert_alert_delivered(server, client, AlertDescription.decrypt_error)


def test_bad_server_finished_is_decrypt_error_at_the_client(keys: Keys) -> None:
    client, server = make_pair(keys, server_cls=BadFinishedServer)
    to_wait_trust(client, server)
    client.trust_server()
    server.receive_data(client.data_to_send())
    assert server.is_connected  # it does not know yet
    excinfo = expect_error(client.receive_data, server.data_to_send())
    assert_failed(excinfo, client, AlertDescription.decrypt_error)
    assert_alert_delivered(client, server, AlertDescription.decrypt_error)


# ----- 6. client identity -------------------------------------------------------------------------


def impostor_client(impostor: IdentityKey, scheme: int | None = None) -> type[ClientConnection]:
    class ImpostorClient(ClientConnection):
        """Presents its own key but signs with ``impostor``'s."""

        def _sign_transcript(self, context: bytes) -> CertificateVerify:
            signature = impostor.sign(signed_content(context, self._transcript_digest()))
            return CertificateVerify(scheme or impostor.scheme, signature)

    return ImpostorClient


@pytest.mark.parametrize("client_key", ["rsa", "ed25519"])
def test_client_signature_by_another_key_is_decrypt_error(keys: Keys, client_key: str) -> None:
    cls = impostor_client(keys.others[client_key])
    client, server = make_pair(keys, client_key=client_key, client_cls=cls)
    to_wait_trust(client, server)
    client.trust_server()
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.decrypt_error)
    assert_alert_delivered(server, client, AlertDescription.decrypt_error)


def test_client_signature_in_the_wrong_context_is_decrypt_error(keys: Keys) -> None:
    class ReplayingClient(ClientConnection):
        def _sign_transcript(self, context: bytes) -> CertificateVerify:
            return super()._sign_transcript(SERVER_SIGNATURE_CONTEXT)

    client, server = make_pair(keys, client_cls=ReplayingClient)
    to_wait_trust(client, server)
    client.trust_server()
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.decrypt_error)
    assert_alert_delivered(server, client, AlertDescription.decrypt_error)


def test_client_signature_scheme_not_offered_is_illegal_parameter(keys: Keys) -> None:
    cls = impostor_client(keys["ed25519"], scheme=0x0403)  # ecdsa_secp256r1_sha256
    client, server = make_pair(keys, client_key="ed25519", client_cls=cls)
    to_wait_trust(client, server)
    client.trust_server()
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.illegal_parameter)
    assert_alert_delivered(server, client, AlertDescription.illegal_parameter)


def test_client_scheme_not_matching_its_key_is_illegal_parameter(keys: Keys) -> None:
    cls = impostor_client(keys["ed25519"], scheme=SignatureScheme.rsa_pss_rsae_sha256)
    client, server = make_pair(keys, client_key="ed25519", client_cls=cls)
    to_wait_trust(client, server)
    client.trust_server()
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.illegal_parameter)
    assert_alert_delivered(server, client, AlertDescription.illegal_parameter)


def weak_spki() -> bytes:
    """An RSA-1024 public key, which IdentityKey itself refuses to hold."""
    return public_key_der(rsa.generate_private_key(65537, 1024).public_key())


def test_identity_key_refuses_rsa_1024() -> None:
    with pytest.raises(ProtocolError) as excinfo:
        IdentityKey(rsa.generate_private_key(65537, 1024))
    assert excinfo.value.alert == AlertDescription.insufficient_security


def test_identity_key_refuses_an_rsa_exponent_other_than_65537(keys: Keys) -> None:
    big = rsa_private_key_with_big_exponent(keys["rsa"].private_key)
    with pytest.raises(ProtocolError) as excinfo:
        IdentityKey(big)
    assert excinfo.value.alert == AlertDescription.insufficient_security


@pytest.mark.parametrize("exponent", [3, 17, 65539, "2000-bits"])
def test_peer_keys_must_have_rsa_exponent_65537(keys: Keys, exponent: int | str) -> None:
    """The one check every presented key passes (certificates, raw keys, relayed chat keys)."""
    base = keys["rsa"].private_key
    assert isinstance(base, rsa.RSAPrivateKey)
    if exponent == "2000-bits":
        key = rsa_private_key_with_big_exponent(base).public_key()
    else:
        assert isinstance(exponent, int)
        key = rsa_public_key_with_exponent(base, exponent)
    spki = public_key_der(key)
    for refuse in (
        lambda: check_public_key(key),
        lambda: load_public_key_der(spki),
        lambda: PeerIdentity.from_spki(spki),
    ):
        with pytest.raises(ProtocolError) as excinfo:
            refuse()
        assert excinfo.value.alert == AlertDescription.insufficient_security
        assert "RSA public exponent" in excinfo.value.reason
    # The same modulus with exponent 65537 is accepted.
    normal = public_key_der(rsa_public_key_with_exponent(base, 65537))
    assert PeerIdentity.from_spki(normal).spki_der == keys["rsa"].spki_der


@pytest.mark.parametrize(
    ("presented", "alert"),
    [
        (lambda keys: (CertificateType.raw_public_key, b"junk"), AlertDescription.bad_certificate),
        (
            lambda keys: (CertificateType.x509, keys.certificates["ed25519"]),
            AlertDescription.unsupported_certificate,
        ),
        (
            lambda keys: (CertificateType.raw_public_key, weak_spki()),
            AlertDescription.insufficient_security,
        ),
        (
            lambda keys: (
                CertificateType.raw_public_key,
                public_key_der(
                    rsa_private_key_with_big_exponent(keys["rsa"].private_key).public_key()
                ),
            ),
            AlertDescription.insufficient_security,
        ),
        (
            lambda keys: (
                CertificateType.raw_public_key,
                public_key_der(rsa_public_key_with_exponent(keys["rsa"].private_key, 3)),
            ),
            AlertDescription.insufficient_security,
        ),
    ],
    ids=["garbage-key", "x509-from-client", "rsa-1024", "rsa-exponent-2000-bits", "rsa-e3"],
)
def test_bad_client_keys(keys: Keys, presented: Any, alert: AlertDescription) -> None:
    certificate_type, data = presented(keys)

    class OddClient(ClientConnection):
        def _send_handshake(self, message: Any) -> None:
            if isinstance(message, Certificate):
                message = Certificate(certificate_type, data)
            super()._send_handshake(message)

    client, server = make_pair(keys, client_cls=OddClient)
    to_wait_trust(client, server)
    client.trust_server()
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, alert)
    assert server.peer is None
    assert_alert_delivered(server, client, alert)


# ----- 4. records ---------------------------------------------------------------------------------


def sent_records(sender: Any, *messages: bytes) -> list[bytes]:
    """One record per message: each is taken off the connection before the next is queued."""
    records: list[bytes] = []
    for message in messages:
        sender.send_data(message)
        records += split_records(sender.data_to_send())
    return records


def test_replayed_record_is_bad_record_mac(keys: Keys) -> None:
    client, server = connected_pair(keys)
    (first,) = sent_records(client, b"transfer 100 coins")
    assert server.receive_data(first) == [DataReceived(b"transfer 100 coins")]
    excinfo = expect_error(server.receive_data, first)
    assert_failed(excinfo, server, AlertDescription.bad_record_mac)
    assert_alert_delivered(server, client, AlertDescription.bad_record_mac)


def test_reordered_records_are_bad_record_mac(keys: Keys) -> None:
    client, server = connected_pair(keys)
    first, second = sent_records(client, b"one", b"two")
    excinfo = expect_error(server.receive_data, second + first)
    assert_failed(excinfo, server, AlertDescription.bad_record_mac)
    assert_alert_delivered(server, client, AlertDescription.bad_record_mac)


def test_dropped_record_is_bad_record_mac(keys: Keys) -> None:
    client, server = connected_pair(keys)
    first, _, third = sent_records(client, b"one", b"two", b"three")
    assert server.receive_data(first) == [DataReceived(b"one")]
    excinfo = expect_error(server.receive_data, third)
    assert_failed(excinfo, server, AlertDescription.bad_record_mac)
    assert_alert_delivered(server, client, AlertDescription.bad_record_mac)


def test_record_replayed_across_connections_is_bad_record_mac(keys: Keys) -> None:
    client, _ = connected_pair(keys)
    _, other_server = connected_pair(keys)
    (first,) = sent_records(client, b"hello")
    excinfo = expect_error(other_server.receive_data, first)
    assert_failed(excinfo, other_server, AlertDescription.bad_record_mac)


@pytest.mark.parametrize("where", ["first-ciphertext", "middle-ciphertext", "tag", "inner-type"])
def test_altered_record_body_is_bad_record_mac(keys: Keys, where: str) -> None:
    client, server = connected_pair(keys)
    (raw,) = sent_records(client, b"an important message")
    index = {
        "first-ciphertext": RECORD_HEADER_LENGTH,
        "middle-ciphertext": RECORD_HEADER_LENGTH + 10,
        "tag": len(raw) - 1,
        "inner-type": len(raw) - 16 - 1,  # the encrypted content-type byte
    }[where]
    excinfo = expect_error(server.receive_data, flip(raw, index))
    assert_failed(excinfo, server, AlertDescription.bad_record_mac)
    assert_alert_delivered(server, client, AlertDescription.bad_record_mac)


@pytest.mark.parametrize("delta", [-1, +1])
def test_altered_record_length_is_bad_record_mac(keys: Keys, delta: int) -> None:
    """The length is the only header field with no check of its own: the AEAD catches it."""
    client, server = connected_pair(keys)
    first, second = sent_records(client, b"one", b"two")
    length = int.from_bytes(first[3:5], "big") + delta
    altered = first[:3] + length.to_bytes(2, "big") + first[5:]
    excinfo = expect_error(server.receive_data, altered + second)
    assert_failed(excinfo, server, AlertDescription.bad_record_mac)
    assert_alert_delivered(server, client, AlertDescription.bad_record_mac)


@pytest.mark.parametrize(
    ("index", "mask", "alert"),
    [
        (0, 0x01, AlertDescription.unexpected_message),  # 23 -> 22: plaintext handshake after keys
        (0, 0x40, AlertDescription.unexpected_message),  # 23 -> 87: unknown record type
        (0, 0x02, AlertDescription.unexpected_message),  # 23 -> 21: plaintext alert after handshake
        (1, 0x01, AlertDescription.protocol_version),
        (2, 0x03, AlertDescription.protocol_version),
    ],
)
def test_altered_record_type_or_version(
    keys: Keys, index: int, mask: int, alert: AlertDescription
) -> None:
    client, server = connected_pair(keys)
    (raw,) = sent_records(client, b"message")
    excinfo = expect_error(server.receive_data, flip(raw, index, mask))
    assert_failed(excinfo, server, alert)
    assert_alert_delivered(server, client, alert)


def test_record_header_is_authenticated_data(keys: Keys) -> None:
    """Opening a sealed fragment under any other header fails, even one the reader would pass."""
    secret = bytes(range(32))
    for suite in (AES, CHACHA):
        sender, receiver = DirectionKeys(suite, secret), DirectionKeys(suite, secret)
        sealed = sender.seal(ContentType.application_data, b"payload")
        header, fragment = sealed[:RECORD_HEADER_LENGTH], sealed[RECORD_HEADER_LENGTH:]
        for altered in (flip(header, 0), flip(header, 2), flip(header, 4)):
            with pytest.raises(ProtocolError) as excinfo:
                receiver.open(altered, fragment)
            assert excinfo.value.alert == AlertDescription.bad_record_mac
        assert receiver.open(header, fragment) == (ContentType.application_data, b"payload")


def test_per_direction_keys_and_nonces(keys: Keys) -> None:
    client, server = connected_pair(keys)
    assert client._write_keys is not None and server._write_keys is not None
    assert client._records.read_keys is not None and server._records.read_keys is not None
    assert client._write_keys.secret == server._records.read_keys.secret
    assert server._write_keys.secret == client._records.read_keys.secret
    assert client._write_keys.secret != server._write_keys.secret
    # The same plaintext twice never gives the same ciphertext: the nonce moves with the sequence.
    first, second = sent_records(client, b"same", b"same")
    assert first[RECORD_HEADER_LENGTH:] != second[RECORD_HEADER_LENGTH:]
    keys_ = DirectionKeys(AES, bytes(32))
    nonces = set()
    for _ in range(100):
        nonces.add(keys_._nonce())
        keys_.seal(ContentType.application_data, b"")
    assert len(nonces) == 100


def test_truncated_stream_is_truncated(keys: Keys) -> None:
    client, server = connected_pair(keys)
    (raw,) = sent_records(client, b"a message cut short")
    assert server.receive_data(raw[:-7]) == []
    excinfo = expect_error(server.receive_eof)
    assert_failed(excinfo, server, AlertDescription.truncated)
    assert server.data_to_send() == b""


def test_eof_during_the_handshake_is_truncated(keys: Keys) -> None:
    client, server = make_pair(keys)
    server.receive_data(client_hello(client))
    excinfo = expect_error(client.receive_eof)
    assert_failed(excinfo, client, AlertDescription.truncated)


def test_oversized_protected_record_is_rejected_from_the_header(keys: Keys) -> None:
    assert MAX_CIPHERTEXT == 16384 + 1 + 16
    # At the limit, the header alone is fine: the reader waits for the body.
    _, server = connected_pair(keys)
    at_limit = bytes([ContentType.application_data, 0, 1]) + MAX_CIPHERTEXT.to_bytes(2, "big")
    assert server.receive_data(at_limit) == []
    assert server.is_connected
    # One byte more is refused with nothing but the 5-byte header in hand.
    client, server = connected_pair(keys)
    header = bytes([ContentType.application_data, 0, 1]) + (MAX_CIPHERTEXT + 1).to_bytes(2, "big")
    assert len(header) == RECORD_HEADER_LENGTH
    excinfo = expect_error(server.receive_data, header)
    assert_failed(excinfo, server, AlertDescription.record_overflow)
    assert_alert_delivered(server, client, AlertDescription.record_overflow)


def test_oversized_plaintext_record_is_rejected_from_the_header(keys: Keys) -> None:
    client, server = make_pair(keys)
    at_limit = bytes([ContentType.handshake, 0, 1]) + MAX_PLAINTEXT.to_bytes(2, "big")
    assert server.receive_data(at_limit) == []
    assert server.state is State.WAIT_CLIENT_HELLO
    client, server = make_pair(keys)
    header = bytes([ContentType.handshake, 0, 1]) + (MAX_PLAINTEXT + 1).to_bytes(2, "big")
    excinfo = expect_error(server.receive_data, header)
    assert_failed(excinfo, server, AlertDescription.record_overflow)
    data = assert_plaintext_alert_sent(server, AlertDescription.record_overflow)
    client_hello(client)
    excinfo = expect_error(client.receive_data, data)
    assert_failed(excinfo, client, AlertDescription.record_overflow, received=True)


def test_oversized_protected_content_from_an_evil_peer_is_record_overflow(keys: Keys) -> None:
    client, server = connected_pair(keys)
    client.send_raw_record(ContentType.application_data, bytes(MAX_PLAINTEXT + 1))
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.record_overflow)
    assert_alert_delivered(server, client, AlertDescription.record_overflow)


def test_exactly_max_message_is_accepted_and_one_more_is_record_overflow(keys: Keys) -> None:
    limit = 50_000
    client, server = connected_pair(
        keys, client_options={"max_message": limit + 1}, server_options={"max_message": limit}
    )
    client.send_data(b"m" * limit)
    assert server.receive_data(client.data_to_send()) == [DataReceived(b"m" * limit)]
    # Refused from the length prefix, before the body arrives.
    client.send_data(b"m" * (limit + 1))
    (first, *_) = split_records(client.data_to_send())
    excinfo = expect_error(server.receive_data, first)
    assert_failed(excinfo, server, AlertDescription.record_overflow)
    assert_alert_delivered(server, client, AlertDescription.record_overflow)


def test_unknown_inner_content_type_is_unexpected_message(keys: Keys) -> None:
    client, server = connected_pair(keys)
    client.send_raw_record(99, b"what is this")
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.unexpected_message)
    assert_alert_delivered(server, client, AlertDescription.unexpected_message)


# ----- handshake order ----------------------------------------------------------------------------


def test_finished_first_is_unexpected_message(keys: Keys) -> None:
    _, server = make_pair(keys)
    finished = record(ContentType.handshake, encode_handshake(Finished(bytes(32))))
    excinfo = expect_error(server.receive_data, finished)
    assert_failed(excinfo, server, AlertDescription.unexpected_message)
    assert_plaintext_alert_sent(server, AlertDescription.unexpected_message)


def test_second_plaintext_client_hello_is_unexpected_message(keys: Keys) -> None:
    client, server = make_pair(keys)
    hello = client_hello(client)
    server.receive_data(hello)
    flight = server.data_to_send()
    excinfo = expect_error(server.receive_data, hello)
    assert_failed(excinfo, server, AlertDescription.unexpected_message)
    # The alert follows the server's flight, under its handshake key; the client, waiting for
    # trust, still reads it.
    alert = server.data_to_send()
    excinfo = expect_error(client.receive_data, flight + alert)
    assert_failed(excinfo, client, AlertDescription.unexpected_message, received=True)


def test_second_encrypted_client_hello_is_unexpected_message(keys: Keys) -> None:
    client, server = make_pair(keys)
    to_wait_trust(client, server)
    client.send_raw_record(ContentType.handshake, encode_handshake(client._hello))
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.unexpected_message)
    assert_alert_delivered(server, client, AlertDescription.unexpected_message)


def test_client_finished_before_certificate_is_unexpected_message(keys: Keys) -> None:
    client, server = make_pair(keys)
    to_wait_trust(client, server)
    client.send_raw_record(ContentType.handshake, encode_handshake(Finished(bytes(32))))
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.unexpected_message)
    assert_alert_delivered(server, client, AlertDescription.unexpected_message)


def test_key_update_during_the_handshake_is_unexpected_message(keys: Keys) -> None:
    client, server = make_pair(keys)
    to_wait_trust(client, server)
    client.send_raw_record(ContentType.handshake, encode_handshake(KeyUpdate(False)))
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.unexpected_message)
    assert_alert_delivered(server, client, AlertDescription.unexpected_message)


def test_server_record_while_client_waits_for_trust_is_unexpected_message(keys: Keys) -> None:
    client, server = make_pair(keys)
    to_wait_trust(client, server)
    server.send_raw_record(ContentType.handshake, encode_handshake(Finished(bytes(32))))
    excinfo = expect_error(client.receive_data, server.data_to_send())
    assert_failed(excinfo, client, AlertDescription.unexpected_message)
    assert_alert_delivered(client, server, AlertDescription.unexpected_message)


def test_server_finished_before_server_hello_is_unexpected_message(keys: Keys) -> None:
    client, _ = make_pair(keys)
    client_hello(client)
    finished = record(ContentType.handshake, encode_handshake(Finished(bytes(32))))
    excinfo = expect_error(client.receive_data, finished)
    assert_failed(excinfo, client, AlertDescription.unexpected_message)
    assert_plaintext_alert_sent(client, AlertDescription.unexpected_message)


def test_client_hello_sent_to_a_client_is_unexpected_message(keys: Keys) -> None:
    client, _ = make_pair(keys)
    other, _ = make_pair(keys)
    hello = client_hello(other)
    client_hello(client)
    excinfo = expect_error(client.receive_data, hello)
    assert_failed(excinfo, client, AlertDescription.unexpected_message)
    assert_plaintext_alert_sent(client, AlertDescription.unexpected_message)


def test_empty_handshake_record_is_unexpected_message(keys: Keys) -> None:
    _, server = make_pair(keys)
    excinfo = expect_error(server.receive_data, record(ContentType.handshake, b""))
    assert_failed(excinfo, server, AlertDescription.unexpected_message)
    assert_plaintext_alert_sent(server, AlertDescription.unexpected_message)


def test_plaintext_application_data_before_the_handshake_is_unexpected_message(
    keys: Keys,
) -> None:
    _, server = make_pair(keys)
    data = record(ContentType.application_data, b"\x00\x00\x02hi")
    excinfo = expect_error(server.receive_data, data)
    assert_failed(excinfo, server, AlertDescription.unexpected_message)
    assert_plaintext_alert_sent(server, AlertDescription.unexpected_message)


def test_encrypted_application_data_during_the_handshake_is_unexpected_message(
    keys: Keys,
) -> None:
    client, server = make_pair(keys)
    to_wait_trust(client, server)
    client.send_raw_record(ContentType.application_data, b"\x00\x00\x02hi")
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.unexpected_message)
    assert_alert_delivered(server, client, AlertDescription.unexpected_message)


def test_application_data_before_the_server_finished_is_unexpected_message(keys: Keys) -> None:
    """A server that sends data under its handshake key instead of its Finished."""
    client, server = make_pair(keys)
    to_wait_trust(client, server)
    client.trust_server()

    def accept_finished_but_send_no_finished(message: object) -> None:
        server._derive_application_secrets()
        server._install_application_read_keys()

    server._on_finished = accept_finished_but_send_no_finished  # type: ignore[method-assign]
    server.receive_data(client.data_to_send())
    assert server.state is State.WAIT_CLIENT_FINISHED
    server.send_raw_record(ContentType.application_data, b"\x00\x00\x02hi")
    excinfo = expect_error(client.receive_data, server.data_to_send())
    assert_failed(excinfo, client, AlertDescription.unexpected_message)
    assert_alert_delivered(client, server, AlertDescription.unexpected_message)


# ----- X25519 shares ------------------------------------------------------------------------------


BAD_SHARES = {
    "all-zero": bytes(32),
    "low-order": LOW_ORDER_POINT,
    "31-bytes": bytes(range(1, 32)),
    "33-bytes": bytes(range(1, 34)),
    "empty": b"",
}


@pytest.mark.parametrize("share", BAD_SHARES.values(), ids=BAD_SHARES.keys())
def test_bad_client_share_is_illegal_parameter(keys: Keys, share: bytes) -> None:
    client, server = make_pair(keys)
    client._key_share = share
    excinfo = expect_error(server.receive_data, client_hello(client))
    assert_failed(excinfo, server, AlertDescription.illegal_parameter)
    data = assert_plaintext_alert_sent(server, AlertDescription.illegal_parameter)
    excinfo = expect_error(client.receive_data, data)
    assert_failed(excinfo, client, AlertDescription.illegal_parameter, received=True)


@pytest.mark.parametrize("share", BAD_SHARES.values(), ids=BAD_SHARES.keys())
def test_bad_server_share_is_illegal_parameter(keys: Keys, share: bytes) -> None:
    client, server = make_pair(keys)
    server._key_share = share
    server.receive_data(client_hello(client))
    excinfo = expect_error(client.receive_data, server.data_to_send())
    assert_failed(excinfo, client, AlertDescription.illegal_parameter)
    data = assert_plaintext_alert_sent(client, AlertDescription.illegal_parameter)
    excinfo = expect_error(server.receive_data, data)
    assert_failed(excinfo, server, AlertDescription.illegal_parameter, received=True)


@pytest.mark.parametrize("side", ["client", "server"])
def test_share_with_the_high_bit_set_is_accepted(keys: Keys, side: str) -> None:
    """RFC 7748 masks the top bit of the u-coordinate: such a share is the same point."""
    client, server = make_pair(keys)
    connection = client if side == "client" else server
    share = bytearray(connection._key_share)
    assert not share[31] & 0x80
    share[31] |= 0x80
    connection._key_share = bytes(share)
    handshake(client, server)
    client.send_data(b"fine")
    assert server.receive_data(client.data_to_send()) == [DataReceived(b"fine")]


# ----- 11. close_notify ---------------------------------------------------------------------------


def test_data_after_close_notify_in_the_same_read_is_unexpected_message(keys: Keys) -> None:
    client, server = connected_pair(keys)
    client.close()
    client.send_raw_record(ContentType.application_data, b"\x00\x00\x05extra")
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.unexpected_message)
    assert server.close_notify_received
    # The server had answered close_notify already; nothing more follows it.
    assert client.receive_data(server.data_to_send()) == [ConnectionClosed()]


def test_data_after_close_notify_in_a_later_read_is_unexpected_message(keys: Keys) -> None:
    client, server = connected_pair(keys)
    client.close()
    assert server.receive_data(client.data_to_send()) == [ConnectionClosed()]
    client.send_raw_record(ContentType.application_data, b"\x00\x00\x05extra")
    with pytest.raises(ProtocolError) as excinfo:
        server.receive_data(client.data_to_send())
    assert excinfo.value.alert == AlertDescription.unexpected_message
    assert excinfo.value.sender == "server"
    assert not excinfo.value.received
    assert server.state is State.CLOSED
    # Its close_notify was the last thing it wrote; no alert after it.
    assert client.receive_data(server.data_to_send()) == [ConnectionClosed()]
    assert server.data_to_send() == b""


def test_data_in_flight_when_closing_is_still_delivered(keys: Keys) -> None:
    client, server = connected_pair(keys)
    client.close()
    server.send_data(b"crossing in flight")
    events = client.receive_data(server.data_to_send())
    assert events == [DataReceived(b"crossing in flight")]
    assert server.receive_data(client.data_to_send()) == [ConnectionClosed()]
    assert client.receive_data(server.data_to_send()) == [ConnectionClosed()]
    assert client.state is server.state is State.CLOSED


# ----- 4. sequence numbers and key updates --------------------------------------------------------


def test_sequence_limit_forces_automatic_key_updates(keys: Keys) -> None:
    options = {"key_update_after": 3}
    client, server = connected_pair(keys, client_options=options, server_options=options)
    messages = [b"message %d" % i for i in range(10)]
    events = []
    generations = []
    for message in messages:
        client.send_data(message)
        events += server.receive_data(client.data_to_send())
        generations.append((client.write_generation, server.read_generation))
    assert [e.data for e in events if isinstance(e, DataReceived)] == messages
    assert [e for e in events if isinstance(e, KeyUpdated)] == [
        KeyUpdated("read", 1),
        KeyUpdated("read", 2),
        KeyUpdated("read", 3),
    ]
    assert generations == [(g, g) for g in (0, 0, 0, 1, 1, 1, 2, 2, 2, 3)]
    assert client.write_generation == server.read_generation == 3
    # The reverse direction is untouched, and works.
    assert server.write_generation == client.read_generation == 0
    server.send_data(b"reply")
    assert client.receive_data(server.data_to_send()) == [DataReceived(b"reply")]


def test_sequence_limit_with_large_messages(keys: Keys) -> None:
    """A message spanning many records crosses key updates in the middle."""
    options = {"key_update_after": 3}
    client, server = connected_pair(keys, client_options=options, server_options=options)
    message = bytes(range(256)) * 512  # 131072 bytes + 3 of length: 9 records
    client.send_data(message)
    wire = client.data_to_send()
    # Three records per key, a KeyUpdate after each full key but the last.
    assert len(split_records(wire)) == 9 + 2
    events = server.receive_data(wire)
    assert events == [KeyUpdated("read", 1), KeyUpdated("read", 2), DataReceived(message)]
    assert client.write_generation == server.read_generation == 2
    # The next record needs the next key first.
    client.send_data(b"next")
    assert server.receive_data(client.data_to_send()) == [
        KeyUpdated("read", 3),
        DataReceived(b"next"),
    ]


@pytest.mark.parametrize("limit", [1, 2])
def test_tiny_sequence_limits_still_handshake(keys: Keys, limit: int) -> None:
    options = {"key_update_after": limit}
    client, server = connected_pair(keys, client_options=options, server_options=options)
    for i in range(5):
        client.send_data(b"%d" % i)
        server.send_data(b"%d" % i)
        assert server.receive_data(client.data_to_send())[-1] == DataReceived(b"%d" % i)
        assert client.receive_data(server.data_to_send())[-1] == DataReceived(b"%d" % i)
    assert client.write_generation == server.read_generation == 4 // limit
    assert server.write_generation == client.read_generation == 4 // limit


def test_peer_ignoring_the_sequence_limit_gets_key_exhausted(keys: Keys) -> None:
    client, server = connected_pair(keys)
    assert client._write_keys is not None and server._records.read_keys is not None
    client._write_keys.limit = 1 << 62  # the evil side never updates
    # The receiver enforces the protocol's KEY_UPDATE_LIMIT whatever it sends with; shrink it
    # so the test need not send 2^24 records.
    server._records.read_keys.limit = 3
    for i in range(3):  # records 0..2; record 3, the last under this key, must be a KeyUpdate
        client.send_data(b"%d" % i)
        assert server.receive_data(client.data_to_send()) == [DataReceived(b"%d" % i)]
    assert client.write_generation == 0
    client.send_data(b"one too many")
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.key_exhausted)
    assert_alert_delivered(server, client, AlertDescription.key_exhausted)


# ----- 9. resource limits -------------------------------------------------------------------------


def test_too_many_empty_records_is_too_many_records(keys: Keys) -> None:
    client, server = connected_pair(keys)
    limit = server.config.max_idle_records
    assert limit == 64
    for _ in range(limit):
        client.send_raw_record(ContentType.application_data, b"")
    assert server.receive_data(client.data_to_send()) == []
    client.send_raw_record(ContentType.application_data, b"")
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.too_many_records)
    assert_alert_delivered(server, client, AlertDescription.too_many_records)


def test_data_resets_the_idle_record_count(keys: Keys) -> None:
    client, server = connected_pair(keys, server_options={"max_idle_records": 3})
    for _ in range(5):
        for _ in range(3):
            client.send_raw_record(ContentType.application_data, b"")
        client.send_data(b"real")
        assert server.receive_data(client.data_to_send()) == [DataReceived(b"real")]


def test_too_many_key_updates_is_too_many_records(keys: Keys) -> None:
    client, server = connected_pair(keys, server_options={"max_idle_records": 3})
    for generation in range(1, 4):
        client.update_keys()
        assert server.receive_data(client.data_to_send()) == [KeyUpdated("read", generation)]
    client.update_keys()
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.too_many_records)
    assert_alert_delivered(server, client, AlertDescription.too_many_records)


def test_too_many_warning_alerts_is_too_many_records(keys: Keys) -> None:
    client, server = connected_pair(keys, server_options={"max_idle_records": 2})
    warning = bytes([AlertLevel.WARNING, AlertDescription.user_canceled])
    for _ in range(2):
        client.send_raw_record(ContentType.alert, warning)
    assert server.receive_data(client.data_to_send()) == []
    client.send_raw_record(ContentType.alert, warning)
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.too_many_records)
    assert_alert_delivered(server, client, AlertDescription.too_many_records)


# ----- 9. malformed messages ----------------------------------------------------------------------


def test_trailing_bytes_in_client_hello_are_decode_error(keys: Keys) -> None:
    client, server = make_pair(keys)
    hello = client_hello(client)
    body_length = int.from_bytes(hello[6:9], "big")
    forged = (
        hello[:3]
        + (len(hello) - RECORD_HEADER_LENGTH + 1).to_bytes(2, "big")
        + hello[5:6]
        + (body_length + 1).to_bytes(3, "big")
        + hello[9:]
        + b"\x00"
    )
    excinfo = expect_error(server.receive_data, forged)
    assert_failed(excinfo, server, AlertDescription.decode_error)
    data = assert_plaintext_alert_sent(server, AlertDescription.decode_error)
    excinfo = expect_error(client.receive_data, data)
    assert_failed(excinfo, client, AlertDescription.decode_error, received=True)


def test_trailing_bytes_in_finished_are_decode_error(keys: Keys) -> None:
    client, server = make_pair(keys)
    to_wait_trust(client, server)
    long_finished = bytes([20]) + (33).to_bytes(3, "big") + bytes(33)
    client.send_raw_record(ContentType.handshake, long_finished)
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.decode_error)
    assert_alert_delivered(server, client, AlertDescription.decode_error)


def test_oversized_handshake_message_is_rejected_from_its_header(keys: Keys) -> None:
    _, server = make_pair(keys)
    header = bytes([1]) + (MAX_HANDSHAKE_BODY + 1).to_bytes(3, "big")
    excinfo = expect_error(server.receive_data, record(ContentType.handshake, header))
    assert_failed(excinfo, server, AlertDescription.decode_error)
    assert_plaintext_alert_sent(server, AlertDescription.decode_error)


def test_unknown_handshake_type_is_unexpected_message(keys: Keys) -> None:
    _, server = make_pair(keys)
    data = record(ContentType.handshake, bytes([99, 0, 0, 1, 0]))
    excinfo = expect_error(server.receive_data, data)
    assert_failed(excinfo, server, AlertDescription.unexpected_message)
    assert_plaintext_alert_sent(server, AlertDescription.unexpected_message)


def test_bad_key_update_value_is_illegal_parameter(keys: Keys) -> None:
    client, server = connected_pair(keys)
    client.send_raw_record(ContentType.handshake, bytes([24, 0, 0, 1, 2]))
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.illegal_parameter)
    assert_alert_delivered(server, client, AlertDescription.illegal_parameter)


def test_server_hello_and_more_in_one_record_is_unexpected_message(keys: Keys) -> None:
    client, server = make_pair(keys)
    server.receive_data(client_hello(client))
    server_hello, *_rest = split_records(server.data_to_send())
    extra = encode_handshake(Finished(bytes(32)))
    merged = record(ContentType.handshake, server_hello[RECORD_HEADER_LENGTH:] + extra)
    excinfo = expect_error(client.receive_data, merged)
    assert_failed(excinfo, client, AlertDescription.unexpected_message)
    # The client had switched keys: its alert is under its handshake key, which the server reads.
    assert_alert_delivered(client, server, AlertDescription.unexpected_message)


def test_server_hello_and_a_partial_message_in_one_record_is_unexpected_message(
    keys: Keys,
) -> None:
    client, server = make_pair(keys)
    server.receive_data(client_hello(client))
    server_hello = split_records(server.data_to_send())[0]
    merged = record(ContentType.handshake, server_hello[RECORD_HEADER_LENGTH:] + b"\x0b\x00")
    excinfo = expect_error(client.receive_data, merged)
    assert_failed(excinfo, client, AlertDescription.unexpected_message)
    assert_alert_delivered(client, server, AlertDescription.unexpected_message)


def test_client_hello_and_more_in_one_record_is_unexpected_message(keys: Keys) -> None:
    client, server = make_pair(keys)
    hello = client_hello(client)
    merged = record(ContentType.handshake, hello[RECORD_HEADER_LENGTH:] + b"\x0b\x00\x00")
    excinfo = expect_error(server.receive_data, merged)
    assert_failed(excinfo, server, AlertDescription.unexpected_message)
    # The flight went out before the check; the alert follows it under the handshake key.
    excinfo = expect_error(client.receive_data, server.data_to_send())
    assert_failed(excinfo, client, AlertDescription.unexpected_message, received=True)


def test_handshake_message_split_across_records_is_fine(keys: Keys) -> None:
    client, server = make_pair(keys)
    hello = client_hello(client)
    body = hello[RECORD_HEADER_LENGTH:]
    pieces = b"".join(
        record(ContentType.handshake, body[i : i + 10]) for i in range(0, len(body), 10)
    )
    server.receive_data(pieces)
    assert server.state is State.WAIT_CLIENT_CERTIFICATE
    client.receive_data(server.data_to_send())
    assert client.state is State.WAIT_TRUST


def test_alert_inside_a_split_handshake_message_is_unexpected_message(keys: Keys) -> None:
    _, server = make_pair(keys)
    client, _ = make_pair(keys)
    body = client_hello(client)[RECORD_HEADER_LENGTH:]
    data = record(ContentType.handshake, body[:10]) + record(
        ContentType.alert, bytes([AlertLevel.WARNING, AlertDescription.user_canceled])
    )
    excinfo = expect_error(server.receive_data, data)
    assert_failed(excinfo, server, AlertDescription.unexpected_message)
    assert_plaintext_alert_sent(server, AlertDescription.unexpected_message)


@pytest.mark.parametrize("content", [b"", b"\x02", b"\x02\x28\x00"])
def test_malformed_alert_is_decode_error(keys: Keys, content: bytes) -> None:
    client, server = connected_pair(keys)
    client.send_raw_record(ContentType.alert, content)
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.decode_error)
    assert_alert_delivered(server, client, AlertDescription.decode_error)


def test_unknown_alert_code_is_received_as_internal_error(keys: Keys) -> None:
    client, server = connected_pair(keys)
    client.send_raw_record(ContentType.alert, bytes([AlertLevel.FATAL, 123]))
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.internal_error, received=True)
    assert server.data_to_send() == b""


def test_unknown_record_type_is_unexpected_message(keys: Keys) -> None:
    _, server = make_pair(keys)
    excinfo = expect_error(server.receive_data, b"GET / HTTP/1.1\r\n")
    assert_failed(excinfo, server, AlertDescription.unexpected_message)
    assert_plaintext_alert_sent(server, AlertDescription.unexpected_message)


@pytest.mark.parametrize("version", [0x0000, 0x0002, 0x0303, 0x0100])
def test_wrong_record_version_is_protocol_version(keys: Keys, version: int) -> None:
    client, server = make_pair(keys)
    hello = client_hello(client)
    excinfo = expect_error(server.receive_data, record(ContentType.handshake, hello[5:], version))
    assert_failed(excinfo, server, AlertDescription.protocol_version)
    data = assert_plaintext_alert_sent(server, AlertDescription.protocol_version)
    excinfo = expect_error(client.receive_data, data)
    assert_failed(excinfo, client, AlertDescription.protocol_version, received=True)


def test_internal_failure_still_ends_in_an_alert(keys: Keys) -> None:
    """A bug of ours must end in internal_error and a close, never a bare traceback."""

    class BuggyServer(ServerConnection):
        def _on_certificate(self, message: Certificate) -> None:
            raise KeyError("oops")

    client, server = make_pair(keys, server_cls=BuggyServer)
    to_wait_trust(client, server)
    client.trust_server()
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.internal_error)
    assert isinstance(excinfo.value.__cause__, KeyError)
    assert_alert_delivered(server, client, AlertDescription.internal_error)


def test_nothing_is_processed_after_a_failure(keys: Keys) -> None:
    client, server = connected_pair(keys)
    (raw,) = sent_records(client, b"x")
    expect_error(server.receive_data, flip(raw, 7))
    server.data_to_send()
    client.send_data(b"more")
    assert server.receive_data(client.data_to_send()) == []
    assert server.data_to_send() == b""
    with pytest.raises(RuntimeError):
        server.send_data(b"no")
    assert server.receive_eof() == []


def test_pump_is_quiet_once_connected(keys: Keys) -> None:
    client, server = connected_pair(keys)
    assert pump(client, server) == ([], [])


# ----- limits and alert details added after review ---------------------------------------------


def test_keyupdate_at_the_last_sequence_number_is_accepted(keys: Keys) -> None:
    client, server = connected_pair(keys)
    assert client._write_keys is not None and server._records.read_keys is not None
    server._records.read_keys.limit = 3
    client._write_keys.limit = 3
    received = []
    for i in range(5):  # record 3 under the first key is the automatic KeyUpdate
        client.send_data(b"%d" % i)
        received += server.receive_data(client.data_to_send())
    data = [b"%d" % i for i in range(5)]
    assert received[:3] + received[4:] == [DataReceived(d) for d in data]
    assert received[3] == KeyUpdated("read", 1)
    assert client.write_generation == 1
    assert server.read_generation == 1


def test_alert_with_an_unknown_level_is_illegal_parameter(keys: Keys) -> None:
    client, server = connected_pair(keys)
    client.send_raw_record(ContentType.alert, bytes([3, AlertDescription.close_notify]))
    excinfo = expect_error(server.receive_data, client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.illegal_parameter)


def test_eof_after_our_own_close_notify_is_not_truncation(keys: Keys) -> None:
    client, _server = connected_pair(keys)
    client.close()
    assert client.receive_eof() == []
    assert client.state is State.CLOSED
    assert client.error is None


def test_data_after_close_notify_in_a_later_call_sets_the_error(keys: Keys) -> None:
    client, server = connected_pair(keys)
    client.close()
    assert server.receive_data(client.data_to_send()) == [ConnectionClosed()]
    with pytest.raises(ProtocolError) as excinfo:
        server.receive_data(b"\x17\x00\x01\x00\x05hello")
    assert excinfo.value.alert == AlertDescription.unexpected_message
    assert server.error is excinfo.value


@pytest.mark.parametrize(
    "options",
    [
        {"key_update_after": 0},
        {"key_update_after": (1 << 24) + 1},
        {"max_message": 1 << 24},
        {"handshake_timeout": 0},
        {"max_idle_records": -1},
    ],
)
def test_config_out_of_range_is_refused(keys: Keys, options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ConnectionConfig(identity=keys["ed25519"], **options)


def test_two_sessions_between_the_same_identities_share_no_traffic_secret(keys: Keys) -> None:
    """Forward secrecy: each connection's X25519 key is fresh, so its secrets are its own."""
    first = connected_pair(keys)
    second = connected_pair(keys)
    secrets = {
        side._write_keys.secret
        for pair in (first, second)
        for side in pair
        if side._write_keys is not None
    }
    assert len(secrets) == 4
