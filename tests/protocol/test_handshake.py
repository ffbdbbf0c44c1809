"""The handshake and the established channel, when both sides behave."""

from __future__ import annotations

import itertools

import pytest

from tlschat.protocol import (
    PROTOCOL_VERSION,
    AlertDescription,
    ConnectionClosed,
    DataReceived,
    HandshakeComplete,
    HandshakeStep,
    KeyUpdated,
    ProtocolError,
    ServerAuthenticated,
    State,
)
from tlschat.protocol.connection import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_MAX_MESSAGE,
    framed_message,
)
from tlschat.protocol.messages import SignatureScheme
from tlschat.protocol.record import MAX_CIPHERTEXT, MAX_PLAINTEXT, TAG_LENGTH, ContentType

from .helpers import (
    AES,
    CHACHA,
    KEY_TYPES,
    SUITES,
    Keys,
    assert_alert_delivered,
    assert_failed,
    assert_plaintext_alert_sent,
    connected_pair,
    feed,
    handshake,
    make_pair,
    pump,
    split_records,
    steps,
)

SUITE_LABELS = {AES: "AES-GCM-256", CHACHA: "CHACHA20-POLY1305"}
COMPLETE = (0, "✅ Handshake complete — Secure channel established")


def server_steps(cipher: str) -> list[tuple[int, str]]:
    return [
        (1, "ClientHello received"),
        (2, f"ServerHello + Certificate sent | Cipher: {cipher}"),
        (3, "Shared secret derived via ECDHE"),
        (4, "Session key derived (HKDF)"),
        (5, "Client Finished verified ✅"),
        (6, "Server Finished sent ✅"),
        COMPLETE,
    ]


def client_steps(cipher: str) -> list[tuple[int, str]]:
    return [
        (1, "ClientHello sent"),
        (2, f"ServerHello received and verified ✅ | Cipher: {cipher}"),
        (3, "Shared secret computed"),
        (4, "Session key derived (HKDF)"),
        (5, "Client Finished sent ✅"),
        (6, "Server Finished verified ✅"),
        COMPLETE,
    ]


def data_of(events: list) -> list[bytes]:
    return [e.data for e in events if isinstance(e, DataReceived)]


# ----- the handshake ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suite", "server_key", "client_key"),
    list(itertools.product(SUITES, KEY_TYPES, KEY_TYPES)),
    ids=lambda value: SUITE_LABELS.get(value, value),
)
def test_full_handshake_and_data_both_ways(
    keys: Keys, suite: int, server_key: str, client_key: str
) -> None:
    client, server = make_pair(
        keys, server_key=server_key, client_key=client_key, client_suites=(suite,)
    )
    client_events, server_events = handshake(client, server)
    cipher = SUITE_LABELS[suite]

    assert steps(server_events) == server_steps(cipher)
    assert steps(client_events) == client_steps(cipher)

    # Event order and kinds: the steps, ServerAuthenticated between 4 and 5 on the client,
    # HandshakeComplete last on both.
    assert [type(e) for e in client_events] == [HandshakeStep] * 4 + [
        ServerAuthenticated,
        HandshakeStep,
        HandshakeStep,
        HandshakeStep,
        HandshakeComplete,
    ]
    assert [type(e) for e in server_events] == [HandshakeStep] * 7 + [HandshakeComplete]

    authenticated = client_events[4]
    assert isinstance(authenticated, ServerAuthenticated)
    assert authenticated.identity.fingerprint == keys[server_key].fingerprint
    assert authenticated.identity.certificate_der == keys.certificates[server_key]

    client_done, server_done = client_events[-1], server_events[-1]
    assert isinstance(client_done, HandshakeComplete)
    assert isinstance(server_done, HandshakeComplete)
    assert client_done.peer.fingerprint == keys[server_key].fingerprint
    assert server_done.peer.fingerprint == keys[client_key].fingerprint
    assert client_done.suite == server_done.suite == cipher
    assert client_done.version == server_done.version == PROTOCOL_VERSION
    assert client.suite == server.suite == suite
    assert client.peer is not None and server.peer is not None
    assert server.peer.certificate_der is None  # the client presents a raw public key

    client.send_data(b"hello from the client")
    assert server.receive_data(client.data_to_send()) == [DataReceived(b"hello from the client")]
    server.send_data(b"hello from the server")
    server.send_data(b"")
    assert client.receive_data(server.data_to_send()) == [
        DataReceived(b"hello from the server"),
        DataReceived(b""),
    ]


def test_server_authenticated_pauses_the_client_until_trusted(keys: Keys) -> None:
    client, server = make_pair(keys)
    client.start_handshake()
    server.receive_data(client.data_to_send())
    events = client.receive_data(server.data_to_send())
    assert isinstance(events[-1], ServerAuthenticated)
    assert client.state is State.WAIT_TRUST
    # The client has not revealed its identity yet.
    assert client.data_to_send() == b""
    with pytest.raises(RuntimeError):
        client.send_data(b"too early")
    events = client.trust_server()
    assert steps(events) == [(5, "Client Finished sent ✅")]
    pump(client, server)
    assert client.is_connected and server.is_connected


def test_reject_server_sends_bad_certificate(keys: Keys) -> None:
    client, server = make_pair(keys)
    client.start_handshake()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    error = client.reject_server("fingerprint does not match --pin")
    assert error.alert == AlertDescription.bad_certificate
    assert error.sender == "client"
    assert client.state is State.CLOSED
    assert_alert_delivered(client, server, AlertDescription.bad_certificate)


@pytest.mark.parametrize(
    ("client_suites", "server_suites", "chosen"),
    [
        ((AES, CHACHA), (AES, CHACHA), AES),
        ((CHACHA, AES), (AES, CHACHA), AES),
        ((AES, CHACHA), (CHACHA, AES), CHACHA),
        ((CHACHA, AES), (CHACHA, AES), CHACHA),
        ((CHACHA,), (AES, CHACHA), CHACHA),
        ((AES,), (CHACHA, AES), AES),
    ],
)
def test_suite_negotiation_follows_the_server_preference(
    keys: Keys, client_suites: tuple[int, ...], server_suites: tuple[int, ...], chosen: int
) -> None:
    client, server = make_pair(keys, client_suites=client_suites, server_suites=server_suites)
    client_events, server_events = handshake(client, server)
    assert client.suite == server.suite == chosen
    assert client_events[-1] == HandshakeComplete(
        SUITE_LABELS[chosen], PROTOCOL_VERSION, client.peer
    )
    assert (2, f"ServerHello + Certificate sent | Cipher: {SUITE_LABELS[chosen]}") in steps(
        server_events
    )


def test_no_common_suite_is_handshake_failure(keys: Keys) -> None:
    client, server = make_pair(keys, client_suites=(CHACHA,), server_suites=(AES,))
    client.start_handshake()
    with pytest.raises(ProtocolError) as excinfo:
        server.receive_data(client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.handshake_failure)
    data = assert_plaintext_alert_sent(server, AlertDescription.handshake_failure)
    with pytest.raises(ProtocolError) as excinfo:
        client.receive_data(data)
    assert_failed(excinfo, client, AlertDescription.handshake_failure, received=True)


def test_client_that_cannot_verify_the_server_key_is_handshake_failure(keys: Keys) -> None:
    client, server = make_pair(
        keys, server_key="rsa", client_options={"signature_algorithms": (SignatureScheme.ed25519,)}
    )
    client.start_handshake()
    with pytest.raises(ProtocolError) as excinfo:
        server.receive_data(client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.handshake_failure)
    assert_plaintext_alert_sent(server, AlertDescription.handshake_failure)


# ----- application data ---------------------------------------------------------------------------


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_LABELS.get)
def test_max_message_is_fragmented_and_reassembled(keys: Keys, suite: int) -> None:
    client, server = connected_pair(keys, client_suites=(suite,))
    assert client.config.max_message == DEFAULT_MAX_MESSAGE == 1 << 20
    message = bytes(range(256)) * (DEFAULT_MAX_MESSAGE // 256)
    assert len(message) == client.config.max_message
    client.send_data(message)
    wire = client.data_to_send()
    records = split_records(wire)
    framed = 3 + len(message)
    assert len(records) == -(-framed // MAX_PLAINTEXT) == 65
    for raw in records:
        assert raw[0] == ContentType.application_data
        length = int.from_bytes(raw[3:5], "big")
        assert length <= MAX_CIPHERTEXT
        assert length - 1 - TAG_LENGTH <= MAX_PLAINTEXT
    assert int.from_bytes(records[0][3:5], "big") - 1 - TAG_LENGTH == MAX_PLAINTEXT
    assert server.receive_data(wire) == [DataReceived(message)]

    # The other way too, delivered record by record: one event, after the last record.
    server.send_data(message)
    events = [client.receive_data(raw) for raw in split_records(server.data_to_send())]
    assert all(e == [] for e in events[:-1])
    assert events[-1] == [DataReceived(message)]


def test_one_byte_over_max_message_is_refused_on_send(keys: Keys) -> None:
    client, server = connected_pair(keys)
    with pytest.raises(ValueError):
        client.send_data(bytes(client.config.max_message + 1))
    assert client.data_to_send() == b""
    assert client.is_connected
    client.send_data(b"still fine")
    assert server.receive_data(client.data_to_send()) == [DataReceived(b"still fine")]


def test_smaller_receive_limit_is_record_overflow(keys: Keys) -> None:
    client, server = connected_pair(keys, server_options={"max_message": 1000})
    client.send_data(bytes(1000))
    assert server.receive_data(client.data_to_send()) == [DataReceived(bytes(1000))]
    client.send_data(bytes(1001))
    with pytest.raises(ProtocolError) as excinfo:
        server.receive_data(client.data_to_send())
    assert_failed(excinfo, server, AlertDescription.record_overflow)
    assert_alert_delivered(server, client, AlertDescription.record_overflow)


MESSAGES = [b"first", b"", b"x" * 20000, b"\x00\x01\x02", b"last one"]


@pytest.mark.parametrize("chunk", [1, 7, None])
def test_data_split_or_coalesced_gives_the_same_events(keys: Keys, chunk: int | None) -> None:
    client, server = connected_pair(keys)
    for message in MESSAGES:
        client.send_data(message)
    assert feed(server, client.data_to_send(), chunk) == [DataReceived(m) for m in MESSAGES]
    for message in MESSAGES:
        server.send_data(message)
    assert feed(client, server.data_to_send(), chunk) == [DataReceived(m) for m in MESSAGES]


@pytest.mark.parametrize("chunk", [1, 5, 100])
def test_handshake_bytes_in_small_pieces_complete(keys: Keys, chunk: int) -> None:
    client, server = make_pair(keys, server_key="rsa", client_key="rsa")
    client_events, server_events = handshake(client, server, chunk=chunk)
    assert steps(client_events) == client_steps("AES-GCM-256")
    assert steps(server_events) == server_steps("AES-GCM-256")
    client.send_data(b"after a slow handshake")
    assert feed(server, client.data_to_send(), chunk) == [DataReceived(b"after a slow handshake")]


def test_server_may_send_right_after_its_finished(keys: Keys) -> None:
    """The server is connected once it sends Finished; its data can share the client's read."""
    client, server = make_pair(keys)
    client.start_handshake()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    client.trust_server()
    server_events = server.receive_data(client.data_to_send())
    assert isinstance(server_events[-1], HandshakeComplete)
    server.send_data(b"welcome")
    events = client.receive_data(server.data_to_send())
    assert isinstance(events[-2], HandshakeComplete)
    assert events[-1] == DataReceived(b"welcome")


# ----- KeyUpdate ----------------------------------------------------------------------------------


def test_key_update_without_request(keys: Keys) -> None:
    client, server = connected_pair(keys)
    client.update_keys()
    assert client.write_generation == 1
    assert server.receive_data(client.data_to_send()) == [KeyUpdated("read", 1)]
    assert server.read_generation == 1
    assert server.write_generation == 0
    assert server.data_to_send() == b""  # nothing requested, nothing answered
    client.send_data(b"new key")
    assert server.receive_data(client.data_to_send()) == [DataReceived(b"new key")]
    server.send_data(b"old key still")
    assert client.receive_data(server.data_to_send()) == [DataReceived(b"old key still")]
    assert client.read_generation == 0


def test_key_update_with_request(keys: Keys) -> None:
    client, server = connected_pair(keys)
    server.update_keys(request_peer=True)
    assert server.write_generation == 1
    assert client.receive_data(server.data_to_send()) == [
        KeyUpdated("read", 1),
        KeyUpdated("write", 1),
    ]
    assert client.write_generation == client.read_generation == 1
    assert server.receive_data(client.data_to_send()) == [KeyUpdated("read", 1)]
    assert server.read_generation == 1
    client.send_data(b"ping")
    assert server.receive_data(client.data_to_send()) == [DataReceived(b"ping")]
    server.send_data(b"pong")
    assert client.receive_data(server.data_to_send()) == [DataReceived(b"pong")]


def test_repeated_key_updates_and_data_interleaved(keys: Keys) -> None:
    client, server = connected_pair(keys)
    for generation in range(1, 6):
        client.update_keys(request_peer=generation % 2 == 0)
        client.send_data(b"m%d" % generation)
        events = server.receive_data(client.data_to_send())
        assert events[0] == KeyUpdated("read", generation)
        assert events[-1] == DataReceived(b"m%d" % generation)
        client.receive_data(server.data_to_send())
    assert server.read_generation == 5
    assert client.read_generation == server.write_generation == 2


def test_update_keys_before_connected_is_refused(keys: Keys) -> None:
    client, _ = make_pair(keys)
    with pytest.raises(RuntimeError):
        client.update_keys()


# ----- close_notify and EOF -----------------------------------------------------------------------


@pytest.mark.parametrize("closer", ["client", "server"])
def test_close_notify_both_ways(keys: Keys, closer: str) -> None:
    client, server = connected_pair(keys)
    first, second = (client, server) if closer == "client" else (server, client)
    first.send_data(b"last words")
    first.close()
    assert first.close_notify_sent
    with pytest.raises(RuntimeError):
        first.send_data(b"after close")
    events = second.receive_data(first.data_to_send())
    assert events == [DataReceived(b"last words"), ConnectionClosed()]
    assert second.state is State.CLOSED
    assert second.close_notify_received and second.close_notify_sent
    # The peer answers with its own close_notify.
    assert first.receive_data(second.data_to_send()) == [ConnectionClosed()]
    assert first.state is State.CLOSED
    assert first.data_to_send() == b""
    # EOF after close_notify is the normal end.
    assert first.receive_eof() == []
    assert second.receive_eof() == []
    assert first.error is None and second.error is None
    first.close()  # idempotent
    assert first.data_to_send() == b""


def test_eof_without_close_notify_is_truncated(keys: Keys) -> None:
    client, server = connected_pair(keys)
    client.send_data(b"partial")
    server.receive_data(client.data_to_send())
    with pytest.raises(ProtocolError) as excinfo:
        server.receive_eof()
    assert_failed(excinfo, server, AlertDescription.truncated)
    # The transport is gone: no alert is written.
    assert server.data_to_send() == b""


# ----- handshake timeout --------------------------------------------------------------------------


def test_handshake_timeout_before_client_hello(keys: Keys) -> None:
    client, server = make_pair(keys, now=100.0)
    assert server.deadline == 100.0 + DEFAULT_HANDSHAKE_TIMEOUT
    assert server.handle_timer(100.0) == []
    assert server.handle_timer(100.0 + DEFAULT_HANDSHAKE_TIMEOUT - 0.001) == []
    assert server.data_to_send() == b""
    with pytest.raises(ProtocolError) as excinfo:
        server.handle_timer(100.0 + DEFAULT_HANDSHAKE_TIMEOUT)
    assert_failed(excinfo, server, AlertDescription.handshake_timeout)
    data = assert_plaintext_alert_sent(server, AlertDescription.handshake_timeout)
    # A client still waiting for ServerHello reads the plaintext alert.
    client.start_handshake()
    client.data_to_send()
    with pytest.raises(ProtocolError) as excinfo:
        client.receive_data(data)
    assert_failed(excinfo, client, AlertDescription.handshake_timeout, received=True)
    # A closed connection's timer does nothing.
    assert server.handle_timer(1e9) == []


def test_client_handshake_timeout_waiting_for_server_hello(keys: Keys) -> None:
    client, _ = make_pair(keys)
    client.start_handshake()
    client.data_to_send()
    assert client.handle_timer(5.0) == []
    with pytest.raises(ProtocolError) as excinfo:
        client.handle_timer(DEFAULT_HANDSHAKE_TIMEOUT + 1)
    assert_failed(excinfo, client, AlertDescription.handshake_timeout)
    assert_plaintext_alert_sent(client, AlertDescription.handshake_timeout)


def test_client_handshake_timeout_waiting_for_server_finished(keys: Keys) -> None:
    """The client times out after its Finished: the server, already reading with the client's
    application key, reads the alert, because both derive that key over the transcript through
    the client's Finished."""
    client, server = make_pair(keys)
    client.start_handshake()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    client.trust_server()
    server.receive_data(client.data_to_send())
    assert server.is_connected
    server.data_to_send()  # the server's Finished is delayed past the client's deadline
    assert client.state is State.WAIT_SERVER_FINISHED
    with pytest.raises(ProtocolError) as excinfo:
        client.handle_timer(DEFAULT_HANDSHAKE_TIMEOUT)
    assert_failed(excinfo, client, AlertDescription.handshake_timeout)
    alert = client.data_to_send()
    assert split_records(alert) == [alert]
    assert alert[0] == ContentType.application_data  # encrypted, under the application key
    with pytest.raises(ProtocolError) as excinfo:
        server.receive_data(alert)
    assert_failed(excinfo, server, AlertDescription.handshake_timeout, received=True)


def test_server_handshake_timeout_while_client_decides_trust(keys: Keys) -> None:
    """The user takes too long over a new fingerprint: the client must learn why."""
    client, server = make_pair(keys)
    client.start_handshake()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    assert client.state is State.WAIT_TRUST
    with pytest.raises(ProtocolError) as excinfo:
        server.handle_timer(DEFAULT_HANDSHAKE_TIMEOUT)
    assert_failed(excinfo, server, AlertDescription.handshake_timeout)
    assert_alert_delivered(server, client, AlertDescription.handshake_timeout)


def test_no_timeout_once_connected(keys: Keys) -> None:
    client, server = connected_pair(keys)
    assert client.deadline is None and server.deadline is None
    assert client.handle_timer(1e9) == [] and server.handle_timer(1e9) == []
    assert client.is_connected and server.is_connected


def test_messages_queued_together_are_sealed_into_one_record(keys: Keys) -> None:
    client, server = connected_pair(keys)
    for text in (b"one", b"two", b"three"):
        client.send_data(text)
    records = split_records(client.data_to_send())
    assert len(records) == 1
    assert server.receive_data(records[0]) == [
        DataReceived(b"one"),
        DataReceived(b"two"),
        DataReceived(b"three"),
    ]


def test_a_message_framed_once_is_what_send_data_queues_on_every_connection(
    keys: Keys,
) -> None:
    messages = [b"", b"one", b"x" * 20000, b"\xff" * (MAX_PLAINTEXT - 3)]
    framed = [framed_message(message) for message in messages]
    for _ in range(3):
        client, server = connected_pair(keys)
        for message in framed:
            server.send_framed(message)
        assert client.receive_data(server.data_to_send()) == [DataReceived(m) for m in messages]
    client, server = connected_pair(keys)
    with pytest.raises(ValueError):
        server.send_framed(framed_message(bytes(server.config.max_message + 1)))
    server.close()
    with pytest.raises(RuntimeError):
        server.send_framed(framed[1])


def test_a_burst_larger_than_a_record_fills_whole_records_in_order(keys: Keys) -> None:
    client, server = connected_pair(keys)
    messages = [bytes([i]) * 5000 for i in range(10)]  # 50 030 bytes framed
    for message in messages:
        client.send_data(message)
    records = split_records(client.data_to_send())
    assert [len(r) - 5 - 1 - TAG_LENGTH for r in records] == [MAX_PLAINTEXT] * 3 + [
        10 * 5003 - 3 * MAX_PLAINTEXT
    ]
    assert server.receive_data(b"".join(records)) == [DataReceived(m) for m in messages]


def test_queued_data_goes_out_before_a_key_update_and_close_notify(keys: Keys) -> None:
    client, server = connected_pair(keys)
    client.send_data(b"before the update")
    client.update_keys()
    client.send_data(b"after the update")
    client.close()
    events = server.receive_data(client.data_to_send())
    assert events == [
        DataReceived(b"before the update"),
        KeyUpdated("read", 1),
        DataReceived(b"after the update"),
        ConnectionClosed(),
    ]
