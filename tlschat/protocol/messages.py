"""Handshake messages: dataclasses with encode() and a decoder for each.

A handshake message on the wire is ``msg_type (u8) || length (u24) || body``. Bodies are decoded
with the bounded :class:`~tlschat.protocol.buffer.Reader`; any malformed body raises decode_error.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

from .alerts import AlertDescription, ProtocolError
from .buffer import DecodeError, Reader, Writer

RANDOM_LENGTH = 32
X25519_SHARE_LENGTH = 32
MAX_KEY_SHARE = 255
MAX_VERSIONS = 16
MAX_SUITES = 32
MAX_SIGNATURE_ALGORITHMS = 16
MAX_CERTIFICATE = 16384
MAX_SIGNATURE = 1024
VERIFY_DATA_LENGTH = 32
HANDSHAKE_HEADER = 4
MAX_HANDSHAKE_BODY = 32768


class HandshakeType(IntEnum):
    client_hello = 1
    server_hello = 2
    certificate = 11
    certificate_verify = 15
    finished = 20
    key_update = 24


class CertificateType(IntEnum):
    x509 = 1
    raw_public_key = 2


class SignatureScheme(IntEnum):
    rsa_pss_rsae_sha256 = 0x0804
    ed25519 = 0x0807


class CipherSuite(IntEnum):
    AES_256_GCM_SHA256 = 0x0001
    CHACHA20_POLY1305_SHA256 = 0x0002


SUITE_NAMES = {
    CipherSuite.AES_256_GCM_SHA256: "AES-GCM-256",
    CipherSuite.CHACHA20_POLY1305_SHA256: "CHACHA20-POLY1305",
}


@dataclass(frozen=True)
class ClientHello:
    msg_type: ClassVar[HandshakeType] = HandshakeType.client_hello
    random: bytes
    versions: tuple[int, ...]
    cipher_suites: tuple[int, ...]
    signature_algorithms: tuple[int, ...]
    key_share: bytes

    def encode_body(self) -> bytes:
        return (
            Writer()
            .fixed(self.random)
            .u16_list(self.versions)
            .u16_list(self.cipher_suites)
            .u16_list(self.signature_algorithms)
            .vector(1, self.key_share)
            .getvalue()
        )

    @classmethod
    def decode_body(cls, reader: Reader) -> ClientHello:
        return cls(
            random=reader.fixed(RANDOM_LENGTH),
            versions=reader.u16_list(1, MAX_VERSIONS, "versions"),
            cipher_suites=reader.u16_list(1, MAX_SUITES, "cipher_suites"),
            signature_algorithms=reader.u16_list(
                1, MAX_SIGNATURE_ALGORITHMS, "signature_algorithms"
            ),
            key_share=reader.vector(1, 0, MAX_KEY_SHARE, "key_share"),
        )


@dataclass(frozen=True)
class ServerHello:
    msg_type: ClassVar[HandshakeType] = HandshakeType.server_hello
    version: int
    random: bytes
    cipher_suite: int
    key_share: bytes

    def encode_body(self) -> bytes:
        return (
            Writer()
            .u16(self.version)
            .fixed(self.random)
            .u16(self.cipher_suite)
            .vector(1, self.key_share)
            .getvalue()
        )

    @classmethod
    def decode_body(cls, reader: Reader) -> ServerHello:
        return cls(
            version=reader.u16(),
            random=reader.fixed(RANDOM_LENGTH),
            cipher_suite=reader.u16(),
            key_share=reader.vector(1, 0, MAX_KEY_SHARE, "key_share"),
        )


@dataclass(frozen=True)
class Certificate:
    msg_type: ClassVar[HandshakeType] = HandshakeType.certificate
    certificate_type: int
    data: bytes

    def encode_body(self) -> bytes:
        return Writer().u8(self.certificate_type).vector(3, self.data).getvalue()

    @classmethod
    def decode_body(cls, reader: Reader) -> Certificate:
        return cls(
            certificate_type=reader.u8(),
            data=reader.vector(3, 1, MAX_CERTIFICATE, "certificate"),
        )


@dataclass(frozen=True)
class CertificateVerify:
    msg_type: ClassVar[HandshakeType] = HandshakeType.certificate_verify
    algorithm: int
    signature: bytes

    def encode_body(self) -> bytes:
        return Writer().u16(self.algorithm).vector(2, self.signature).getvalue()

    @classmethod
    def decode_body(cls, reader: Reader) -> CertificateVerify:
        return cls(
            algorithm=reader.u16(),
            signature=reader.vector(2, 1, MAX_SIGNATURE, "signature"),
        )


@dataclass(frozen=True)
class Finished:
    msg_type: ClassVar[HandshakeType] = HandshakeType.finished
    verify_data: bytes

    def encode_body(self) -> bytes:
        return self.verify_data

    @classmethod
    def decode_body(cls, reader: Reader) -> Finished:
        return cls(verify_data=reader.fixed(VERIFY_DATA_LENGTH))


@dataclass(frozen=True)
class KeyUpdate:
    msg_type: ClassVar[HandshakeType] = HandshakeType.key_update
    request_update: bool

    def encode_body(self) -> bytes:
        return bytes([1 if self.request_update else 0])

    @classmethod
    def decode_body(cls, reader: Reader) -> KeyUpdate:
        value = reader.u8()
        if value > 1:
            raise ProtocolError(AlertDescription.illegal_parameter, f"request_update {value}")
        return cls(request_update=bool(value))


HandshakeMessage = (
    ClientHello | ServerHello | Certificate | CertificateVerify | Finished | KeyUpdate
)

_DECODERS: dict[int, type[HandshakeMessage]] = {
    cls.msg_type: cls
    for cls in (ClientHello, ServerHello, Certificate, CertificateVerify, Finished, KeyUpdate)
}


def encode_handshake(message: HandshakeMessage) -> bytes:
    """The full handshake message: type, u24 body length, body."""
    body = message.encode_body()
    return bytes([message.msg_type]) + len(body).to_bytes(3, "big") + body


def decode_handshake_body(msg_type: int, body: bytes) -> HandshakeMessage:
    decoder = _DECODERS.get(msg_type)
    if decoder is None:
        raise ProtocolError(
            AlertDescription.unexpected_message, f"unknown handshake type {msg_type}"
        )
    reader = Reader(body)
    message = decoder.decode_body(reader)
    reader.finish(HandshakeType(msg_type).name)
    return message


def decode_handshake(data: bytes) -> HandshakeMessage:
    """Decode exactly one whole handshake message (header included)."""
    reader = Reader(data)
    msg_type = reader.u8()
    body = reader.vector(3, 0, MAX_HANDSHAKE_BODY, "handshake body")
    reader.finish("handshake message")
    return decode_handshake_body(msg_type, body)


class HandshakeReassembler:
    """Joins handshake messages split across records and splits coalesced ones."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[tuple[HandshakeMessage, bytes]]:
        """Messages completed by ``data``, each with its exact wire bytes for the transcript."""
        self._buffer += data
        out: list[tuple[HandshakeMessage, bytes]] = []
        while len(self._buffer) >= HANDSHAKE_HEADER:
            length = int.from_bytes(self._buffer[1:4], "big")
            if length > MAX_HANDSHAKE_BODY:
                raise DecodeError(f"handshake body of {length} bytes exceeds {MAX_HANDSHAKE_BODY}")
            end = HANDSHAKE_HEADER + length
            if len(self._buffer) < end:
                break
            raw = bytes(self._buffer[:end])
            del self._buffer[:end]
            out.append((decode_handshake_body(raw[0], raw[HANDSHAKE_HEADER:]), raw))
        return out
