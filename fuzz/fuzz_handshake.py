"""Fuzz the handshake codecs: decode_handshake for each message type, and HandshakeReassembler.

Run: ``python -m fuzz.fuzz_handshake [libFuzzer options] [corpus dirs]`` (or ``make fuzz``).
A message that decodes must encode back to exactly the bytes it came from (one encoding each).
"""

from __future__ import annotations

from fuzz.common import fuzz_main
from tlschat.protocol import ProtocolError
from tlschat.protocol.messages import (
    HandshakeReassembler,
    HandshakeType,
    decode_handshake,
    encode_handshake,
)


def decode_round_trip(data: bytes) -> None:
    try:
        message = decode_handshake(data)
    except ProtocolError:
        return
    assert encode_handshake(message) == data, (message, data.hex())


def reassemble(data: bytes, chunk: int) -> list[bytes] | None:
    """The raw messages found in ``data`` fed ``chunk`` bytes at a time; None if rejected."""
    reassembler = HandshakeReassembler()
    found: list[bytes] = []
    try:
        for start in range(0, len(data), chunk):
            for message, raw in reassembler.feed(data[start : start + chunk]):
                assert encode_handshake(message) == raw
                found.append(raw)
    except ProtocolError:
        return None
    return found


def check(data: bytes) -> None:
    decode_round_trip(data)
    # The same bytes as the body of each message type (and of an unknown one).
    for msg_type in (*HandshakeType, 0):
        decode_round_trip(bytes([msg_type]) + len(data).to_bytes(3, "big") + data)
    whole = reassemble(data, max(len(data), 1))
    # However the stream is cut, the same messages complete (or the same input is rejected).
    chunk = data[0] % 7 + 1 if data else 1
    pieces = reassemble(data, chunk)
    assert whole == pieces, (whole, pieces)


def main() -> None:
    fuzz_main(__spec__.name, check)


if __name__ == "__main__":
    main()
