"""The text of one private message under its own key (docs/PROTOCOL.md, "Encrypted private
messages").

A private message is sealed once with AES-256-GCM under a fresh random 32-byte key; the key
alone travels over Olm to each device, so a message for eight devices is encrypted once, not
eight times. The ciphertext is ``nonce (12 bytes) || AES-256-GCM(key, nonce, plaintext, aad)``
with ``aad = b"tlschat v3 private message\\x00"``. A key is used for one message only, so a
random nonce never repeats under it.
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import E2eError

PRIVATE_AAD = b"tlschat v3 private message\x00"
PRIVATE_KEY_SIZE = 32
PRIVATE_NONCE_SIZE = 12
TAG_SIZE = 16
# A sealed chat line is at most a signature and a 4096-byte body with its fields: far below this.
MAX_PRIVATE_PLAINTEXT = 8192


class PrivateUndecryptable(E2eError):
    """A private message that does not open under the key that came for it."""


def new_private_key() -> bytes:
    return secrets.token_bytes(PRIVATE_KEY_SIZE)


def seal_private(key: bytes, plaintext: bytes) -> bytes:
    if len(key) != PRIVATE_KEY_SIZE:
        raise ValueError(f"a private message key is {PRIVATE_KEY_SIZE} bytes")
    if len(plaintext) > MAX_PRIVATE_PLAINTEXT:
        raise ValueError(f"a private message is at most {MAX_PRIVATE_PLAINTEXT} bytes")
    nonce = secrets.token_bytes(PRIVATE_NONCE_SIZE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, PRIVATE_AAD)


def open_private(key: bytes, sealed: bytes) -> bytes:
    """The plaintext of ``sealed``; PrivateUndecryptable if ``key`` did not seal it."""
    if len(key) != PRIVATE_KEY_SIZE:
        raise PrivateUndecryptable(f"a private message key is {PRIVATE_KEY_SIZE} bytes")
    if (
        not PRIVATE_NONCE_SIZE + TAG_SIZE
        <= len(sealed)
        <= (PRIVATE_NONCE_SIZE + MAX_PRIVATE_PLAINTEXT + TAG_SIZE)
    ):
        raise PrivateUndecryptable("a private message of impossible length")
    try:
        return AESGCM(key).decrypt(
            sealed[:PRIVATE_NONCE_SIZE], sealed[PRIVATE_NONCE_SIZE:], PRIVATE_AAD
        )
    except InvalidTag:
        raise PrivateUndecryptable("the private message does not open under its key") from None
