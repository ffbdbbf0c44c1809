"""What the full-screen client shows, as pure functions and plain objects (no terminal, no IO).

The UI (tui.py) routes each :class:`~tlschat.chat.client.Line` into a :class:`Buffer` (a room, a
private conversation, or the server buffer), renders it with :func:`render_line`, and completes
input with :class:`Completer`. Everything here is unit-tested without Textual.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field

from rich.text import Text

from ..chat.client.commands import every_command
from ..chat.client.searching import FOUND
from ..chat.frames import neutralize
from ..chat.lines import CONTINUATION, DELIVERED, PENDING, REFUSED, Line, body_lines

SERVER_BUFFER = "tlschat"
PASTE_CONFIRM_LINES = 3
# Readable on dark and light backgrounds; a nick keeps its colour as long as its key.
NICK_COLOURS = (
    "#e06c75",
    "#98c379",
    "#e5c07b",
    "#61afef",
    "#c678dd",
    "#56b6c2",
    "#d19a66",
    "#be5046",
    "#7ec699",
    "#f08d49",
    "#cc99cd",
    "#67cdcc",
)
MESSAGE_KINDS = ("message", "action", "private")
# Joins, leaves, nick changes and batches of many joins and leaves, each after its mark.
PRESENCE_MARKS = {"join": "→ ", "leave": "← ", "nick": "~ ", "presence": "⇄ "}
# The marks of the user's own lines: waiting for the server, taken by it, or refused by it.
PENDING_MARK, PENDING_STYLE = "⋯", "dim"
DELIVERED_MARK, DELIVERED_STYLE = "✓", "green"
REFUSED_MARK, REFUSED_STYLE = "✗ NOT SENT", "bold red"
VERIFIED_STYLE = "bold green"
LOCK_MARK, LOCK_STYLE = "🔒", "cyan"
WAITING_MARK = "waiting for the key"
UNVERIFIED_STYLE = "bold white on red"
# Commands the full-screen client answers itself, on top of the chat client's and the server's.
UI_COMMANDS = {"trust": ("/trust", "the server's fingerprint and its known_hosts entry")}
# Its keys, for /help (the README's table of keys says the same).
UI_KEYS = [
    "Enter        send the line (a message, or a /command)",
    "Shift+Enter  another line of the same message",
    "Tab          complete a nick, a /command or a #room; again to cycle",
    "Up, Down     the lines you entered before",
    "Ctrl+N/P     next and previous room or conversation",
    "PgUp/PgDn    scroll the messages (at the top: load earlier ones)",
    "Ctrl+Home    the top of the messages, and earlier ones",
    "Ctrl+T       show or hide the handshake trace",
    "F2, F3       show or hide the rooms, the members",
    "Ctrl+C       clear what you are typing; with nothing typed, quit",
    "Ctrl+Q       quit",
]


def is_search_result(line: Line) -> bool:
    """A line /search found: a copy, shown with the search's other results, never in place of
    (or as) the line it copies."""
    return line.note == FOUND


def nick_colour(fingerprint: str) -> str:
    """A colour derived from the key, so an impostor's nick does not look the same."""
    if not fingerprint:
        return "default"
    digest = hashlib.sha256(fingerprint.encode("utf-8")).digest()
    return NICK_COLOURS[digest[0] % len(NICK_COLOURS)]


def short_fingerprint(fingerprint: str, length: int = 8) -> str:
    """``SHA256:AbCdEf12…`` → ``AbCdEf12``: enough to tell keys apart at a glance."""
    _, _, digest = fingerprint.partition(":")
    return (digest or fingerprint)[:length]


def is_own(line: Line, own_nick: str = "") -> bool:
    """A line the user sent: it has a delivery state (or, failing that, the user's nick)."""
    if line.delivery:
        return True
    return bool(own_nick) and line.nick.casefold() == own_nick.casefold()


def is_mention(line: Line, own_nick: str) -> bool:
    """Someone else's message that names ``own_nick`` as a word."""
    if line.kind not in MESSAGE_KINDS or not own_nick or is_own(line, own_nick):
        return False
    pattern = rf"(?<![\w\-\[\]{{}}|^`]){re.escape(own_nick)}(?![\w\-\[\]{{}}|^`])"
    return re.search(pattern, line.text, re.IGNORECASE) is not None


def day_of(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(timestamp))


def day_line(timestamp: float) -> Text:
    label = time.strftime("%A %d %B %Y", time.localtime(timestamp))
    return Text(f"─── {label} ───", style="bold cyan")


def read_marker() -> Text:
    return Text("──────── new since you last looked ────────", style="bold yellow")


def start_marker() -> Text:
    return Text("— start of history —", style="dim")


def render_line(line: Line, own_nick: str = "", show_room: bool = False) -> Text:
    """One line of the message pane: time, verified mark, coloured nick, and loud warnings."""
    clock = time.strftime("%H:%M:%S", time.localtime(line.timestamp))
    text = Text(f"{clock} ", style="dim")
    if (show_room or is_search_result(line)) and line.room:
        text.append(f"{neutralize(line.room)} ", style="dim")
    body, nick = neutralize(line.text), neutralize(line.nick)
    if line.kind in MESSAGE_KINDS:
        # Every line of a multi-line body neutralized, each after the first indented: no body
        # can make a line of its own look like the start of another message.
        body = line.decorated(("\n" + CONTINUATION).join(body_lines(line.shown_text())))
        text.append_text(message_mark(line))
        text.append(" ")
        colour = nick_colour(line.fingerprint)
        if line.kind == "message":
            text.append(f"<{nick}>", style=f"bold {colour}")
            text.append(f" {body}")
        elif line.kind == "action":
            text.append(f"* {nick}", style=f"bold {colour}")
            text.append(f" {body}")
        else:
            text.append(f"*{nick}*", style=f"bold {colour}")
            text.append(f" {body}")
        if line.note:
            text.append(f"  ({neutralize(line.note)})", style="dim")
        elif line.history:
            text.append("  (history)", style="dim")
        if is_mention(line, own_nick):
            text.stylize("on #3a2e00", len(clock) + 1)
        if line.key_changed:
            warning = Text(
                f"\n⚠ KEY CHANGED: {nick} now signs with {neutralize(line.fingerprint)}, "
                "not the key this nick had before. Verify it before trusting this message!",
                style="bold white on red",
            )
            text.append_text(warning)
        return text
    if line.kind == "error":
        text.append(f"!!! {body}", style="bold red")
    elif "[WARNING:" in body:
        text.append(f"⚠ {body}", style="bold white on red")
    elif line.kind in PRESENCE_MARKS:
        text.append(PRESENCE_MARKS[line.kind])
        text.append(body, style="dim")
    elif line.kind in ("topic", "motd"):
        text.append(f"*** {body}", style="italic")
    else:
        text.append(f"*** {body}", style="")
    return text


def message_mark(line: Line) -> Text:
    """What a message line is worth, before its nick.

    The user's own lines say where their delivery is: ``⋯`` waiting for the server, ``✓`` taken
    by it, ``✗ NOT SENT: reason`` refused (never a ✓ the server has not given). Received lines
    say whether they are verified, and if not, why; ``✓✓`` is a user this user verified with
    ``/verify``. A 🔒 comes first on a line that went through the end-to-end layer.
    """
    mark = Text()
    if line.encrypted:
        mark.append(f"{LOCK_MARK} ", style=LOCK_STYLE)
    mark.append_text(_state_mark(line))
    return mark


def _state_mark(line: Line) -> Text:
    if line.delivery == PENDING:
        return Text(PENDING_MARK, style=PENDING_STYLE)
    if line.delivery == DELIVERED:
        return Text(DELIVERED_MARK, style=DELIVERED_STYLE)
    if line.delivery == REFUSED:
        reason = neutralize(line.problem) or "refused"
        return Text(f"{REFUSED_MARK}: {reason}", style=REFUSED_STYLE)
    if line.delivery:  # a state this view does not know: claim nothing
        return Text(f"? {neutralize(line.delivery)}", style=PENDING_STYLE)
    if line.encrypted and line.verified is None:
        return Text(WAITING_MARK, style=PENDING_STYLE)
    if line.verified:
        return Text("✓✓" if line.trusted else "✓", style=VERIFIED_STYLE)
    mark = Text("✗ UNVERIFIED", style=UNVERIFIED_STYLE)
    if line.problem:
        mark.append(f" ({neutralize(line.problem)})", style="bold red")
    return mark


def command_table() -> dict[str, tuple[str, str]]:
    """Every slash command, with usage and help: the server's, and the client's own (the chat
    client's and the UI's), whose syntax wins as it does in /help."""
    return dict(sorted(every_command(UI_COMMANDS).items()))


def command_help(text: str, table: dict[str, tuple[str, str]]) -> str:
    """Inline help for the command being typed: its usage and summary, or the candidates."""
    if not text.startswith("/") or text.startswith("//"):
        return ""
    name, space, _ = text[1:].partition(" ")
    name = name.lower()
    if name in table:
        usage, summary = table[name]
        return f"{usage} — {summary}"
    if space:
        return f"/{name}: unknown here; the server will say if it knows it"
    matches = [f"/{n}" for n in table if n.startswith(name)]
    return "  ".join(matches) if matches else "no such command; /help lists them"


@dataclass
class Buffer:
    """A room, a private conversation (``@nick``), or the server buffer."""

    name: str
    lines: list[Line] = field(default_factory=list)
    unread: int = 0
    mentioned: bool = False
    # Index of the first line not yet seen: where the read marker goes.
    read_upto: int = 0
    # The server stores no line before the first one here: the pane says so at its top.
    at_start: bool = False

    @property
    def is_private(self) -> bool:
        return self.name.startswith("@")

    def label(self) -> str:
        mark = " @" if self.mentioned else ""
        count = f" ({self.unread})" if self.unread else ""
        return f"{self.name}{count}{mark}"


class Buffers:
    """The room list: which buffer each line goes to, unread counts, mentions, the current one."""

    def __init__(self) -> None:
        self.buffers: dict[str, Buffer] = {SERVER_BUFFER: Buffer(SERVER_BUFFER)}
        self.current = SERVER_BUFFER
        # Where each of the user's own lines (by ``ref``) was filed, for its later states.
        self._refs: dict[int, str] = {}
        # Where each line with an id was filed, for its later versions (edited, deleted,
        # reacted to).
        self._ids: dict[str, str] = {}

    def names(self) -> list[str]:
        rooms = sorted(n for n in self.buffers if n.startswith("#"))
        private = sorted((n for n in self.buffers if n.startswith("@")), key=str.casefold)
        return [SERVER_BUFFER, *rooms, *private]

    def get(self, name: str) -> Buffer:
        if name not in self.buffers:
            self.buffers[name] = Buffer(name)
        return self.buffers[name]

    def find_private(self, nick: str) -> str:
        """The existing buffer for a conversation with ``nick`` (any case), or a new name."""
        for name in self.buffers:
            if name.startswith("@") and name[1:].casefold() == nick.casefold():
                return name
        return "@" + nick

    def route(self, line: Line) -> str:
        """The buffer for ``line``: its room, its private conversation, or the current buffer.

        A private conversation is named after the other person: ``@nick`` in the user's own
        lines (the room they were sent to), the sender's nick in received ones (no room).
        The results of a /search stay together, with their heading, where the user is.
        """
        if is_search_result(line):
            return self.current
        if line.kind in MESSAGE_KINDS:
            if line.room.startswith("@") and len(line.room) > 1:
                return self.find_private(line.room[1:])
            if not line.room and not line.delivery and line.nick:
                return self.find_private(line.nick)  # a private message or /me to us
        if line.room.startswith("#"):
            return line.room
        return self.current

    def locate(self, ref: int) -> tuple[str, int] | None:
        """Where the line with ``ref`` is: its buffer's name and its index there."""
        name = self._refs.get(ref) if ref else None
        buffer = self.buffers.get(name) if name is not None else None
        if name is None or buffer is None:
            return None
        for index in range(len(buffer.lines) - 1, -1, -1):
            if buffer.lines[index].ref == ref:
                return name, index
        return None

    def find(self, line: Line) -> tuple[str, int] | None:
        """Where an earlier version of ``line`` is: same ``ref``, or same ``id``."""
        if is_search_result(line):
            return None
        found = self.locate(line.ref)
        if found is not None or not line.id:
            return found
        name = self._ids.get(line.id)
        buffer = self.buffers.get(name) if name is not None else None
        if name is None or buffer is None:
            return None
        for index in range(len(buffer.lines) - 1, -1, -1):
            if buffer.lines[index].id == line.id:
                return name, index
        return None

    def replace(self, line: Line) -> str | None:
        """Put ``line`` in place of its earlier version (a later delivery state of a line the
        user sent, or an edited, deleted or reacted-to line); the name of its buffer, or None
        when there is none to replace."""
        found = self.find(line)
        if found is None:
            return None
        name, index = found
        self.buffers[name].lines[index] = line
        return name

    def add(self, line: Line, own_nick: str = "") -> tuple[str, bool]:
        """File ``line``; its buffer's name and whether it should ring (a mention or a private
        message from someone else). A line whose ``ref`` is shown already replaces it."""
        replaced = self.replace(line)
        if replaced is not None:
            return replaced, False
        name = self.route(line)
        if line.ref in self._refs and self._refs[line.ref] not in self.buffers:
            # Its buffer was closed (a room left): the outcome still shows, where the user is.
            name = self.current
        buffer = self.get(name)
        buffer.lines.append(line)
        # A search result is a copy: later versions go to the line it copies.
        if line.ref and not is_search_result(line):
            self._refs[line.ref] = name
        if line.id and not is_search_result(line):
            self._ids[line.id] = name
        own = is_own(line, own_nick)
        mention = is_mention(line, own_nick)
        private = line.kind in MESSAGE_KINDS and name.startswith("@") and not own
        private = private and not line.history
        if name != self.current:
            if line.kind in MESSAGE_KINDS and not own:
                buffer.unread += 1
            elif own and buffer.read_upto == len(buffer.lines) - 1:
                buffer.read_upto = len(buffer.lines)  # what the user wrote is read
            buffer.mentioned = buffer.mentioned or mention or private
        else:
            buffer.read_upto = len(buffer.lines)
        return name, (mention or private) and not line.history

    def switch(self, name: str) -> Buffer:
        """Make ``name`` current; its read marker stays where the user last left off."""
        old = self.buffers.get(self.current)
        if old is not None:
            old.read_upto = len(old.lines)
        buffer = self.get(name)
        self.current = name
        buffer.unread = 0
        buffer.mentioned = False
        return buffer

    def step(self, offset: int) -> str:
        names = self.names()
        index = names.index(self.current) if self.current in names else 0
        return names[(index + offset) % len(names)]

    def prepend(self, name: str, lines: list[Line]) -> int:
        """Put a page of older ``lines`` (oldest first) above what ``name`` holds; how many went
        in. A line whose id is in the page already is a later version of it (an operation of
        the page), in its place; one whose id is held already stays out."""
        buffer = self.get(name)
        page: list[Line] = []
        where: dict[str, int] = {}
        for line in lines:
            if line.id and line.id in where:
                page[where[line.id]] = line
            elif not (line.id and line.id in self._ids):
                if line.id:
                    where[line.id] = len(page)
                page.append(line)
        buffer.lines[:0] = page
        buffer.read_upto += len(page)
        for line in page:
            if line.ref:
                self._refs.setdefault(line.ref, name)
            if line.id:
                self._ids[line.id] = name
        return len(page)

    def close(self, name: str) -> None:
        if name != SERVER_BUFFER:
            self.buffers.pop(name, None)
            if self.current == name:
                self.current = SERVER_BUFFER


def pane_rows(buffer: Buffer, marker_at: int | None) -> list[Line | str]:
    """The lines of a buffer with day-change rows ("day:<timestamp>") and the read marker
    ("marker") inserted where they belong, after "start" when its history starts there."""
    rows: list[Line | str] = ["start"] if buffer.at_start else []
    last_day = ""
    for index, line in enumerate(buffer.lines):
        if marker_at is not None and index == marker_at and index > 0:
            rows.append("marker")
        day = day_of(line.timestamp)
        if day != last_day:
            if last_day:
                rows.append(f"day:{line.timestamp}")
            last_day = day
        rows.append(line)
    return rows
