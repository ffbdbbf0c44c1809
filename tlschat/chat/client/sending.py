"""What the user sends: typed lines and commands, queued in order, paced, signed, and each
given one outcome."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

from ..delivery import Outgoing
from ..envelope import MAX_BODY_BYTES, SignedMessage
from ..frames import (
    MAX_FRAME,
    encode_frame,
    say_frame,
)
from ..lines import DELIVERED, PENDING, REFUSED, Line
from .base import ClientBase
from .commands import (
    ACTION_PREFIX,
    CLIENT_COMMANDS,
    CommandClient,
    error,
    without_argument,
)

# Who sent a line refused before the server gave the user a nick, none asked for (--nick).
UNNAMED = "you"
NO_DEVICE_FOR_PRIVATE = (
    "not sent: private messages are end-to-end encrypted, and this client has no device keys"
)


class ClientSending(ClientBase):
    """Lines from the user to the server."""

    def user_input(self, text: str, now: float) -> list[Line]:
        """One line the user typed: a command, or a message to the current room."""
        text = text.rstrip("\r\n")
        if not text.strip():
            return []
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # undecodable input bytes, kept as surrogates by stdin
            return error("not sent: the line is not valid UTF-8", now)
        if text.startswith("/") and not text.startswith("//"):
            name, _, args = text[1:].partition(" ")
            name, args = name.lower(), args.strip()
            # Every ClientSending is the base of a ChatClient, which has all it asks for.
            client = cast("CommandClient", self)
            missing = None if args else without_argument(client, name, now)
            if missing is not None:
                return missing
            command = CLIENT_COMMANDS.get(name)
            if command is not None:
                return command.handler(client, args, now)
            frame = {"type": "command", "name": name, "args": args}
            return self.send_command(frame, text, now)
        return self.say(text[1:] if text.startswith("//") else text, now)

    def tick(self, now: float) -> list[Line]:
        """Send what the queue's order and pace allow now; sets :attr:`wake_at` for the rest."""
        lines: list[Line] = []
        self.wake_at = None
        self.queue.requeue_overdue(now)
        while self._welcomed and not self._awaiting_rejoin:
            item = self.queue.head()
            if item is None:
                break
            if item.command is not None:
                wait = self.queue.may_send_command(str(item.command.get("name", "")), now)
                if wait > 0:
                    self.wake_at = now + max(wait, 0.001)
                    break
                self.outbox.append(item.command)
                self.queue.sent(item, now)
                self.joins.went_out(item.ref, now)
                continue
            if not item.target:
                if not self._resolve(item):
                    break
                continue
            if item.frame is None:
                ready = self._ready(item, now)
                if isinstance(ready, Line):  # refused, and out of the queue
                    lines.append(ready)
                    continue
                if not ready:
                    break
            wait = self.queue.may_send_message(now)
            if wait > 0:
                # At least a millisecond on: a float wait can round to ``now`` itself.
                self.wake_at = None if wait == float("inf") else now + max(wait, 0.001)
                break
            lines += self._sign_and_send(item, now)
        resend_at = self.queue.next_overdue()
        if resend_at is not None and (self.wake_at is None or resend_at < self.wake_at):
            self.wake_at = resend_at
        return lines

    def give_up(self, reason: str, now: float) -> list[Line]:
        """Every line still without an outcome is refused with ``reason`` (the client is ending)."""
        return [self._refuse(item, reason, now) for item in self.queue.drop_all()]

    def compose(self, body: str, now: float, target: str = "") -> dict[str, Any]:
        """A signed 'say' frame; the counter never repeats, even across restarts of the client."""
        return say_frame(self.sign(body, now, target))

    def sign(self, body: str, now: float, target: str = "") -> SignedMessage:
        """The line as its sender signs it (section 21), for ``target`` or the current room."""
        self._counter = max(self._counter + 1, int(now * 1_000_000))
        message = SignedMessage.create(
            self.identity, self.network, target or self.room, self._counter, int(now * 1000), body
        )
        self.verifier.remember_own(message, now)
        return message

    def send_command(self, frame: dict[str, Any], text: str, now: float) -> list[Line]:
        """A server command waits its turn behind the lines typed before it."""
        item = Outgoing(self.queue.next_ref(), text, command=frame)
        size = len(encode_frame(frame))
        if size > MAX_FRAME:
            return [self._refuse(item, f"{size} bytes is more than one message carries", now)]
        if not self.queue.add(item):
            return [self._refuse(item, "too many lines waiting to be sent", now)]
        if frame.get("name") == "join":
            self.joins.asked(item.ref, str(frame.get("args", "")))
        return self.tick(now)

    def holds_input(self, now: float) -> bool:
        """Whether the next line typed should wait before it is taken (the line modes wait):
        until the session is welcomed and has rejoined its rooms, and a /join typed before it
        is answered, so that a script's lines act as if typed one by one at the prompt."""
        return not self._welcomed or bool(self._awaiting_rejoin) or self.joins.holds(now)

    def say(self, body: str, now: float, target: str = "", recipient: str = "") -> list[Line]:
        """Queue a message, shown at once as pending: to the current room, to ``target``, or
        privately to the nick ``recipient`` (whose key is looked up first if ``target`` is
        empty)."""
        target = target or ("" if recipient else self.room)
        if not target and not recipient:  # everyone starts in #general; this is after parting
            return error("you are in no room; /join one to talk", now)
        if recipient and self.crypto is None:
            return error(NO_DEVICE_FOR_PRIVATE, now)
        shown_in = "@" + recipient if recipient else target
        kind, text = "private" if recipient else "message", body
        if body.startswith(ACTION_PREFIX) and not recipient:
            kind, text = "action", body[len(ACTION_PREFIX) :]
        ref = self.queue.next_ref()
        line = Line(
            kind,
            now,
            text,
            self.nick or self.wanted_nick,  # before the welcome: the nick asked for
            self.identity.fingerprint,
            shown_in,
            ref=ref,
            delivery=PENDING,
            encrypted=True if recipient else self._encrypts(target) or None,
        )
        line = self._shown_for(line, body)
        item = Outgoing(ref, body, line, body=body, target=target, recipient=recipient)
        size = len(body.encode("utf-8"))
        if size > MAX_BODY_BYTES:  # no server takes it: refused here, at once
            return [self._refuse(item, f"longer than {MAX_BODY_BYTES} bytes ({size})", now)]
        if not self.queue.add(item):
            return [self._refuse(item, "too many lines waiting to be sent", now)]
        return [line, *self.tick(now)]

    def _shown_for(self, line: Line, body: str) -> Line:
        """How a line the user sends is shown while it waits (an operation's says what it
        does)."""
        return line

    def _encrypts(self, target: str) -> bool:
        """Whether a line for ``target`` goes end-to-end encrypted (as far as is known now)."""
        if target.startswith("@"):
            return True
        return self.crypto is not None and self.crypto.rooms.is_encrypted(self.network, target)

    def _ready(self, item: Outgoing, now: float) -> bool | Line:
        """Whether ``item`` can be signed and sent now: True; False while what it needs is on
        its way (the queue waits); or the line refusing it, taken out of the queue. A plain
        line needs nothing."""
        return True

    def _resolve(self, item: Outgoing) -> bool:
        """A /msg waits for its recipient's key: ask the server once. True if it is known now."""
        fingerprint = self.directory.get(item.recipient.casefold())
        if fingerprint is not None:
            item.target = "@" + fingerprint
            return True
        if not self._resolving:
            self._resolving = item.recipient
            self.outbox.append({"type": "command", "name": "whois", "args": item.recipient})
        return False

    def _sign_and_send(self, item: Outgoing, now: float) -> list[Line]:
        if item.frame is None:
            frame = self.compose(item.body, now, item.target)
            # Checked here, not only by the connection, so that a frame too big to send is never
            # kept for re-sending (the connection's own check would raise on every reconnect).
            size = len(encode_frame(frame))
            if size > MAX_FRAME:
                self.queue.waiting.remove(item)
                return [self._refuse(item, f"{size} bytes is more than one message carries", now)]
            item.frame = frame
        self.outbox.append(item.frame)
        self.queue.sent(item, now)
        return []

    def _refuse(self, item: Outgoing, reason: str, now: float) -> Line:
        """``item`` will not be delivered: its line says so, and why."""
        if item.line is None:
            line = Line("error", now, f"not sent ({reason}): {item.text}", ref=item.ref)
        else:
            nick = self.nick or item.line.nick or UNNAMED
            line = replace(item.line, nick=nick, delivery=REFUSED, problem=reason)
        self.undelivered.append(line)
        return line

    def _deliver(self, item: Outgoing) -> list[Line]:
        if item.line is None:
            return []
        return [replace(item.line, nick=self.nick or item.line.nick, delivery=DELIVERED)]

    def _rejoined(self, now: float) -> list[Line]:
        if self._welcomed and not self._awaiting_rejoin:
            return self.tick(now)
        return []
