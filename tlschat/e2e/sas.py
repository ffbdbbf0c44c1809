"""SAS verification of another device: both users compare 7 emoji (or three 4-digit numbers),
then each device MACs its user's identity fingerprint and its device keys for the other.

As in Matrix (after ZRTP), the accepter commits to its ephemeral public key before it sees the
starter's and reveals it only after, so a man in the middle gets one try at making the short
strings match (a chance of 2^-42 with emoji). The messages, which the chat layer carries:

    accepter -> starter:  commitment
    starter  -> accepter: starter's public key
    accepter -> starter:  accepter's public key (the starter checks it against the commitment)
    the users compare the emoji; each device confirms, sends its MACs and checks the other's.

The strings below join ASCII fields that never hold "|" (fingerprints are "SHA256:" + base64,
device ids base32, keys unpadded base64, flow ids match ``FLOW_ID_PATTERN``):

- SAS bytes info: ``TLSCHAT_V1_SAS|<starter user>|<starter device_id>|<starter public key>|``
  ``<accepter user>|<accepter device_id>|<accepter public key>|<flow id>``
- MAC info: ``TLSCHAT_V1_SAS_MAC|<sender user>|<sender device_id>|<receiver user>|``
  ``<receiver device_id>|<flow id>|<what>``, where ``what`` is ``identity`` (the MAC of the
  sender's identity fingerprint) or ``device_keys`` (the MAC of
  ``<device_id>|<curve25519>|<ed25519>`` of the sending device).
- Commitment: unpadded base64 of SHA-256(``b"tlschat v1 sas commitment\\x00"`` || u8 len ||
  flow id || u8 32 || the accepter's public key, 32 raw bytes).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import Enum

import vodozemac

from ..protocol.buffer import Writer
from .codec import b64encode
from .device import DeviceKeys, raw_key
from .errors import E2eError
from .sas_emoji import SAS_EMOJI, SasEmoji

FLOW_ID_PATTERN = re.compile(r"[A-Za-z0-9_\-]{1,64}")
SAS_INFO_PREFIX = "TLSCHAT_V1_SAS|"
MAC_INFO_PREFIX = "TLSCHAT_V1_SAS_MAC|"
COMMITMENT_CONTEXT = b"tlschat v1 sas commitment\x00"


class SasError(E2eError):
    """A verification refused; it is cancelled."""


class SasStateError(SasError):
    """A step taken out of order, or after the verification was cancelled."""


class SasCommitmentMismatch(SasError):
    """The accepter's public key is not the one it committed to."""


class SasMacMismatch(SasError):
    """The other device's MACs are not of the keys we hold for it: not the device verified."""


class SasRole(Enum):
    STARTER = "starter"
    ACCEPTER = "accepter"


@dataclass(frozen=True)
class SasMacs:
    """What a device sends once its user confirmed: MACs (unpadded base64) of its keys."""

    identity: str
    device_keys: str


def sas_bytes_info(
    starter: DeviceKeys, starter_key: str, accepter: DeviceKeys, accepter_key: str, flow_id: str
) -> str:
    fields = [starter.user, starter.device_id, starter_key]
    fields += [accepter.user, accepter.device_id, accepter_key, flow_id]
    return SAS_INFO_PREFIX + "|".join(fields)


def sas_mac_info(sender: DeviceKeys, receiver: DeviceKeys, flow_id: str, what: str) -> str:
    fields = (sender.user, sender.device_id, receiver.user, receiver.device_id, flow_id, what)
    return MAC_INFO_PREFIX + "|".join(fields)


def device_keys_mac_input(keys: DeviceKeys) -> str:
    return f"{keys.device_id}|{keys.curve25519}|{keys.ed25519}"


def sas_commitment(flow_id: str, accepter_key: str) -> str:
    payload = (
        Writer()
        .fixed(COMMITMENT_CONTEXT)
        .vector(1, flow_id.encode("ascii"))
        .vector(1, raw_key(accepter_key))
        .getvalue()
    )
    return b64encode(hashlib.sha256(payload).digest())


def _check_field(value: str, what: str) -> None:
    if not value.isascii() or "|" in value:
        raise ValueError(f"{what} must be ASCII without '|'")


class SasVerification:
    """One device's side of a SAS verification with ``theirs``, the device keys we hold for
    the other device (from the directory, verified against the identity we believe is theirs)."""

    def __init__(self, ours: DeviceKeys, theirs: DeviceKeys, flow_id: str, role: SasRole) -> None:
        if not FLOW_ID_PATTERN.fullmatch(flow_id):
            raise ValueError(f"a flow id matches {FLOW_ID_PATTERN.pattern}")
        for keys in (ours, theirs):
            _check_field(keys.user, "a user fingerprint")
            _check_field(keys.device_id, "a device id")
        self.ours = ours
        self.theirs = theirs
        self.flow_id = flow_id
        self.role = role
        self._sas = vodozemac.Sas()
        self._our_key = self._sas.public_key.to_base64()
        self._their_commitment: str | None = None
        self._established: vodozemac.EstablishedSas | None = None
        self._emoji: tuple[SasEmoji, ...] = ()
        self._decimals: tuple[int, int, int] = (0, 0, 0)
        self._confirmed = False
        self._their_macs_verified = False
        self.cancelled = False

    @property
    def commitment(self) -> str:
        """The accepter's commitment to its public key, sent before it sees the starter's."""
        self._require(self.role is SasRole.ACCEPTER, "only the accepter commits")
        return sas_commitment(self.flow_id, self._our_key)

    @property
    def public_key(self) -> str:
        """Our ephemeral public key: the starter's once it holds the commitment, the accepter's
        once it holds the starter's key."""
        if self.role is SasRole.STARTER:
            self._require(self._their_commitment is not None, "no commitment received yet")
        else:
            self._require(self._established is not None, "the starter's key comes first")
        return self._our_key

    @property
    def verified(self) -> bool:
        """True once our user confirmed the emoji and the other device's MACs verified."""
        return not self.cancelled and self._confirmed and self._their_macs_verified

    def cancel(self) -> None:
        """Our user said the emoji differ, or the flow is abandoned."""
        self.cancelled = True

    def receive_commitment(self, commitment: str) -> None:
        self._require_received(self.role is SasRole.STARTER, "only the starter gets a commitment")
        self._require_received(self._their_commitment is None, "a second commitment")
        self._their_commitment = commitment

    def receive_public_key(self, their_key: str) -> None:
        self._require_received(self._established is None, "a second public key")
        try:
            their_public = vodozemac.Curve25519PublicKey.from_base64(their_key)
        except ValueError:
            self.cancel()
            raise SasError("not a Curve25519 public key") from None
        # Both sides must hash the same text, whatever encoding the key arrived in.
        their_key = their_public.to_base64()
        if self.role is SasRole.STARTER:
            self._check_commitment(their_key)
            info = sas_bytes_info(self.ours, self._our_key, self.theirs, their_key, self.flow_id)
        else:
            info = sas_bytes_info(self.theirs, their_key, self.ours, self._our_key, self.flow_id)
        try:
            established = self._sas.diffie_hellman(their_public)
        except ValueError:
            self.cancel()
            raise SasError("a public key without contributory behaviour") from None
        sas_bytes = established.bytes(info)
        self._established = established
        self._emoji = tuple(SAS_EMOJI[index] for index in sas_bytes.emoji_indices)
        self._decimals = sas_bytes.decimals

    def _check_commitment(self, their_key: str) -> None:
        if self._their_commitment is None:
            self.cancel()
            raise SasStateError("a public key before the commitment")
        expected = sas_commitment(self.flow_id, their_key).encode("ascii")
        if not hmac.compare_digest(
            expected, self._their_commitment.encode("utf-8", "surrogatepass")
        ):
            self.cancel()
            raise SasCommitmentMismatch("the key is not the one committed to")

    def emoji(self) -> tuple[SasEmoji, ...]:
        self._require(self._established is not None, "no keys exchanged yet")
        return self._emoji

    def decimals(self) -> tuple[int, int, int]:
        self._require(self._established is not None, "no keys exchanged yet")
        return self._decimals

    def confirm(self) -> SasMacs:
        """Our user said the emoji (or numbers) match: the MACs of our keys, to send."""
        established = self._require_established()
        self._confirmed = True
        return SasMacs(
            established.calculate_mac(self.ours.user, self._our_mac_info("identity")),
            established.calculate_mac(
                device_keys_mac_input(self.ours), self._our_mac_info("device_keys")
            ),
        )

    def receive_mac(self, macs: SasMacs) -> None:
        """Check the other device's MACs against the keys we hold for it."""
        established = self._require_established()
        try:
            established.verify_mac(
                self.theirs.user, self._their_mac_info("identity"), macs.identity
            )
            established.verify_mac(
                device_keys_mac_input(self.theirs),
                self._their_mac_info("device_keys"),
                macs.device_keys,
            )
        except ValueError:
            self.cancel()
            raise SasMacMismatch("the MACs are not of the keys held for that device") from None
        self._their_macs_verified = True

    def _our_mac_info(self, what: str) -> str:
        return sas_mac_info(self.ours, self.theirs, self.flow_id, what)

    def _their_mac_info(self, what: str) -> str:
        return sas_mac_info(self.theirs, self.ours, self.flow_id, what)

    def _require_established(self) -> vodozemac.EstablishedSas:
        self._require_not_cancelled()
        if self._established is None:
            raise SasStateError("no keys exchanged yet")
        return self._established

    def _require_not_cancelled(self) -> None:
        if self.cancelled:
            raise SasStateError("the verification was cancelled")

    def _require(self, condition: bool, reason: str) -> None:
        self._require_not_cancelled()
        if not condition:
            raise SasStateError(reason)

    def _require_received(self, condition: bool, reason: str) -> None:
        """As ``_require``, but for a message from the other device: out of order cancels."""
        self._require_not_cancelled()
        if not condition:
            self.cancel()
            raise SasStateError(reason)
