"""The record layer: framing, AEAD protection per direction, sequence numbers.

Record on the wire: ``type (u8) || version (u16) || length (u16) || fragment``. Once a direction
is protected, every record's outer type is application_data and its fragment is
``AEAD(key, iv XOR seq, inner_plaintext, aad=header)`` with ``inner_plaintext = content || type``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from enum import IntEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from .alerts import AlertDescription, ProtocolError
from .keyschedule import next_traffic_secret, traffic_keys
from .messages import CipherSuite

RECORD_HEADER_LENGTH = 5
RECORD_VERSION = 0x0001
MAX_PLAINTEXT = 16384
TAG_LENGTH = 16
MAX_CIPHERTEXT = MAX_PLAINTEXT + 1 + TAG_LENGTH
NONCE_LENGTH = 12
KEY_LENGTH = 32
# Records one key may protect before the sender must update it (TLS 1.3's AES-GCM margin). A
# receiver enforces this limit whatever its own sending limit is configured to.
KEY_UPDATE_LIMIT = 1 << 24
DEFAULT_KEY_UPDATE_AFTER = KEY_UPDATE_LIMIT


class ContentType(IntEnum):
    alert = 21
    handshake = 22
    application_data = 23


APPLICATION_DATA = int(ContentType.application_data)

_AEADS: dict[int, Callable[[bytes], AESGCM | ChaCha20Poly1305]] = {
    CipherSuite.AES_256_GCM_SHA256: AESGCM,
    CipherSuite.CHACHA20_POLY1305_SHA256: ChaCha20Poly1305,
}


_HEADER = struct.Struct(">BHH")


def record_header(content_type: int, length: int) -> bytes:
    return _HEADER.pack(content_type, RECORD_VERSION, length)


class DirectionKeys:
    """The AEAD state of one direction: traffic secret, key, IV and next sequence number.

    ``limit`` is how many records the key may protect: the sender updates its key when
    ``sequence`` reaches it, so the receiver accepts at most ``limit + 1`` records (the last being
    the KeyUpdate) and treats any more as an attack.
    """

    def __init__(self, suite: int, secret: bytes, limit: int = DEFAULT_KEY_UPDATE_AFTER) -> None:
        self.suite = suite
        self.limit = limit
        self.generation = 0
        self._install(secret)

    def _install(self, secret: bytes) -> None:
        self.secret = secret
        keys = traffic_keys(secret, KEY_LENGTH, NONCE_LENGTH)
        self._aead = _AEADS[self.suite](keys.key)
        self._iv = int.from_bytes(keys.iv, "big")
        self.sequence = 0

    def update(self) -> None:
        self._install(next_traffic_secret(self.secret))
        self.generation += 1

    @property
    def needs_update(self) -> bool:
        return self.sequence >= self.limit

    def _nonce(self) -> bytes:
        return (self._iv ^ self.sequence).to_bytes(NONCE_LENGTH, "big")

    def _protect(self, aad: bytes, plaintext: bytes) -> bytes:
        """AEAD-encrypt under this direction's key with the current sequence number's nonce."""
        return self._aead.encrypt(self._nonce(), plaintext, aad)

    def _unprotect(self, aad: bytes, ciphertext: bytes) -> bytes:
        """AEAD-decrypt ``ciphertext || tag``; a tag that does not verify is bad_record_mac."""
        try:
            return self._aead.decrypt(self._nonce(), ciphertext, aad)
        except InvalidTag:
            raise ProtocolError(
                AlertDescription.bad_record_mac,
                f"record {self.sequence} failed authentication",
            ) from None

    def seal(self, content_type: int, content: bytes) -> bytes:
        if self.sequence > self.limit:
            raise ProtocolError(AlertDescription.key_exhausted, "write key used past its limit")
        header = record_header(APPLICATION_DATA, len(content) + 1 + TAG_LENGTH)
        sealed = self._protect(header, content + bytes([content_type]))
        self.sequence += 1
        return header + sealed

    def open(self, header: bytes, fragment: bytes) -> tuple[int, bytes]:
        if self.sequence > self.limit:
            raise ProtocolError(
                AlertDescription.key_exhausted,
                f"peer sent record {self.sequence} under one key without KeyUpdate",
            )
        if len(fragment) < 1 + TAG_LENGTH:
            raise ProtocolError(AlertDescription.bad_record_mac, "record shorter than its tag")
        inner = self._unprotect(header, fragment)
        self.sequence += 1
        content_type = inner[-1]
        if content_type not in ContentType.__members__.values():
            raise ProtocolError(
                AlertDescription.unexpected_message, f"unknown inner content type {content_type}"
            )
        content = inner[:-1]
        if len(content) > MAX_PLAINTEXT:
            raise ProtocolError(
                AlertDescription.record_overflow, f"plaintext of {len(content)} bytes"
            )
        return content_type, content


class RecordReader:
    """Splits an incoming byte stream into records, checking each header before its body."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.read_keys: DirectionKeys | None = None
        # During the handshake a peer that failed before it had keys can only send a plaintext
        # alert, so one is accepted until the handshake completes.
        self.accept_plain_alerts = False

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_record(self) -> tuple[int, bytes] | None:
        """(content type, plaintext content) of the next whole record, or None if incomplete."""
        if len(self._buffer) < RECORD_HEADER_LENGTH:
            return None
        header = bytes(self._buffer[:RECORD_HEADER_LENGTH])
        content_type, length = header[0], int.from_bytes(header[3:5], "big")
        if content_type not in ContentType.__members__.values():
            raise ProtocolError(
                AlertDescription.unexpected_message, f"unknown record type {content_type}"
            )
        version = int.from_bytes(header[1:3], "big")
        if version != RECORD_VERSION:
            raise ProtocolError(AlertDescription.protocol_version, f"record version {version:#06x}")
        protected = self.read_keys is not None
        limit = MAX_CIPHERTEXT if protected else MAX_PLAINTEXT
        if length > limit:
            raise ProtocolError(
                AlertDescription.record_overflow, f"record length {length} exceeds {limit}"
            )
        if len(self._buffer) < RECORD_HEADER_LENGTH + length:
            return None
        fragment = bytes(self._buffer[RECORD_HEADER_LENGTH : RECORD_HEADER_LENGTH + length])
        del self._buffer[: RECORD_HEADER_LENGTH + length]
        if self.read_keys is None:
            if content_type == ContentType.application_data:
                raise ProtocolError(
                    AlertDescription.unexpected_message, "application data before keys"
                )
            return content_type, fragment
        if content_type == ContentType.alert and self.accept_plain_alerts:
            return content_type, fragment
        if content_type != ContentType.application_data:
            raise ProtocolError(
                AlertDescription.unexpected_message,
                f"unprotected {ContentType(content_type).name} record after keys were set",
            )
        return self.read_keys.open(header, fragment)


def plaintext_record(content_type: int, content: bytes) -> bytes:
    return record_header(content_type, len(content)) + content
