"""TLS 1.3's key schedule (RFC 8446 section 7.1) with a label prefix of our own.

The prefix is a parameter so the one implementation can be checked against RFC 8448's published
trace (prefix ``tls13 ``) while the protocol itself uses :data:`LABEL_PREFIX`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

LABEL_PREFIX = b"tlschat1 "
HASH_LENGTH = 32
_ZEROS = bytes(HASH_LENGTH)
MAX_LABEL_LENGTH = 255


def transcript_hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


EMPTY_HASH = transcript_hash(b"")


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract (RFC 5869): HMAC-SHA256 keyed with the salt."""
    return hmac.new(salt or _ZEROS, ikm, hashlib.sha256).digest()


def hkdf_expand(secret: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand (RFC 5869) with SHA-256: ``length`` bytes, at most 255 hash blocks."""
    if not 0 < length <= 255 * HASH_LENGTH:
        raise ValueError(f"HKDF-Expand output of {length} bytes is out of range")
    return HKDFExpand(algorithm=hashes.SHA256(), length=length, info=info).derive(secret)


def hkdf_expand_label(
    secret: bytes, label: bytes, context: bytes, length: int, prefix: bytes = LABEL_PREFIX
) -> bytes:
    """HKDF-Expand-Label: struct {uint16 length; opaque label<7..255>; opaque context<0..255>}."""
    full_label = prefix + label
    if len(full_label) > MAX_LABEL_LENGTH or len(context) > 255 or not 0 < length <= 255 * 32:
        raise ValueError("HKDF-Expand-Label argument out of range")
    info = (
        length.to_bytes(2, "big")
        + bytes([len(full_label)])
        + full_label
        + bytes([len(context)])
        + context
    )
    return hkdf_expand(secret, info, length)


def derive_secret(
    secret: bytes, label: bytes, transcript_digest: bytes, prefix: bytes = LABEL_PREFIX
) -> bytes:
    """Derive-Secret(secret, label, messages) with the transcript already hashed."""
    return hkdf_expand_label(secret, label, transcript_digest, HASH_LENGTH, prefix)


@dataclass(frozen=True)
class TrafficKeys:
    """AEAD key and IV derived from one traffic secret."""

    key: bytes
    iv: bytes


def traffic_keys(
    secret: bytes, key_length: int = 32, iv_length: int = 12, prefix: bytes = LABEL_PREFIX
) -> TrafficKeys:
    return TrafficKeys(
        key=hkdf_expand_label(secret, b"key", b"", key_length, prefix),
        iv=hkdf_expand_label(secret, b"iv", b"", iv_length, prefix),
    )


def finished_key(secret: bytes, prefix: bytes = LABEL_PREFIX) -> bytes:
    return hkdf_expand_label(secret, b"finished", b"", HASH_LENGTH, prefix)


def finished_verify_data(
    secret: bytes, transcript_digest: bytes, prefix: bytes = LABEL_PREFIX
) -> bytes:
    """HMAC-SHA256(finished_key, transcript hash): the body of a Finished message."""
    return hmac.new(finished_key(secret, prefix), transcript_digest, hashlib.sha256).digest()


def next_traffic_secret(secret: bytes, prefix: bytes = LABEL_PREFIX) -> bytes:
    """application_traffic_secret_N+1 for KeyUpdate."""
    return hkdf_expand_label(secret, b"traffic upd", b"", HASH_LENGTH, prefix)


class KeySchedule:
    """Walks the secrets of one handshake: early -> handshake -> master."""

    def __init__(self, prefix: bytes = LABEL_PREFIX) -> None:
        self.prefix = prefix
        self.early_secret = hkdf_extract(_ZEROS, _ZEROS)
        self.handshake_secret = b""
        self.master_secret = b""

    def _derived(self, secret: bytes) -> bytes:
        return derive_secret(secret, b"derived", EMPTY_HASH, self.prefix)

    def set_shared_secret(self, shared_secret: bytes) -> None:
        self.handshake_secret = hkdf_extract(self._derived(self.early_secret), shared_secret)
        self.master_secret = hkdf_extract(self._derived(self.handshake_secret), _ZEROS)

    def handshake_traffic_secrets(self, hello_digest: bytes) -> tuple[bytes, bytes]:
        """(client, server) handshake traffic secrets over the hash of ClientHello..ServerHello."""
        return (
            derive_secret(self.handshake_secret, b"c hs traffic", hello_digest, self.prefix),
            derive_secret(self.handshake_secret, b"s hs traffic", hello_digest, self.prefix),
        )

    def application_traffic_secrets(self, transcript_digest: bytes) -> tuple[bytes, bytes]:
        """(client, server) application traffic secrets over the hash of the whole handshake."""
        return (
            derive_secret(self.master_secret, b"c ap traffic", transcript_digest, self.prefix),
            derive_secret(self.master_secret, b"s ap traffic", transcript_digest, self.prefix),
        )
