"""The layer's base64 and sealed pickles."""

from __future__ import annotations

import pytest

from tlschat.e2e.codec import b64decode, b64encode, seal, unseal
from tlschat.e2e.errors import UnreadablePickle

from .conftest import OTHER_PICKLE_KEY, PICKLE_KEY


def test_base64_is_unpadded_like_vodozemacs() -> None:
    assert b64encode(b"\x00\x01") == "AAE"
    assert b64decode("AAE") == b"\x00\x01"
    assert b64decode("AAE=") == b"\x00\x01"
    for garbage in ("A", "not base64!", "é"):
        with pytest.raises(ValueError):
            b64decode(garbage)


def test_a_sealed_pickle_hides_its_state_and_opens_only_as_its_kind() -> None:
    state = {"room": "#secret-plans", "seen": {"0": "ab"}}
    text = seal(PICKLE_KEY, "megolm room keys", state)
    assert "secret" not in text
    assert unseal(PICKLE_KEY, "megolm room keys", text) == state
    assert seal(PICKLE_KEY, "megolm room keys", state) != text  # a fresh nonce each time
    with pytest.raises(UnreadablePickle):
        unseal(OTHER_PICKLE_KEY, "megolm room keys", text)
    with pytest.raises(UnreadablePickle):
        unseal(PICKLE_KEY, "olm sessions", text)
    for damaged in ("", "v1.", "v1.AAAA", text[:-2], "v2." + text[3:]):
        with pytest.raises(UnreadablePickle):
            unseal(PICKLE_KEY, "megolm room keys", damaged)


def test_a_pickle_key_is_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        seal(b"\x00" * 31, "olm sessions", {})
