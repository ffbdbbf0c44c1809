"""Received lines, plain or end-to-end encrypted, checked and turned into lines to show. Pure.

An encrypted line is decrypted to the line its sender sealed, whose readable fields must be the
frame's; then the checks of section 21 apply to it as to a plain line, so ✓ means the same, and
🔒 adds that the text came through the end-to-end layer from a device of that sender. A room line
whose key has not come yet is shown as waiting (with a ``ref``) and shown decrypted, with the
same ``ref``, when the key comes.

Replays: a live room line decrypted at once is checked against what was shown before, as a plain
line is. A private message comes through the inbox, and a room line may be decrypted long after
it came: for those, Olm's ratchet (each private message key comes once) and Megolm's memory of
message indexes refuse a replay, and the counter check is not applied (a line held back for its
key would otherwise be refused for a later line of its sender shown meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ...e2e.codec import b64decode
from ...e2e.device import DeviceKeys
from ...e2e.errors import E2eError
from ...e2e.megolm import MegolmError
from ...e2e.private import open_private
from ...e2e.room_keys import MissingRoomKey
from ...protocol.identity import IdentityKey, PeerIdentity, fingerprints_equal
from ..e2e_frames import EncryptedSay, open_sealed_line, parse_encrypted_say
from ..envelope import SignedMessage
from ..frames import MAX_KEY_B64, FrameError, field_b64, field_str
from ..lines import DELIVERED, Line, describe_age
from ..verify import ANOTHER_NETWORK, ANOTHER_ROOM, BAD_SIGNATURE, FROM_THE_FUTURE, REPLAYED
from .commands import ACTION_PREFIX
from .crypto import ROOM_KEYS, ClientCrypto
from .encrypting import ClientEncrypting

# Room lines held for their key at most; past it the oldest waits no longer (its placeholder
# stays as it is).
MAX_WAITING_LINES = 1000
NOT_DECRYPTED = "(end-to-end encrypted; not decrypted)"
NO_DEVICE = "end-to-end encrypted, and this client has no device keys"
MISMATCH = "the sealed line does not match its frame"
# What the verifier is told a private message from the inbox is "history of": it checks the
# target (our own key) and the signature, and leaves replays to Olm.
INBOX = "@"


@dataclass(frozen=True)
class WaitingLine:
    """A room line waiting for its session's key."""

    frame: dict[str, Any]
    history_room: str
    ref: int
    sender: str
    counter: int


class ClientDecrypting(ClientEncrypting):
    """Received lines, decrypted when they are end-to-end encrypted."""

    def __init__(
        self, identity: IdentityKey, nick: str = "", crypto: ClientCrypto | None = None
    ) -> None:
        super().__init__(identity, nick, crypto)
        self._waiting_lines: dict[str, list[WaitingLine]] = {}

    def _signed_line(
        self,
        message: SignedMessage,
        nick: str,
        key_der: bytes,
        now: float,
        check_room: str = "",
        *,
        held_back: bool = False,
        encrypted: bool | None = None,
    ) -> Line | None:
        """The line to show for ``message`` as its sender signed it, or None: ignored, or shown
        already. ``check_room``: for history, the room it is the history of (for a private
        message from the inbox, ``INBOX``). ``held_back``: a live line shown only now (from the
        inbox, or after its key came), dated by its own age, its replays refused by Olm or
        Megolm."""
        if message.sender in self.ignored:
            return None
        stale = self.verifier.ledger.is_stale(message.timestamp_ms, int(now * 1000))
        verdict = self.verifier.check(message, key_der, self.rooms, check_room, now)
        if verdict.duplicate:
            return None
        late = verdict.late or (held_back and verdict.verified and stale)
        private = message.target.startswith("@")
        if private and verdict.verified:
            self.last_private = (nick, message.sender)
            self._learn(nick, message.sender)
        body, kind = message.body, "private" if private else "message"
        if body.startswith(ACTION_PREFIX):
            kind, body = "action", body[len(ACTION_PREFIX) :]
        note = ""
        if late:
            note = f"signed {describe_age(now - message.timestamp_ms / 1000)} ago; not new"
        crypto = self.crypto
        trusted = (
            verdict.verified and crypto is not None and crypto.verified.is_verified(message.sender)
        )
        line = Line(
            kind,
            message.timestamp_ms / 1000,
            body,
            nick,
            message.sender,
            "" if private else message.target,
            verdict.verified,
            self._key_changed(nick, message.sender) or self._verified_as_other(nick, message),
            history=True if late else None,
            problem=verdict.problem,
            note=note,
            encrypted=encrypted,
            trusted=True if trusted else None,
        )
        return self._received(line, message)

    def _verified_as_other(self, nick: str, message: SignedMessage) -> bool:
        """``nick`` was verified with another key than the one that signed this line."""
        if self.crypto is None:
            return False
        verified = self.crypto.verified.fingerprints_for(nick)
        return bool(verified) and message.sender not in verified

    # --- room lines -----------------------------------------------------------------------

    def _encrypted_line(
        self, frame: dict[str, Any], now: float, history_room: str = ""
    ) -> Line | None:
        """An encrypted ``message`` (live, or a history entry of ``history_room``)."""
        outer = parse_encrypted_say(frame, with_keys=False)
        nick = field_str(frame, "from", 64)
        key_der = field_b64(frame, "key", MAX_KEY_B64)
        if outer.sender in self.ignored:
            return None
        if outer.megolm is None:
            return self._unreadable(outer, nick, "a private message comes through the inbox")
        problem = self._misplaced(outer, history_room)
        crypto = self.crypto
        if problem or crypto is None:
            return self._unreadable(outer, nick, problem or NO_DEVICE)
        try:
            plain = crypto.rooms.decrypt(
                crypto.room_keys, self.network, outer.target, outer.sender, outer.megolm
            )
        except MissingRoomKey:
            return self._wait_for_key(frame, outer, nick, history_room)
        except MegolmError as error:
            return self._unreadable(outer, nick, str(error))
        crypto.mark(ROOM_KEYS)
        if plain.duplicate and not history_room:
            if self.verifier.was_shown(outer.sender, outer.counter):
                return None  # a copy after a reconnect
            # Decrypted before, in an earlier run (whatever the ledger of lines shown says).
            return self._unreadable(outer, nick, REPLAYED)
        return self._opened(outer, plain.plaintext, nick, key_der, now, history_room)

    def _misplaced(self, outer: EncryptedSay, history_room: str) -> str:
        """Why the frame itself shows the line is not for here (nothing is decrypted then)."""
        if outer.network != self.network:
            return ANOTHER_NETWORK
        if outer.target not in ([history_room] if history_room else self.rooms):
            return ANOTHER_ROOM
        return ""

    def _opened(
        self,
        outer: EncryptedSay,
        sealed: bytes,
        nick: str,
        key_der: bytes,
        now: float,
        check_room: str,
        *,
        held_back: bool = False,
    ) -> Line | None:
        """The line sealed in ``sealed``, which must be the one the frame describes."""
        try:
            inner = open_sealed_line(sealed)
        except FrameError as error:
            return self._unreadable(outer, nick, str(error))
        if (inner.network, inner.target, inner.sender, inner.counter, inner.timestamp_ms) != (
            outer.network,
            outer.target,
            outer.sender,
            outer.counter,
            outer.timestamp_ms,
        ):
            return self._unreadable(outer, nick, MISMATCH)
        return self._signed_line(
            inner, nick, key_der, now, check_room, held_back=held_back, encrypted=True
        )

    def _unreadable(self, outer: EncryptedSay, nick: str, problem: str) -> Line:
        private = outer.target.startswith("@")
        return Line(
            "private" if private else "message",
            outer.timestamp_ms / 1000,
            NOT_DECRYPTED,
            nick,
            outer.sender,
            "" if private else outer.target,
            False,
            problem=problem,
            encrypted=True,
        )

    def _wait_for_key(
        self, frame: dict[str, Any], outer: EncryptedSay, nick: str, history_room: str
    ) -> Line | None:
        if self.verifier.was_shown(outer.sender, outer.counter) or self._is_waiting(outer):
            return None  # shown, or waiting, already: a copy after a reconnect
        assert outer.megolm is not None
        ref = self.queue.next_ref()
        waiting = WaitingLine(frame, history_room, ref, outer.sender, outer.counter)
        self._waiting_lines.setdefault(outer.megolm.session, []).append(waiting)
        if sum(len(lines) for lines in self._waiting_lines.values()) > MAX_WAITING_LINES:
            oldest = min(self._waiting_lines, key=lambda s: self._waiting_lines[s][0].ref)
            self._waiting_lines[oldest].pop(0)
            if not self._waiting_lines[oldest]:
                del self._waiting_lines[oldest]
        return Line(
            "message",
            outer.timestamp_ms / 1000,
            "",
            nick,
            outer.sender,
            outer.target,
            ref=ref,
            encrypted=True,
        )

    def _is_waiting(self, outer: EncryptedSay) -> bool:
        return any(
            w.sender == outer.sender and w.counter == outer.counter
            for lines in self._waiting_lines.values()
            for w in lines
        )

    def _key_arrived(self, session: str, now: float) -> list[Line]:
        """The key of ``session`` came: the lines that waited for it, each replacing its
        placeholder (same ``ref``)."""
        crypto = self.crypto
        waiting = self._waiting_lines.pop(session, [])
        if crypto is None:
            return []
        lines: list[Line] = []
        still: list[WaitingLine] = []
        for entry in waiting:
            outer = parse_encrypted_say(entry.frame, with_keys=False)
            nick = field_str(entry.frame, "from", 64)
            assert outer.megolm is not None
            try:
                plain = crypto.rooms.decrypt(
                    crypto.room_keys, self.network, outer.target, outer.sender, outer.megolm
                )
            except MissingRoomKey:
                still.append(entry)  # the key came from a later index than this line
                continue
            except MegolmError as error:
                line: Line | None = self._unreadable(outer, nick, str(error))
            else:
                crypto.mark(ROOM_KEYS)
                if plain.duplicate and not entry.history_room:
                    line = self._unreadable(outer, nick, REPLAYED)
                else:
                    key_der = field_b64(entry.frame, "key", MAX_KEY_B64)
                    room = entry.history_room or outer.target
                    line = self._opened(
                        outer, plain.plaintext, nick, key_der, now, room, held_back=True
                    )
            if line is not None:
                history = True if entry.history_room else line.history
                lines.append(replace(line, ref=entry.ref, history=history))
        if still:
            self._waiting_lines[session] = still
        return lines

    # --- private messages -----------------------------------------------------------------

    def _private_line(
        self, device: DeviceKeys, key: bytes, frame: dict[str, Any], now: float
    ) -> Line | None:
        """A private message from the inbox: ``frame`` carries its text under ``key``, which
        came over Olm from ``device``."""
        outer = parse_encrypted_say(frame, with_keys=False)
        nick = field_str(frame, "from", 64)
        key_der = field_b64(frame, "key", MAX_KEY_B64)
        if outer.private is None:
            return self._unreadable(outer, nick, "a room line is not a private message")
        if outer.sender in self.ignored:
            return None
        if outer.network != self.network:
            return self._unreadable(outer, nick, ANOTHER_NETWORK)
        if not fingerprints_equal(outer.sender, device.user):
            return self._unreadable(outer, nick, "its key came from another user's device")
        try:
            sealed = open_private(key, b64decode(outer.private.ciphertext))
        except (E2eError, ValueError) as error:
            return self._unreadable(outer, nick, str(error))
        if fingerprints_equal(outer.sender, self.identity.fingerprint):
            return self._own_copy(outer, sealed, now)
        return self._opened(outer, sealed, nick, key_der, now, INBOX, held_back=True)

    def _own_copy(self, outer: EncryptedSay, sealed: bytes, now: float) -> Line | None:
        """What another device of ours sent privately: shown as sent by us, once."""
        nick = self.nick
        try:
            inner = open_sealed_line(sealed)
        except FrameError as error:
            return self._unreadable(outer, nick, str(error))
        fields = (inner.network, inner.target, inner.sender, inner.counter, inner.timestamp_ms)
        expected = (outer.network, outer.target, outer.sender, outer.counter, outer.timestamp_ms)
        problem = MISMATCH if fields != expected else self._own_problem(inner, now)
        if problem:
            return self._unreadable(outer, nick, problem)
        if self.verifier.was_shown(inner.sender, inner.counter):
            return None
        self.verifier.remember_own(inner, now)
        # Its counter was taken by our key: ours go on from above it.
        self._counter = max(self._counter, inner.counter)
        kind, body = "private", inner.body
        if body.startswith(ACTION_PREFIX):
            kind, body = "action", body[len(ACTION_PREFIX) :]
        return Line(
            kind,
            inner.timestamp_ms / 1000,
            body,
            nick,
            inner.sender,
            "@" + self._nick_of(inner.target[1:]),
            True,
            delivery=DELIVERED,
            note="from another device of yours",
            encrypted=True,
        )

    def _own_problem(self, message: SignedMessage, now: float) -> str:
        if message.network != self.network:
            return ANOTHER_NETWORK
        if not message.verify(PeerIdentity.from_spki(self.identity.spki_der)):
            return BAD_SIGNATURE
        if message.timestamp_ms > int(now * 1000) + self.verifier.ledger.skew_ms:
            return FROM_THE_FUTURE
        return ""
