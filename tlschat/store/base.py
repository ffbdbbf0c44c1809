"""The storage interface the chat logic depends on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class StoredMessage:
    """A room message exactly as its sender signed it, plus what the server knew of the sender."""

    room: str
    sender: str
    nick: str
    key_der: bytes
    counter: int
    timestamp_ms: int
    body: str
    signature: bytes


@dataclass(frozen=True)
class Retention:
    """How much room history a store keeps; 0 turns a bound off.

    ``keep_per_room`` messages per room (the newest), none older than ``max_age`` seconds (by
    their signed time, which the server accepts only near its own clock), and the oldest of all
    rooms go first while the database is larger than ``max_bytes``. Counters, nicks, bans and
    topics are never deleted: a counter outlives its message, so a replay is still refused.
    """

    keep_per_room: int = 0
    max_age: float = 0.0
    max_bytes: int = 0


@dataclass(frozen=True)
class Ban:
    fingerprint: str
    until: float | None
    reason: str
    by: str


class Store(Protocol):
    def append_message(self, message: StoredMessage) -> None:
        """Durably store ``message``, and its counter as its sender's last, in one transaction,
        before it is relayed to anyone."""

    def recent_messages(self, room: str, limit: int) -> list[StoredMessage]:
        """The last ``limit`` messages of ``room``, oldest first."""

    def nick_owner(self, nick: str) -> str | None:
        """The fingerprint that owns ``nick`` (case-insensitively), if any."""

    def nick_of(self, fingerprint: str) -> str | None:
        """The nick this fingerprint last registered."""

    def register_nick(self, nick: str, fingerprint: str) -> bool:
        """Bind ``nick`` to ``fingerprint``; False if another key owns it.

        A key owns one nick at a time: taking a new one releases the old.
        """

    def last_counter(self, fingerprint: str) -> int:
        """The highest message counter accepted from ``fingerprint`` (-1 if none)."""

    def set_last_counter(self, fingerprint: str, counter: int) -> None: ...

    def add_ban(self, ban: Ban) -> None: ...

    def remove_ban(self, fingerprint: str) -> bool: ...

    def active_ban(self, fingerprint: str, now: float) -> Ban | None: ...

    def set_topic(self, room: str, topic: str) -> None: ...

    def enforce_retention(self, retention: Retention, now: float) -> int:
        """Delete the room messages ``retention`` no longer keeps at time ``now`` (seconds since
        the epoch), and give the space back; how many were deleted. Cheap when nothing changed:
        the server calls it on start and every few seconds."""

    def topics(self) -> dict[str, str]: ...

    def close(self) -> None: ...
