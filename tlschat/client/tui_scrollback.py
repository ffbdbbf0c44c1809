"""The full-screen client in big rooms: pages of older lines put above the lines shown when the
user scrolls to the top of a room (scrollback), and the watch kept on the large room whose members
the member pane shows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from textual.widget import Widget

from ..chat.client.receiving import ChatClient
from ..chat.client.scrollback import PAGE
from ..chat.lines import Line
from .tui_messages import MessageLog
from .tui_widgets import TuiInput
from .view import Buffers, pane_rows


class Host(Protocol):
    """What of the app scrollback and watching use."""

    chat: ChatClient
    buffers: Buffers
    user_input: TuiInput
    state: str
    marker_at: int | None

    @property
    def messages(self) -> MessageLog: ...

    def write_buffer(self) -> None: ...

    def call_later(self, callback: Callable[[], None]) -> bool: ...

    def query_one(self, selector: str) -> Widget: ...


class Scrollback:
    """Pages of older lines, as the chat client hands them over, put above at once."""

    def __init__(self, app: Host) -> None:
        self.app = app
        # The lines of the pages that came and wait to go above, by room.
        self._pages: dict[str, list[Line]] = {}
        self._room = ""

    def take(self, line: Line) -> None:
        """A line of a page: the page goes above once it is all here (the chat client hands it
        over at once, after a heading that names its room; a line in it signed for another room
        stays in that page, shown unverified)."""
        if not self._pages:
            self.app.call_later(self.insert)
        if line.kind == PAGE:
            self._room = line.room
            self._pages.setdefault(line.room, [])
        else:
            self._pages.setdefault(self._room or line.room, []).append(line)

    def insert(self) -> None:
        app = self.app
        pages, self._pages = self._pages, {}
        for room, lines in pages.items():
            buffer = app.buffers.buffers.get(room)
            if buffer is None:
                continue  # left meanwhile
            added = app.buffers.prepend(room, lines)
            state = app.chat.scrollback.get(room)
            buffer.at_start = state is not None and not state.older
            if room == app.buffers.current:
                if app.marker_at is not None:
                    app.marker_at += added
                rows = pane_rows(buffer, app.marker_at)
                app.messages.insert_above(rows, added, app.chat.nick)

    def reached_top(self) -> None:
        """The user scrolled to the top of a room's lines: the page before them is asked for,
        or the pane says that its history starts there."""
        app = self.app
        name = app.buffers.current
        state = app.chat.scrollback.get(name)
        if state is None or name not in app.chat.rooms or state.pending:
            return
        if state.older and state.oldest:
            session = app.user_input.session
            if session is not None and app.state == "connected":
                session.act(lambda now: app.chat.load_older(name, now))
            return
        buffer = app.buffers.get(name)
        if not buffer.at_start:
            buffer.at_start = True
            app.write_buffer()
            app.messages.to_top()


def sync_watch(app: Host) -> None:
    """A large room's members are fetched, and kept current (watched), while its member pane
    shows; no other room is watched."""
    session = app.user_input.session
    if session is None or app.state != "connected":
        return
    current = app.buffers.current
    shown = bool(app.query_one("#members").display)
    wanted = current if shown and current in app.chat.lazy_rooms else ""
    if app.chat.watching != ({wanted} if wanted else set()):
        session.act(lambda now: app.chat.watch_only(wanted, now))
