"""The end-to-end frames from the server: the key directory's answers, the room encryption
flags, and this device's inbox of Olm messages (docs/PROTOCOL.md, "End-to-end layer"). Pure.

An inbox item is decrypted once its sender's device is in that user's verified device list (the
list is asked for first, and asked again once if the device is not in it; then an item from a
device its user does not list is dropped). Items are acknowledged (``device_ack``) up to the
last one handled with none before it still waiting, after the state they changed is marked for
``take_dirty``: the glue writes that state before it sends the acknowledgement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...e2e.device import DeviceKeys
from ...e2e.errors import E2eError
from ...e2e.megolm import MegolmError
from ...e2e.olm import OlmReplay
from ...e2e.payloads import (
    PRIVATE,
    ROOM_KEY,
    VERIFY_TYPES,
    ToDevicePayload,
    parse_private_key,
    parse_room_key,
)
from ...protocol.identity import IdentityKey
from ..e2e_frames import (
    field_device,
    field_fingerprint,
    field_list,
    field_object,
    parse_olm_body,
)
from ..frames import FrameError, field_int, field_str
from ..lines import Line
from ..seen import SeenLedger
from .commands import error
from .crypto import ROOM_KEYS, ROOMS, ClientCrypto
from .crypto_rooms import SessionOwner
from .verifying import ClientVerifying

MAX_INBOX_PAGE = 1024
MAX_INBOX_ID = (1 << 63) - 1
MAX_HELD_KEYS = 1_000_000
_NO_KEYS = "it has no device keys"


@dataclass
class InboxItem:
    id: int
    sender: str
    sender_device: str
    olm_type: int
    olm_body: str
    # The 'message' frame of a private message (its text under the key the Olm part carries).
    message: dict[str, Any] | None
    # Its sender's device list was asked for after it came: a device missing then is unknown.
    asked: bool = field(default=False)


def parse_inbox_item(entry: dict[str, Any]) -> InboxItem:
    olm_type, body = parse_olm_body(field_object(entry, "olm"))
    message = entry.get("message")
    if message is not None and not isinstance(message, dict):
        raise FrameError("'message' must be an object")
    return InboxItem(
        field_int(entry, "id", MAX_INBOX_ID),
        field_fingerprint(entry, "from"),
        field_device(entry, "from_device"),
        olm_type,
        body,
        message,
    )


class ClientInbox(ClientVerifying):
    """The key directory's answers and this device's inbox."""

    def __init__(
        self, identity: IdentityKey, nick: str = "", crypto: ClientCrypto | None = None
    ) -> None:
        super().__init__(identity, nick, crypto)
        self._inbox: list[InboxItem] = []
        self._inbox_done: set[int] = set()
        self._inbox_acked = 0

    def use_network(self, network: str, ledger: SeenLedger) -> None:
        if network != self.network:
            self._inbox_acked = 0  # inbox ids are per network
        super().use_network(network, ledger)

    def prepare_reconnect(self) -> None:
        super().prepare_reconnect()
        # The server sends again what was not acknowledged.
        self._inbox.clear()
        self._inbox_done.clear()
        self._listing_devices = False
        self._verify_asked = None

    # --- the directory --------------------------------------------------------------------

    def _on_keys(self, frame: dict[str, Any], now: float) -> list[Line]:
        if self.crypto is None:
            return []
        try:
            answer = self.crypto.directory.receive_keys(frame)
        except FrameError as problem:
            lines = error(f"malformed 'keys' frame from server: {problem}", now)
        else:
            lines = []
            if answer.rejected:
                who = self._nick_of(answer.fingerprint)
                lines += error(
                    f"the server lists {answer.rejected} device(s) for {who} that {who}'s key"
                    " did not sign: never used",
                    now,
                )
            lines += self._devices_answered(answer, now)
        return lines + self._process_inbox(now) + self.tick(now)

    def _on_claimed(self, frame: dict[str, Any], now: float) -> list[Line]:
        if self.crypto is None:
            return []
        self.crypto.directory.receive_claimed(frame)
        return self._flush_held(now) + self.tick(now)

    def _on_keys_changed(self, frame: dict[str, Any], now: float) -> list[Line]:
        fingerprint = field_fingerprint(frame, "fingerprint")
        if self.crypto is not None:
            self.crypto.directory.forget(fingerprint)
        return []

    def _on_keys_uploaded(self, frame: dict[str, Any], now: float) -> list[Line]:
        device = field_device(frame)
        held = field_int(frame, "one_time_keys", MAX_HELD_KEYS)
        fallback = frame.get("fallback")
        if not isinstance(fallback, bool):
            raise FrameError("'fallback' must be true or false")
        if self.crypto is None or device != self.crypto.device_id:
            return []
        upload = self.crypto.upload_frame(held, fallback)
        if upload is not None:
            self.outbox.append(upload)
        # This comes once a session has a device: payloads held for one-time keys asked for on
        # a lost connection ask again.
        return self._flush_held(now)

    # --- encrypted rooms ------------------------------------------------------------------

    def _on_encrypted(self, frame: dict[str, Any], now: float) -> list[Line]:
        room, by = field_str(frame, "room", 64), field_str(frame, "by", 64)
        self._room_is_encrypted(room)
        text = f"{room} is now end-to-end encrypted (by {by})"
        if self.crypto is None:
            text += f"; this client cannot take part: {_NO_KEYS}"
        return [Line("notice", now, text, by, room=room)]

    def _room_is_encrypted(self, room: str) -> None:
        if self.crypto is not None and self.crypto.rooms.mark_encrypted(self.network, room):
            self.crypto.mark(ROOMS)

    def _member_gone(self, room: str, fingerprint: str) -> None:
        """A member left ``room``: this device's key for it is renewed before its next line."""
        if self.crypto is not None and self.crypto.rooms.member_left(
            self.network, room, fingerprint
        ):
            self.crypto.mark(ROOMS)

    # --- the inbox ------------------------------------------------------------------------

    def _on_device_messages(self, frame: dict[str, Any], now: float) -> list[Line]:
        if self.crypto is None:
            return []
        lines: list[Line] = []
        again = False
        waiting = {item.id for item in self._inbox}
        for entry in field_list(frame, "messages", MAX_INBOX_PAGE):
            try:
                item = parse_inbox_item(entry)
            except FrameError as problem:
                lines += error(f"a malformed item in this device's inbox: {problem}", now)
                number = entry.get("id")
                if isinstance(number, int) and 0 < number <= MAX_INBOX_ID:
                    self._inbox_done.add(number)
                continue
            if item.id <= self._inbox_acked:
                again = True  # handled before; the acknowledgement was lost with a connection
            elif item.id not in self._inbox_done and item.id not in waiting:
                self._inbox.append(item)
                waiting.add(item.id)
        self._inbox.sort(key=lambda item: item.id)
        return lines + self._process_inbox(now, again)

    def _process_inbox(self, now: float, acknowledge: bool = False) -> list[Line]:
        """Handle what waits in the inbox, in order per sender; acknowledge what is done."""
        crypto = self.crypto
        if crypto is None:
            return []
        directory = crypto.directory
        lines: list[Line] = []
        remaining: list[InboxItem] = []
        blocked: set[str] = set()
        for item in self._inbox:
            device = directory.device(item.sender, item.sender_device)
            if device is None and not item.asked and item.sender not in blocked:
                item.asked = True
                directory.forget(item.sender)
                self.outbox += directory.query([item.sender], now)
            if item.sender in blocked or (device is None and not directory.known(item.sender)):
                blocked.add(item.sender)
                remaining.append(item)
                continue
            if device is None:
                who = self._nick_of(item.sender)
                lines += error(
                    f"dropped a message from device {item.sender_device}, which {who} does not"
                    " list",
                    now,
                )
            else:
                lines += self._open_item(crypto, device, item, now)
            self._inbox_done.add(item.id)
        self._inbox = remaining
        self._acknowledge(acknowledge)
        return lines

    def _acknowledge(self, again: bool) -> None:
        first_waiting = min((item.id for item in self._inbox), default=None)
        done = [i for i in self._inbox_done if first_waiting is None or i < first_waiting]
        upto = max(done, default=0)
        if upto > self._inbox_acked or (again and self._inbox_acked):
            self._inbox_acked = max(upto, self._inbox_acked)
            self._inbox_done = {i for i in self._inbox_done if i > self._inbox_acked}
            self.outbox.append({"type": "device_ack", "upto": self._inbox_acked})

    def _open_item(
        self, crypto: ClientCrypto, device: DeviceKeys, item: InboxItem, now: float
    ) -> list[Line]:
        who = self._nick_of(device.user)
        try:
            payload = crypto.decrypt_from(device, item.olm_type, item.olm_body)
        except OlmReplay:
            return []  # a copy of what was handled already (sent again after a lost connection)
        except (E2eError, ValueError) as problem:
            return error(
                f"a message from {who} (device {device.device_id}) was refused: {problem}", now
            )
        if payload.kind == ROOM_KEY:
            return self._room_key(crypto, device, payload, now)
        if payload.kind == PRIVATE:
            return self._private(device, payload, item.message, now)
        if payload.kind in VERIFY_TYPES:
            return self._verification_payload(device, payload.kind, payload.fields, now)
        return []

    def _room_key(
        self, crypto: ClientCrypto, device: DeviceKeys, payload: ToDevicePayload, now: float
    ) -> list[Line]:
        who = self._nick_of(device.user)
        try:
            shared = parse_room_key(payload)
            if shared.network != self.network:
                return error(f"a room key from {who} for another network was dropped", now)
            owner = SessionOwner(device.user, device.curve25519)
            fresh = crypto.rooms.import_shared(
                crypto.room_keys,
                owner,
                shared.network,
                shared.room,
                shared.session_id,
                shared.session_key,
            )
        except (E2eError, MegolmError) as problem:
            return error(f"a room key from {who} was refused: {problem}", now)
        crypto.mark(ROOM_KEYS, ROOMS)
        return self._key_arrived(shared.session_id, now) if fresh else []

    def _private(
        self,
        device: DeviceKeys,
        payload: ToDevicePayload,
        message: dict[str, Any] | None,
        now: float,
    ) -> list[Line]:
        who = self._nick_of(device.user)
        if message is None:
            return error(f"a private message key from {who} came without its message", now)
        try:
            key = parse_private_key(payload)
            line = self._private_line(device, key, message, now)
        except (E2eError, FrameError) as problem:
            return error(f"a private message from {who} was refused: {problem}", now)
        return [] if line is None else [line]
