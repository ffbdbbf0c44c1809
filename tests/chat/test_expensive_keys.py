"""RSA keys whose public exponent is not 65537 are refused wherever a key comes in: a relayed
chat message's key (live or history) is unusable, and the server refuses a client handshake
with one. A 2000-bit exponent makes each verification cost ~100 ordinary ones."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.envelope import SignedMessage, signed_bytes
from tlschat.chat.frames import MAX_FRAME, b64, say_frame
from tlschat.chat.verify import BAD_KEY
from tlschat.protocol import (
    AlertDescription,
    ClientConnection,
    ConnectionConfig,
    ProtocolError,
    ServerAuthenticated,
)
from tlschat.protocol.identity import IdentityKey, fingerprint_of_spki, public_key_der
from tlschat.protocol.messages import Certificate, CertificateType
from tlschat.server.app import ChatService
from tlschat.server.config import ServerSettings

from ..protocol.helpers import rsa_private_key_with_big_exponent, rsa_public_key_with_exponent
from .helpers import NETWORK, NOW, NOW_MS, client_on

PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


@pytest.fixture(scope="module")
def big_key(rsa_mallory: IdentityKey) -> rsa.RSAPrivateKey:
    private_key = rsa_mallory.private_key
    assert isinstance(private_key, rsa.RSAPrivateKey)
    return rsa_private_key_with_big_exponent(private_key)


def signed_by(private_key: rsa.RSAPrivateKey, body: str = "hi") -> dict[str, Any]:
    """A 'message' frame genuinely signed by ``private_key``, naming it as its key and sender:
    without the exponent check it would verify."""
    spki = public_key_der(private_key.public_key())
    sender = fingerprint_of_spki(spki)
    payload = signed_bytes(NETWORK, "#general", sender, 1, NOW_MS, body)
    signature = private_key.sign(payload, PSS, hashes.SHA256())
    private_key.public_key().verify(signature, payload, PSS, hashes.SHA256())  # it does verify
    message = SignedMessage(NETWORK, "#general", sender, 1, NOW_MS, body, signature)
    fields = {k: v for k, v in say_frame(message).items() if k != "type"}
    return {"type": "message", "from": "mallory", "key": b64(spki), **fields}


@pytest.fixture
def bob(ed_bob: IdentityKey) -> ChatClient:
    client = client_on(ed_bob, "bob")
    client.handle({"type": "joined", "room": "#general", "members": []}, NOW)
    return client


def test_relayed_message_with_a_big_exponent_key_is_unverified(
    bob: ChatClient, big_key: rsa.RSAPrivateKey
) -> None:
    [line] = bob.handle(signed_by(big_key), NOW)
    assert (line.kind, line.text, line.verified, line.problem) == ("message", "hi", False, BAD_KEY)
    assert "✗ UNVERIFIED" in line.render("#general")


def test_relayed_message_with_exponent_3_is_unverified(
    bob: ChatClient, rsa_mallory: IdentityKey
) -> None:
    private_key = rsa_mallory.private_key
    assert isinstance(private_key, rsa.RSAPrivateKey)
    frame = signed_by(private_key)
    frame["key"] = b64(public_key_der(rsa_public_key_with_exponent(private_key, 3)))
    [line] = bob.handle(frame, NOW)
    assert (line.verified, line.problem) == (False, BAD_KEY)


def test_history_entry_with_a_big_exponent_key_is_unverified(
    bob: ChatClient, big_key: rsa.RSAPrivateKey
) -> None:
    frame = signed_by(big_key, "from the past")
    entry = {k: v for k, v in frame.items() if k != "type"}
    notice, line = bob.handle({"type": "history", "room": "#general", "messages": [entry]}, NOW)
    assert notice.kind == "notice"
    assert (line.text, line.verified, line.problem, line.history) == (
        "from the past",
        False,
        BAD_KEY,
        True,
    )
    assert "✗ UNVERIFIED" in line.render("#general")


def test_server_refuses_a_client_handshake_with_a_big_exponent_key(
    tmp_path: Path,
    ed_alice: IdentityKey,
    big_key: rsa.RSAPrivateKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A real ChatService on a socket: the client presents a raw key with a 2000-bit exponent
    and gets insufficient_security; the server goes on."""
    spki = public_key_der(big_key.public_key())

    class BigExponentClient(ClientConnection):
        def _send_handshake(self, message: Any) -> None:
            if isinstance(message, Certificate):
                message = Certificate(CertificateType.raw_public_key, spki)
            super()._send_handshake(message)

    async def run() -> ProtocolError:
        settings = ServerSettings(host="127.0.0.1", port=0, data_dir=tmp_path / "data")
        service = ChatService(settings)
        await service.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
            config = ConnectionConfig(identity=ed_alice, max_message=MAX_FRAME)
            client = BigExponentClient(config, now=time.monotonic())
            client.start_handshake()
            try:
                while True:
                    writer.write(client.data_to_send())
                    data = await asyncio.wait_for(reader.read(65536), 10)
                    if not data:
                        client.receive_eof()
                    for event in client.receive_data(data):
                        if isinstance(event, ServerAuthenticated):
                            client.trust_server()
            except ProtocolError as error:
                return error
            finally:
                writer.close()
        finally:
            await service.stop()

    # At debug level: at INFO a failed handshake is only counted in its block's summary.
    with caplog.at_level(logging.DEBUG, logger="tlschat.server"):
        error = asyncio.run(run())
    assert error.alert == AlertDescription.insufficient_security
    assert error.received
    assert any("RSA public exponent" in record.getMessage() for record in caplog.records)
