"""Load clients of an end-to-end encrypted room (docs/PROTOCOL.md, section 23).

Every member is a device: it says ``hello`` with its ``device_keys`` (a vodozemac account,
signed by its Ed25519 identity key), and refuses to start unless ``joined`` says the room is
encrypted. A sender holds a real Megolm outbound session (``RoomSender``, rotated every 100 lines
as the client does) and sends each line as ``say`` with ``megolm`` = {session, ct}: the ciphertext
of the line as it signed it, sealed (``seal_line``). With ``share_keys``, it also shares each
session's key before its first line, as the client does: one ``to_device`` ``room_key`` per
member device, Olm-encrypted over a session established beforehand; members acknowledge their
inbox (``device_ack``) as the client does. Lines and key shares are made before the timed window,
as the plain benchmark signs its lines before it.

Members do not decrypt: what is measured is the server, and the client's own cost is timed
apart (benchmarks.e2e_cost). A member reads a line's sender slot and sequence number from its
``counter``, which the sender chose as ``base + slot * 2**32 + seq`` (it only has to grow).

Identities and devices are made in the coordinator, before the workers are forked, so that a
sender can reach every member's device; each sender starts its Olm sessions (with a one-time key
of the member's account, and an answer from it) in its own worker, before the window.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from tlschat.chat.client.encrypting import to_device_frames
from tlschat.chat.e2e_frames import (
    EncryptedSay,
    MegolmLine,
    OlmItem,
    device_keys_fields,
    seal_line,
)
from tlschat.chat.envelope import SignedMessage
from tlschat.chat.frames import b64, encode_frame
from tlschat.e2e.device import Device, DeviceKeys, sign_device_keys
from tlschat.e2e.megolm import RoomSender
from tlschat.e2e.olm import OlmSessions
from tlschat.e2e.payloads import ROOM_KEY, Envelope, encode_payload, room_key_fields
from tlschat.protocol import IdentityKey

from .load import Client, TlschatClient, Worker, body_text

ROOM = "#general"
SLOT_SHIFT = 32


@dataclass
class Member:
    """One client of the room: its identity key and its device."""

    identity: IdentityKey
    device: Device
    keys: DeviceKeys = field(init=False)

    def __post_init__(self) -> None:
        self.keys = sign_device_keys(self.device, self.identity)

    @classmethod
    def create(cls) -> Member:
        return cls(IdentityKey.generate("ed25519"), Device.create())

    def hello_keys(self) -> dict[str, object]:
        """``device_keys`` for ``hello``, with the identity key that signed them."""
        return {**device_keys_fields(self.keys), "key": b64(self.identity.spki_der)}


@dataclass
class EncryptedRoom:
    """What every worker inherits: the members, by client index, and how lines are sent."""

    members: list[Member]
    share_keys: bool
    counter_base: int = field(default_factory=lambda: int(time.time() * 1_000_000))

    @classmethod
    def create(cls, n: int, share_keys: bool) -> EncryptedRoom:
        return cls([Member.create() for _ in range(n)], share_keys)

    def client(self, worker: Worker, index: int, mode: str) -> Client:
        return EncryptedClient(worker, index, mode, self, worker.spec.target.fingerprint)

    def counter(self, slot: int, seq: int) -> int:
        return self.counter_base + (slot << SLOT_SHIFT) + seq

    def slot_seq(self, counter: int) -> tuple[int, int]:
        offset = counter - self.counter_base
        return offset >> SLOT_SHIFT, offset & ((1 << SLOT_SHIFT) - 1)


def encrypted_say(message: SignedMessage, sender: RoomSender, now: float) -> dict[str, Any]:
    """The ``say`` of an encrypted room line: ``message`` sealed, under ``sender``'s session."""
    ciphertext = sender.encrypt(seal_line(message), now)
    say = EncryptedSay(
        message.network,
        message.target,
        message.sender,
        message.counter,
        message.timestamp_ms,
        MegolmLine(ciphertext.session_id, ciphertext.ciphertext),
        None,
    )
    return {"type": "say", **say.fields()}


def establish(sender: OlmSessions, own: Member, peer: Member) -> OlmSessions:
    """An Olm session from ``own`` to ``peer``, answered once by the peer (so that the sender's
    messages are normal ones, not pre-key messages), all in this process; the peer's side."""
    peer.device.generate_one_time_keys(1)
    one_time_key = peer.device.unpublished_one_time_keys()[0]
    peer.device.mark_keys_as_published()
    peer_sessions = OlmSessions(peer.device)
    peer_sessions.decrypt(own.keys.curve25519, sender.encrypt(peer.keys, one_time_key, b"hi"))
    answer(sender, own, peer_sessions, peer)
    return peer_sessions


def answer(sender: OlmSessions, own: Member, peer_sessions: OlmSessions, peer: Member) -> None:
    """``peer`` says something back to ``own`` over their session, and ``own`` decrypts it."""
    sender.decrypt(peer.keys.curve25519, peer_sessions.encrypt(own.keys, None, b"ok"))


class EncryptedClient(TlschatClient):
    """A member device of the encrypted room; a sender encrypts its lines before the window."""

    def __init__(
        self, worker: Worker, index: int, mode: str, room: EncryptedRoom, fingerprint: str
    ) -> None:
        self.room = room
        self.member = room.members[index]
        super().__init__(worker, index, mode, self.member.identity, fingerprint)
        self.stock: list[list[bytes]] = []
        self.sender: RoomSender | None = None
        self.olm: OlmSessions | None = None
        self.key_items = 0  # room keys received in device_messages
        self.acks = 0

    def hello_frame(self) -> dict[str, Any]:
        return {**self.chat.hello_frame(), "device_keys": self.member.hello_keys()}

    def _frame(self, data: bytes) -> None:
        if data.startswith(b'{"type":"message"'):
            worker = self.worker
            if worker is not None:
                start = data.index(b'"counter":') + 10
                end = data.index(b",", start)
                slot, seq = self.room.slot_seq(int(data[start:end]))
                worker.on_message(self, slot, seq)
        elif data.startswith(b'{"type":"device_messages"'):
            self._acknowledge(data)
        elif data.startswith(b'{"type":"joined"'):
            if b'"encrypted":true' not in data:
                self._fail("the room is not end-to-end encrypted")
            else:
                self._ready()
        elif data.startswith((b'{"type":"error"', b'{"type":"bye"')):
            self._fail(data.decode(errors="replace")[:200])

    def _acknowledge(self, data: bytes) -> None:
        """Take a page of the device's inbox as the client does: acknowledge its last id."""
        page = json.loads(data)
        messages = page["messages"]
        if messages:
            self.key_items += len(messages)
            self.acks += 1
            ack = {"type": "device_ack", "upto": max(m["id"] for m in messages)}
            self.connection.send_data(encode_frame(ack))
            self._flush()

    def counts(self) -> dict[str, int]:
        return {"room_keys_received": self.key_items, "device_acks": self.acks}

    def presign(self, slot: int, count: int) -> None:
        """Encrypt ``count`` lines now (and the key shares before each session's first one)."""
        now = time.time()
        self.stock = [self._line_frames(slot, seq, now) for seq in range(count)]

    def message_bytes(self, slot: int, seq: int) -> bytes:
        if seq < len(self.stock):
            frames = self.stock[seq]
            self.stock[seq] = []
        else:  # ran out of lines encrypted before the window: encrypt now (counted, reported)
            self.signed_late += 1
            frames = self._line_frames(slot, seq, time.time())
        for frame in frames:
            self.connection.send_data(frame)
        return self.connection.data_to_send()

    def _line_frames(self, slot: int, seq: int, now: float) -> list[bytes]:
        """The frames of one line: the key shares of a new session, if it starts one, then the
        ``say``."""
        frames: list[bytes] = []
        if self.sender is None:
            self.sender = RoomSender.start(ROOM, now)
            frames += self._share()
        elif self.sender.should_rotate(now):
            self.sender.rotate(now)
            frames += self._share()
        message = SignedMessage.create(
            self.member.identity,
            self.chat.network,
            ROOM,
            self.room.counter(slot, seq),
            int(now * 1000),
            body_text(slot, seq),
        )
        frames.append(encode_frame(encrypted_say(message, self.sender, now)))
        return frames

    def _share(self) -> list[bytes]:
        """``to_device`` frames carrying the current session's key to every other member's
        device (none without ``share_keys``)."""
        if not self.room.share_keys:
            return []
        assert self.sender is not None
        own = self.member
        if self.olm is None:
            self.olm = OlmSessions(own.device)
            for peer in self.room.members:
                if peer is not own:
                    establish(self.olm, own, peer)
        key = self.sender.room_key()
        fields = room_key_fields(self.chat.network, ROOM, key.session_id, key.session_key)
        items = []
        for peer in self.room.members:
            if peer is own:
                continue
            envelope = Envelope(
                own.keys.user, own.keys.device_id, peer.keys.user, peer.keys.device_id
            )
            sealed = self.olm.encrypt(peer.keys, None, encode_payload(ROOM_KEY, envelope, fields))
            items.append(
                OlmItem(
                    peer.keys.user,
                    peer.keys.device_id,
                    int(sealed.message_type),
                    sealed.ciphertext,
                )
            )
        return [encode_frame(frame) for frame in to_device_frames(items)]


class OperatorClient(TlschatClient):
    """A server operator that makes the room end-to-end encrypted, then is done."""

    def __init__(self, identity: IdentityKey, fingerprint: str) -> None:
        super().__init__(None, 0, "room", identity, fingerprint)

    def _frame(self, data: bytes) -> None:
        if data.startswith(b'{"type":"joined"'):
            command = {"type": "command", "name": "encrypt", "args": ROOM}
            self.connection.send_data(encode_frame(command))
        elif data.startswith(b'{"type":"encrypted"'):
            self._ready()
        elif data.startswith((b'{"type":"error"', b'{"type":"bye"')):
            self._fail(data.decode(errors="replace")[:200])


async def encrypt_room(host: str, port: int, operator: IdentityKey, fingerprint: str) -> None:
    """Connect as ``operator`` and run ``encrypt #general``; returns once the server says the
    room is encrypted (RuntimeError if it refused)."""
    client = OperatorClient(operator, fingerprint)
    loop = asyncio.get_running_loop()
    await loop.create_connection(lambda: client, host, port)
    try:
        await asyncio.wait_for(client.ready, 30)
    finally:
        client.close()
        await asyncio.sleep(0.1)
