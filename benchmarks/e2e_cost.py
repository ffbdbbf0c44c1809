"""What end-to-end encryption costs a client, timed in this process (``time.perf_counter``).

Per room line (docs/PROTOCOL.md, section 23), with an Ed25519 identity key:

- *encrypt*: sign the line (section 21, ``SignedMessage.create``), seal it (``seal_line``) and
  encrypt it under the device's Megolm session (``RoomSender.encrypt``), which is rotated every
  100 lines as the client does;
- *decrypt*: read the Megolm message index, decrypt (``RoomKeys.decrypt``, with its replay
  memory), open the sealed line (``open_sealed_line``), compare its fields with the frame's and
  verify the signature (``SignedMessage.verify``);
- the plain room's own work next to it: sign only, verify only.

Each figure is the median over ``rounds`` of ``messages`` lines, and each part (sign, seal,
Megolm) is also timed alone. Then the one-time cost of sharing a room key (a ``room_key``
payload, encoded and Olm-encrypted per device with ``OlmSessions.encrypt``) with ``devices``
member devices whose Olm sessions are established: the first share after every peer has read the
last one and answered (each session takes a new Diffie-Hellman ratchet step) and a share right
after it (a step of the same chain). The client shares a key when it starts or rotates its
session, so that cost spread over the 100 lines of a session is given too.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import vodozemac

from tlschat.chat.e2e_frames import open_sealed_line, seal_line
from tlschat.chat.envelope import SignedMessage
from tlschat.e2e.megolm import DEFAULT_MAX_MESSAGES, MegolmCiphertext, RoomSender
from tlschat.e2e.olm import OlmCiphertext, OlmSessions
from tlschat.e2e.payloads import ROOM_KEY, Envelope, encode_payload, room_key_fields
from tlschat.e2e.room_keys import RoomKeys
from tlschat.protocol.identity import IdentityKey, PeerIdentity

from .encrypted_load import Member, answer, establish

ROOM = "#general"
BODY_SIZES = (100, 4096)


@dataclass(frozen=True)
class Line:
    """One line as a member device receives it: the frame's readable fields and its Megolm
    ciphertext."""

    message: SignedMessage
    session_id: str
    ciphertext: str


def _median_us(function: Callable[[], object], count: int, rounds: int) -> float:
    """Median over ``rounds`` of the wall time of ``function`` (which handles ``count`` items),
    per item, in microseconds."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) / count * 1e6)
    return statistics.median(times)


class LineBench:
    """Lines of one body size from one sender to one member device."""

    def __init__(self, body_bytes: int, messages: int) -> None:
        self.identity = IdentityKey.generate("ed25519")
        self.peer = PeerIdentity.from_spki(self.identity.spki_der)
        self.network = IdentityKey.generate("ed25519").fingerprint  # the server's key
        self.body = "x" * body_bytes
        self.messages = messages
        self.now = time.time()
        self.counter = int(self.now * 1_000_000)

    def signed(self) -> list[SignedMessage]:
        lines = []
        for _ in range(self.messages):
            self.counter += 1
            lines.append(
                SignedMessage.create(
                    self.identity,
                    self.network,
                    ROOM,
                    self.counter,
                    int(self.now * 1000),
                    self.body,
                )
            )
        return lines

    def encrypted(self) -> tuple[list[Line], RoomKeys]:
        """Sign, seal and encrypt ``messages`` lines (rotating every 100); the receiver's keys."""
        keys = RoomKeys()
        sender: RoomSender | None = None
        lines = []
        for message in self.signed():
            if sender is None or sender.should_rotate(self.now):
                sender = RoomSender.start(ROOM, self.now)
                keys.import_key("sender", sender.room_key())
            ciphertext = sender.encrypt(seal_line(message), self.now)
            lines.append(Line(message, ciphertext.session_id, ciphertext.ciphertext))
        return lines, keys

    def decrypt(self, lines: list[Line], keys: RoomKeys) -> None:
        for line in lines:
            index = vodozemac.MegolmMessage.from_base64(line.ciphertext).message_index()
            plain = keys.decrypt(
                ROOM, "sender", MegolmCiphertext(line.session_id, index, line.ciphertext)
            )
            opened = open_sealed_line(plain.plaintext)
            frame = line.message
            if (
                opened.network != frame.network
                or opened.target != frame.target
                or opened.sender != frame.sender
                or opened.counter != frame.counter
                or opened.timestamp_ms != frame.timestamp_ms
                or not opened.verify(self.peer)
            ):
                raise AssertionError("a line did not decrypt to what was sent")

    def measure(self, rounds: int) -> dict[str, Any]:
        count = self.messages
        signed = self.signed()
        sealed = [seal_line(message) for message in signed]
        peer = self.peer

        def megolm_only() -> None:
            sender = RoomSender.start(ROOM, self.now)
            for plaintext in sealed:
                if sender.should_rotate(self.now):
                    sender = RoomSender.start(ROOM, self.now)
                sender.encrypt(plaintext, self.now)

        def verify_only() -> None:
            for message in signed:
                message.verify(peer)

        def encrypt_all() -> None:
            self.encrypted()

        # Each round decrypts lines of its own, with its own keys (whose replay memory would
        # refuse the same lines a second time).
        stock = [self.encrypted() for _ in range(rounds)]
        decrypt_times = []
        for round_lines, round_keys in stock:
            start = time.perf_counter()
            self.decrypt(round_lines, round_keys)
            decrypt_times.append((time.perf_counter() - start) / count * 1e6)
        decrypt_us = statistics.median(decrypt_times)
        # ``encrypted`` also signs: the encrypt figure is the whole of what the sender does.
        encrypt_us = _median_us(encrypt_all, count, rounds)
        sign_us = _median_us(self.signed, count, rounds)
        seal_us = _median_us(lambda: [seal_line(m) for m in signed], count, rounds)
        megolm_us = _median_us(megolm_only, count, rounds)
        verify_us = _median_us(verify_only, count, rounds)
        ciphertext = len(stock[0][0][0].ciphertext)
        return {
            "body_bytes": len(self.body.encode()),
            "messages": count,
            "rounds": rounds,
            "sealed_bytes": len(sealed[0]),
            "megolm_ct_b64_chars": ciphertext,
            "encrypt_us": encrypt_us,
            "decrypt_us": decrypt_us,
            "sign_us": sign_us,
            "seal_us": seal_us,
            "megolm_encrypt_us": megolm_us,
            "verify_us": verify_us,
            "added_encrypt_us": encrypt_us - sign_us,
            "added_decrypt_us": decrypt_us - verify_us,
        }


class ShareBench:
    """One device sharing its Megolm session key with ``devices`` member devices."""

    def __init__(self, devices: int) -> None:
        self.sender = Member.create()
        self.olm = OlmSessions(self.sender.device)
        self.peers = [Member.create() for _ in range(devices)]
        self.peer_sessions = [establish(self.olm, self.sender, peer) for peer in self.peers]
        self.network = IdentityKey.generate("ed25519").fingerprint

    def share(self) -> list[OlmCiphertext]:
        """One round: a ``room_key`` for every member device, in the peers' order."""
        key = RoomSender.start(ROOM, time.time()).room_key()
        fields = room_key_fields(self.network, ROOM, key.session_id, key.session_key)
        sender = self.sender
        sent = []
        for peer in self.peers:
            envelope = Envelope(
                sender.keys.user, sender.keys.device_id, peer.keys.user, peer.keys.device_id
            )
            payload = encode_payload(ROOM_KEY, envelope, fields)
            sent.append(self.olm.encrypt(peer.keys, None, payload))
        return sent

    def measure(self, rounds: int) -> dict[str, Any]:
        devices = len(self.peers)
        after_answer, chained = [], []
        unread: list[list[OlmCiphertext]] = [[] for _ in self.peers]
        for _ in range(rounds):
            # Each peer reads what it was sent, then answers: the sender's next message to it
            # starts a new ratchet step (a fresh key pair and a Diffie-Hellman exchange).
            for peer, sessions, messages in zip(
                self.peers, self.peer_sessions, unread, strict=True
            ):
                for message in messages:
                    sessions.decrypt(self.sender.keys.curve25519, message)
                answer(self.olm, self.sender, sessions, peer)
            start = time.perf_counter()
            first = self.share()
            after_answer.append(time.perf_counter() - start)
            start = time.perf_counter()
            second = self.share()
            chained.append(time.perf_counter() - start)
            unread = [list(pair) for pair in zip(first, second, strict=True)]
        olm_bytes = sum(len(message.ciphertext) for message in second)
        ratchet_ms = statistics.median(after_answer) * 1e3
        chain_ms = statistics.median(chained) * 1e3
        return {
            "devices": devices,
            "rounds": rounds,
            "share_after_answer_ms": ratchet_ms,
            "share_chained_ms": chain_ms,
            "per_device_after_answer_us": ratchet_ms * 1e3 / devices,
            "per_device_chained_us": chain_ms * 1e3 / devices,
            "olm_b64_chars_per_device": olm_bytes / devices,
            "lines_per_session": DEFAULT_MAX_MESSAGES,
            "per_line_after_answer_us": ratchet_ms * 1e3 / DEFAULT_MAX_MESSAGES,
            "per_line_chained_us": chain_ms * 1e3 / DEFAULT_MAX_MESSAGES,
        }


def measure(messages: int = 3000, rounds: int = 5, devices: int = 100) -> dict[str, Any]:
    """The client's costs: per line at each body size, and sharing a room key."""
    return {
        "lines": [LineBench(size, messages).measure(rounds) for size in BODY_SIZES],
        "share": ShareBench(devices).measure(rounds),
    }


def markdown(costs: dict[str, Any]) -> str:
    rows = [
        "| body | sealed line | Megolm `ct` | encrypt | of which sign | seal | Megolm | "
        "decrypt | of which verify | added by E2E (enc / dec) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for line in costs["lines"]:
        rows.append(
            f"| {line['body_bytes']:,} B | {line['sealed_bytes']:,} B "
            f"| {line['megolm_ct_b64_chars']:,} chars "
            f"| {line['encrypt_us']:.1f} us | {line['sign_us']:.1f} | {line['seal_us']:.1f} "
            f"| {line['megolm_encrypt_us']:.1f} | {line['decrypt_us']:.1f} us "
            f"| {line['verify_us']:.1f} "
            f"| {line['added_encrypt_us']:.1f} / {line['added_decrypt_us']:.1f} us |"
        )
    share = costs["share"]
    rows += [
        "",
        "| room key shared with | after each peer read and answered (new ratchet step) "
        "| right after (same chain) | "
        "Olm body per device | per line of a 100-line session |",
        "| --- | --- | --- | --- | --- |",
        f"| {share['devices']} devices | {share['share_after_answer_ms']:.2f} ms "
        f"({share['per_device_after_answer_us']:.1f} us per device) "
        f"| {share['share_chained_ms']:.2f} ms "
        f"({share['per_device_chained_us']:.1f} us per device) "
        f"| {share['olm_b64_chars_per_device']:,.0f} chars "
        f"| {share['per_line_after_answer_us']:.1f} / {share['per_line_chained_us']:.1f} us |",
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    # python -m benchmarks.e2e_cost: the client's costs alone (a part of --encrypted).
    print(markdown(measure()))
