"""Encodings shared by the end-to-end modules: vodozemac's base64, and sealed pickles.

vodozemac writes keys, signatures, MACs and messages as standard base64 without padding; this
layer uses the same form for every binary value it hands out, so one decoder reads them all.

The layer's own state (sessions with their bindings and replay memory) is pickled as JSON sealed
with AES-256-GCM. The key is HKDF-SHA256 of the caller's 32-byte pickle key, no salt, info
``b"tlschat v1 e2e pickle|" + purpose``; the purpose is the associated data too, so a pickle of
one kind never opens as another. The text is ``"v1." + base64(nonce (12 bytes) || ciphertext
and tag)``. The vodozemac pickles inside are encrypted with the pickle key as well, as vodozemac
requires.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import UnreadablePickle

PICKLE_KEY_SIZE = 32
SEALED_PREFIX = "v1."
SEALING_INFO = b"tlschat v1 e2e pickle|"
NONCE_SIZE = 12


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64decode(text: str) -> bytes:
    """The bytes of unpadded (or padded) standard base64; ValueError if it is not that."""
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("not base64") from None


def check_pickle_key(pickle_key: bytes) -> None:
    if len(pickle_key) != PICKLE_KEY_SIZE:
        raise ValueError(f"a pickle key is {PICKLE_KEY_SIZE} bytes, not {len(pickle_key)}")


def _sealing_key(pickle_key: bytes, purpose: str) -> AESGCM:
    check_pickle_key(pickle_key)
    derive = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=SEALING_INFO + purpose.encode("ascii"),
    )
    return AESGCM(derive.derive(pickle_key))


def seal(pickle_key: bytes, purpose: str, state: dict[str, Any]) -> str:
    nonce = secrets.token_bytes(NONCE_SIZE)
    plaintext = json.dumps(state, separators=(",", ":")).encode("utf-8")
    sealed = _sealing_key(pickle_key, purpose).encrypt(nonce, plaintext, purpose.encode("ascii"))
    return SEALED_PREFIX + b64encode(nonce + sealed)


def unseal(pickle_key: bytes, purpose: str, text: str) -> dict[str, Any]:
    """The state ``seal`` pickled for ``purpose``; UnreadablePickle for anything else."""
    aead = _sealing_key(pickle_key, purpose)
    if not text.startswith(SEALED_PREFIX):
        raise UnreadablePickle(f"not a sealed {purpose} pickle")
    try:
        raw = b64decode(text[len(SEALED_PREFIX) :])
        plaintext = aead.decrypt(raw[:NONCE_SIZE], raw[NONCE_SIZE:], purpose.encode("ascii"))
        state = json.loads(plaintext)
    except (ValueError, InvalidTag):
        raise UnreadablePickle(f"the {purpose} pickle does not open with this key") from None
    if not isinstance(state, dict):
        raise UnreadablePickle(f"the {purpose} pickle holds no state")
    return state
