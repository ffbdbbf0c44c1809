"""docs/PROTOCOL.md's worked example is exactly what tools/worked_example.py generates.

The server's RSA-PSS signature is the one input that cannot be regenerated (PSS is randomized),
so it is read back from the document: first checked to be a genuine signature by the test-only
server key over the document's own transcript hash, then fed to the generator, whose output must
then equal the document's section byte for byte.
"""

from __future__ import annotations

import re

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tools import worked_example

SERVER_CONTEXT = b"tlschat v1, server CertificateVerify"


def document_section() -> str:
    text = worked_example.DOC_PATH.read_text(encoding="utf-8")
    assert text.count(worked_example.BEGIN_MARKER) == 1
    assert text.count(worked_example.END_MARKER) == 1
    return worked_example.extract_section(text)


def document_value(section: str, name: str) -> bytes:
    """The hex value listed under ``name`` in the section (a name line, then indented hex)."""
    match = re.search(rf"^{name}  \((\d+) bytes[^\n]*\n((?:  [0-9a-f]+\n)+)", section, re.M)
    assert match is not None, f"{name} is not in the worked example"
    value = bytes.fromhex("".join(match.group(2).split()))
    assert len(value) == int(match.group(1))
    return value


def test_recorded_server_signature_is_valid_rsa_pss_sha256_salt_32() -> None:
    section = document_section()
    signature = document_value(section, "server_signature")
    transcript_hash = document_value(section, "hash_ch_scert")
    signed = b" " * 64 + SERVER_CONTEXT + b"\x00" + transcript_hash
    assert document_value(section, "server_signed_content") == signed
    public_key = worked_example.load_server_private_key().public_key()
    assert public_key.key_size == 2048
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    public_key.verify(signature, signed, pss, hashes.SHA256())
    # The signature is bound to this transcript: any other hash fails.
    with pytest.raises(InvalidSignature):
        public_key.verify(signature, signed[:-1] + bytes([signed[-1] ^ 1]), pss, hashes.SHA256())


def test_document_section_is_exactly_the_generated_example() -> None:
    section = document_section()
    signature = document_value(section, "server_signature")
    regenerated = worked_example.generate(signature)
    assert regenerated == section, (
        "docs/PROTOCOL.md's worked example is stale: run `python -m tools.worked_example --write`"
    )


def test_generator_without_a_recorded_signature_signs_afresh() -> None:
    # PSS is randomized: a fresh run differs from the document only in the server signature and
    # the bytes it affects (the server CertificateVerify, and every hash and value after it).
    fresh = worked_example.generate(None)
    section = document_section()
    for name in ("shared_secret", "hash_ch_scert", "server_handshake_key", "client_random"):
        assert document_value(fresh, name) == document_value(section, name)
    assert document_value(fresh, "server_signature") != document_value(section, "server_signature")
