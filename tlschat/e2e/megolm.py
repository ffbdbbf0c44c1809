"""Megolm: the sending side of an encrypted room (``RoomSender``) and what it hands out.

A sender's session key reaches each member device over Olm (the chat layer sends it). Whoever
holds it decrypts the session's messages from the index it was shared at onward, never before
(``room_keys`` is the receiving side). The sender rotates to a new session after
``max_messages`` messages, after ``max_age`` seconds, or once a member left, so a member who
left cannot read what follows; ``encrypt`` refuses until the session is rotated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import vodozemac

from .codec import check_pickle_key, seal, unseal
from .errors import E2eError, UnreadablePickle

DEFAULT_MAX_MESSAGES = 100
DEFAULT_MAX_AGE = 7 * 24 * 3600.0
MAX_MESSAGE_INDEX = (1 << 32) - 1
MAX_SESSION_ID = 64
MAX_CIPHERTEXT_B64 = 96 * 1024
PICKLE_PURPOSE = "megolm room sender"


class MegolmError(E2eError):
    """A Megolm operation refused."""


class RotationDue(MegolmError):
    """The room's session must be rotated (and the new key shared) before the next line."""


class MalformedMegolmCiphertext(MegolmError):
    """A Megolm ciphertext frame of the wrong shape."""


@dataclass(frozen=True)
class RoomKey:
    """What a sender shares over Olm: the room, and its session's key (base64) and id."""

    room: str
    session_id: str
    session_key: str


@dataclass(frozen=True)
class MegolmCiphertext:
    session_id: str
    message_index: int
    ciphertext: str

    def to_dict(self) -> dict[str, object]:
        return {"session": self.session_id, "index": self.message_index, "body": self.ciphertext}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> MegolmCiphertext:
        session, index, body = data.get("session"), data.get("index"), data.get("body")
        if not isinstance(session, str) or not 0 < len(session) <= MAX_SESSION_ID:
            raise MalformedMegolmCiphertext(f"'session' must be 1 to {MAX_SESSION_ID} characters")
        if type(index) is not int or not 0 <= index <= MAX_MESSAGE_INDEX:
            raise MalformedMegolmCiphertext(f"'index' must be an integer 0..{MAX_MESSAGE_INDEX}")
        if not isinstance(body, str) or not 0 < len(body) <= MAX_CIPHERTEXT_B64:
            raise MalformedMegolmCiphertext(
                f"'body' must be a string of 1 to {MAX_CIPHERTEXT_B64} characters"
            )
        return cls(session, index, body)


class RoomSender:
    """This device's outbound Megolm session for one encrypted room."""

    def __init__(
        self,
        room: str,
        session: vodozemac.GroupSession,
        created_at: float,
        max_messages: int = DEFAULT_MAX_MESSAGES,
        max_age: float = DEFAULT_MAX_AGE,
        member_has_left: bool = False,
    ) -> None:
        if max_messages < 1 or max_age <= 0:
            raise ValueError("a session lasts at least one message and some time")
        self.room = room
        self.max_messages = max_messages
        self.max_age = max_age
        self.created_at = created_at
        self._session = session
        self._member_has_left = member_has_left

    @classmethod
    def start(
        cls,
        room: str,
        now: float,
        max_messages: int = DEFAULT_MAX_MESSAGES,
        max_age: float = DEFAULT_MAX_AGE,
    ) -> RoomSender:
        return cls(room, vodozemac.GroupSession(), now, max_messages, max_age)

    @property
    def session_id(self) -> str:
        return self._session.session_id

    def room_key(self) -> RoomKey:
        """The key to share with member devices: it decrypts from the next message on."""
        return RoomKey(self.room, self._session.session_id, self._session.session_key.to_base64())

    def member_left(self) -> None:
        self._member_has_left = True

    def should_rotate(self, now: float) -> bool:
        return (
            self._member_has_left
            or self._session.message_index >= self.max_messages
            or now - self.created_at >= self.max_age
        )

    def rotate(self, now: float) -> RoomKey:
        """Start a new session; its key must reach the current members before the next line."""
        self._session = vodozemac.GroupSession()
        self.created_at = now
        self._member_has_left = False
        return self.room_key()

    def encrypt(self, plaintext: bytes, now: float) -> MegolmCiphertext:
        if self.should_rotate(now):
            raise RotationDue(f"rotate the session of {self.room} and share its key first")
        message = self._session.encrypt(plaintext)
        return MegolmCiphertext(self.session_id, message.message_index(), message.to_base64())

    def pickle(self, pickle_key: bytes) -> str:
        check_pickle_key(pickle_key)
        state = {
            "room": self.room,
            "session": self._session.pickle(pickle_key),
            "created_at": self.created_at,
            "max_messages": self.max_messages,
            "max_age": self.max_age,
            "member_has_left": self._member_has_left,
        }
        return seal(pickle_key, PICKLE_PURPOSE, state)

    @classmethod
    def from_pickle(cls, text: str, pickle_key: bytes) -> RoomSender:
        state = unseal(pickle_key, PICKLE_PURPOSE, text)
        try:
            session = vodozemac.GroupSession.from_pickle(state["session"], pickle_key)
            return cls(
                state["room"],
                session,
                state["created_at"],
                state["max_messages"],
                state["max_age"],
                state["member_has_left"],
            )
        except (KeyError, TypeError, ValueError):
            raise UnreadablePickle("the room sender pickle is damaged") from None
