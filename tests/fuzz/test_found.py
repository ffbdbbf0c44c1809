"""The bugs the fuzzers found, pinned as plain unit tests (their inputs are in fuzz/corpus/)."""

from __future__ import annotations

import json

import pytest

from fuzz.common import SERVER_CERTIFICATE
from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.frames import decode_frame, neutralize
from tlschat.chat.lines import Line
from tlschat.protocol import AlertDescription, ProtocolError
from tlschat.protocol.identity import IdentityKey, PeerIdentity, fingerprints_equal


def test_certificate_with_an_invalid_x509_version_is_a_bad_certificate() -> None:
    # cryptography raises x509.InvalidVersion, not a ValueError: it used to escape as a bug
    # (internal_error) instead of the bad_certificate alert.
    altered = bytearray(SERVER_CERTIFICATE)
    version = altered.index(bytes([0xA0, 0x03, 0x02, 0x01, 0x02])) + 4
    altered[version] = 0x12
    with pytest.raises(ProtocolError) as excinfo:
        PeerIdentity.from_certificate(bytes(altered))
    assert excinfo.value.alert == AlertDescription.bad_certificate


def test_fingerprints_with_lone_surrogates_compare() -> None:
    assert not fingerprints_equal("\ud800", "SHA256:x")
    assert fingerprints_equal("\ud800", "\ud800")


def test_a_member_fingerprint_with_a_lone_surrogate_does_not_crash_the_client() -> None:
    frame = decode_frame(
        b'{"type":"joined","room":"#a","members":[{"nick":"a","fingerprint":"\\ud800"}]}'
    )
    client = ChatClient(IdentityKey.generate("ed25519"), "me")
    lines = client.handle(frame, 0.0)
    assert lines and lines[0].kind == "joined"


def test_lines_with_lone_surrogates_can_be_printed() -> None:
    frame = decode_frame(b'{"type":"info","title":"t","lines":["\\ud800"]}')
    lines = ChatClient(IdentityKey.generate("ed25519"), "me").handle(frame, 0.0)
    for line in lines:
        line.render("").encode("utf-8")
        json.dumps(line.to_json(), ensure_ascii=False).encode("utf-8")
    assert neutralize("a\ud800b") == "a\ufffdb"
    assert Line("info", 0.0, "\udfff").to_json()["text"] == "\ufffd"
