"""Handshake probes against the real server process (docs/PROTOCOL.md sections 3, 5-14, 19-20).

Each probe ends with the four checks of conftest.py: the alert the server logs, the alert on the
wire (read as plaintext, or decrypted with the evil client's keys; or, when the transport is gone,
that nothing could be sent), the server closing the socket, and a fresh client still chatting with
the two clients connected since the module started.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tlschat.chat.frames import encode_frame
from tlschat.protocol import AlertDescription as A
from tlschat.protocol import State
from tlschat.protocol.alerts import AlertLevel
from tlschat.protocol.messages import (
    MAX_HANDSHAKE_BODY,
    CertificateType,
    CipherSuite,
    HandshakeType,
)
from tlschat.protocol.record import RECORD_HEADER_LENGTH, ContentType

from .conftest import HANDSHAKE_TIMEOUT, Arena, said
from .evil import (
    PROTECTED_ALERT_LENGTH,
    EvilClient,
    RewritingProxy,
    flip,
    handshake_message,
    new_identity,
    record,
    sample_messages,
    signed_say,
    split_records,
    x25519_share,
)

SAMPLES = sample_messages(new_identity())
CLIENT_HELLO_RECORD = record(ContentType.handshake, SAMPLES["ClientHello"])


# ----- the connection cut at every step -----------------------------------------------------------

CUTS = [
    "nothing-sent",
    "mid-record-header",
    "mid-client-hello",
    "after-client-hello",
    "waiting-for-trust",
    "after-certificate",
    "after-certificate-verify",
    "mid-finished-record",
    "after-finished",
    "connected",
    "mid-application-record",
    "mid-application-message",
]


def _advance_to_cut(evil: EvilClient, cut: str) -> None:
    """Perform the honest handshake up to ``cut`` (and not a byte further)."""
    if cut == "nothing-sent":
        return
    evil.conn.emit_handshake(evil.conn.build_client_hello())
    hello = evil.output()
    if cut in ("mid-record-header", "mid-client-hello"):
        evil.send(hello[:3] if cut == "mid-record-header" else hello[: len(hello) // 2])
        return
    evil.send(hello)
    if cut == "after-client-hello":
        return
    evil.read_until(lambda: evil.conn.state is State.WAIT_TRUST, "server flight")
    if cut == "waiting-for-trust":
        return
    certificate, verify, finished = evil.conn.build_client_flight()
    evil.conn.emit_handshake(certificate)
    evil.flush()
    if cut == "after-certificate":
        return
    evil.conn.emit_handshake(verify)
    evil.flush()
    if cut == "after-certificate-verify":
        return
    evil.conn.emit_handshake(finished)
    sealed = evil.output()
    evil.conn.switch_to_application_keys()
    if cut == "mid-finished-record":
        evil.send(sealed[:-7])
        return
    evil.send(sealed)
    if cut == "after-finished":
        return
    evil.wait_connected()
    if cut == "connected":
        return
    if cut == "mid-application-record":
        evil.conn.send_data(encode_frame({"type": "hello", "nick": "cut"}))
        evil.send(evil.output()[:20])
        return
    assert cut == "mid-application-message"
    evil.conn.emit_application(b'{"type":"hel', length=30)  # 12 of the 30 bytes announced
    evil.flush()


@pytest.mark.parametrize("how", ["fin", "rst"])
@pytest.mark.parametrize("cut", CUTS)
def test_connection_cut_at_every_step(arena: Arena, cut: str, how: str) -> None:
    """FIN: the server reports truncated and sends nothing (the transport is gone); RST: it reports
    the connection lost. Either way no traceback, and it serves everyone else."""
    evil = arena.evil()
    _advance_to_cut(evil, cut)
    if how == "fin":
        evil.half_close()
        evil.expect_closed_without_alert()  # anything still in flight is read, none of it alerts
        arena.expect_failure(evil, A.truncated, "connection ended without close_notify")
    else:
        evil.abort()  # no alert can reach a reset socket: nothing to read on our side either
        arena.expect_connection_lost(evil)
    arena.check_service(f"a cut {cut}")


@pytest.mark.parametrize("length", range(len(CLIENT_HELLO_RECORD)))
def test_truncated_client_hello_then_close_is_truncated(arena: Arena, length: int) -> None:
    evil = arena.evil()
    evil.conn.emit_handshake(evil.conn.build_client_hello())
    hello = evil.output()
    assert len(hello) == len(CLIENT_HELLO_RECORD)
    if length:
        evil.send(hello[:length])
    evil.half_close()
    assert evil.read_until_closed() == b"", "the server answered a partial ClientHello"
    arena.expect_failure(evil, A.truncated, "connection ended without close_notify")
    arena.check_service("a truncated ClientHello")


@pytest.mark.parametrize(
    "stall",
    ["nothing-sent", "half-client-hello", "dripping-client-hello", "waiting-for-trust"],
)
def test_stalled_handshake_is_cut_with_handshake_timeout(arena: Arena, stall: str) -> None:
    """The server was started with --handshake-timeout 2."""
    started = time.monotonic()
    evil = arena.evil()
    if stall == "half-client-hello":
        evil.conn.emit_handshake(evil.conn.build_client_hello())
        hello = evil.output()
        evil.send(hello[: len(hello) // 2])
    elif stall == "dripping-client-hello":
        # A byte every 0.3 s: activity does not move the deadline.
        evil.conn.emit_handshake(evil.conn.build_client_hello())
        sent = evil.drip(evil.output(), 0.3)
        assert 0 < sent < len(CLIENT_HELLO_RECORD)
    elif stall == "waiting-for-trust":
        evil.to_wait_trust()
    plaintext = stall != "waiting-for-trust"
    evil.expect_alert(A.handshake_timeout, plaintext=plaintext)
    elapsed = time.monotonic() - started
    assert HANDSHAKE_TIMEOUT - 0.2 <= elapsed <= HANDSHAKE_TIMEOUT + 2.0, elapsed
    arena.expect_failure(evil, A.handshake_timeout, "handshake did not finish in time")
    arena.check_service("a stalled handshake")


# ----- split and coalesced: the same handshake ----------------------------------------------------


def _flight_in_records(evil: EvilClient, fragment: int) -> bytes:
    for message in evil.conn.build_client_flight():
        evil.conn.emit_handshake(message, fragment=fragment)
    wire = evil.output()
    evil.conn.switch_to_application_keys()
    return wire


def _coalesced(evil: EvilClient, groups: list[list[int]]) -> bytes:
    messages = evil.conn.build_client_flight()
    for group in groups:
        evil.conn.emit_handshake(b"".join(messages[i] for i in group))
    wire = evil.output()
    evil.conn.switch_to_application_keys()
    return wire


def _flight_and_first_message(evil: EvilClient) -> bytes:
    """The flight, then the hello frame under the new application key, in one write."""
    wire = _flight_in_records(evil, 16384)
    evil.conn.emit_application(encode_frame({"type": "hello", "nick": "coalescer"}))
    return wire + evil.output()


SHAPES: dict[str, tuple[int, Callable[[EvilClient], bytes], bool]] = {
    # name: (ClientHello bytes per record, the client flight's wire bytes, send byte by byte)
    "records-of-one-byte": (1, lambda evil: _flight_in_records(evil, 1), False),
    "stream-byte-by-byte": (16384, lambda evil: _flight_in_records(evil, 16384), True),
    "records-of-one-byte-sent-byte-by-byte": (1, lambda evil: _flight_in_records(evil, 1), True),
    "hello-in-two-records": (40, lambda evil: _flight_in_records(evil, 16384), False),
    "flight-in-one-record": (16384, lambda evil: _coalesced(evil, [[0, 1, 2]]), False),
    "certificate-and-verify-in-one-record": (
        16384,
        lambda evil: _coalesced(evil, [[0, 1], [2]]),
        False,
    ),
    "flight-and-first-message-in-one-write": (16384, _flight_and_first_message, False),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_split_and_coalesced_handshakes_complete(arena: Arena, shape: str) -> None:
    """However the client's bytes are cut into records and writes, the outcome is the same as
    whole: the handshake completes and the client chats."""
    fragment, flight, bytewise = SHAPES[shape]
    evil = arena.evil()
    evil.conn.emit_handshake(evil.conn.build_client_hello(), fragment=fragment)
    hello = evil.output()
    assert len(split_records(hello)) == -(-len(SAMPLES["ClientHello"]) // fragment)
    send = evil.send_bytewise if bytewise else evil.send
    send(hello)
    evil.read_until(lambda: evil.conn.state is State.WAIT_TRUST, "server flight")
    send(flight(evil))
    evil.wait_connected()
    if shape == "flight-and-first-message-in-one-write":
        evil.wait_frame(lambda f: f.get("type") == "joined", "joined")
        nick = next(f for f in evil.frames if f.get("type") == "welcome")["nick"]
    else:
        nick = evil.join_chat("splitter")["nick"]
    # An application message in records of one byte each: data, so never idle.
    text = arena.unique("split to pieces")
    evil.conn.emit_application(
        encode_frame(signed_say(evil.network, evil.identity, text)), fragment=1
    )
    evil.flush()
    for bystander in (arena.alice, arena.bob):
        bystander.wait_for_line(said(nick, text))
    evil.close_cleanly()
    arena.expect_quit(evil)
    arena.check_service("a split handshake")


def test_client_hello_and_more_in_one_record_is_unexpected_message(arena: Arena) -> None:
    """A message that changes keys must end its record: the rest would be read with old keys."""
    evil = arena.evil()
    hello = evil.conn.build_client_hello()
    evil.conn.emit_handshake(hello + SAMPLES["Certificate"])
    evil.flush()
    evil.expect_alert(A.unexpected_message)  # after the server's flight, under its handshake key
    assert evil.conn.state is State.CLOSED
    arena.expect_failure(
        evil, A.unexpected_message, "handshake data after a key change in the same record"
    )
    arena.check_service("a coalesced ClientHello")


# ----- malformed messages -------------------------------------------------------------------------


def _with_trailing_byte(message: bytes) -> bytes:
    return handshake_message(message[0], message[4:] + b"\x00")


TRAILING = ["ClientHello", "Certificate", "CertificateVerify", "Finished", "KeyUpdate"]


@pytest.mark.parametrize("message", TRAILING)
def test_trailing_bytes_after_a_message_are_decode_error(arena: Arena, message: str) -> None:
    evil = arena.evil()
    plaintext = message == "ClientHello"
    if plaintext:
        evil.send_client_hello(trailing=b"\x00")
    elif message == "KeyUpdate":
        evil.handshake()
        evil.conn.emit_handshake(_with_trailing_byte(SAMPLES["KeyUpdate"]))
        evil.flush()
    else:
        evil.to_wait_trust()
        flight = dict(
            zip(
                ["Certificate", "CertificateVerify", "Finished"],
                [
                    evil.conn.build_certificate,
                    evil.conn.build_certificate_verify,
                    evil.conn.build_finished,
                ],
                strict=True,
            )
        )
        for name, build in flight.items():
            raw = build()
            if name == message:
                evil.conn.emit_handshake(_with_trailing_byte(raw))
                break
            evil.conn.emit_handshake(raw)
        evil.flush()
    evil.expect_alert(A.decode_error, plaintext=plaintext)
    arena.expect_failure(evil, A.decode_error, "1 trailing bytes")
    arena.check_service("trailing bytes")


@pytest.mark.parametrize("stage", ["first-message", "handshake", "connected"])
def test_handshake_length_over_the_maximum_is_refused_from_its_header(
    arena: Arena, stage: str
) -> None:
    evil = arena.evil()
    header = handshake_message(HandshakeType.client_hello, b"", length=MAX_HANDSHAKE_BODY + 1)
    if stage == "first-message":
        evil.send(record(ContentType.handshake, header))
    else:
        if stage == "handshake":
            evil.to_wait_trust()
        else:
            evil.handshake()
        evil.conn.emit_handshake(header)
        evil.flush()
    evil.expect_alert(A.decode_error, plaintext=stage == "first-message")
    arena.expect_failure(evil, A.decode_error, f"{MAX_HANDSHAKE_BODY + 1} bytes exceeds")
    arena.check_service("an oversized handshake header")


# ----- every wrong message at every state ---------------------------------------------------------

WRONG_MESSAGES = {
    "WAIT_CLIENT_HELLO": [
        "ServerHello",
        "Certificate",
        "CertificateVerify",
        "Finished",
        "KeyUpdate",
    ],
    "WAIT_CLIENT_CERTIFICATE": [
        "ClientHello",
        "ServerHello",
        "CertificateVerify",
        "Finished",
        "KeyUpdate",
    ],
    "WAIT_CLIENT_CERTIFICATE_VERIFY": [
        "ClientHello",
        "ServerHello",
        "Certificate",
        "Finished",
        "KeyUpdate",
    ],
    "WAIT_CLIENT_FINISHED": [
        "ClientHello",
        "ServerHello",
        "Certificate",
        "CertificateVerify",
        "KeyUpdate",
    ],
    "CONNECTED": ["ClientHello", "ServerHello", "Certificate", "CertificateVerify", "Finished"],
}
WRONG_CASES = [
    pytest.param(state, message, id=f"{message}-in-{state}")
    for state, messages in WRONG_MESSAGES.items()
    for message in messages
]


def _advance_server_to(evil: EvilClient, state: str) -> None:
    """Bring the server to ``state`` honestly (our side stays able to read its answers)."""
    if state == "WAIT_CLIENT_HELLO":
        return
    if state == "CONNECTED":
        evil.handshake()
        return
    evil.to_wait_trust()
    steps = [evil.conn.build_certificate, evil.conn.build_certificate_verify]
    count = ["WAIT_CLIENT_CERTIFICATE", "WAIT_CLIENT_CERTIFICATE_VERIFY", "WAIT_CLIENT_FINISHED"]
    for build in steps[: count.index(state)]:
        evil.conn.emit_handshake(build())


@pytest.mark.parametrize(("state", "message"), WRONG_CASES)
def test_wrong_message_for_the_state_is_unexpected_message(
    arena: Arena, state: str, message: str
) -> None:
    evil = arena.evil()
    _advance_server_to(evil, state)
    evil.conn.emit_handshake(SAMPLES[message])
    evil.flush()
    evil.expect_alert(A.unexpected_message, plaintext=state == "WAIT_CLIENT_HELLO")
    arena.expect_failure(evil, A.unexpected_message, f"{message} in state {state}")
    arena.check_service("a message out of place")


def test_unknown_handshake_type_first_is_unexpected_message(arena: Arena) -> None:
    evil = arena.evil()
    evil.send(record(ContentType.handshake, handshake_message(99, b"\x00" * 8)))
    evil.expect_alert(A.unexpected_message, plaintext=True)
    arena.expect_failure(evil, A.unexpected_message, "unknown handshake type 99")
    arena.check_service("an unknown handshake type")


@pytest.mark.parametrize("stage", ["client-hello", "client-certificate"])
def test_alert_inside_a_split_handshake_message_is_unexpected_message(
    arena: Arena, stage: str
) -> None:
    evil = arena.evil()
    if stage == "client-hello":
        message = evil.conn.build_client_hello()
    else:
        evil.to_wait_trust()
        message = evil.conn.build_certificate()
    evil.conn.emit_handshake(message[:10])
    evil.conn.emit_record(ContentType.alert, bytes([AlertLevel.WARNING, A.user_canceled]))
    evil.conn.emit_handshake(message[10:])
    evil.flush()
    evil.expect_alert(A.unexpected_message, plaintext=stage == "client-hello")
    arena.expect_failure(evil, A.unexpected_message, "alert inside a split handshake message")
    arena.check_service("an alert inside a message")


def test_empty_handshake_record_is_unexpected_message(arena: Arena) -> None:
    evil = arena.evil()
    evil.send(record(ContentType.handshake, b""))
    evil.expect_alert(A.unexpected_message, plaintext=True)
    arena.expect_failure(evil, A.unexpected_message, "empty handshake record")
    arena.check_service("an empty handshake record")


# ----- duplicates ---------------------------------------------------------------------------------


def test_client_hello_twice_in_one_write_is_unexpected_message(arena: Arena) -> None:
    evil = arena.evil()
    evil.conn.emit_handshake(evil.conn.build_client_hello())
    hello = evil.output()
    evil.send(hello + hello)
    evil.expect_alert(A.unexpected_message)  # the flight for the first, then the alert
    arena.expect_failure(evil, A.unexpected_message, "unprotected handshake record after keys")
    arena.check_service("a duplicate ClientHello")


def test_client_hello_again_after_the_flight_is_unexpected_message(arena: Arena) -> None:
    evil = arena.evil()
    evil.to_wait_trust()
    evil.send(record(ContentType.handshake, SAMPLES["ClientHello"]))
    evil.expect_alert(A.unexpected_message)
    arena.expect_failure(evil, A.unexpected_message, "unprotected handshake record after keys")
    arena.check_service("a second ClientHello")


def test_finished_twice_in_one_record_is_unexpected_message(arena: Arena) -> None:
    evil = arena.evil()
    evil.to_wait_trust()
    certificate, verify, finished = evil.conn.build_client_flight()
    evil.conn.emit_handshake(certificate)
    evil.conn.emit_handshake(verify)
    evil.conn.emit_handshake(finished + finished)
    evil.flush()
    evil.conn.switch_to_application_keys()
    # The server verified the first Finished, answered with its own, and only then refused
    # the rest of the record: its alert is under its new key, which we read after its Finished.
    reply = evil.expect_alert(A.unexpected_message)
    assert len(split_records(reply)) == 2
    arena.expect_failure(
        evil, A.unexpected_message, "handshake data after a key change in the same record"
    )
    arena.check_service("a duplicate Finished")


def test_finished_repeated_under_the_handshake_key_is_bad_record_mac(arena: Arena) -> None:
    """After the first Finished the server reads with the client's application key."""
    evil = arena.evil()
    evil.to_wait_trust()
    certificate, verify, finished = evil.conn.build_client_flight()
    for message in (certificate, verify, finished, finished):
        evil.conn.emit_handshake(message)
    evil.flush()
    evil.conn.switch_to_application_keys()
    evil.expect_alert(A.bad_record_mac)
    arena.expect_failure(evil, A.bad_record_mac, "record 0 failed authentication")
    arena.check_service("a repeated Finished")


def test_finished_again_once_connected_is_unexpected_message(arena: Arena) -> None:
    evil = arena.evil()
    evil.to_wait_trust()
    certificate, verify, finished = evil.conn.build_client_flight()
    for message in (certificate, verify, finished):
        evil.conn.emit_handshake(message)
    evil.flush()
    evil.conn.switch_to_application_keys()
    evil.wait_connected()
    evil.conn.emit_handshake(finished)
    evil.flush()
    evil.expect_alert(A.unexpected_message)
    arena.expect_failure(evil, A.unexpected_message, "Finished in state CONNECTED")
    arena.check_service("a late Finished")


# ----- application data before the handshake completes --------------------------------------------


@pytest.mark.parametrize(
    "when", ["first", "after-client-hello", "after-certificate", "after-certificate-verify"]
)
@pytest.mark.parametrize("content", [b"\x00\x00\x02hi", b""], ids=["data", "empty"])
def test_application_data_before_the_handshake_completes_is_unexpected_message(
    arena: Arena, when: str, content: bytes
) -> None:
    evil = arena.evil()
    if when == "first":
        evil.send(record(ContentType.application_data, content))
        reason = "application data before keys"
    else:
        state = {
            "after-client-hello": "WAIT_CLIENT_CERTIFICATE",
            "after-certificate": "WAIT_CLIENT_CERTIFICATE_VERIFY",
            "after-certificate-verify": "WAIT_CLIENT_FINISHED",
        }[when]
        _advance_server_to(evil, state)
        evil.conn.emit_record(ContentType.application_data, content)  # under the handshake key
        evil.flush()
        reason = f"application data in state {state}"
    evil.expect_alert(A.unexpected_message, plaintext=when == "first")
    arena.expect_failure(evil, A.unexpected_message, reason)
    arena.check_service("early application data")


# ----- the client's identity ----------------------------------------------------------------------


def _bad_signature(evil: EvilClient) -> list[bytes]:
    certificate = evil.conn.build_certificate()
    verify = evil.conn.build_certificate_verify()
    return [certificate, flip(verify, len(verify) - 1)]


def _signed_by_another_key(evil: EvilClient) -> list[bytes]:
    """The Certificate names one key; the CertificateVerify is made with another."""
    return [
        evil.conn.build_certificate(data=new_identity().spki_der),
        evil.conn.build_certificate_verify(),
    ]


CLIENT_AUTH: dict[str, tuple[Callable[[EvilClient], list[bytes]], A, str]] = {
    "signature-bit-flipped": (_bad_signature, A.decrypt_error, "signature does not verify"),
    "signature-by-another-key": (
        _signed_by_another_key,
        A.decrypt_error,
        "signature does not verify",
    ),
    "garbage-key": (
        lambda evil: [evil.conn.build_certificate(data=b"not a key at all")],
        A.bad_certificate,
        "unparseable public key",
    ),
    "x509-instead-of-raw-key": (
        lambda evil: [evil.conn.build_certificate(certificate_type=CertificateType.x509)],
        A.unsupported_certificate,
        "client must send its raw public key",
    ),
    "finished-bit-flipped": (
        lambda evil: [*evil.conn.build_client_flight()[:2], flip(evil.conn.build_finished(), 9)],
        A.decrypt_error,
        "Finished does not verify",
    ),
}


@pytest.mark.parametrize(
    ("messages", "alert", "reason"), CLIENT_AUTH.values(), ids=CLIENT_AUTH.keys()
)
def test_bad_client_authentication_is_refused(
    arena: Arena, messages: Callable[[EvilClient], list[bytes]], alert: A, reason: str
) -> None:
    evil = arena.evil()
    evil.to_wait_trust()
    for message in messages(evil):
        evil.conn.emit_handshake(message)
    evil.flush()
    evil.expect_alert(alert)
    arena.expect_failure(evil, alert, reason)
    arena.check_service("bad client authentication")


# ----- X25519 shares ------------------------------------------------------------------------------

BAD_SHARES = {
    "empty": b"",
    "31-bytes": x25519_share()[:31],
    "33-bytes": x25519_share() + b"\x09",
    "255-bytes": bytes(range(255)),
    "all-zero": bytes(32),
    "all-zero-high-bit": bytes(31) + b"\x80",
    "low-order-e0eb": bytes.fromhex(
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"
    ),
    "low-order-e0eb-high-bit": bytes.fromhex(
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880"
    ),
    "low-order-5f9c": bytes.fromhex(
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"
    ),
    "one": b"\x01" + bytes(31),
    "p-minus-1": bytes.fromhex("ec" + "ff" * 30 + "7f"),
    "p": bytes.fromhex("ed" + "ff" * 30 + "7f"),
    "p-plus-1": bytes.fromhex("ee" + "ff" * 30 + "7f"),
}


@pytest.mark.parametrize("share", BAD_SHARES.values(), ids=BAD_SHARES.keys())
def test_bad_x25519_share_is_illegal_parameter(arena: Arena, share: bytes) -> None:
    evil = arena.evil()
    evil.send_client_hello(key_share=share)
    evil.expect_alert(A.illegal_parameter, plaintext=True)
    reason = "low-order point" if len(share) == 32 else f"X25519 share of {len(share)} bytes"
    arena.expect_failure(evil, A.illegal_parameter, reason)
    arena.check_service("a bad share")


def test_x25519_share_with_the_high_bit_set_is_accepted(arena: Arena) -> None:
    """RFC 7748 ignores the top bit of the u-coordinate: the same point, the same secret."""
    evil = arena.evil()
    share = bytearray(evil.conn._key_share)
    share[31] |= 0x80
    evil.to_wait_trust(key_share=bytes(share))
    evil.finish_handshake()
    nick = evil.join_chat("highbit")["nick"]
    text = arena.unique("high bit set")
    evil.say(text)
    for bystander in (arena.alice, arena.bob):
        bystander.wait_for_line(said(nick, text))
    evil.close_cleanly()
    arena.expect_quit(evil)
    arena.check_service("a share with the high bit set")


# ----- versions and suites ------------------------------------------------------------------------

NEGOTIATION = {
    "version-1-client": ({"versions": (0x0001,)}, A.protocol_version, "no common version"),
    "version-2-client": ({"versions": (0x0002,)}, A.protocol_version, "no common version"),
    "version-3-client": ({"versions": (0x0003,)}, A.protocol_version, "no common version"),
    "unknown-version": ({"versions": (0x0005,)}, A.protocol_version, "no common version"),
    "tls-versions": ({"versions": (0x0304, 0x0303)}, A.protocol_version, "no common version"),
    "unknown-suites": (
        {"cipher_suites": (0x1301, 0x1302)},
        A.handshake_failure,
        "no common cipher suite",
    ),
    "no-rsa-pss": (
        {"signature_algorithms": (0x0807,)},
        A.handshake_failure,
        "client cannot verify rsa_pss_rsae_sha256 signatures",
    ),
}


@pytest.mark.parametrize(
    ("forged", "alert", "reason"), NEGOTIATION.values(), ids=NEGOTIATION.keys()
)
def test_nothing_in_common_is_refused(
    arena: Arena, forged: dict[str, tuple[int, ...]], alert: A, reason: str
) -> None:
    evil = arena.evil()
    evil.send_client_hello(**forged)
    evil.expect_alert(alert, plaintext=True)
    arena.expect_failure(evil, alert, reason)
    arena.check_service("nothing in common")


@pytest.mark.parametrize("version", [0x0000, 0x0002, 0x0301, 0x0303, 0xFFFF])
def test_record_version_other_than_one_is_protocol_version(arena: Arena, version: int) -> None:
    evil = arena.evil()
    evil.send(record(ContentType.handshake, SAMPLES["ClientHello"], version=version))
    evil.expect_alert(A.protocol_version, plaintext=True)
    arena.expect_failure(evil, A.protocol_version, f"record version {version:#06x}")
    arena.check_service("a wrong record version")


def test_unknown_versions_and_suites_beside_ours_are_ignored(arena: Arena) -> None:
    evil = arena.evil()
    evil.to_wait_trust(
        versions=(0x0304, 0x0001, 0x0004, 0x7F00), cipher_suites=(0x1301, 0x0002, 0xFAFA)
    )
    assert evil.conn.suite == CipherSuite.CHACHA20_POLY1305_SHA256
    evil.finish_handshake()
    evil.join_chat("lenient")
    evil.close_cleanly()
    arena.expect_quit(evil)
    arena.check_service("extra versions and suites")


def _suite_list_offset(hello_record: bytes) -> int:
    """Where the ClientHello's cipher_suites list (its u8 length) starts in its record."""
    versions = RECORD_HEADER_LENGTH + 4 + 32
    return versions + 1 + hello_record[versions]


def test_suite_list_rewritten_in_transit_is_bad_record_mac(arena: Arena) -> None:
    """A man in the middle turns AES-GCM in the real client's offer into an unknown code, so
    that the real server picks ChaCha20. Both sides hash what they saw: the handshake keys
    differ, the first protected record fails, and neither reveals anything more."""

    def rewrite(direction: str, index: int, data: bytes) -> bytes:
        if direction != "c2s" or index != 0:
            return data
        offset = _suite_list_offset(data)
        suites = data[offset + 1 : offset + 1 + data[offset]]
        assert suites == bytes.fromhex("00010002"), suites.hex()
        return data[: offset + 1] + bytes.fromhex("fafa0002") + data[offset + 5 :]

    proxy = RewritingProxy(arena.server.port, rewrite)
    arena.harness.proxies.append(proxy)
    mark = arena.server.mark()
    victim = arena.harness.client("mitm-victim", proxy.port, home=arena.home("mitm"))
    assert victim.wait_exit() == 1, victim.describe()
    # (1) both ends name the failure
    victim.wait_for_line(
        "[!] Handshake failed: bad_record_mac (client alert raised)", stream="stderr"
    )
    (connection,) = proxy.connections
    label = str(tuple(connection.upstream.getsockname()[:2]))
    arena.server.wait_for_line(f"[!] {label}: bad_record_mac (server alert raised)", start=mark)
    arena.server.wait_for_line(f"[-] Client {label} disconnected (protocol error:", start=mark)
    # (2) on the wire: the server really chose ChaCha20; then each side sent exactly one
    # protected record of an alert's size (neither could read the other's), and the client
    # never sent its Certificate.
    deadline = time.monotonic() + 5.0
    while len(proxy.records("s2c")) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    c2s, s2c = proxy.records("c2s"), proxy.records("s2c")
    server_hello = s2c[0]
    assert server_hello[0] == ContentType.handshake
    suite = int.from_bytes(server_hello[RECORD_HEADER_LENGTH + 4 + 2 + 32 :][:2])
    assert suite == CipherSuite.CHACHA20_POLY1305_SHA256
    assert [len(r) for r in c2s[1:]] == [PROTECTED_ALERT_LENGTH], c2s
    assert len(s2c) == 4 and len(s2c[3]) == PROTECTED_ALERT_LENGTH, [len(r) for r in s2c]
    # (3) both closed: the proxy saw both directions end
    assert victim.find("Handshake complete", stream="stderr") is None
    arena.check_service("a man in the middle")
