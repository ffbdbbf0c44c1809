"""Every state of both roles x every kind of record: a valid transition or a clean ProtocolError.

A real client/server pair (fixed keys and entropy from ``fuzz.common``) is driven to each state;
the victim then receives one message from a catalogue: each handshake message type, KeyUpdate,
application data, alerts, garbage and malformed records, each as plaintext and as a record
protected under the victim's current read key (so it decrypts and reaches the state machine).

The outcome must be one of:

* a valid transition: known events only, and a state no earlier in the handshake (or CLOSED,
  only after the peer's close_notify);
* a ProtocolError that is the library's own rejection (never a wrapped bug), leaves the
  connection CLOSED with ``error`` set and, when the victim could still write, queues an alert
  that the real peer reads back as that same alert.

Hypothesis then runs random sequences of the same messages from random states, and checks that
any chunking of a whole session's byte stream gives the same events and output as one feed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.common import (
    CLIENT_HELLO,
    CLIENT_IDENTITY,
    EVENT_TYPES,
    SERVER_CERTIFICATE,
    new_client,
    new_server,
    split_records,
    transcript,
    unwrap_internal_error,
)
from tlschat.protocol import (
    Connection,
    ConnectionClosed,
    Event,
    ProtocolError,
    State,
)
from tlschat.protocol.alerts import AlertDescription, AlertLevel
from tlschat.protocol.messages import (
    Certificate,
    CertificateType,
    CertificateVerify,
    CipherSuite,
    Finished,
    HandshakeType,
    KeyUpdate,
    ServerHello,
    SignatureScheme,
    encode_handshake,
)
from tlschat.protocol.record import (
    ContentType,
    DirectionKeys,
    plaintext_record,
    record_header,
)

CLIENT_ORDER = (
    State.START,
    State.WAIT_SERVER_HELLO,
    State.WAIT_SERVER_CERTIFICATE,
    State.WAIT_SERVER_CERTIFICATE_VERIFY,
    State.WAIT_TRUST,
    State.WAIT_SERVER_FINISHED,
    State.CONNECTED,
    State.CLOSED,
)
SERVER_ORDER = (
    State.WAIT_CLIENT_HELLO,
    State.WAIT_CLIENT_CERTIFICATE,
    State.WAIT_CLIENT_CERTIFICATE_VERIFY,
    State.WAIT_CLIENT_FINISHED,
    State.CONNECTED,
    State.CLOSED,
)
ORDER = {"client": CLIENT_ORDER, "server": SERVER_ORDER}
SCENARIOS = [(role, state) for role, order in ORDER.items() for state in order]


@dataclass
class Scenario:
    """A victim driven to ``target`` by a real peer; ``pending`` holds the peer's unread records."""

    role: str
    target: State
    victim: Connection = field(init=False)
    peer: Connection = field(init=False)
    pending: list[bytes] = field(default_factory=list)
    # False once the victim has accepted a message the real peer did not send (a forged
    # ServerHello gives it other keys): the peer can then no longer read what the victim writes.
    in_sync: bool = True

    def __post_init__(self) -> None:
        client, server = new_client(), new_server()
        self.victim, self.peer = (client, server) if self.role == "client" else (server, client)
        if self.role == "server":
            client.start_handshake()
            self.pending = list(split_records(client.data_to_send()))
        close_at_end = self.target is State.CLOSED
        target = State.CONNECTED if close_at_end else self.target
        while self.victim.state is not target:
            self.step()
        if close_at_end:
            self.peer.close()
            self.pending += split_records(self.peer.data_to_send())
            while self.victim.state is not State.CLOSED:
                self.step()
        assert self.victim.state is self.target

    def step(self) -> None:
        """One move forward: start, trust, or deliver the peer's next record; then sync."""
        victim = self.victim
        if victim.state is State.START:
            victim.start_handshake()  # type: ignore[attr-defined]
        elif victim.state is State.WAIT_TRUST:
            victim.trust_server()  # type: ignore[attr-defined]
        else:
            assert self.pending, f"stuck in {victim.state}"
            victim.receive_data(self.pending.pop(0))
        self.sync()

    def sync(self) -> None:
        """The victim's output reaches the peer; the peer's answer waits in ``pending``."""
        output = self.victim.data_to_send()
        if output and self.peer.state is not State.CLOSED:
            try:
                self.peer.receive_data(output)
            except ProtocolError:
                if self.in_sync:
                    raise
                self.pending.clear()
        if self.peer.state is State.WAIT_TRUST:
            self.peer.trust_server()  # type: ignore[attr-defined]
        self.pending += split_records(self.peer.data_to_send())


# ----- the message catalogue -----


def protect(victim: Connection, content_type: int, content: bytes) -> bytes:
    """A record sealed under the victim's current read key (or a stranger's, before keys)."""
    keys = victim._records.read_keys
    if keys is None:
        return DirectionKeys(CipherSuite.AES_256_GCM_SHA256, bytes(32)).seal(content_type, content)
    forger = DirectionKeys(keys.suite, keys.secret, keys.limit)
    forger.sequence = keys.sequence
    return forger.seal(content_type, content)


HANDSHAKE_MESSAGES: dict[str, bytes] = {
    "client_hello": CLIENT_HELLO[5:],
    "server_hello": encode_handshake(ServerHello(1, bytes(32), 1, bytes([9]) * 32)),
    "certificate_x509": encode_handshake(Certificate(CertificateType.x509, SERVER_CERTIFICATE)),
    "certificate_rpk": encode_handshake(
        Certificate(CertificateType.raw_public_key, CLIENT_IDENTITY.spki_der)
    ),
    "certificate_verify": encode_handshake(CertificateVerify(SignatureScheme.ed25519, bytes(64))),
    "finished": encode_handshake(Finished(bytes(32))),
    "key_update": encode_handshake(KeyUpdate(False)),
    "key_update_requested": encode_handshake(KeyUpdate(True)),
    "unknown_type": bytes([99, 0, 0, 0]),
    "truncated_header": bytes([HandshakeType.finished, 0]),
}
assert {m[0] for m in HANDSHAKE_MESSAGES.values()} >= set(HandshakeType)

Builder = Callable[[Scenario], bytes]
CONTENTS: dict[str, tuple[int, bytes]] = {
    **{f"hs_{name}": (ContentType.handshake, raw) for name, raw in HANDSHAKE_MESSAGES.items()},
    "hs_empty": (ContentType.handshake, b""),
    "data": (ContentType.application_data, b"\x00\x00\x04ping"),
    "data_empty": (ContentType.application_data, b""),
    "data_oversized_length": (ContentType.application_data, b"\xff\xff\xff"),
    "alert_close_notify": (ContentType.alert, bytes([AlertLevel.WARNING, 0])),
    "alert_user_canceled": (ContentType.alert, bytes([AlertLevel.WARNING, 90])),
    "alert_fatal": (ContentType.alert, bytes([AlertLevel.FATAL, 40])),
    "alert_unknown_code": (ContentType.alert, bytes([AlertLevel.FATAL, 250])),
    "alert_bad_level": (ContentType.alert, bytes([7, 0])),
    "alert_short": (ContentType.alert, b"\x02"),
}


def _plain(content_type: int, content: bytes) -> Builder:
    return lambda scenario: plaintext_record(content_type, content)


def _protected(content_type: int, content: bytes) -> Builder:
    return lambda scenario: protect(scenario.victim, content_type, content)


def _next_from_peer(scenario: Scenario) -> bytes:
    """The peer's next real record: the valid transition (application data once connected)."""
    if not scenario.pending and scenario.peer.is_connected:
        scenario.peer.send_data(b"hello")
        scenario.pending += split_records(scenario.peer.data_to_send())
    return scenario.pending.pop(0) if scenario.pending else b""


def _tampered(scenario: Scenario) -> bytes:
    record = bytearray(protect(scenario.victim, ContentType.application_data, b"\x00\x00\x00"))
    record[-1] ^= 1
    return bytes(record)


MESSAGES: dict[str, Builder] = {
    **{f"plain_{name}": _plain(*content) for name, content in CONTENTS.items()},
    **{f"protected_{name}": _protected(*content) for name, content in CONTENTS.items()},
    "protected_unknown_inner_type": _protected(99, b"x"),
    "protected_tampered": _tampered,
    "protected_short": lambda s: record_header(ContentType.application_data, 3) + b"abc",
    "record_unknown_type": lambda s: record_header(99, 1) + b"x",
    "record_bad_version": lambda s: b"\x16\x03\x03\x00\x01\x01",
    "record_oversized": lambda s: record_header(ContentType.handshake, 65535),
    "record_partial": lambda s: plaintext_record(ContentType.handshake, b"abcd")[:-1],
    "garbage": lambda s: bytes(range(200, 256)) * 3,
    "nothing": lambda s: b"",
    "next_from_peer": _next_from_peer,
}


# ----- the invariant -----


def deliver_and_check(scenario: Scenario, data: bytes, foreign: bool = True) -> bool:
    """Feed ``data`` to the victim and check the outcome; False once the victim is closed.

    ``foreign`` data did not come from the real peer: once accepted, the two are out of sync.
    """
    victim = scenario.victim
    order = ORDER[scenario.role]
    before = victim.state
    could_send = not victim.close_notify_sent and before is not State.CLOSED
    try:
        events = victim.receive_data(data)
    except ProtocolError as error:
        unwrap_internal_error(error)  # a bug in our code, not a rejection
        assert victim.state is State.CLOSED
        assert victim.error is error
        assert error.sender == (victim.peer_role if error.received else victim.role)
        output = victim.data_to_send()
        if could_send and not error.received:
            assert output, f"no alert queued for {error}"
            if scenario.in_sync:
                check_alert_reaches_peer(scenario, output, error.alert)
        elif error.received or before is State.CLOSED:
            assert output == b"", "nothing answers a fatal alert"
        return False
    for event in events:
        assert isinstance(event, EVENT_TYPES), event
    after = victim.state
    if after is State.CLOSED:
        assert victim.close_notify_received or before is State.CLOSED, events
        assert victim.error is None or before is State.CLOSED
        if before is not State.CLOSED:
            assert ConnectionClosed() in events
    else:
        assert order.index(after) >= order.index(before), (before, after)
        assert victim.error is None
    if foreign and data:
        scenario.in_sync = False
    scenario.sync()
    return after is not State.CLOSED


def check_alert_reaches_peer(scenario: Scenario, output: bytes, alert: AlertDescription) -> None:
    """The real peer, whose read state matches the victim's write state, reads the same alert."""
    peer = scenario.peer
    if peer.state is State.CLOSED or peer.state is State.START:
        assert output[0] in (ContentType.alert, ContentType.application_data)
        return
    with pytest.raises(ProtocolError) as excinfo:
        peer.receive_data(output)
    assert excinfo.value.received, excinfo.value
    assert excinfo.value.alert == alert
    assert peer.state is State.CLOSED


# ----- every state x every message -----


@pytest.mark.parametrize("message", sorted(MESSAGES))
@pytest.mark.parametrize(("role", "state"), SCENARIOS, ids=[f"{r}-{s.name}" for r, s in SCENARIOS])
def test_every_state_every_message(role: str, state: State, message: str) -> None:
    scenario = Scenario(role, state)
    deliver_and_check(scenario, MESSAGES[message](scenario))


@pytest.mark.parametrize(("role", "state"), SCENARIOS, ids=[f"{r}-{s.name}" for r, s in SCENARIOS])
def test_the_real_next_record_is_a_valid_transition(role: str, state: State) -> None:
    scenario = Scenario(role, state)
    data = _next_from_peer(scenario)
    if state is State.CLOSED or (role, state) == ("client", State.START):
        return  # nothing more can come, or the client has not spoken yet
    if state is State.WAIT_TRUST:
        assert data == b""  # the server waits for the client's identity
        return
    assert deliver_and_check(scenario, data, foreign=False), scenario.victim.error
    assert scenario.victim.error is None


# ----- random sequences -----


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    start=st.sampled_from(SCENARIOS),
    actions=st.lists(st.sampled_from([*sorted(MESSAGES), "trust", "step"]), max_size=8),
)
def test_random_message_sequences(start: tuple[str, State], actions: list[str]) -> None:
    scenario = Scenario(*start)
    for action in actions:
        victim = scenario.victim
        if action == "trust":
            if victim.state is State.WAIT_TRUST:
                victim.trust_server()  # type: ignore[attr-defined]
                scenario.sync()
            continue
        if action == "step" and victim.state is State.START:
            victim.start_handshake()  # type: ignore[attr-defined]
            scenario.sync()
            continue
        name = "next_from_peer" if action == "step" else action
        data = MESSAGES[name](scenario)
        if not deliver_and_check(scenario, data, foreign=name != "next_from_peer"):
            # Closed: anything more is ignored or refused, never a crash.
            deliver_and_check(scenario, MESSAGES["protected_data"](scenario))
            return


# ----- chunking -----


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({0, len(data), *(p % (len(data) + 1) for p in points)})
    return [data[a:b] for a, b in itertools.pairwise(edges)]


CLIENT_FLIGHTS, SERVER_FLIGHTS = transcript(messages=(b"one", b"", b"x" * 20000), replies=(b"two",))


def receive_server_stream(pieces: list[list[bytes]]) -> tuple[list[Event], bytes]:
    """A client reads the server's stream; it trusts the server between the two flights."""
    client = new_client()
    client.start_handshake()
    output = client.data_to_send()
    events: list[Event] = []
    first, rest = pieces
    for piece in first:
        events += client.receive_data(piece)
    assert client.state is State.WAIT_TRUST, client.state
    events += client.trust_server()
    for piece in rest:
        events += client.receive_data(piece)
    assert client.state is State.CLOSED and client.error is None
    return events, output + client.data_to_send()


def receive_client_stream(pieces: list[bytes]) -> tuple[list[Event], bytes]:
    server = new_server()
    events: list[Event] = []
    for piece in pieces:
        events += server.receive_data(piece)
    assert server.state is State.CLOSED and server.error is None
    return events, server.data_to_send()


SERVER_STREAM = (SERVER_FLIGHTS[0], b"".join(SERVER_FLIGHTS[1:]))
CLIENT_STREAM = b"".join(CLIENT_FLIGHTS)
WHOLE_CLIENT_VIEW = receive_server_stream([[SERVER_STREAM[0]], [SERVER_STREAM[1]]])
WHOLE_SERVER_VIEW = receive_client_stream([CLIENT_STREAM])
cut_points = st.lists(st.integers(min_value=0, max_value=1 << 16), max_size=40)


def test_the_whole_session_happens() -> None:
    assert any(isinstance(e, ConnectionClosed) for e in WHOLE_CLIENT_VIEW[0])
    assert any(isinstance(e, ConnectionClosed) for e in WHOLE_SERVER_VIEW[0])
    assert len([e for e in WHOLE_SERVER_VIEW[0] if type(e).__name__ == "DataReceived"]) == 3
    assert len([e for e in WHOLE_SERVER_VIEW[0] if type(e).__name__ == "KeyUpdated"]) == 2


@settings(max_examples=60, deadline=None)
@given(first=cut_points, rest=cut_points)
def test_any_chunking_of_the_server_stream(first: list[int], rest: list[int]) -> None:
    pieces = [cut(SERVER_STREAM[0], first), cut(SERVER_STREAM[1], rest)]
    assert receive_server_stream(pieces) == WHOLE_CLIENT_VIEW


@settings(max_examples=60, deadline=None)
@given(points=cut_points)
def test_any_chunking_of_the_client_stream(points: list[int]) -> None:
    assert receive_client_stream(cut(CLIENT_STREAM, points)) == WHOLE_SERVER_VIEW


@pytest.mark.parametrize("direction", ["server", "client"])
def test_byte_at_a_time(direction: str) -> None:
    if direction == "server":
        pieces = [[bytes([b]) for b in stream] for stream in SERVER_STREAM]
        assert receive_server_stream(pieces) == WHOLE_CLIENT_VIEW
    else:
        assert receive_client_stream([bytes([b]) for b in CLIENT_STREAM]) == WHOLE_SERVER_VIEW
