"""The signed chat-message envelope.

Every chat message is signed by its sender's long-term identity key over an unambiguous binary
encoding of (context, network, target, sender fingerprint, counter, timestamp, body). The network
is the fingerprint of the server's key (one key for all servers of a cluster). The server checks the
signature before relaying and relays it with the sender's public key, so each recipient checks it
again: a server can neither forge a message, nor move it to another room or recipient, nor replay
it on another network.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol.alerts import ProtocolError
from ..protocol.buffer import Writer
from ..protocol.identity import (
    IdentityKey,
    PeerIdentity,
    fingerprints_equal,
    scheme_for,
    verify_signature,
)

CHAT_SIGNATURE_CONTEXT = b"tlschat v2 chat message\x00"
MAX_NETWORK = 64
MAX_TARGET = 64
MAX_BODY_BYTES = 4096
MAX_COUNTER = (1 << 64) - 1


def signed_bytes(
    network: str, target: str, sender: str, counter: int, timestamp_ms: int, body: str
) -> bytes:
    """The exact bytes a chat signature covers (docs/PROTOCOL.md, "Signed chat messages")."""
    return (
        Writer()
        .fixed(CHAT_SIGNATURE_CONTEXT)
        .vector(1, network.encode("utf-8"))
        .vector(1, target.encode("utf-8"))
        .vector(1, sender.encode("ascii"))
        .u64(counter)
        .u64(timestamp_ms)
        .vector(4, body.encode("utf-8"))
        .getvalue()
    )


@dataclass(frozen=True)
class SignedMessage:
    """A chat message as its sender signed it. ``network`` is the fingerprint of the server key
    it was signed for; ``target`` is ``#room`` or ``@fingerprint``."""

    network: str
    target: str
    sender: str
    counter: int
    timestamp_ms: int
    body: str
    signature: bytes

    @classmethod
    def create(
        cls,
        identity: IdentityKey,
        network: str,
        target: str,
        counter: int,
        timestamp_ms: int,
        body: str,
    ) -> SignedMessage:
        payload = signed_bytes(network, target, identity.fingerprint, counter, timestamp_ms, body)
        signature = identity.sign(payload)
        return cls(network, target, identity.fingerprint, counter, timestamp_ms, body, signature)

    def verify(self, sender_key: PeerIdentity) -> bool:
        """True if ``sender_key`` is the claimed sender and signed exactly these fields."""
        if not fingerprints_equal(sender_key.fingerprint, self.sender):
            return False
        try:
            verify_signature(
                sender_key.public_key,
                scheme_for(sender_key.public_key),
                signed_bytes(
                    self.network,
                    self.target,
                    self.sender,
                    self.counter,
                    self.timestamp_ms,
                    self.body,
                ),
                self.signature,
            )
        except ProtocolError:
            return False
        return True
