"""Chat frames: JSON encoding, bounded decoding, typed field accessors."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tlschat.chat.envelope import MAX_BODY_BYTES, MAX_COUNTER, SignedMessage
from tlschat.chat.frames import (
    MAX_FRAME,
    FrameError,
    b64,
    decode_frame,
    encode_frame,
    field_b64,
    field_int,
    field_str,
    message_fields,
    parse_signed_message,
    say_frame,
    valid_nick,
)
from tlschat.protocol.identity import IdentityKey

from .helpers import NETWORK, NOW_MS, peer_of

# --- encode / decode -------------------------------------------------------------------------


def test_encode_is_compact_utf8_json() -> None:
    frame = {"type": "say", "body": "héllo ✓", "n": 1}
    assert encode_frame(frame) == '{"type":"say","body":"héllo ✓","n":1}'.encode()


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "hello", "nick": "alice"},
        {"type": "say", "body": "héllo ✓ 😀", "counter": MAX_COUNTER, "ts": 0, "list": [1, None]},
        {"type": "", "nested": {"a": {"b": [True, False, 1.5]}}},
    ],
)
def test_round_trip(frame: dict[str, Any]) -> None:
    assert decode_frame(encode_frame(frame)) == frame


def test_decode_accepts_exactly_max_frame() -> None:
    head = b'{"type":"x","pad":"'
    tail = b'"}'
    data = head + b"a" * (MAX_FRAME - len(head) - len(tail)) + tail
    assert len(data) == MAX_FRAME == 65536
    assert decode_frame(data)["pad"] == "a" * (MAX_FRAME - len(head) - len(tail))


def test_decode_rejects_over_64_kib() -> None:
    head = b'{"type":"x","pad":"'
    tail = b'"}'
    data = head + b"a" * (MAX_FRAME + 1 - len(head) - len(tail)) + tail
    assert len(data) == MAX_FRAME + 1
    with pytest.raises(FrameError, match="frame of 65537 bytes exceeds 65536"):
        decode_frame(data)


@pytest.mark.parametrize(
    "data",
    [b'{"type":"x","a":"\xff"}', b"\xc3(", b'{"type":"\xed\xa0\x80"}'],
    ids=["invalid-byte", "bad-continuation", "encoded-surrogate"],
)
def test_decode_rejects_non_utf8(data: bytes) -> None:
    with pytest.raises(FrameError, match="not UTF-8 JSON"):
        decode_frame(data)


@pytest.mark.parametrize("data", [b"", b"{", b"{'type': 'x'}", b'{"type":"x"} trailing', b"nul"])
def test_decode_rejects_non_json(data: bytes) -> None:
    with pytest.raises(FrameError, match="not UTF-8 JSON"):
        decode_frame(data)


@pytest.mark.parametrize("data", [b"[]", b'["type"]', b'"type"', b"1", b"null", b"true"])
def test_decode_rejects_non_object(data: bytes) -> None:
    with pytest.raises(FrameError, match="not an object with a string 'type'"):
        decode_frame(data)


@pytest.mark.parametrize(
    "data", [b"{}", b'{"kind":"x"}', b'{"type":1}', b'{"type":null}', b'{"type":["x"]}']
)
def test_decode_rejects_missing_or_non_string_type(data: bytes) -> None:
    with pytest.raises(FrameError, match="not an object with a string 'type'"):
        decode_frame(data)


def test_decode_rejects_deep_nesting_with_frame_error() -> None:
    # Regression: a deeply nested array used to raise RecursionError out of decode_frame.
    data = b"[" * 60_000
    with pytest.raises(FrameError, match="not UTF-8 JSON"):
        decode_frame(data)
    data = b'{"type":"x","a":' + b"[" * 60_000
    with pytest.raises(FrameError, match="not UTF-8 JSON"):
        decode_frame(data)


def test_decode_rejects_huge_integer_with_frame_error() -> None:
    # Regression: an integer over Python's digit limit used to raise a bare ValueError.
    data = b'{"type":"say","counter":' + b"9" * 5000 + b"}"
    with pytest.raises(FrameError, match="not UTF-8 JSON"):
        decode_frame(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.binary(max_size=512))
def test_decode_arbitrary_bytes_is_dict_or_frame_error(data: bytes) -> None:
    try:
        frame = decode_frame(data)
    except FrameError:
        return
    assert isinstance(frame, dict)
    assert isinstance(frame["type"], str)


@given(json_values)
def test_decode_arbitrary_json_is_dict_or_frame_error(value: object) -> None:
    data = json.dumps(value).encode()
    try:
        frame = decode_frame(data)
    except FrameError:
        assert not (isinstance(value, dict) and isinstance(value.get("type"), str))
        return
    assert frame == value


@given(st.text(alphabet="[]{}\"':,0123456789.-+eE \\ntrufalsu", max_size=200))
def test_decode_json_like_text_is_dict_or_frame_error(text: str) -> None:
    try:
        frame = decode_frame(text.encode())
    except FrameError:
        return
    assert isinstance(frame, dict)
    assert isinstance(frame["type"], str)


# --- field accessors -------------------------------------------------------------------------


def test_field_str_returns_value() -> None:
    assert field_str({"type": "x", "s": "héllo"}, "s", 6) == "héllo"
    assert field_str({"type": "x", "s": ""}, "s", 0) == ""


def test_field_str_bound_counts_utf8_bytes() -> None:
    frame = {"type": "x", "s": "éé"}  # 2 characters, 4 bytes
    assert field_str(frame, "s", 4) == "éé"
    with pytest.raises(FrameError, match="'s' is longer than 3 bytes"):
        field_str(frame, "s", 3)


@pytest.mark.parametrize("value", [None, 1, 1.5, True, ["a"], {"a": "b"}, b"a"])
def test_field_str_rejects_non_string(value: object) -> None:
    with pytest.raises(FrameError, match="'s' must be a string"):
        field_str({"type": "x", "s": value}, "s", 100)


def test_field_str_missing() -> None:
    with pytest.raises(FrameError, match="'s' must be a string"):
        field_str({"type": "x"}, "s", 100)


def test_field_str_rejects_lone_surrogate_with_frame_error() -> None:
    # Regression: JSON "\ud800" decodes to a str that cannot be UTF-8 encoded; field_str used
    # to raise UnicodeEncodeError, which escaped the server's FrameError handling.
    frame = decode_frame(b'{"type":"say","s":"\\ud800"}')
    with pytest.raises(FrameError, match="'s' is not valid Unicode"):
        field_str(frame, "s", 100)


@pytest.mark.parametrize("value", [0, 1, 41, 42])
def test_field_int_accepts_range(value: int) -> None:
    assert field_int({"type": "x", "n": value}, "n", 42) == value


def test_field_int_accepts_max_counter() -> None:
    assert field_int({"type": "x", "n": MAX_COUNTER}, "n", MAX_COUNTER) == (1 << 64) - 1


@pytest.mark.parametrize("value", [-1, 43, 1 << 64, True, False, 1.0, "1", None, [1]])
def test_field_int_rejects(value: object) -> None:
    with pytest.raises(FrameError, match=r"'n' must be an integer in \[0, 42\]"):
        field_int({"type": "x", "n": value}, "n", 42)


def test_field_int_missing() -> None:
    with pytest.raises(FrameError, match=r"'n' must be an integer in \[0, 42\]"):
        field_int({"type": "x"}, "n", 42)


def test_field_b64_decodes() -> None:
    assert field_b64({"type": "x", "b": "AAEC/w=="}, "b", 8) == b"\x00\x01\x02\xff"
    assert field_b64({"type": "x", "b": ""}, "b", 0) == b""


def test_field_b64_length_bound_is_on_the_text() -> None:
    frame = {"type": "x", "b": "AAEC/w=="}  # 8 characters
    with pytest.raises(FrameError, match="'b' is longer than 7 bytes"):
        field_b64(frame, "b", 7)


@pytest.mark.parametrize("text", ["not base64!", "AAE", "AA=A", "AAEC\n/w==", "AAEC/w==="])
def test_field_b64_rejects_invalid(text: str) -> None:
    with pytest.raises(FrameError, match="'b' is not base64"):
        field_b64({"type": "x", "b": text}, "b", 100)


@pytest.mark.parametrize("value", [None, 1, True, ["AA=="]])
def test_field_b64_rejects_non_string(value: object) -> None:
    with pytest.raises(FrameError, match="'b' must be a string"):
        field_b64({"type": "x", "b": value}, "b", 100)


def test_b64_helper() -> None:
    assert b64(b"\x00\x01\x02\xff") == "AAEC/w=="
    assert b64(b"") == ""


# --- nicks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "nick", ["alice", "A", "x" * 24, "Bob_99", "a-b", "[away]", "{x}", "a|b", "^_^", "`q`"]
)
def test_valid_nick_accepts(nick: str) -> None:
    assert valid_nick(nick) is True


@pytest.mark.parametrize(
    "nick",
    ["", "x" * 25, "al ice", "alice!", "héllo", "#general", "@bob", "a.b", "alice\n", "\talice"],
)
def test_valid_nick_refuses(nick: str) -> None:
    assert valid_nick(nick) is False


# --- signed-message frames -------------------------------------------------------------------


def _signed(key: IdentityKey, body: str = "hello") -> SignedMessage:
    return SignedMessage.create(key, NETWORK, "#general", 5, NOW_MS, body)


def test_say_frame_fields(ed_bob: IdentityKey) -> None:
    message = _signed(ed_bob)
    assert say_frame(message) == {
        "type": "say",
        "network": NETWORK,
        "target": "#general",
        "sender": ed_bob.fingerprint,
        "counter": 5,
        "ts": NOW_MS,
        "body": "hello",
        "sig": base64.b64encode(message.signature).decode(),
    }
    assert message_fields(message) == {k: v for k, v in say_frame(message).items() if k != "type"}


def test_parse_signed_message_round_trip(ed_bob: IdentityKey) -> None:
    message = _signed(ed_bob, "héllo ✓")
    parsed = parse_signed_message(decode_frame(encode_frame(say_frame(message))))
    assert parsed == message
    assert parsed.verify(peer_of(ed_bob)) is True


def test_parse_signed_message_body_bound(ed_bob: IdentityKey) -> None:
    assert MAX_BODY_BYTES == 4096
    at_limit = say_frame(_signed(ed_bob, "a" * 4096))
    assert parse_signed_message(at_limit).body == "a" * 4096
    with pytest.raises(FrameError, match="'body' is longer than 4096 bytes"):
        parse_signed_message(say_frame(_signed(ed_bob, "a" * 4097)))
    # The bound is in UTF-8 bytes: 2049 × "é" is 4098 bytes.
    with pytest.raises(FrameError, match="'body' is longer than 4096 bytes"):
        parse_signed_message(say_frame(_signed(ed_bob, "é" * 2049)))


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("body", None, "'body' must be a string"),
        ("target", "#" + "a" * 64, "'target' is longer than 64 bytes"),
        ("target", 7, "'target' must be a string"),
        ("sender", "S" * 65, "'sender' is longer than 64 bytes"),
        ("counter", -1, r"'counter' must be an integer in \[0, 18446744073709551615\]"),
        ("counter", 1 << 64, r"'counter' must be an integer in \[0, 18446744073709551615\]"),
        ("counter", True, r"'counter' must be an integer"),
        ("counter", "5", r"'counter' must be an integer"),
        ("ts", 1.5, r"'ts' must be an integer"),
        ("sig", "not base64!", "'sig' is not base64"),
        ("sig", "A" * 2052, "'sig' is longer than 2048 bytes"),
    ],
)
def test_parse_signed_message_rejects(
    ed_bob: IdentityKey, field: str, value: object, error: str
) -> None:
    frame = say_frame(_signed(ed_bob))
    frame[field] = value
    with pytest.raises(FrameError, match=error):
        parse_signed_message(frame)


@pytest.mark.parametrize("field", ["target", "sender", "counter", "ts", "body", "sig"])
def test_parse_signed_message_missing_field(ed_bob: IdentityKey, field: str) -> None:
    frame = say_frame(_signed(ed_bob))
    del frame[field]
    with pytest.raises(FrameError, match=f"'{field}' must be"):
        parse_signed_message(frame)
