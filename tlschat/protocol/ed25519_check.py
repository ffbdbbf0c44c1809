"""Ed25519 signature checks through vodozemac (curve25519-dalek's ``verify_strict``).

Why not ``cryptography``: the server checks one Ed25519 signature per chat line and one per
handshake, and on this project's machine OpenSSL 4 takes 105 us for it where dalek takes 37 us
(docs/BENCHMARKS.md, "What each change bought"). vodozemac is already a dependency, for the
end-to-end layer.

``verify_strict`` is RFC 8032's check with a canonical ``S``, plus refusals of small-order keys
and small-order ``R``: it accepts no signature that OpenSSL refuses, and what it refuses beyond
OpenSSL no honest signer makes.
"""

from __future__ import annotations

import base64
import functools

import vodozemac

RAW_KEY_SIZE = 32
SIGNATURE_SIZE = 64
# Parsed keys kept for the keys seen most recently: a chat's active senders, whose every line is
# checked, are parsed once.
CACHED_KEYS = 4096


def _unpadded(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


@functools.lru_cache(maxsize=CACHED_KEYS)
def _parsed(raw_key: bytes) -> vodozemac.Ed25519PublicKey | None:
    try:
        return vodozemac.Ed25519PublicKey.from_base64(_unpadded(raw_key))
    except (vodozemac.KeyException, vodozemac.DecodeException):
        return None


def ed25519_verifies(raw_key: bytes, data: bytes, signature: bytes) -> bool:
    """True if ``signature`` is the Ed25519 signature of ``data`` by the 32-byte ``raw_key``."""
    if len(raw_key) != RAW_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    key = _parsed(raw_key)
    if key is None:
        return False
    try:
        key.verify_signature(data, vodozemac.Ed25519Signature.from_base64(_unpadded(signature)))
    except (vodozemac.SignatureException, vodozemac.DecodeException):
        return False
    return True
