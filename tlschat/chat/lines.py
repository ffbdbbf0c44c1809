"""What the chat client hands its glue to show: one :class:`Line` per thing the user sees. Pure."""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from typing import Any

from .frames import neutralize

_SURROGATES = re.compile("[\ud800-\udfff]")
MESSAGE_KINDS = ("message", "action", "private")

# The delivery states of a line the user sent: waiting (queued, paced, or sent and not yet
# acknowledged), delivered (the server's 'sent'), or refused (with the reason).
PENDING = "pending"
DELETED_TEXT = "message deleted"
NEWLINE_MARK = " ↵ "
# Continuation lines of a multi-line body start with this: a line of its own starts with its
# time, so no body can pass its own lines off as lines of their own.
CONTINUATION = "    │ "
_LINE_SEPARATORS = re.compile("[\u2028\u2029]")
DELIVERED = "delivered"
REFUSED = "refused"


@dataclass(frozen=True)
class PresenceChange:
    """One join or leave of a batch the server sent together, as a summary line lists it."""

    kind: str  # "join" or "leave"
    nick: str
    fingerprint: str
    reason: str = ""


@dataclass(frozen=True)
class Line:
    """One thing to show the user. ``verified`` is None for lines that carry no signature.

    A line the user sent has a ``ref`` (unique in the session) and a ``delivery`` state; a later
    line with the same ``ref`` replaces it. ``problem`` says why a line is not verified, or why a
    sent line was refused; ``note`` qualifies a verified one (a line that arrived late).

    ``encrypted`` is True for a line that came (or goes) through the end-to-end layer, False for
    a line that came in plain in an end-to-end encrypted room, None otherwise. A received
    encrypted line whose key has not come yet has ``verified`` None: it is shown as waiting, with
    a ``ref``, and the decrypted line comes later with the same ``ref`` to replace it.
    ``trusted`` is True for a verified line from a user this user verified (``/verify``).

    ``id`` is ``SENDER:COUNTER`` (section 21.1); ``edited``, ``deleted`` and ``reactions`` say
    what later operations did to the line, ``reply_to`` and ``quote`` what a reply answers.

    ``earlier`` marks the lines of a page of older history (scrollback): they go above the lines
    shown already. ``changes`` are the joins and leaves a summary line (kind "presence") stands
    for.
    """

    kind: str
    timestamp: float
    text: str
    nick: str = ""
    fingerprint: str = ""
    room: str = ""
    verified: bool | None = None
    key_changed: bool | None = None
    history: bool | None = None
    ref: int = 0
    delivery: str = ""
    problem: str = ""
    note: str = ""
    encrypted: bool | None = None
    trusted: bool | None = None
    id: str = ""
    edited: bool | None = None
    deleted: bool | None = None
    reactions: tuple[tuple[str, int], ...] = ()
    reply_to: str = ""
    quote: str = ""
    earlier: bool | None = None
    changes: tuple[PresenceChange, ...] = ()

    def render(self, current_room: str = "") -> str:
        """One terminal line; nothing from the network can add lines or escape sequences.

        Room lines from a room other than ``current_room`` name their room.
        """
        clock = time.strftime("%H:%M:%S", time.localtime(self.timestamp))
        # One terminal line per message: a multi-line body shows its newlines as ↵.
        text, nick = NEWLINE_MARK.join(body_lines(self.shown_text())), neutralize(self.nick)
        text = self.decorated(text)
        room = self.room
        where = f"{neutralize(room)} " if room.startswith("#") and room != current_room else ""
        if self.kind in MESSAGE_KINDS:
            if self.kind == "message":
                shown = f"<{nick}> {text}"
            elif self.kind == "action":
                shown = f"* {nick} {text}"
            else:
                shown = f"*{nick}* {text}"
            lock = "🔒" if self.encrypted else ""
            if self.delivery == REFUSED:
                return f"[{clock}] !!! {where}not sent ({neutralize(self.problem)}): {shown}"
            if self.delivery:
                mark = "sent" if self.delivery == DELIVERED else "sending…"
                to = f" → {neutralize(room)}" if room.startswith("@") else ""
                line = f"[{clock}] {where}{mark}{' ' + lock if lock else ''}{to} {shown}"
                return line + (f" ({neutralize(self.note)})" if self.note else "")
            if self.encrypted and self.verified is None:
                who = f"<{nick}>" if self.kind == "message" else f"*{nick}*"
                return f"[{clock}] {where}🔒 waiting for the key {who}"
            mark = lock + ("✓✓" if self.trusted else "✓") if self.verified else "✗ UNVERIFIED"
            if self.problem:
                mark += f" ({neutralize(self.problem)})"
            line = f"[{clock}] {where}{mark} {shown}"
            if self.note:
                line += f" ({neutralize(self.note)})"
            if self.key_changed:
                line += f" [WARNING: {nick} now has key {neutralize(self.fingerprint)}]"
            return line
        if self.kind == "error":
            return f"[{clock}] !!! {text}"
        return f"[{clock}] {where}*** {text}"

    def shown_text(self) -> str:
        return DELETED_TEXT if self.deleted else self.text

    def decorated(self, text: str) -> str:
        """``text`` (neutralized already) with what it answers, and what was done to it."""
        if self.quote:
            text = f"(↪ {neutralize(self.quote)}) {text}"
        if self.edited and not self.deleted:
            text += " (edited)"
        if self.reactions:
            text += " [" + " ".join(f"{neutralize(e)} {n}" for e, n in self.reactions) + "]"
        return text

    def to_json(self) -> dict[str, Any]:
        shown = {
            key: _printable(value) if isinstance(value, str) else value
            for key, value in asdict(self).items()
            if value not in ("", None, ()) and not (key == "ref" and value == 0)
        }
        if self.changes:  # one object per change, without its empty fields
            shown["changes"] = [
                {key: _printable(value) for key, value in asdict(change).items() if value}
                for change in self.changes
            ]
        return shown


def _printable(text: str) -> str:
    # A lone surrogate from the network (JSON "\ud800") would make printing the JSON raise.
    return _SURROGATES.sub("\ufffd", text)


def body_lines(text: str) -> list[str]:
    """The lines of a body, each neutralized (line separators too): only a newline splits."""
    return [neutralize(_LINE_SEPARATORS.sub("\ufffd", part)) for part in text.split("\n")]


def describe_age(seconds: float) -> str:
    """'3 min', '2 h 5 min', '4 days': how long ago a late line was signed."""
    seconds = max(0, int(seconds))
    if seconds < 3600:
        return f"{max(1, seconds // 60)} min"
    if seconds < 86400:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days = seconds // 86400
    return f"{days} day" if days == 1 else f"{days} days"
