"""Fuzz the record layer: RecordReader on arbitrary bytes, without keys and with each suite's keys.

Run: ``python -m fuzz.fuzz_record [libFuzzer options] [corpus dirs]`` (or ``make fuzz``).
"""

from __future__ import annotations

from fuzz.common import fuzz_main
from tlschat.protocol import ProtocolError
from tlschat.protocol.messages import CipherSuite
from tlschat.protocol.record import MAX_PLAINTEXT, ContentType, DirectionKeys, RecordReader

# A fixed traffic secret: the corpus holds records sealed under it (see make_corpus.py).
SECRET = bytes(range(32))
SUITES = (CipherSuite.AES_256_GCM_SHA256, CipherSuite.CHACHA20_POLY1305_SHA256)


def readers() -> list[RecordReader]:
    """No keys; AES-GCM keys; ChaCha20 keys that still accept a plaintext alert."""
    plain = RecordReader()
    aes = RecordReader()
    aes.read_keys = DirectionKeys(SUITES[0], SECRET)
    chacha = RecordReader()
    chacha.read_keys = DirectionKeys(SUITES[1], SECRET)
    chacha.accept_plain_alerts = True
    return [plain, aes, chacha]


def drain(reader: RecordReader) -> None:
    while True:
        record = reader.next_record()
        if record is None:
            return
        content_type, content = record
        assert content_type in ContentType.__members__.values(), content_type
        assert len(content) <= MAX_PLAINTEXT, len(content)


def check(data: bytes) -> None:
    # Whole, then the same bytes in two pieces: a record split anywhere must read the same.
    for pieces in ([data], [data[: len(data) // 2], data[len(data) // 2 :]]):
        for reader in readers():
            try:
                for piece in pieces:
                    reader.feed(piece)
                    drain(reader)
            except ProtocolError:
                pass


def main() -> None:
    fuzz_main(__spec__.name, check)


if __name__ == "__main__":
    main()
