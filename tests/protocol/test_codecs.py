"""Codecs, alerts and identities: property tests (hypothesis) and unit tests."""

from __future__ import annotations

import base64
import datetime
import hashlib
import itertools
import re
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tlschat.protocol import (
    AlertDescription,
    Connection,
    IdentityKey,
    KnownHosts,
    PeerIdentity,
    ProtocolError,
    State,
    fingerprint_of_spki,
)
from tlschat.protocol.alerts import alert_name
from tlschat.protocol.buffer import DecodeError, Reader, Writer
from tlschat.protocol.identity import HostKeyChanged, verify_signature
from tlschat.protocol.messages import (
    MAX_CERTIFICATE,
    MAX_HANDSHAKE_BODY,
    MAX_KEY_SHARE,
    MAX_SIGNATURE,
    MAX_SIGNATURE_ALGORITHMS,
    MAX_SUITES,
    MAX_VERSIONS,
    RANDOM_LENGTH,
    VERIFY_DATA_LENGTH,
    Certificate,
    CertificateVerify,
    ClientHello,
    Finished,
    HandshakeReassembler,
    HandshakeType,
    KeyUpdate,
    ServerHello,
    decode_handshake,
    encode_handshake,
)
from tlschat.protocol.record import (
    MAX_CIPHERTEXT,
    RECORD_HEADER_LENGTH,
    ContentType,
    DirectionKeys,
    RecordReader,
)

from .helpers import AES, CHACHA, NOW, Keys, connected_pair, make_pair

FINGERPRINT = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")

# ----- strategies ---------------------------------------------------------------------------------

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)


def u16_tuples(maximum: int) -> st.SearchStrategy[tuple[int, ...]]:
    return st.lists(u16, min_size=1, max_size=maximum).map(tuple)


client_hellos = st.builds(
    ClientHello,
    random=st.binary(min_size=RANDOM_LENGTH, max_size=RANDOM_LENGTH),
    versions=u16_tuples(MAX_VERSIONS),
    cipher_suites=u16_tuples(MAX_SUITES),
    signature_algorithms=u16_tuples(MAX_SIGNATURE_ALGORITHMS),
    key_share=st.binary(max_size=MAX_KEY_SHARE),
)
server_hellos = st.builds(
    ServerHello,
    version=u16,
    random=st.binary(min_size=RANDOM_LENGTH, max_size=RANDOM_LENGTH),
    cipher_suite=u16,
    key_share=st.binary(max_size=MAX_KEY_SHARE),
)
certificates = st.builds(
    Certificate, certificate_type=u8, data=st.binary(min_size=1, max_size=MAX_CERTIFICATE)
)
certificate_verifies = st.builds(
    CertificateVerify, algorithm=u16, signature=st.binary(min_size=1, max_size=MAX_SIGNATURE)
)
finisheds = st.builds(
    Finished, verify_data=st.binary(min_size=VERIFY_DATA_LENGTH, max_size=VERIFY_DATA_LENGTH)
)
key_updates = st.builds(KeyUpdate, request_update=st.booleans())
handshake_messages = st.one_of(
    client_hellos, server_hellos, certificates, certificate_verifies, finisheds, key_updates
)

# Byte strings shaped like handshake messages (a known type, a consistent length) so fuzzing reaches
# the body decoders, mixed with plain noise.
shaped_messages = st.builds(
    lambda msg_type, body: bytes([msg_type]) + len(body).to_bytes(3, "big") + body,
    st.sampled_from([int(t) for t in HandshakeType] + [0, 3, 255]),
    st.binary(max_size=300),
)
handshake_bytes = st.one_of(st.binary(max_size=400), shaped_messages)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


# ----- handshake messages -------------------------------------------------------------------------


@given(handshake_messages)
def test_handshake_messages_round_trip(message: object) -> None:
    raw = encode_handshake(message)  # type: ignore[arg-type]
    assert raw[0] == message.msg_type  # type: ignore[attr-defined]
    assert int.from_bytes(raw[1:4], "big") == len(raw) - 4
    assert decode_handshake(raw) == message


@given(st.lists(handshake_messages, min_size=1, max_size=5), st.lists(st.integers(0, 10**6)))
def test_reassembler_splits_and_joins_messages(messages: list, cuts: list[int]) -> None:
    raws = [encode_handshake(m) for m in messages]
    reassembler = HandshakeReassembler()
    out = []
    for piece in chunked(b"".join(raws), cuts):
        out += reassembler.feed(piece)
    assert out == list(zip(messages, raws, strict=True))
    assert reassembler.pending == 0


@given(handshake_bytes)
def test_decode_handshake_returns_a_message_or_raises_protocol_error(data: bytes) -> None:
    try:
        message = decode_handshake(data)
    except ProtocolError as error:
        assert error.alert in (
            AlertDescription.decode_error,
            AlertDescription.unexpected_message,
            AlertDescription.illegal_parameter,
        )
    else:
        assert encode_handshake(message) == data  # the encoding is canonical


@given(st.lists(handshake_bytes, max_size=5), st.lists(st.integers(0, 10**6), max_size=5))
def test_reassembler_on_arbitrary_bytes_returns_messages_or_raises_protocol_error(
    parts: list[bytes], cuts: list[int]
) -> None:
    reassembler = HandshakeReassembler()
    try:
        for piece in chunked(b"".join(parts), cuts):
            for message, raw in reassembler.feed(piece):
                assert decode_handshake(raw) == message
    except ProtocolError as error:
        assert error.alert != AlertDescription.internal_error


@pytest.mark.parametrize(
    ("message", "valid"),
    [
        (Certificate(1, bytes(MAX_CERTIFICATE)), True),
        (Certificate(1, bytes(MAX_CERTIFICATE + 1)), False),
        (Certificate(1, b""), False),
        (CertificateVerify(0x0807, bytes(MAX_SIGNATURE)), True),
        (CertificateVerify(0x0807, bytes(MAX_SIGNATURE + 1)), False),
        (CertificateVerify(0x0807, b""), False),
        (ClientHello(bytes(32), (1,) * MAX_VERSIONS, (1,), (1,), b""), True),
        (ClientHello(bytes(32), (1,) * (MAX_VERSIONS + 1), (1,), (1,), b""), False),
        (ClientHello(bytes(32), (), (1,), (1,), b""), False),
        (ClientHello(bytes(32), (1,), (1,) * (MAX_SUITES + 1), (1,), b""), False),
        (ClientHello(bytes(32), (1,), (1,), (), b""), False),
        (ClientHello(bytes(31), (1,), (1,), (1,), b""), False),
        (ServerHello(1, bytes(32), 1, bytes(MAX_KEY_SHARE)), True),
        (Finished(bytes(31)), False),
        (Finished(bytes(33)), False),
    ],
)
def test_decoders_enforce_field_bounds(message: object, valid: bool) -> None:
    raw = encode_handshake(message)  # type: ignore[arg-type]
    if valid:
        assert decode_handshake(raw) == message
    else:
        with pytest.raises(ProtocolError) as excinfo:
            decode_handshake(raw)
        assert excinfo.value.alert == AlertDescription.decode_error


def test_key_update_values_above_one_are_illegal_parameter() -> None:
    for value in (2, 255):
        with pytest.raises(ProtocolError) as excinfo:
            decode_handshake(bytes([HandshakeType.key_update, 0, 0, 1, value]))
        assert excinfo.value.alert == AlertDescription.illegal_parameter


def test_unknown_handshake_type_is_unexpected_message() -> None:
    with pytest.raises(ProtocolError) as excinfo:
        decode_handshake(bytes([99, 0, 0, 0]))
    assert excinfo.value.alert == AlertDescription.unexpected_message


def test_reassembler_rejects_an_oversized_message_from_its_header() -> None:
    reassembler = HandshakeReassembler()
    assert reassembler.feed(bytes([11]) + MAX_HANDSHAKE_BODY.to_bytes(3, "big")) == []
    reassembler = HandshakeReassembler()
    with pytest.raises(DecodeError):
        reassembler.feed(bytes([11]) + (MAX_HANDSHAKE_BODY + 1).to_bytes(3, "big"))


# ----- Reader / Writer ----------------------------------------------------------------------------


@given(
    st.sampled_from([1, 2, 3]),
    st.integers(0, 50),
    st.integers(0, 50),
    st.binary(max_size=60),
)
def test_reader_vector_bounds(size: int, minimum: int, extra: int, body: bytes) -> None:
    maximum = minimum + extra
    length = len(body)
    reader = Reader(length.to_bytes(size, "big") + body)
    if minimum <= length <= maximum:
        assert reader.vector(size, minimum, maximum, "v") == body
        assert reader.remaining == 0
    else:
        with pytest.raises(DecodeError) as excinfo:
            reader.vector(size, minimum, maximum, "v")
        assert "outside" in excinfo.value.reason
        assert excinfo.value.alert == AlertDescription.decode_error
        assert reader.remaining == length  # the body was not touched


@given(st.integers(1, 2**24 - 1), st.binary(max_size=20))
def test_reader_checks_a_claimed_length_against_the_bound_before_reading(
    claimed: int, body: bytes
) -> None:
    """A huge length prefix with few bytes behind it is refused by the bound, not a short read."""
    maximum = claimed - 1
    reader = Reader(claimed.to_bytes(3, "big") + body)
    with pytest.raises(DecodeError) as excinfo:
        reader.vector(3, 0, maximum, "certificate")
    assert excinfo.value.reason == f"certificate: length {claimed} outside [0, {maximum}]"


def test_reader_short_reads_and_trailing_bytes() -> None:
    reader = Reader(b"\x00\x05abc")
    with pytest.raises(DecodeError) as excinfo:
        reader.vector(2, 0, 10, "v")
    assert excinfo.value.reason == "need 5 bytes, 3 left"
    for method in (Reader(b"").u8, Reader(b"\x01").u16, Reader(b"\x01\x02").u24):
        with pytest.raises(DecodeError):
            method()
    reader = Reader(b"\x01\x02\x03")
    assert reader.u8() == 1
    with pytest.raises(DecodeError) as excinfo:
        reader.finish("thing")
    assert excinfo.value.reason == "thing: 2 trailing bytes"
    reader = Reader(b"\x03\x00\x01\x00")
    with pytest.raises(DecodeError) as excinfo:
        reader.u16_list(1, 4, "list")
    assert "odd length" in excinfo.value.reason


@given(st.lists(u16, max_size=100), st.binary(max_size=300), st.integers(0, 2**64 - 1))
def test_writer_and_reader_agree(values: list[int], blob: bytes, number: int) -> None:
    raw = (
        Writer()
        .u64(number)
        .u24(number % 2**24)
        .vector(2, blob)
        .u16_list(tuple(values))
        .fixed(b"end")
        .getvalue()
    )
    reader = Reader(raw)
    assert reader.u64() == number
    assert reader.u24() == number % 2**24
    assert reader.vector(2, 0, 300, "blob") == blob
    assert reader.u16_list(0, 100, "values") == tuple(values)
    assert reader.fixed(3) == b"end"
    reader.finish("all")


def test_writer_refuses_a_value_too_long_for_its_length_prefix() -> None:
    with pytest.raises(ValueError):
        Writer().vector(1, bytes(256))
    assert Writer().vector(1, bytes(255)).getvalue()[0] == 255


# ----- records ------------------------------------------------------------------------------------


def drain(reader: RecordReader) -> list[tuple[int, bytes]]:
    records = []
    while (item := reader.next_record()) is not None:
        records.append(item)
    return records


record_bytes = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda t, v, body: bytes([t]) + v.to_bytes(2, "big") + len(body).to_bytes(2, "big") + body,
        st.sampled_from([20, 21, 22, 23, 24]),
        st.sampled_from([1, 1, 1, 0x0303]),
        st.binary(max_size=100),
    ),
)


@given(
    st.lists(record_bytes, max_size=4),
    st.lists(st.integers(0, 10**6), max_size=4),
    st.sampled_from(["plain", "protected", "protected+plain-alerts"]),
)
def test_record_reader_on_arbitrary_bytes(parts: list[bytes], cuts: list[int], mode: str) -> None:
    reader = RecordReader()
    if mode != "plain":
        reader.read_keys = DirectionKeys(AES, bytes(32))
        reader.accept_plain_alerts = mode.endswith("alerts")
    try:
        for piece in chunked(b"".join(parts), cuts):
            reader.feed(piece)
            for content_type, _ in drain(reader):
                assert content_type in (ContentType.alert, ContentType.handshake)
                assert mode != "protected"
    except ProtocolError as error:
        assert error.alert in (
            AlertDescription.unexpected_message,
            AlertDescription.protocol_version,
            AlertDescription.record_overflow,
            AlertDescription.bad_record_mac,
        )


@given(st.lists(st.binary(max_size=40_000), min_size=1, max_size=4), st.sampled_from([AES, CHACHA]))
@settings(max_examples=25)
def test_sealed_records_open_in_order(contents: list[bytes], suite: int) -> None:
    secret = hashlib.sha256(b"direction").digest()
    sender, reader = DirectionKeys(suite, secret), RecordReader()
    reader.read_keys = DirectionKeys(suite, secret)
    wire = b""
    expected = []
    for content in contents:
        for start in range(0, max(len(content), 1), 16384):
            piece = content[start : start + 16384]
            sealed = sender.seal(ContentType.application_data, piece)
            assert len(sealed) - RECORD_HEADER_LENGTH <= MAX_CIPHERTEXT
            wire += sealed
            expected.append((ContentType.application_data, piece))
    reader.feed(wire)
    assert drain(reader) == expected
    assert reader.pending == 0


# ----- whole connections on garbage (rule 9: an alert and a close, never a traceback) -------------


@given(st.lists(st.one_of(st.binary(max_size=200), record_bytes), min_size=1, max_size=4))
@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
def test_server_fed_garbage_fails_cleanly(keys: Keys, parts: list[bytes]) -> None:
    _, server = make_pair(keys, server_key="ed25519")
    try:
        for part in parts:
            server.receive_data(part)
    except ProtocolError as error:
        # A peer's alert (any code, even an unknown one) is reported as received; our own checks
        # never fall through to internal_error, which would mean a bug of ours.
        assert error.received or error.alert != AlertDescription.internal_error, error
        assert server.state is State.CLOSED
        assert server.error is error


@given(st.lists(st.one_of(st.binary(max_size=200), record_bytes), min_size=1, max_size=4))
@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
def test_connected_peer_fed_garbage_fails_cleanly(keys: Keys, parts: list[bytes]) -> None:
    client, _ = connected_pair(keys, server_key="ed25519")
    try:
        for part in parts:
            client.receive_data(part)
    except ProtocolError as error:
        # A peer's alert (any code, even an unknown one) is reported as received; our own checks
        # never fall through to internal_error, which would mean a bug of ours.
        assert error.received or error.alert != AlertDescription.internal_error, error
        assert client.state is State.CLOSED


@given(
    flight=st.integers(0, 3),
    index=st.integers(0, 10**6),
    xor=st.integers(1, 255),
    cut=st.booleans(),
)
@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_handshake_fails_cleanly(
    keys: Keys, flight: int, index: int, xor: int, cut: bool
) -> None:
    """One byte of one handshake flight altered (or the flight cut short there)."""
    client, server = make_pair(keys, server_key="ed25519", client_key="ed25519")
    client.start_handshake()
    flights = 0

    def deliver(sender: Connection, receiver: Connection) -> bool:
        nonlocal flights
        data = sender.data_to_send()
        if not data:
            return False
        if flights == flight:
            at = index % len(data)
            data = data[:at] if cut else data[:at] + bytes([data[at] ^ xor]) + data[at + 1 :]
        flights += 1
        receiver.receive_data(data)
        return True

    victim: Connection = server
    try:
        for _ in range(10):
            victim = server
            moved = deliver(client, server)
            victim = client
            moved = deliver(server, client) or moved
            if client.state is State.WAIT_TRUST:
                client.trust_server()
                moved = True
            if not moved:
                break
    except ProtocolError as error:
        assert error.received or error.alert != AlertDescription.internal_error, error
        assert victim.state is State.CLOSED
        return
    # No error: a length was altered or the flight cut, and someone waits for bytes that will not
    # come (the handshake timeout's job). The tampered handshake must not have completed.
    assert not (client.is_connected and server.is_connected)
    waiting = [c for c in (client, server) if c.state not in (State.CLOSED, State.CONNECTED)]
    assert waiting
    for connection in waiting:
        with pytest.raises(ProtocolError) as excinfo:
            connection.handle_timer(connection.deadline or 0.0)
        assert excinfo.value.alert == AlertDescription.handshake_timeout


# ----- alerts -------------------------------------------------------------------------------------


def test_protocol_error_fields_and_text() -> None:
    error = ProtocolError(AlertDescription.decrypt_error, "Finished does not verify", "server")
    assert error.alert == AlertDescription.decrypt_error
    assert error.reason == "Finished does not verify"
    assert error.sender == "server"
    assert error.received is False
    assert str(error) == "decrypt_error (server alert raised): Finished does not verify"

    received = ProtocolError(AlertDescription.bad_record_mac, "peer sent alert 20", "client", True)
    assert str(received) == "bad_record_mac (client alert received): peer sent alert 20"

    anonymous = ProtocolError(AlertDescription.truncated, "eof")
    assert anonymous.sender == ""
    assert str(anonymous) == "truncated (alert raised): eof"
    assert isinstance(DecodeError("x"), ProtocolError)
    assert DecodeError("x").alert == AlertDescription.decode_error


def test_alert_codes_and_names() -> None:
    assert AlertDescription.close_notify == 0
    assert AlertDescription.bad_record_mac == 20
    assert AlertDescription.protocol_version == 70
    assert AlertDescription.truncated == 200
    assert alert_name(51) == "decrypt_error"
    assert alert_name(203) == "too_many_records"
    assert alert_name(99) == "unknown_alert_99"


def test_connection_errors_are_named_by_side(keys: Keys) -> None:
    client, server = connected_pair(keys)
    with pytest.raises(ProtocolError) as excinfo:
        server.receive_data(b"\x17\x00\x01\x00\x11" + bytes(17))
    assert str(excinfo.value).startswith("bad_record_mac (server alert raised): ")
    with pytest.raises(ProtocolError) as excinfo:
        client.receive_data(server.data_to_send())
    assert str(excinfo.value).startswith("bad_record_mac (server alert received): ")


# ----- identity -----------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["rsa", "ed25519"])
def test_fingerprint_format(keys: Keys, key_type: str) -> None:
    key = keys[key_type]
    assert FINGERPRINT.match(key.fingerprint), key.fingerprint
    digest = base64.b64decode(key.fingerprint.removeprefix("SHA256:") + "=")
    assert digest == hashlib.sha256(key.spki_der).digest()
    assert fingerprint_of_spki(key.spki_der) == key.fingerprint
    assert keys.others[key_type].fingerprint != key.fingerprint


@pytest.mark.parametrize("key_type", ["rsa", "ed25519"])
def test_renewed_certificate_keeps_the_fingerprint(keys: Keys, key_type: str) -> None:
    key = keys[key_type]
    first = keys.certificates[key_type]
    renewed = key.self_signed_certificate("renamed", NOW + datetime.timedelta(days=400), days=30)
    assert renewed != first
    assert (
        PeerIdentity.from_certificate(first).fingerprint
        == PeerIdentity.from_certificate(renewed).fingerprint
        == PeerIdentity.from_spki(key.spki_der).fingerprint
        == key.fingerprint
    )


@pytest.mark.parametrize("key_type", ["rsa", "ed25519"])
def test_identity_save_is_private_and_load_round_trips(
    keys: Keys, key_type: str, tmp_path: Path
) -> None:
    key = keys[key_type]
    path = tmp_path / "keys" / "identity.pem"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["identity.pem"]  # no temporary left
    loaded = IdentityKey.load(path)
    assert loaded.fingerprint == key.fingerprint
    assert loaded.scheme == key.scheme
    assert loaded.to_pem() == key.to_pem()
    # The loaded key signs for the same identity.
    verify_signature(key.public_key, key.scheme, b"data", loaded.sign(b"data"))
    # Saving again replaces the file, still private.
    keys.others[key_type].save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert IdentityKey.load(path).fingerprint == keys.others[key_type].fingerprint


def test_load_or_create(tmp_path: Path) -> None:
    path = tmp_path / "id.pem"
    created, was_created = IdentityKey.load_or_create(path, "ed25519")
    assert was_created
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded, was_created = IdentityKey.load_or_create(path, "ed25519")
    assert not was_created
    assert loaded.fingerprint == created.fingerprint


def test_unknown_key_type_is_refused() -> None:
    with pytest.raises(ValueError):
        IdentityKey.generate("dsa")


def test_signature_verification(keys: Keys) -> None:
    for key_type in ("rsa", "ed25519"):
        key = keys[key_type]
        signature = key.sign(b"message")
        verify_signature(key.public_key, key.scheme, b"message", signature)
        with pytest.raises(ProtocolError) as excinfo:
            verify_signature(key.public_key, key.scheme, b"massage", signature)
        assert excinfo.value.alert == AlertDescription.decrypt_error
        with pytest.raises(ProtocolError) as excinfo:
            verify_signature(keys.others[key_type].public_key, key.scheme, b"message", signature)
        assert excinfo.value.alert == AlertDescription.decrypt_error
    with pytest.raises(ProtocolError) as excinfo:
        verify_signature(keys["rsa"].public_key, keys["ed25519"].scheme, b"m", b"s")
    assert excinfo.value.alert == AlertDescription.illegal_parameter


def test_known_hosts_tofu_and_changed_key(keys: Keys, tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    hosts = KnownHosts(path)
    mine, other = keys["rsa"].fingerprint, keys.others["rsa"].fingerprint
    assert hosts.check("chat.example", 7000, mine) is False  # no file yet: new host
    path.write_text("# tlschat known hosts\n\nelsewhere:7000 " + other + "\n")
    assert hosts.check("chat.example", 7000, mine) is False
    hosts.add("chat.example", 7000, mine)
    assert hosts.check("chat.example", 7000, mine) is True
    assert hosts.check("chat.example", 7001, mine) is False  # the port is part of the name
    changed = hosts.check("chat.example", 7000, other)
    assert isinstance(changed, HostKeyChanged)
    assert changed.line_number == 4
    assert path.read_text().splitlines()[changed.line_number - 1].split()[1] == mine
    assert changed.host == "chat.example:7000"
    assert changed.expected == mine
    assert changed.presented == other
    assert changed.path == path
    assert hosts.lookup("chat.example", 7000) == (4, mine)


def test_known_hosts_ipv6_entries(keys: Keys, tmp_path: Path) -> None:
    hosts = KnownHosts(tmp_path / "sub" / "known_hosts")
    fingerprint = keys["ed25519"].fingerprint
    hosts.add("::1", 7000, fingerprint)
    assert (tmp_path / "sub" / "known_hosts").read_text() == f"[::1]:7000 {fingerprint}\n"
    assert hosts.check("::1", 7000, fingerprint) is True
    changed = hosts.check("::1", 7000, keys["rsa"].fingerprint)
    assert isinstance(changed, HostKeyChanged) and changed.line_number == 1
