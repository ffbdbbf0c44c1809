"""What the user sends end to end encrypted: private messages always, room lines in encrypted
rooms (docs/PROTOCOL.md, "End-to-end layer"). Pure.

Such a line waits in the delivery queue like any other, and when its turn comes, first for what
encrypting it needs: the verified device lists of the users involved (``keys_query``), an Olm
session with each of their devices (``keys_claim`` for one-time keys) and, in a room, this
device's Megolm key shared with every member device that does not hold it yet. Then it is signed
(section 21), sealed and encrypted once, and the frame is kept: after a lost connection it goes
again byte for byte, with the ``to_device`` frames that shared its room key before it (a device
that got them already drops the copies as Olm replays).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ...e2e.device import DeviceKeys
from ...e2e.errors import E2eError
from ...e2e.payloads import PRIVATE, ROOM_KEY, private_key_fields, room_key_fields
from ...e2e.private import new_private_key, seal_private
from ...protocol.identity import IdentityKey, fingerprints_equal
from ..delivery import Outgoing
from ..e2e_frames import (
    FINGERPRINT,
    MAX_PRIVATE_KEYS,
    MAX_QUERY,
    MAX_TO_DEVICE,
    EncryptedSay,
    MegolmLine,
    OlmItem,
    PrivateLine,
    seal_line,
)
from ..envelope import SignedMessage
from ..frames import MAX_FRAME, b64, encode_frame
from ..limits import claim_cost
from ..lines import Line
from .crypto import OLM_SESSIONS, ROOM_KEYS, ROOMS, ClientCrypto
from .operating import ClientOperating
from .sending import NO_DEVICE_FOR_PRIVATE

# How long a line waits for the server's key directory before it is refused.
PREREQUISITE_TIMEOUT = 30.0
# A line refused as 'stale' this many times is given up: the directory keeps changing under it.
MAX_REBUILDS = 3
# ``to_device`` frames stay this far under the frame limit (each item is about 1 KiB).
TO_DEVICE_BYTES = MAX_FRAME - 4096


class CannotEncrypt(E2eError):
    """Nobody the line is for can be encrypted for."""


@dataclass
class Preparation:
    """An encrypted line on its way: since when it waits for what it needs, how often the
    server sent it back as 'stale', and the ``to_device`` frames that go before it."""

    since: float | None = None
    rebuilds: int = 0
    prelude: list[dict[str, Any]] = field(default_factory=list)


class ClientEncrypting(ClientOperating):
    """Sending, with end-to-end encryption for the lines that need it."""

    def __init__(
        self, identity: IdentityKey, nick: str = "", crypto: ClientCrypto | None = None
    ) -> None:
        super().__init__(identity, nick, crypto)
        self._preparing: dict[int, Preparation] = {}
        # Devices the user was told get no copy (no one-time key), so as to say it once.
        self._reported: set[tuple[str, str]] = set()

    def prepare_reconnect(self) -> None:
        super().prepare_reconnect()
        for preparation in self._preparing.values():
            preparation.since = None
        if self.crypto is not None:
            self.crypto.directory.connection_lost()

    # --- before a line is signed ----------------------------------------------------------

    def _ready(self, item: Outgoing, now: float) -> bool | Line:
        if not self._encrypts(item.target):
            return True
        crypto = self.crypto
        if crypto is None:
            return self._drop(item, NO_DEVICE_FOR_PRIVATE, now)
        preparation = self._preparing.setdefault(item.ref, Preparation())
        directory = crypto.directory
        if preparation.since is None:
            preparation.since = now
            # A device the server had no key for may have uploaded some since: each new line
            # asks once more, so one empty answer does not cut a device off for good.
            directory.unreachable.clear()
        users = self._users_of(item)
        unknown = [fp for fp in users if not directory.known(fp)]
        if unknown:
            self.outbox += directory.query(unknown, now)
            return self._waiting(item, preparation, now)
        if item.target.startswith("@"):
            devices = self._private_devices(crypto, item.target[1:])
            if not devices:
                return self._drop(item, self._nobody_to_encrypt_for(item), now)
        else:
            devices = self._room_devices(crypto, item.target, users, now)
        need = [d for d in devices if crypto.needs_session(d) and not directory.is_unreachable(d)]
        if not need:
            return True
        to_claim = [d for d in need if not directory.is_claiming(d)]
        if to_claim:
            cost = min(claim_cost(len(to_claim)), self.queue.work.burst)
            wait = self.queue.work.take(now, cost)
            if wait > 0:
                self._wake(now + max(wait, 0.001))
                return False
            self.outbox += directory.claim(to_claim)
        return self._waiting(item, preparation, now)

    def _users_of(self, item: Outgoing) -> list[str]:
        own = self.identity.fingerprint
        if item.target.startswith("@"):
            return list(dict.fromkeys([item.target[1:], own]))
        members = self.members.get(item.target, {})
        return list(dict.fromkeys([*(m.fingerprint for m in members.values()), own]))

    def _private_devices(self, crypto: ClientCrypto, recipient: str) -> list[DeviceKeys]:
        """The recipient's devices and our other ones; empty if the recipient has none."""
        directory = crypto.directory
        theirs = list(directory.devices(recipient))
        if not theirs:
            return []
        ours = directory.devices(self.identity.fingerprint)
        return list({(d.user, d.device_id): d for d in [*theirs, *ours]}.values())

    def _room_devices(
        self, crypto: ClientCrypto, room: str, users: list[str], now: float
    ) -> list[DeviceKeys]:
        """The member devices that lack this device's current key for ``room``; starts or
        rotates the session first when it is due (a device left, 100 lines, 7 days)."""
        directory = crypto.directory
        crypto.rooms.check_members(
            self.network, room, {fp: {d.device_id for d in directory.devices(fp)} for fp in users}
        )
        _, new_key = crypto.rooms.sender(self.network, room, now)
        if new_key is not None:
            crypto.rooms.own_session(
                crypto.room_keys, self.identity.fingerprint, crypto.own_keys.curve25519, new_key
            )
            crypto.mark(ROOMS, ROOM_KEYS)
        devices = [d for fp in users for d in directory.devices(fp)]
        unshared = set(crypto.rooms.unshared(self.network, room, [_ref(d) for d in devices]))
        return [d for d in devices if _ref(d) in unshared]

    def _nobody_to_encrypt_for(self, item: Outgoing) -> str:
        who = item.recipient or item.target[1:]
        if self.crypto is not None and fingerprints_equal(
            item.target[1:], self.identity.fingerprint
        ):
            return "you have no other device to send it to"
        if self.crypto is not None and self.crypto.directory.devices(item.target[1:]):
            return f"no device of {who} can be reached: the server has no one-time key for them"
        return f"{who} has no device that can receive end-to-end encrypted messages yet"

    def _waiting(self, item: Outgoing, preparation: Preparation, now: float) -> bool | Line:
        since = now if preparation.since is None else preparation.since
        if now - since >= PREREQUISITE_TIMEOUT:
            return self._drop(item, "the server did not answer for its recipients' keys", now)
        self._wake(since + PREREQUISITE_TIMEOUT)
        return False

    def _wake(self, at: float) -> None:
        self.wake_at = at if self.wake_at is None else min(self.wake_at, at)

    def _drop(self, item: Outgoing, reason: str, now: float) -> Line:
        self.queue.waiting.remove(item)
        return self._refuse(item, reason, now)

    # --- signing and encrypting -----------------------------------------------------------

    def _sign_and_send(self, item: Outgoing, now: float) -> list[Line]:
        preparation = self._preparing.get(item.ref)
        lines: list[Line] = []
        if item.frame is None and preparation is not None:
            lines = self._encrypt(item, preparation, now)
            if item.frame is None:
                return lines
        if preparation is not None:
            self.outbox.extend(preparation.prelude)
        return lines + super()._sign_and_send(item, now)

    def _encrypt(self, item: Outgoing, preparation: Preparation, now: float) -> list[Line]:
        """Sign, seal and encrypt ``item`` into its frame (``item.frame``), or refuse it."""
        crypto = self.crypto
        assert crypto is not None  # only lines _ready prepared get here, and it checked
        message = self.sign(item.body, now, item.target)
        notes: list[Line] = []
        try:
            if item.target.startswith("@"):
                frame = self._private_frame(crypto, item, message, notes, now)
            else:
                frame, preparation.prelude = self._room_frame(crypto, message, notes, now)
        except (E2eError, ValueError) as problem:
            return [*notes, self._drop(item, f"not encrypted: {problem}", now)]
        size = len(encode_frame(frame))
        if size > MAX_FRAME:
            refusal = f"{size} bytes is more than one message carries"
            return [*notes, self._drop(item, refusal, now)]
        item.frame = frame
        if item.line is not None:
            item.line = replace(item.line, encrypted=True)
        return notes

    def _private_frame(
        self,
        crypto: ClientCrypto,
        item: Outgoing,
        message: SignedMessage,
        notes: list[Line],
        now: float,
    ) -> dict[str, Any]:
        recipient = item.target[1:]
        devices = self._reachable(crypto, self._private_devices(crypto, recipient), notes, now)
        if not any(d.user == recipient for d in devices):
            raise CannotEncrypt(self._nobody_to_encrypt_for(item))
        key = new_private_key()
        sealed = seal_private(key, seal_line(message))
        fields = private_key_fields(key)
        keys = tuple(crypto.encrypt_for(d, PRIVATE, fields) for d in devices[:MAX_PRIVATE_KEYS])
        private = PrivateLine(b64(sealed), keys)
        return _say(message, None, private)

    def _room_frame(
        self, crypto: ClientCrypto, message: SignedMessage, notes: list[Line], now: float
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        room = message.target
        devices = self._room_devices(crypto, room, self._users_of_room(room), now)
        sender, _ = crypto.rooms.sender(self.network, room, now)
        key = sender.room_key()
        fields = room_key_fields(self.network, room, key.session_id, key.session_key)
        reachable = self._reachable(crypto, devices, notes, now)
        items = [crypto.encrypt_for(device, ROOM_KEY, fields) for device in reachable]
        crypto.rooms.mark_shared(self.network, room, [_ref(d) for d in reachable])
        ciphertext = sender.encrypt(seal_line(message), now)
        # The session moved on: written before the line leaves, or a restart would reuse the
        # index, and members would refuse the next line as a forgery.
        crypto.mark(ROOMS, OLM_SESSIONS)
        megolm = MegolmLine(ciphertext.session_id, ciphertext.ciphertext)
        return _say(message, megolm, None), to_device_frames(items)

    def _users_of_room(self, room: str) -> list[str]:
        members = self.members.get(room, {})
        own = self.identity.fingerprint
        return list(dict.fromkeys([*(m.fingerprint for m in members.values()), own]))

    def _reachable(
        self, crypto: ClientCrypto, devices: list[DeviceKeys], notes: list[Line], now: float
    ) -> list[DeviceKeys]:
        """The devices there is an Olm session (or a one-time key) for; the others are said
        once to get nothing."""
        reachable = []
        for device in devices:
            if not crypto.needs_session(device):
                reachable.append(device)
            elif _ref(device) not in self._reported:
                self._reported.add(_ref(device))
                who = self._nick_of(device.user)
                notes.append(
                    Line(
                        "notice",
                        now,
                        f"device {device.device_id} of {who} gets nothing end-to-end encrypted:"
                        " the server has no one-time key for it",
                    )
                )
        return reachable

    def _nick_of(self, fingerprint: str) -> str:
        """A nick known for ``fingerprint`` (the last learnt), else the fingerprint."""
        if fingerprints_equal(fingerprint, self.identity.fingerprint):
            return self.nick or fingerprint
        for present in self.members.values():
            for member in present.values():
                if member.fingerprint == fingerprint:
                    return member.nick
        # The directory keeps nicks case-folded: the best there is for someone in no room.
        return next((n for n, fp in self.directory.items() if fp == fingerprint), fingerprint)

    # --- outcomes -------------------------------------------------------------------------

    def _refuse(self, item: Outgoing, reason: str, now: float) -> Line:
        self._preparing.pop(item.ref, None)
        return super()._refuse(item, reason, now)

    def _deliver(self, item: Outgoing) -> list[Line]:
        self._preparing.pop(item.ref, None)
        return super()._deliver(item)

    def _rebuild_stale(self, frame: dict[str, Any], text: str, now: float) -> list[Line] | None:
        """The server refused an encrypted line because the devices of some users changed
        (``stale``): ask for their lists again and encrypt the line anew. None if ``frame`` is
        no such refusal of a line of ours."""
        counter, stale = frame.get("counter"), frame.get("stale")
        item = self.queue.in_flight.get(counter) if isinstance(counter, int) else None
        if item is None or not isinstance(stale, list) or self.crypto is None:
            return None
        preparation = self._preparing.get(item.ref)
        if preparation is None:
            return None
        named = [
            fp for fp in stale[:MAX_QUERY] if isinstance(fp, str) and FINGERPRINT.fullmatch(fp)
        ]
        for fingerprint in named or self._users_of(item):
            self.crypto.directory.forget(fingerprint)
        self.queue.settle(item.counter)
        preparation.rebuilds += 1
        if preparation.rebuilds > MAX_REBUILDS:
            return [self._refuse(item, text, now), *self.tick(now)]
        # Signed anew: a line sent after it may have been accepted meanwhile, and the server
        # takes counters in increasing order only.
        item.frame, item.resent, item.throttled = None, False, False
        preparation.since, preparation.prelude = None, []
        self.queue.requeue(item)
        return self.tick(now)


def _ref(device: DeviceKeys) -> tuple[str, str]:
    return (device.user, device.device_id)


def _say(
    message: SignedMessage, megolm: MegolmLine | None, private: PrivateLine | None
) -> dict[str, Any]:
    fields = EncryptedSay(
        message.network,
        message.target,
        message.sender,
        message.counter,
        message.timestamp_ms,
        megolm,
        private,
    ).fields()
    return {"type": "say", **fields}


def to_device_frames(items: list[OlmItem]) -> list[dict[str, Any]]:
    """``to_device`` frames carrying ``items``, each within the item and size limits."""
    frames: list[dict[str, Any]] = []
    batch: list[dict[str, Any]] = []
    size = 0
    for item in items:
        fields = item.to_dict()
        length = len(encode_frame(fields)) + 1
        if batch and (len(batch) >= MAX_TO_DEVICE or size + length > TO_DEVICE_BYTES):
            frames.append({"type": "to_device", "messages": batch})
            batch, size = [], 0
        batch.append(fields)
        size += length
    if batch:
        frames.append({"type": "to_device", "messages": batch})
    return frames
