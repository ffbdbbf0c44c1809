"""The encrypted rooms of this device: which rooms are encrypted, the Megolm session it sends
with in each, to which devices that session's key went, and whose device each received session
belongs to.

A room is named by its network and name together (``label``): a key shared for ``#a`` on one
network decrypts nothing in ``#a`` on another. A room, once known to be encrypted, stays so in
this device's memory: a server that later calls it plain gets no plaintext from this client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import vodozemac

from ...e2e.codec import seal, unseal
from ...e2e.errors import UnreadablePickle
from ...e2e.megolm import MegolmCiphertext, RoomKey, RoomSender
from ...e2e.room_keys import (
    MegolmPlaintext,
    MegolmUndecryptable,
    MissingRoomKey,
    RoomKeyMismatch,
    RoomKeys,
)
from ...protocol.identity import fingerprints_equal
from ..e2e_frames import MegolmLine

PICKLE_PURPOSE = "encrypted rooms"
# Rooms and sessions this device keeps track of; past them the oldest received sessions'
# owners are forgotten (their lines then wait for a key that will not come).
MAX_OWNERS = 20_000

DeviceRef = tuple[str, str]


def label(network: str, room: str) -> str:
    """The name a room's keys are bound to: its network and its name."""
    return f"{network} {room}"


@dataclass(frozen=True)
class SessionOwner:
    """The device a received Megolm session came from: its user and Curve25519 key."""

    fingerprint: str
    curve25519: str


@dataclass
class RoomCrypto:
    encrypted: set[str] = field(default_factory=set)
    senders: dict[str, RoomSender] = field(default_factory=dict)
    # The devices the current session of each room's sender was shared with.
    shared: dict[str, set[DeviceRef]] = field(default_factory=dict)
    owners: dict[str, SessionOwner] = field(default_factory=dict)

    def is_encrypted(self, network: str, room: str) -> bool:
        return label(network, room) in self.encrypted

    def mark_encrypted(self, network: str, room: str) -> bool:
        """True if this is news."""
        name = label(network, room)
        if name in self.encrypted:
            return False
        self.encrypted.add(name)
        return True

    def sender(self, network: str, room: str, now: float) -> tuple[RoomSender, RoomKey | None]:
        """The room's outbound session, started or rotated if due; with the new session's key
        when there is one (this device keeps it too, so that its own lines decrypt)."""
        name = label(network, room)
        sender = self.senders.get(name)
        if sender is None:
            sender = RoomSender.start(name, now)
            self.senders[name] = sender
        elif sender.should_rotate(now):
            sender.rotate(now)
        else:
            return sender, None
        self.shared[name] = set()
        return sender, sender.room_key()

    def check_members(self, network: str, room: str, members: dict[str, set[str]]) -> None:
        """Rotate before the next line if the session went to a device that is no longer in the
        room: its user left, was removed, or removed that device (``members``: each member's
        device ids, as last verified)."""
        name = label(network, room)
        sender = self.senders.get(name)
        if sender is None:
            return
        for fingerprint, device in self.shared.get(name, set()):
            if device not in members.get(fingerprint, set()):
                sender.member_left()
                return

    def member_left(self, network: str, room: str, fingerprint: str) -> bool:
        """A member left: rotate before the next line if they had our key. True if so."""
        name = label(network, room)
        sender = self.senders.get(name)
        if sender is None or not any(fp == fingerprint for fp, _ in self.shared.get(name, ())):
            return False
        sender.member_left()
        return True

    def unshared(self, network: str, room: str, devices: list[tuple[str, str]]) -> list[DeviceRef]:
        have = self.shared.get(label(network, room), set())
        return [ref for ref in devices if ref not in have]

    def mark_shared(self, network: str, room: str, refs: list[DeviceRef]) -> None:
        self.shared.setdefault(label(network, room), set()).update(refs)

    def own_session(self, keys: RoomKeys, fingerprint: str, curve25519: str, key: RoomKey) -> None:
        keys.import_key(curve25519, key)
        self.owners[key.session_id] = SessionOwner(fingerprint, curve25519)
        self._bound_owners()

    def import_shared(
        self,
        keys: RoomKeys,
        owner: SessionOwner,
        network: str,
        room: str,
        session_id: str,
        session_key: str,
    ) -> bool:
        """A ``room_key`` from ``owner``'s device; True if lines waiting for it may decrypt now.
        Raises (MegolmError) for a key bound elsewhere or not a Megolm key."""
        held = self.owners.get(session_id)
        if held is not None and held != owner:
            raise RoomKeyMismatch("that session's key came from another device before")
        fresh = keys.import_key(
            owner.curve25519, RoomKey(label(network, room), session_id, session_key)
        )
        self.owners[session_id] = owner
        self._bound_owners()
        return fresh

    def decrypt(
        self, keys: RoomKeys, network: str, room: str, sender: str, line: MegolmLine
    ) -> MegolmPlaintext:
        """The sealed line of a Megolm room line that ``sender`` (a fingerprint) claims."""
        owner = self.owners.get(line.session)
        if owner is None:
            raise MissingRoomKey("no key for that session yet")
        if not fingerprints_equal(owner.fingerprint, sender):
            raise RoomKeyMismatch("the line's session belongs to another user's device")
        try:
            index = vodozemac.MegolmMessage.from_base64(line.ciphertext).message_index()
        except ValueError:
            raise MegolmUndecryptable("not a Megolm message") from None
        ciphertext = MegolmCiphertext(line.session, index, line.ciphertext)
        return keys.decrypt(label(network, room), owner.curve25519, ciphertext)

    def _bound_owners(self) -> None:
        while len(self.owners) > MAX_OWNERS:
            del self.owners[next(iter(self.owners))]

    def pickle(self, pickle_key: bytes) -> str:
        state = {
            "encrypted": sorted(self.encrypted),
            "senders": {name: s.pickle(pickle_key) for name, s in self.senders.items()},
            "shared": {name: sorted(map(list, refs)) for name, refs in self.shared.items()},
            "owners": {sid: [o.fingerprint, o.curve25519] for sid, o in self.owners.items()},
        }
        return seal(pickle_key, PICKLE_PURPOSE, state)

    @classmethod
    def from_pickle(cls, text: str, pickle_key: bytes) -> RoomCrypto:
        state: dict[str, Any] = unseal(pickle_key, PICKLE_PURPOSE, text)
        try:
            return cls(
                encrypted={str(name) for name in state["encrypted"]},
                senders={
                    str(name): RoomSender.from_pickle(text, pickle_key)
                    for name, text in state["senders"].items()
                },
                shared={
                    str(name): {(str(fp), str(device)) for fp, device in refs}
                    for name, refs in state["shared"].items()
                },
                owners={
                    str(sid): SessionOwner(str(fp), str(curve))
                    for sid, (fp, curve) in state["owners"].items()
                },
            )
        except (KeyError, AttributeError, TypeError, ValueError):
            raise UnreadablePickle("the encrypted rooms pickle is damaged") from None
