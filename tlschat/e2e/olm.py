"""Pairwise Olm sessions between this device and others, keyed by the peer's Curve25519 key.

A peer may have several sessions with us (both sides started one at once, or a device restored
an old pickle): encryption uses the one that last worked, decryption tries each. Sessions per
peer are bounded (``MAX_SESSIONS_PER_PEER``), since anyone holding our fallback key can start
as many as it likes; the least recently used goes, and its id is remembered
(``MAX_RETIRED_PER_PEER`` of them) so a replay of its pre-key message is refused rather than
starting the session again from the fallback key.

Decrypting a pre-key message may create a session and consume a one-time key of the account:
pickle the ``Device`` and these sessions again afterwards.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

import vodozemac

from .codec import b64decode, b64encode, check_pickle_key, seal, unseal
from .device import Device, DeviceKeys, SignedOneTimeKey, verify_one_time_key
from .errors import E2eError, UnreadablePickle

MAX_SESSIONS_PER_PEER = 8
MAX_RETIRED_PER_PEER = 64
MAX_CIPHERTEXT_B64 = 96 * 1024
PICKLE_PURPOSE = "olm sessions"
# vodozemac's DecryptionError::MissingMessageKey: the ratchet already used (and dropped) the key
# for this message, which is what a replay looks like. The binding exposes only the text.
_REPLAY_MARK = "can't be created"


class OlmError(E2eError):
    """An Olm operation refused."""


class NoOlmSession(OlmError):
    """No session with that device, and no one-time key to start one."""


class UntrustedOneTimeKey(OlmError):
    """A one-time key whose signature is not the claimed device's."""


class OlmUndecryptable(OlmError):
    """A message that decrypts under no session with its claimed sender."""


class OlmReplay(OlmUndecryptable):
    """A message the session already decrypted (its ratchet has moved past it)."""


class MalformedOlmCiphertext(OlmError):
    """An Olm ciphertext frame of the wrong shape."""


class OlmMessageType(IntEnum):
    PRE_KEY = 0
    NORMAL = 1


MESSAGE_TYPES = frozenset(int(kind) for kind in OlmMessageType)


@dataclass(frozen=True)
class OlmCiphertext:
    """An Olm message: a pre-key message until the peer has answered, then normal messages.
    ``ciphertext`` is unpadded base64."""

    message_type: OlmMessageType
    ciphertext: str

    def to_dict(self) -> dict[str, object]:
        return {"type": int(self.message_type), "body": self.ciphertext}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> OlmCiphertext:
        message_type, body = data.get("type"), data.get("body")
        if type(message_type) is not int or message_type not in MESSAGE_TYPES:
            raise MalformedOlmCiphertext("'type' must be 0 (pre-key) or 1 (normal)")
        if not isinstance(body, str) or not 0 < len(body) <= MAX_CIPHERTEXT_B64:
            raise MalformedOlmCiphertext(
                f"'body' must be a string of 1 to {MAX_CIPHERTEXT_B64} characters"
            )
        return cls(OlmMessageType(message_type), body)


def _is_replay(error: ValueError) -> bool:
    return _REPLAY_MARK in str(error)


class OlmSessions:
    """The Olm sessions of one ``Device``."""

    def __init__(self, device: Device) -> None:
        self.device = device
        # Per peer, most recently used first.
        self._sessions: dict[str, list[vodozemac.Session]] = {}
        self._retired: dict[str, deque[str]] = {}

    def has_session(self, peer_curve_key: str) -> bool:
        return bool(self._sessions.get(peer_curve_key))

    def encrypt(
        self, peer: DeviceKeys, one_time_key: SignedOneTimeKey | None, plaintext: bytes
    ) -> OlmCiphertext:
        """Encrypt for ``peer`` (device keys the caller verified with ``verify_device_keys``),
        starting a session from ``one_time_key`` if there is none yet."""
        sessions = self._sessions.get(peer.curve25519)
        if sessions:
            session = sessions[0]
        else:
            if one_time_key is None:
                raise NoOlmSession(f"no session with device {peer.device_id} and no one-time key")
            if not verify_one_time_key(peer, one_time_key):
                raise UntrustedOneTimeKey(f"one-time key not signed by device {peer.device_id}")
            try:
                session = self.device.account.create_outbound_session(
                    vodozemac.Curve25519PublicKey.from_base64(peer.curve25519),
                    vodozemac.Curve25519PublicKey.from_base64(one_time_key.key),
                )
            except ValueError as error:
                raise UntrustedOneTimeKey(f"one-time key starts no session: {error}") from None
            self._keep(peer.curve25519, session)
        message_type, ciphertext = session.encrypt(plaintext).to_parts()
        return OlmCiphertext(OlmMessageType(message_type), b64encode(ciphertext))

    def decrypt(self, sender_curve_key: str, ciphertext: OlmCiphertext) -> bytes:
        try:
            message = vodozemac.AnyOlmMessage.from_parts(
                int(ciphertext.message_type), b64decode(ciphertext.ciphertext)
            )
            pre_key = message.to_pre_key()
        except ValueError:
            raise OlmUndecryptable("not an Olm message") from None
        if pre_key is not None:
            return self._decrypt_pre_key(sender_curve_key, message, pre_key)
        return self._decrypt_with_existing(sender_curve_key, message, self._known(sender_curve_key))

    def _known(self, peer: str) -> list[vodozemac.Session]:
        return list(self._sessions.get(peer, ()))

    def _decrypt_pre_key(
        self, sender: str, message: vodozemac.AnyOlmMessage, pre_key: vodozemac.PreKeyMessage
    ) -> bytes:
        matching = [s for s in self._known(sender) if s.session_matches(pre_key)]
        if matching:
            return self._decrypt_with_existing(sender, message, matching)
        if pre_key.session_id() in self._retired.get(sender, ()):
            raise OlmReplay("a pre-key message of a session already retired")
        try:
            session, plaintext = self.device.account.create_inbound_session(
                vodozemac.Curve25519PublicKey.from_base64(sender), pre_key
            )
        except ValueError as error:
            raise OlmUndecryptable(f"starts no session: {error}") from None
        self._keep(sender, session)
        return plaintext

    def _decrypt_with_existing(
        self, sender: str, message: vodozemac.AnyOlmMessage, sessions: list[vodozemac.Session]
    ) -> bytes:
        replayed = False
        for session in sessions:
            try:
                plaintext = session.decrypt(message)
            except ValueError as error:
                replayed = replayed or _is_replay(error)
                continue
            self._keep(sender, session)
            return plaintext
        if replayed:
            raise OlmReplay("the message was already decrypted")
        raise OlmUndecryptable("the message decrypts under no session with its sender")

    def _keep(self, peer: str, session: vodozemac.Session) -> None:
        """Put ``session`` first for ``peer``, retiring the least recently used beyond the bound."""
        sessions = [s for s in self._sessions.get(peer, ()) if s is not session]
        sessions.insert(0, session)
        for retired in sessions[MAX_SESSIONS_PER_PEER:]:
            self._retired_of(peer).append(retired.session_id)
        self._sessions[peer] = sessions[:MAX_SESSIONS_PER_PEER]

    def _retired_of(self, peer: str) -> deque[str]:
        return self._retired.setdefault(peer, deque(maxlen=MAX_RETIRED_PER_PEER))

    def pickle(self, pickle_key: bytes) -> str:
        check_pickle_key(pickle_key)
        state = {
            "sessions": {
                peer: [session.pickle(pickle_key) for session in sessions]
                for peer, sessions in self._sessions.items()
            },
            "retired": {peer: list(ids) for peer, ids in self._retired.items()},
        }
        return seal(pickle_key, PICKLE_PURPOSE, state)

    @classmethod
    def from_pickle(cls, device: Device, text: str, pickle_key: bytes) -> OlmSessions:
        state = unseal(pickle_key, PICKLE_PURPOSE, text)
        sessions = cls(device)
        try:
            for peer, pickles in state["sessions"].items():
                sessions._sessions[peer] = [
                    vodozemac.Session.from_pickle(pickled, pickle_key) for pickled in pickles
                ]
            for peer, ids in state["retired"].items():
                sessions._retired_of(peer).extend(ids)
        except (KeyError, AttributeError, TypeError, ValueError):
            raise UnreadablePickle("the Olm sessions pickle is damaged") from None
        return sessions
