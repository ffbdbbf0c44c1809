"""History: the lines replayed on join, and scrollback, the pages of older lines fetched on demand
(``history #room BEFORE``, docs/PROTOCOL.md section 22). Pure.

For each room the client keeps the id of the oldest line it holds (``SENDER:COUNTER``), whether
the server stores lines before it, and the page it asked for and has not had yet: one at a time
per room. A page is checked as the history replayed on join is (its key signed each line, for this
network, for that room, not dated in the future) and comes as lines marked ``earlier``, which go
above the lines shown. A page nobody asked for, or of a room the client is not in, is dropped.

The lines of a page are not kept for ``/edit`` and ``/react`` (nor is an operation of a page
applied to a line kept): the book of lines keeps the newest ones, and ``last`` must stay the
newest. An operation in a page applies to the lines of the same page.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ...protocol.identity import IdentityKey
from ..e2e_frames import is_encrypted
from ..envelope import MAX_COUNTER
from ..frames import MAX_KEY_B64, FrameError, field_b64, field_str, parse_signed_message
from ..lines import Line
from ..message_book import MessageBook
from ..operations import line_id
from .commands import error, notice, server_command
from .crypto import ClientCrypto
from .rosters import ClientRosters

# The kind of the lines that introduce a page, and say where a room's history starts.
PAGE = "page"


@dataclass
class Scrollback:
    """What the client holds of one room's history."""

    oldest: str = ""  # the id of the oldest line held ('' before any)
    older: bool = False  # the server stores lines before it
    pending: str = ""  # the BEFORE of the page asked for, until it comes


def start_of_history(room: str) -> str:
    return f"— start of the history of {room} —"


class ClientScrollback(ClientRosters):
    """History on join, and older pages on demand."""

    def __init__(
        self, identity: IdentityKey, nick: str = "", crypto: ClientCrypto | None = None
    ) -> None:
        super().__init__(identity, nick, crypto)
        self.scrollback: dict[str, Scrollback] = {}

    def prepare_reconnect(self) -> None:
        super().prepare_reconnect()
        # What was shown stays, and with it where its history starts; a page asked for on the
        # lost connection will not come.
        for state in self.scrollback.values():
            state.pending = ""

    def load_older(self, room: str, now: float) -> list[Line]:
        """Ask for the page of ``room``'s lines before the oldest one held (the current room's
        if empty). The page comes later (lines marked ``earlier``); what is shown now says why
        none is asked for, if none is."""
        room = room or self.room
        if room not in self.rooms:
            return error(f"you are not in {room}" if room else "you are in no room", now)
        state = self.scrollback.setdefault(room, Scrollback())
        if state.pending:
            return notice(f"Still loading earlier lines of {room}…", now)
        if not (state.older and state.oldest):
            return notice(f"No earlier lines of {room}: that is the start of its history", now)
        state.pending = state.oldest
        return self._ask(server_command("history", f"{room} {state.oldest}"), f"/more {room}", now)

    def _on_joined(self, frame: dict[str, Any], now: float) -> list[Line]:
        lines = super()._on_joined(frame, now)
        # A room whose history comes with it says where it starts; one with none starts here.
        self.scrollback.setdefault(self.room, Scrollback())
        return lines

    def _on_parted(self, frame: dict[str, Any], now: float) -> list[Line]:
        self.scrollback.pop(field_str(frame, "room", 64), None)
        return super()._on_parted(frame, now)

    def _hold(self, lines: list[Line]) -> None:
        """Live lines of a room whose history held nothing (none stored when it was joined): the
        first one is the oldest held."""
        for line in lines:
            if line.id and line.room.startswith("#") and not line.history and not line.earlier:
                state = self.scrollback.get(line.room)
                if state is not None and not state.oldest:
                    state.oldest = line.id

    def _on_history(self, frame: dict[str, Any], now: float) -> list[Line]:
        room = field_str(frame, "room", 64)
        messages = frame.get("messages")
        if not isinstance(messages, list):
            raise FrameError("'messages' must be a list")
        if room not in self.rooms:
            return error(
                f"dropped {len(messages)} lines of history of {room}, a room you are not in", now
            )
        entries = [item for item in messages if isinstance(item, dict)]
        before = frame.get("before")
        if before is not None:
            return self._page(room, field_str(frame, "before", 256), entries, frame, now)
        state = self.scrollback.setdefault(room, Scrollback())
        if not state.oldest and entries:
            state.oldest = _entry_id(entries[0])
            state.older = frame.get("older") is True
        shown = self.verifier.was_shown
        missed = [item for item in entries if not shown(item.get("sender"), item.get("counter"))]
        if len(missed) == len(entries):
            heading = f"Last {len(messages)} messages of {room}:"
        elif missed:  # a rejoin after a reconnect: only what arrived while we were away
            noun = "message" if len(missed) == 1 else "messages"
            heading = f"{len(missed)} missed {noun} of {room}:"
        else:
            return []
        lines = [Line("notice", now, heading, room=room)]
        for item in missed:
            line = self._message_line(item, now, history_room=room)
            if line is not None:
                lines.append(replace(line, history=True))
        return lines

    def _page(
        self,
        room: str,
        before: str,
        entries: list[dict[str, Any]],
        frame: dict[str, Any],
        now: float,
    ) -> list[Line]:
        """A page of older lines: taken only as the answer to the page asked for."""
        state = self.scrollback.get(room)
        if state is None or not state.pending or state.pending != before:
            return error(
                f"dropped a page of {room}'s history this client did not ask for (before {before})",
                now,
            )
        state.pending = ""
        first = _entry_id(entries[0]) if entries else ""
        # A page that does not reach further back ends the history: asking again would bring
        # the same page.
        state.older = frame.get("older") is True and bool(first) and first != state.oldest
        if first:
            state.oldest = first
        kept, self.book = self.book, MessageBook()
        try:
            found = [self._message_line(item, now, history_room=room) for item in entries]
        finally:
            self.book = kept
        lines = [replace(line, history=True, earlier=True) for line in found if line is not None]
        noun = "line" if len(lines) == 1 else "lines"
        heading = Line(
            PAGE, now, f"{len(lines)} earlier {noun} of {room}:", room=room, earlier=True
        )
        if state.older:
            return [heading, *lines]
        return [heading, *lines, replace(heading, text=start_of_history(room))]

    def _page_refused(self, text: str) -> None:
        """An error that refuses a page asked for: it will not come. A line gone with retention
        ends the history there (the older ones went first)."""
        for room, state in self.scrollback.items():
            if not state.pending:
                continue
            if text == f"{room} holds no line {state.pending} (any more)" or text.startswith(
                "usage: /history"
            ):
                state.pending, state.older = "", False
            elif text.startswith("slow down"):
                state.pending = ""

    def _message_line(
        self, frame: dict[str, Any], now: float, history_room: str = ""
    ) -> Line | None:
        """The line to show for a received message, or None: ignored, or shown already."""
        if is_encrypted(frame):
            return self._encrypted_line(frame, now, history_room)
        message = parse_signed_message(frame)
        nick = field_str(frame, "from", 64)
        key_der = field_b64(frame, "key", MAX_KEY_B64)
        line = self._signed_line(message, nick, key_der, now, history_room)
        crypto = self.crypto
        if line is not None and crypto and crypto.rooms.is_encrypted(self.network, message.target):
            return replace(line, encrypted=False)  # plain, in an end-to-end encrypted room
        return line


def _entry_id(entry: dict[str, Any]) -> str:
    """The id of a history entry (``SENDER:COUNTER``), or '' when it names none."""
    sender, counter = entry.get("sender"), entry.get("counter")
    if not isinstance(sender, str) or not 0 < len(sender) <= 64:
        return ""
    if not isinstance(counter, int) or isinstance(counter, bool) or not 0 <= counter <= MAX_COUNTER:
        return ""
    return line_id(sender, counter)
