"""Session-scoped identity keys: RSA key generation is slow, so each key is made once per run."""

from __future__ import annotations

import pytest

from tlschat.protocol import IdentityKey

from .helpers import KEY_TYPES, NOW, Keys


@pytest.fixture(scope="session")
def keys() -> Keys:
    identities = {key_type: IdentityKey.generate(key_type) for key_type in KEY_TYPES}
    others = {key_type: IdentityKey.generate(key_type) for key_type in KEY_TYPES}
    certificates = {
        key_type: key.self_signed_certificate("tlschat", NOW)
        for key_type, key in identities.items()
    }
    return Keys(identities, certificates, others)
