"""Megolm: the room keys this device received (``RoomKeys``), and decryption of room lines.

A received key is bound to the room and the sending device (its Curve25519 key, the Olm session
it arrived over) it was shared for, and decrypts only lines of that room from that device.

Replays: per session, the SHA-256 of the ciphertext at each message index is remembered. The same
ciphertext again is a duplicate (decrypted and flagged); another ciphertext at a remembered index
is refused (only the holder of the outbound session can sign one: a sender that rolled its
session back, or lies). Memory is bounded: a session keeps the ``max_remembered`` highest indexes
it saw; once one was forgotten, a message below the lowest kept is refused
(``ReplayWindowPassed``), as its replay can no longer be told. With rotation every 100 messages
an honest session never gets there.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import vodozemac

from .codec import check_pickle_key, seal, unseal
from .errors import UnreadablePickle
from .megolm import MegolmCiphertext, MegolmError, RoomKey

DEFAULT_MAX_REMEMBERED = 1024
PICKLE_PURPOSE = "megolm room keys"


class MalformedRoomKey(MegolmError):
    """A shared room key that is not a Megolm session key."""


class MissingRoomKey(MegolmError):
    """No key for this line yet: show it as not decryptable, and retry when a key arrives."""


class RoomKeyMismatch(MegolmError):
    """A key or line whose room or sending device is not the one the key was shared for."""


class MegolmUndecryptable(MegolmError):
    """A line that does not decrypt under the key of its session."""


class MessageIndexReused(MegolmError):
    """Another ciphertext at a message index already seen: a forgery by the session's sender."""


class ReplayWindowPassed(MegolmError):
    """A message index below what the replay memory of its session still holds."""


@dataclass(frozen=True)
class MegolmPlaintext:
    plaintext: bytes
    message_index: int
    duplicate: bool


class SeenIndexes:
    """The replay memory of one inbound session (see the module doc for the policy)."""

    def __init__(self, bound: int, seen: dict[int, bytes] | None = None, floor: int = 0) -> None:
        self.bound = bound
        self.seen = seen if seen is not None else {}
        self.floor = floor

    def record(self, index: int, digest: bytes) -> bool:
        """True if this ciphertext was seen before at ``index``; raise if another was."""
        known = self.seen.get(index)
        if known is not None:
            if hmac.compare_digest(known, digest):
                return True
            raise MessageIndexReused(f"another ciphertext at message index {index}")
        if index < self.floor:
            raise ReplayWindowPassed(f"message index {index} is below {self.floor}")
        self.seen[index] = digest
        if len(self.seen) > self.bound:
            lowest = min(self.seen)
            del self.seen[lowest]
            self.floor = lowest + 1
        return False


@dataclass
class InboundRoomSession:
    room: str
    sender: str
    session: vodozemac.InboundGroupSession
    seen: SeenIndexes


class RoomKeys:
    """The room keys this device received, by session id, each bound to its room and sender."""

    def __init__(self, max_remembered: int = DEFAULT_MAX_REMEMBERED) -> None:
        if max_remembered < 1:
            raise ValueError("remember at least one message index per session")
        self.max_remembered = max_remembered
        self._sessions: dict[str, InboundRoomSession] = {}

    def import_key(self, sender_curve_key: str, key: RoomKey) -> bool:
        """Keep ``key``, shared by the device ``sender_curve_key`` over Olm. True if it is new
        or reaches further back than the key held (retry the lines that were missing it)."""
        try:
            session = vodozemac.InboundGroupSession(vodozemac.SessionKey(key.session_key))
        except ValueError:
            raise MalformedRoomKey("not a Megolm session key") from None
        if session.session_id != key.session_id:
            raise RoomKeyMismatch("the key is not the key of the session it names")
        held = self._sessions.get(session.session_id)
        if held is None:
            seen = SeenIndexes(self.max_remembered)
            self._sessions[session.session_id] = InboundRoomSession(
                key.room, sender_curve_key, session, seen
            )
            return True
        if held.room != key.room or held.sender != sender_curve_key:
            raise RoomKeyMismatch("the session's key was shared for another room or sender")
        if session.first_known_index >= held.session.first_known_index:
            return False
        held.session = session
        return True

    def decrypt(
        self, room: str, sender_curve_key: str, ciphertext: MegolmCiphertext
    ) -> MegolmPlaintext:
        """Decrypt a line that ``sender_curve_key`` claims to have sent in ``room``."""
        held = self._sessions.get(ciphertext.session_id)
        if held is None:
            raise MissingRoomKey(f"no key yet for session {ciphertext.session_id}")
        if held.room != room or held.sender != sender_curve_key:
            raise RoomKeyMismatch("the line's session belongs to another room or sender")
        try:
            message = vodozemac.MegolmMessage.from_base64(ciphertext.ciphertext)
        except ValueError:
            raise MegolmUndecryptable("not a Megolm message") from None
        index = message.message_index()
        if index != ciphertext.message_index:
            raise MegolmUndecryptable(f"claims index {ciphertext.message_index}, holds {index}")
        if index < held.session.first_known_index:
            raise MissingRoomKey(f"the key held starts at index {held.session.first_known_index}")
        try:
            decrypted = held.session.decrypt(message)
        except ValueError:
            raise MegolmUndecryptable("the line does not decrypt under its session") from None
        duplicate = held.seen.record(index, hashlib.sha256(message.to_bytes()).digest())
        return MegolmPlaintext(decrypted.plaintext, index, duplicate)

    def pickle(self, pickle_key: bytes) -> str:
        check_pickle_key(pickle_key)
        state = {
            "max_remembered": self.max_remembered,
            "sessions": [
                {
                    "room": held.room,
                    "sender": held.sender,
                    "session": held.session.pickle(pickle_key),
                    "floor": held.seen.floor,
                    "seen": {str(index): digest.hex() for index, digest in held.seen.seen.items()},
                }
                for held in self._sessions.values()
            ],
        }
        return seal(pickle_key, PICKLE_PURPOSE, state)

    @classmethod
    def from_pickle(cls, text: str, pickle_key: bytes) -> RoomKeys:
        state = unseal(pickle_key, PICKLE_PURPOSE, text)
        try:
            keys = cls(state["max_remembered"])
            for entry in state["sessions"]:
                session = vodozemac.InboundGroupSession.from_pickle(entry["session"], pickle_key)
                seen = {int(index): bytes.fromhex(hexed) for index, hexed in entry["seen"].items()}
                keys._sessions[session.session_id] = InboundRoomSession(
                    entry["room"],
                    entry["sender"],
                    session,
                    SeenIndexes(keys.max_remembered, seen, entry["floor"]),
                )
        except (KeyError, AttributeError, TypeError, ValueError):
            raise UnreadablePickle("the room keys pickle is damaged") from None
        return keys
