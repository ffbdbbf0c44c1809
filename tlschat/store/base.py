"""The storage interface the chat logic depends on."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .invitations import StoredInvitation
    from .room_state import Grant, RoomState


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
    # An end-to-end encrypted room line: the JSON text of its 'megolm' object (docs/PROTOCOL.md,
    # "End-to-end layer"); ``body`` is empty and ``signature`` empty then.
    encrypted: str = ""


@dataclass(frozen=True)
class StoredDevice:
    """A device in the key directory: its ``device_keys`` object as JSON text, exactly as its
    user's client signed and the server checked it, and when a session last used it."""

    fingerprint: str
    device: str
    keys_json: str
    last_seen: float


@dataclass(frozen=True)
class InboxItem:
    """One thing waiting for one device: ``payload`` is the JSON text of a ``device_messages``
    item without its ``id`` (an Olm ciphertext, or a private message with its Olm key).
    ``id`` increases per device; ``created`` is server time in seconds."""

    id: int
    fingerprint: str
    device: str
    created: float
    payload: str


@dataclass(frozen=True)
class InboxEntry:
    """One item to queue for one device (``item_id`` as the cluster's log assigned it, or None
    for the store's next id)."""

    fingerprint: str
    device: str
    payload: str
    item_id: int | None = None


@dataclass(frozen=True)
class InboxBounds:
    """What one device's inbox keeps: the oldest items go first past either bound, and none
    older than ``max_age`` seconds is handed out or kept."""

    max_items: int = 1000
    max_bytes: int = 4 * 1024 * 1024
    max_age: float = 7 * 24 * 3600.0


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


class HistoryNotCommitted(Exception):
    """A batch of room lines could not be committed: none of them is stored. ``lines`` are their
    (sender, counter)."""

    def __init__(self, lines: tuple[tuple[str, int], ...], reason: str) -> None:
        super().__init__(reason)
        self.lines = lines


class Store(Protocol):
    def append_message(self, message: StoredMessage) -> None:
        """Store ``message``, and its counter as its sender's last, in the open batch: durable
        once :meth:`commit` returns, which the server calls before it relays the line to anyone
        or confirms it."""

    def commit(self) -> None:
        """Make the lines appended since the last commit durable, in one transaction; raise
        :class:`HistoryNotCommitted` (and keep none of them) if that fails."""

    def index_for_search(self) -> int:
        """Bring the search index up to the lines stored so far (a store may index them later
        than it stores them, in bulk, which costs far less per line); how many were indexed.
        ``search_messages`` does it first itself."""

    def recent_messages(self, room: str, limit: int) -> list[StoredMessage]:
        """The last ``limit`` messages of ``room``, oldest first."""

    def messages_before(
        self, room: str, anchor: tuple[str, int], limit: int
    ) -> list[StoredMessage] | None:
        """The last ``limit`` messages of ``room`` stored before the one ``anchor`` (its sender's
        fingerprint and counter) names, oldest first; None if ``room`` holds no such message."""

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

    def search_messages(self, rooms: Collection[str], text: str, limit: int) -> list[StoredMessage]:
        """The plain (not end-to-end encrypted) lines of ``rooms`` that contain every word of
        ``text``, newest first, ``limit`` at most (store/search.py bounds both)."""

    # Administration at run time: operators' /allow, /disallow and /release, kept over restarts.

    def set_allowed(self, fingerprint: str, allowed: bool) -> None:
        """An operator's /allow (True) or /disallow (False) of the key: it replaces the key's
        earlier decision and, while an allowlist is in force, outranks the configured list."""

    def allowed(self, fingerprint: str) -> bool | None:
        """The key's stored decision: True (/allow), False (/disallow), None (none)."""

    def release_nick(self, nick: str) -> str | None:
        """Free ``nick`` (case-insensitively) from the key that owns it, which then owns no
        nick; that key's fingerprint, or None if no key owned it."""

    # The end-to-end layer's directory and inboxes (docs/PROTOCOL.md, "End-to-end layer").

    def put_device(self, device: StoredDevice, max_devices: int) -> str | None:
        """Store or refresh ``device``; if its key then has more than ``max_devices`` devices,
        remove the one seen least recently (with its keys and inbox) and return its id."""

    def touch_device(self, fingerprint: str, device: str, now: float) -> None:
        """A session of ``device`` connected at ``now``."""

    def devices_of(self, fingerprint: str) -> list[StoredDevice]:
        """The key's devices, by id."""

    def remove_device(self, fingerprint: str, device: str) -> bool:
        """Forget the device, its one-time keys and its inbox; False if there was none."""

    def add_one_time_keys(
        self,
        fingerprint: str,
        device: str,
        keys: list[tuple[str, str]],
        fallback: tuple[str, str] | None,
        max_keys: int,
    ) -> int:
        """Add ``(key_id, one_time_key JSON)`` pairs (ids already held are ignored; past
        ``max_keys`` the rest are dropped) and replace the fallback key if one is given; how
        many one-time keys the device has now."""

    def one_time_key_count(self, fingerprint: str, device: str) -> tuple[int, bool]:
        """How many one-time keys the device has, and whether it has a fallback key."""

    def claim_one_time_key(self, fingerprint: str, device: str) -> str | None:
        """Hand out one one-time key (JSON) once, oldest first, and forget it; the fallback key
        (not forgotten) when none is left; None for an unknown device or one with neither."""

    def forget_one_time_key(self, fingerprint: str, device: str, key_id: str) -> None:
        """Another server's claim (decided by the cluster's log) took this key."""

    def append_inbox(
        self,
        fingerprint: str,
        device: str,
        payload: str,
        now: float,
        bounds: InboxBounds,
        item_id: int | None = None,
    ) -> int:
        """Queue ``payload`` for the device, with ``item_id`` (assigned by the cluster's log) or
        the next id; drop what ``bounds`` no longer keeps; the item's id (0 for an unknown
        device, which gets nothing)."""

    def append_inbox_items(
        self, entries: list[InboxEntry], now: float, bounds: InboxBounds
    ) -> list[int]:
        """``append_inbox`` for each entry, in order, as one write (a key shared with a whole
        room is one transaction, not one per device); their ids, 0 for those not queued."""

    def inbox(
        self, fingerprint: str, device: str, after: int, now: float, bounds: InboxBounds
    ) -> list[InboxItem]:
        """The device's items with an id above ``after``, oldest first, none older than
        ``bounds.max_age``."""

    def ack_inbox(self, fingerprint: str, device: str, upto: int) -> int:
        """The device has every item up to ``upto``: delete them; how many were deleted."""

    def set_encrypted(self, room: str) -> None:
        """``room`` is end-to-end encrypted, for good."""

    def encrypted_rooms(self) -> set[str]: ...

    # Rooms' roles and rules (docs/PROTOCOL.md, section 22, "Private rooms and room roles").

    def room_states(self) -> dict[str, RoomState]:
        """Every room that has an owner, operators, admitted keys, bans or mutes, or was made
        invite-only, as stored (expired bans and mutes included)."""

    def set_room_owner(self, room: str, fingerprint: str) -> None:
        """``fingerprint`` owns ``room``, unless the room has an owner already."""

    def set_invite_only(self, room: str, invite_only: bool) -> None: ...

    def set_room_grant(self, room: str, fingerprint: str, grant: Grant, granted: bool) -> None:
        """Give the key the grant in the room (True) or take it back (False)."""

    def set_room_ban(self, room: str, ban: Ban) -> None: ...

    def lift_room_ban(self, room: str, fingerprint: str) -> None: ...

    def set_room_mute(self, room: str, fingerprint: str, until: float | None) -> None:
        """Mute the key in the room until ``until`` (None: until it is unmuted)."""

    def lift_room_mute(self, room: str, fingerprint: str) -> None: ...

    def close(self) -> None: ...

    # Invitations (docs/PROTOCOL.md, section 22, "Invitations"; store/invitations.py).

    def add_invitation(self, invitation: StoredInvitation) -> bool:
        """Keep ``invitation``, and forget the invitations that ended ``KEPT_AFTER_END`` before
        it was made; False (and nothing changes) if an invitation with its id is kept."""

    def invitation(self, invitation_id: str) -> StoredInvitation | None: ...

    def invitations(self) -> list[StoredInvitation]:
        """Every invitation kept, newest first."""

    def open_invitations(self, now: float) -> int:
        """How many invitations are neither used, revoked nor expired at ``now``."""

    def use_invitation(self, invitation_id: str, fingerprint: str, at: float) -> None:
        """The key used the invitation at ``at`` (nothing changes if it is not open)."""

    def revoke_invitation(self, invitation_id: str, at: float) -> None:
        """An operator revoked the invitation at ``at`` (nothing changes if it is not open)."""
