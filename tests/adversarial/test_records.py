"""Record-layer probes against the real server process (docs/PROTOCOL.md sections 4, 16-18).

Each probe ends with the four checks of conftest.py: the alert the server logs, the alert on the
wire (read as plaintext, or decrypted with the evil client's keys), the server closing the socket,
and a fresh client still chatting with the two clients connected since the module started.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from tlschat.chat.frames import MAX_FRAME, encode_frame
from tlschat.protocol import AlertDescription as A
from tlschat.protocol.alerts import AlertLevel
from tlschat.protocol.messages import CipherSuite, HandshakeType
from tlschat.protocol.record import MAX_CIPHERTEXT, MAX_PLAINTEXT, TAG_LENGTH, ContentType

from .conftest import Arena, said
from .evil import (
    EvilClient,
    alert_record,
    flip,
    handshake_message,
    record,
    record_header,
    signed_say,
    split_records,
)

HELLO_FRAME = {"type": "hello", "nick": "evil"}

# ----- garbage instead of a ClientHello -----------------------------------------------------------

GARBAGE = {
    "http-get": (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", A.unexpected_message),
    "http-connect": (b"CONNECT example.com:443 HTTP/1.1\r\n\r\n", A.unexpected_message),
    "ssh-banner": (b"SSH-2.0-OpenSSH_9.6\r\n", A.unexpected_message),
    "tls13-client-hello": (bytes.fromhex("160301012c010001280303") + bytes(64), A.protocol_version),
    "tls-alert": (bytes.fromhex("15030300020228"), A.protocol_version),
    "zeros": (bytes(64), A.unexpected_message),
    "ones": (b"\xff" * 64, A.unexpected_message),
    "random": (
        bytes.fromhex("8f1b6e0c93a2d47e55c1b9f03a6d2e7c4b8a9f10e3d5c7b2a4f6e8d0c1b3a597"),
        A.unexpected_message,
    ),
}


@pytest.mark.parametrize(("garbage", "alert"), GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_first_bytes_get_a_plaintext_alert(arena: Arena, garbage: bytes, alert: A) -> None:
    evil = arena.evil()
    evil.send(garbage)
    evil.expect_alert(alert, plaintext=True)
    arena.expect_failure(evil, alert)
    arena.check_service("garbage")


# ----- lengths: one over the maximum is refused, exactly the maximum is accepted ------------------


@pytest.mark.parametrize("length", [MAX_PLAINTEXT + 1, 0xFFFF])
def test_plaintext_record_length_over_the_maximum_is_refused_from_the_header(
    arena: Arena, length: int
) -> None:
    evil = arena.evil()
    evil.send(record_header(ContentType.handshake, length))  # the 5-byte header, no body at all
    evil.expect_alert(A.record_overflow, plaintext=True)
    arena.expect_failure(evil, A.record_overflow, f"record length {length} exceeds {MAX_PLAINTEXT}")
    arena.check_service("oversized plaintext header")


@pytest.mark.parametrize("stage", ["handshake", "connected"])
@pytest.mark.parametrize("length", [MAX_CIPHERTEXT + 1, 0xFFFF])
def test_protected_record_length_over_the_maximum_is_refused_from_the_header(
    arena: Arena, stage: str, length: int
) -> None:
    evil = arena.evil()
    if stage == "handshake":
        evil.to_wait_trust()
    else:
        evil.handshake()
    evil.send(record_header(ContentType.application_data, length))  # no body follows
    evil.expect_alert(A.record_overflow)
    arena.expect_failure(
        evil, A.record_overflow, f"record length {length} exceeds {MAX_CIPHERTEXT}"
    )
    arena.check_service("oversized protected header")


@pytest.mark.parametrize("where", ["plaintext-handshake", "protected-handshake", "protected-data"])
def test_record_content_one_byte_over_the_maximum_is_record_overflow(
    arena: Arena, where: str
) -> None:
    evil = arena.evil()
    content = bytes(MAX_PLAINTEXT + 1)
    if where == "plaintext-handshake":
        evil.send(record(ContentType.handshake, content))
        length = MAX_PLAINTEXT + 1
    else:
        if where == "protected-handshake":
            evil.to_wait_trust()
            evil.conn.emit_record(ContentType.handshake, content)
        else:
            evil.handshake()
            evil.conn.emit_record(ContentType.application_data, content)
        (sealed,) = split_records(evil.flush())
        length = len(sealed) - 5
        assert length == MAX_CIPHERTEXT + 1
    evil.expect_alert(A.record_overflow, plaintext=where == "plaintext-handshake")
    arena.expect_failure(evil, A.record_overflow, f"record length {length} exceeds")
    arena.check_service("record one byte too big")


def test_application_message_one_byte_over_the_maximum_frame_is_record_overflow(
    arena: Arena,
) -> None:
    evil = arena.evil()
    evil.handshake()
    # Only the three length bytes: the server refuses the message before any of it arrives.
    evil.conn.emit_record(ContentType.application_data, (MAX_FRAME + 1).to_bytes(3, "big"))
    evil.flush()
    evil.expect_alert(A.record_overflow)
    arena.expect_failure(
        evil,
        A.record_overflow,
        f"application message of {MAX_FRAME + 1} bytes exceeds {MAX_FRAME}",
    )
    arena.check_service("message one byte too big")


def test_plaintext_record_of_exactly_the_maximum_passes_the_record_layer(arena: Arena) -> None:
    """A 16384-byte plaintext record is read; what it carries is then judged as a message."""
    evil = arena.evil()
    body_length = MAX_PLAINTEXT  # a "ClientHello" of 16388 bytes, split over two records
    message = handshake_message(HandshakeType.client_hello, bytes(body_length))
    first, rest = message[:MAX_PLAINTEXT], message[MAX_PLAINTEXT:]
    evil.send(record(ContentType.handshake, first))
    assert evil.silent_for(0.2), "the server refused a record of exactly the maximum size"
    evil.send(record(ContentType.handshake, rest))
    evil.expect_alert(A.decode_error, plaintext=True)  # the body is no ClientHello
    line = arena.expect_failure(evil, A.decode_error, "versions: length 0")
    assert "record_overflow" not in line
    arena.check_service("record of exactly the maximum")


def test_application_message_of_exactly_the_maximum_in_full_records_is_delivered(
    arena: Arena,
) -> None:
    evil = arena.evil()
    evil.handshake()
    nick = evil.join_chat("bigmouth")["nick"]
    text = arena.unique("the biggest frame there is")
    frame = {**signed_say(evil.network, evil.identity, text), "padding": ""}
    frame["padding"] = "x" * (MAX_FRAME - len(encode_frame(frame)))
    payload = encode_frame(frame)
    assert len(payload) == MAX_FRAME
    evil.conn.send_data(payload)
    records = split_records(evil.flush())
    # 3 length bytes + 65536 bytes: four records of exactly 16384 bytes of content, then 3 bytes.
    assert [len(r) - 5 for r in records] == [MAX_CIPHERTEXT] * 4 + [3 + 1 + TAG_LENGTH]
    for bystander in (arena.alice, arena.bob):
        bystander.wait_for_line(said(nick, text))
    evil.close_cleanly()
    arena.expect_quit(evil)
    arena.check_service("a maximal message")


# ----- bit flips in every part of a protected record ----------------------------------------------


def _tag_byte(i: int) -> Callable[[int], int]:
    return lambda n: n - TAG_LENGTH + i


def _ciphertext_middle(n: int) -> int:
    return 5 + (n - 5 - TAG_LENGTH) // 2


POSITIONS: dict[str, tuple[Callable[[int], int], A]] = {
    "type": (lambda n: 0, A.unexpected_message),  # 23 -> 22: an unprotected handshake record
    "version-high": (lambda n: 1, A.protocol_version),
    "version-low": (lambda n: 2, A.protocol_version),
    "length-high": (lambda n: 3, A.bad_record_mac),  # 256 bytes longer: eats what follows
    "length-low": (lambda n: 4, A.bad_record_mac),  # one byte shorter
    "ciphertext-first": (lambda n: 5, A.bad_record_mac),
    "ciphertext-middle": (_ciphertext_middle, A.bad_record_mac),
    "ciphertext-last": (lambda n: n - TAG_LENGTH - 1, A.bad_record_mac),
    **{f"tag-{i}": (_tag_byte(i), A.bad_record_mac) for i in range(TAG_LENGTH)},
}
CHACHA_POSITIONS = ["length-low", "ciphertext-first", "ciphertext-last", "tag-0", "tag-15"]
FLIP_CASES = [
    pytest.param(stage, position, CipherSuite.AES_256_GCM_SHA256, id=f"{stage}-{position}-aes")
    for stage, position in itertools.product(["handshake", "application"], POSITIONS)
] + [
    pytest.param(
        stage, position, CipherSuite.CHACHA20_POLY1305_SHA256, id=f"{stage}-{position}-chacha"
    )
    for stage, position in itertools.product(["handshake", "application"], CHACHA_POSITIONS)
]


@pytest.mark.parametrize(("stage", "position", "suite"), FLIP_CASES)
def test_flipped_bit_in_a_protected_record(
    arena: Arena, stage: str, position: str, suite: int
) -> None:
    """The first protected record of a stage with one bit flipped: refused, whatever the bit."""
    evil = arena.evil(cipher_suites=(suite,))
    if stage == "handshake":
        evil.to_wait_trust()
        evil.conn.trust_server()  # client Certificate, CertificateVerify, Finished
    else:
        evil.handshake()
        evil.conn.send_data(encode_frame(HELLO_FRAME))
    target, *rest = split_records(evil.output())
    where, alert = POSITIONS[position]
    # The rest of the flight and some zeros follow, so that a longer length finds bytes to eat.
    evil.send(flip(target, where(len(target))) + b"".join(rest) + bytes(300))
    evil.expect_alert(alert)
    arena.expect_failure(evil, alert)
    arena.check_service("a flipped bit")


# ----- replayed, reordered, dropped records -------------------------------------------------------


@pytest.mark.parametrize("stage", ["handshake", "application"])
@pytest.mark.parametrize("mischief", ["replayed", "reordered", "dropped"])
def test_replayed_reordered_or_dropped_record_is_bad_record_mac(
    arena: Arena, stage: str, mischief: str
) -> None:
    evil = arena.evil()
    if stage == "handshake":
        evil.to_wait_trust()
        evil.conn.trust_server()
        records = split_records(evil.output())
    else:
        evil.handshake()
        records = []
        for frame in (HELLO_FRAME, {"type": "command", "name": "rooms"}):
            evil.conn.send_data(encode_frame(frame))
            records += split_records(evil.output())  # queued together they would share one
    first, second, *rest = records
    wire = {"replayed": [first, first], "reordered": [second, first], "dropped": [second, *rest]}
    evil.send(b"".join(wire[mischief]))
    evil.expect_alert(A.bad_record_mac)
    sequence = 1 if mischief == "replayed" else 0
    arena.expect_failure(evil, A.bad_record_mac, f"record {sequence} failed authentication")
    arena.check_service(f"a {mischief} record")


# ----- record types -------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [0, 20, 24, 99, 255])
def test_unknown_record_type_before_keys_is_unexpected_message(
    arena: Arena, content_type: int
) -> None:
    evil = arena.evil()
    evil.send(record(content_type, b"\x01\x00"))
    evil.expect_alert(A.unexpected_message, plaintext=True)
    arena.expect_failure(evil, A.unexpected_message, f"unknown record type {content_type}")
    arena.check_service("an unknown record type")


@pytest.mark.parametrize("stage", ["handshake", "connected"])
def test_unknown_record_type_after_keys_is_unexpected_message(arena: Arena, stage: str) -> None:
    evil = arena.evil()
    if stage == "handshake":
        evil.to_wait_trust()
    else:
        evil.handshake()
    evil.send(record(24, bytes(40)))
    evil.expect_alert(A.unexpected_message)
    arena.expect_failure(evil, A.unexpected_message, "unknown record type 24")
    arena.check_service("an unknown record type")


@pytest.mark.parametrize("inner_type", [0, 20, 24, 255])
def test_unknown_inner_content_type_is_unexpected_message(arena: Arena, inner_type: int) -> None:
    """Inner type 0 is where TLS 1.3 would find zero padding: tlschat has none."""
    evil = arena.evil()
    evil.handshake()
    evil.conn.emit_record(inner_type, b"hello")
    evil.flush()
    evil.expect_alert(A.unexpected_message)
    arena.expect_failure(evil, A.unexpected_message, f"unknown inner content type {inner_type}")
    arena.check_service("an unknown inner type")


@pytest.mark.parametrize(
    "plain",
    [
        alert_record(A.user_canceled, AlertLevel.WARNING),
        record(ContentType.handshake, handshake_message(HandshakeType.key_update, b"\x00")),
    ],
    ids=["alert", "handshake"],
)
def test_unprotected_record_once_connected_is_unexpected_message(
    arena: Arena, plain: bytes
) -> None:
    evil = arena.evil()
    evil.handshake()
    evil.send(plain)
    evil.expect_alert(A.unexpected_message)
    arena.expect_failure(evil, A.unexpected_message, "record after keys were set")
    arena.check_service("an unprotected record")


# ----- floods of records that carry nothing -------------------------------------------------------


def _empty(evil: EvilClient) -> None:
    evil.conn.emit_record(ContentType.application_data, b"")


def _user_canceled(evil: EvilClient) -> None:
    evil.conn.emit_record(ContentType.alert, bytes([AlertLevel.WARNING, A.user_canceled]))


def _key_update(evil: EvilClient) -> None:
    evil.conn.update_keys(request_peer=False)


def _key_update_requested(evil: EvilClient) -> None:
    """Each one makes the server update its own key too, and say so."""
    evil.conn.update_keys(request_peer=True)


IDLE: dict[str, list[Callable[[EvilClient], None]]] = {
    "empty-records": [_empty],
    "user-canceled-warnings": [_user_canceled],
    "key-updates": [_key_update],
    "key-updates-requesting-one-back": [_key_update_requested],
    "all-kinds-mixed": [_empty, _user_canceled, _key_update, _key_update_requested],
}
MAX_IDLE = 64


def _idle_records(evil: EvilClient, kinds: list[Callable[[EvilClient], None]], count: int) -> None:
    for _, make in zip(range(count), itertools.cycle(kinds), strict=False):
        make(evil)


@pytest.mark.parametrize("kinds", IDLE.values(), ids=IDLE.keys())
def test_idle_flood_past_the_limit_is_too_many_records(
    arena: Arena, kinds: list[Callable[[EvilClient], None]]
) -> None:
    evil = arena.evil()
    evil.handshake()
    _idle_records(evil, kinds, MAX_IDLE + 1)
    evil.flush()
    evil.expect_alert(A.too_many_records)
    arena.expect_failure(
        evil, A.too_many_records, f"more than {MAX_IDLE} records in a row without data"
    )
    arena.check_service("an idle flood")


@pytest.mark.parametrize("kinds", IDLE.values(), ids=IDLE.keys())
def test_idle_records_up_to_the_limit_are_accepted_and_data_resets_the_count(
    arena: Arena, kinds: list[Callable[[EvilClient], None]]
) -> None:
    evil = arena.evil()
    evil.handshake()
    _idle_records(evil, kinds, MAX_IDLE)
    evil.flush()
    nick = evil.join_chat("idler")["nick"]  # data: the count starts again
    _idle_records(evil, kinds, MAX_IDLE)
    text = arena.unique("after 128 idle records")
    evil.say(text)
    for bystander in (arena.alice, arena.bob):
        bystander.wait_for_line(said(nick, text))
    evil.close_cleanly()
    arena.expect_quit(evil)
    arena.check_service("idle records within the limit")


# ----- alerts from the evil client ----------------------------------------------------------------


MALFORMED_ALERTS = {
    "three-bytes": (b"\x02\x28\x00", A.decode_error),
    "one-byte": (b"\x02", A.decode_error),
    "empty": (b"", A.decode_error),
    "level-3": (b"\x03\x28", A.illegal_parameter),
    "level-0": (b"\x00\x5a", A.illegal_parameter),
}


@pytest.mark.parametrize(
    ("content", "alert"), MALFORMED_ALERTS.values(), ids=MALFORMED_ALERTS.keys()
)
@pytest.mark.parametrize("stage", ["before-keys", "connected"])
def test_malformed_alert_is_refused(arena: Arena, stage: str, content: bytes, alert: A) -> None:
    evil = arena.evil()
    if stage == "before-keys":
        evil.send(record(ContentType.alert, content))
    else:
        evil.handshake()
        evil.conn.emit_record(ContentType.alert, content)
        evil.flush()
    evil.expect_alert(alert, plaintext=stage == "before-keys")
    arena.expect_failure(evil, alert)
    arena.check_service("a malformed alert")


@pytest.mark.parametrize(
    ("sent", "reported"),
    [
        (bytes([AlertLevel.FATAL, A.bad_record_mac]), A.bad_record_mac),
        (bytes([AlertLevel.WARNING, A.handshake_failure]), A.handshake_failure),
        (bytes([AlertLevel.FATAL, 99]), A.internal_error),  # an unknown code
    ],
    ids=["fatal", "warning-not-user-canceled", "unknown-code"],
)
@pytest.mark.parametrize("stage", ["before-keys", "handshake", "connected"])
def test_alert_from_the_client_ends_the_connection_without_an_answer(
    arena: Arena, stage: str, sent: bytes, reported: A
) -> None:
    evil = arena.evil()
    if stage == "before-keys":
        evil.send(record(ContentType.alert, sent))
    else:
        if stage == "handshake":
            evil.to_wait_trust()
        else:
            evil.handshake()
        evil.conn.emit_record(ContentType.alert, sent)
        evil.flush()
    assert evil.read_until_closed() == b"", "the server answered an alert"
    arena.expect_received(evil, reported)
    arena.check_service("an alert from the client")


def test_key_update_with_a_bad_value_is_illegal_parameter(arena: Arena) -> None:
    evil = arena.evil()
    evil.handshake()
    evil.conn.emit_handshake(handshake_message(HandshakeType.key_update, b"\x02"))
    evil.flush()
    evil.expect_alert(A.illegal_parameter)
    arena.expect_failure(evil, A.illegal_parameter, "request_update 2")
    arena.check_service("a bad KeyUpdate")


# ----- closure ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["before-keys", "waiting-for-trust", "connected"])
def test_close_notify_is_answered_and_ends_cleanly(arena: Arena, stage: str) -> None:
    """Not an attack: the control for the two probes below. No error, close_notify back."""
    evil = arena.evil()
    if stage == "waiting-for-trust":
        evil.to_wait_trust()
    elif stage == "connected":
        evil.handshake()
    evil.conn.emit_record(ContentType.alert, bytes([AlertLevel.WARNING, A.close_notify]))
    evil.flush()
    reply = evil.read_until_closed()
    if stage == "before-keys":
        assert reply == alert_record(A.close_notify, AlertLevel.WARNING)
    else:
        evil._feed(reply)  # the server's close_notify, under its current key
        assert evil.conn.close_notify_received and evil.conn.pending_input == 0
    arena.expect_quit(evil)
    arena.check_service("a close_notify")


def test_data_after_close_notify_is_unexpected_message_with_no_alert_sent(arena: Arena) -> None:
    """After close_notify the server may send nothing more: it reports the data, sends no alert."""
    evil = arena.evil()
    evil.handshake()
    evil.conn.emit_record(ContentType.alert, bytes([AlertLevel.WARNING, A.close_notify]))
    evil.conn.emit_application(encode_frame(HELLO_FRAME))
    evil.flush()
    evil._feed(evil.read_until_closed())
    # On the wire: exactly the server's own close_notify, no fatal alert after it.
    assert evil.conn.close_notify_received and evil.conn.pending_input == 0
    assert evil.conn.error is None
    arena.expect_failure(evil, A.unexpected_message, "data after close_notify")
    arena.check_service("data after close_notify")
