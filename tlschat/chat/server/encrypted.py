"""End-to-end encrypted chat lines: room lines under Megolm and private messages under Olm-shared
keys. The server cannot read them and checks what it can see (docs/PROTOCOL.md, sections 21 and
23): who sends, where, the counter, the time, the sizes, the budgets, and for a private message
that it is encrypted for exactly the devices the directory lists."""

from __future__ import annotations

from typing import Any

from ...protocol.identity import fingerprints_equal
from ..e2e_frames import EncryptedSay, PrivateLine, parse_encrypted_say
from ..frames import FrameError, b64
from .cluster_events import Encrypt
from .inbox import inbox_payload
from .line_events import (
    CommittedLine,
    E2EPrivate,
    InboxItem,
    Megolm,
    Message,
    OlmCiphertext,
    RelayedLine,
)
from .messages import Line, StaleDevices
from .model import FINGERPRINT_PATTERN, Outgoing, Session
from .replies import notice_frame, sent_frame
from .room_commands import ServerRoomCommands
from .stored import encrypted_tag, event_tag


class ServerEncrypted(ServerRoomCommands):
    """A session's encrypted 'say' frames, and encrypted rooms."""

    def _on_encrypted_say(
        self, session: Session, frame: dict[str, Any], now: float
    ) -> list[Outgoing]:
        message = parse_encrypted_say(frame)
        line = Line(message.sender, message.counter, message.target, encrypted_tag(message))
        if self._committed(session, line):
            return [(session.session_id, sent_frame(message.target, message.counter))]
        return self._take_line(
            session, line, now, lambda: self._encrypted_event(session, message, line.tag, now)
        )

    def _encrypted_event(
        self, session: Session, message: EncryptedSay, tag: str, now: float
    ) -> CommittedLine:
        """The checks of section 21 that apply to what the server can read, in its order, then
        the event that commits the line."""
        if not fingerprints_equal(message.sender, session.fingerprint):
            raise FrameError("message rejected: it names another sender")
        if message.network != self.network:
            raise FrameError("message rejected: signed for another network")
        if message.private is not None:
            if not FINGERPRINT_PATTERN.fullmatch(message.target[1:]):
                raise FrameError("message rejected: a private message names a fingerprint")
            device = self._device_of(session)
            self._check_devices(session, device, message.target[1:], message.private)
        else:
            self._check_room(session, message.target)
            if message.target not in self.encrypted_rooms:
                raise FrameError(f"message rejected: {message.target} is not encrypted")
            device = self._device_of(session)
            self._check_not_muted(session, now)
        self._check_counter_time_flood(session, message.counter, message.timestamp_ms, now)
        megolm = message.megolm
        private = message.private
        relayed = RelayedLine(
            nick=session.nick,
            key=b64(session.identity.spki_der),
            network=message.network,
            target=message.target,
            sender=message.sender,
            counter=message.counter,
            ts=message.timestamp_ms,
            megolm=None if megolm is None else Megolm(session=megolm.session, ct=megolm.ciphertext),
            # Each device gets the line (without the other devices' keys) and its own key to it.
            olm_private=None if private is None else OlmCiphertext(ct=private.ciphertext),
        )
        if private is None:
            return Message(**self._origin(session), message=relayed, digest=tag)
        now_ms = int(now * 1000)
        items = tuple(
            InboxItem(
                fingerprint=item.fingerprint,
                device=item.device,
                payload=inbox_payload(
                    now_ms,
                    session.fingerprint,
                    device,
                    {"type": item.message_type, "body": item.body},
                    message=relayed.frame(),
                ),
            )
            for item in private.keys
        )
        return E2EPrivate(
            **self._origin(session), message=relayed, digest=tag, ts=now_ms, items=items
        )

    def _check_devices(
        self, session: Session, device: str, recipient: str, private: PrivateLine
    ) -> None:
        """A private message's keys are for every device of the recipient and every other device
        of the sender, as the directory lists them, and no other: a device left out would miss
        the line, one too many would be a device the server does not vouch for."""
        sender = session.fingerprint
        expected = {(recipient, d.device) for d in self.store.devices_of(recipient)}
        expected |= {(sender, d.device) for d in self.store.devices_of(sender)}
        expected.discard((sender, device))
        named = {(item.fingerprint, item.device) for item in private.keys}
        if any(fingerprint not in (recipient, sender) for fingerprint, _ in named):
            raise FrameError("message rejected: its keys name a device of a third key")
        if not any(fingerprint == recipient for fingerprint, _ in expected):
            raise FrameError(
                f"message not delivered: {self._name_of(recipient)} has no device that can read it"
            )
        stale = [
            key
            for key in dict.fromkeys((recipient, sender))
            if {d for f, d in named if f == key} != {d for f, d in expected if f == key}
        ]
        if stale:
            text = f"message not sent: the devices of {self._name_of(stale[0])} changed"
            raise StaleDevices(text, stale)

    def _name_of(self, fingerprint: str) -> str:
        online = self._online_of(fingerprint)
        if online:
            return online[0].nick
        return self.store.nick_of(fingerprint) or fingerprint

    # ----- events -----

    def _apply_e2e_private(self, event: E2EPrivate) -> list[Outgoing]:
        """A private message committed: its counter is the sender's last, and each device it is
        for holds it in its inbox (a device that is offline gets it when it connects)."""
        relayed = event.message
        recipient = relayed.target[1:]
        self.store.set_last_counter(relayed.sender, relayed.counter)
        self._remember_committed(relayed, event_tag(event))
        remote = self._remote_sender(event)
        if remote is not None:
            remote.last_active = relayed.ts / 1000
        out = self._store_items(event)
        session = self._sender_of_event(event)
        if session is not None:
            online = self._online_of(recipient)
            if online and online[0].away:
                text = f"{online[0].nick} is away: {online[0].away}"
                out.append((session.session_id, notice_frame(text)))
            out.append((session.session_id, sent_frame(relayed.target, relayed.counter)))
        return out

    def _apply_encrypt(self, event: Encrypt) -> list[Outgoing]:
        room = event.room
        self.encrypted_rooms.add(room)
        self.store.set_encrypted(room)
        return self._to_room(room, {"type": "encrypted", "room": room, "by": event.by})
