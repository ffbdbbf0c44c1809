"""Where the sessions' output goes in the full-screen client: its
:class:`~tlschat.client.terminal.Output`, onto the app's panes."""

from __future__ import annotations

import time
from typing import Protocol

from ..chat.lines import Line
from .settings import ClientSettings


class Screen(Protocol):
    """What of the app the output writes to."""

    settings: ClientSettings
    # The trust decision's words, for the trust dialog.
    trust_message: str

    def add_trace(self, text: str) -> None: ...

    def add_line(self, line: Line) -> None: ...

    def set_state(self, state: str, detail: str = "") -> None: ...

    def refresh_members(self) -> None: ...


class ScreenOutput:
    """The sessions' :class:`~tlschat.client.terminal.Output`: everything goes to the app."""

    def __init__(self, app: Screen) -> None:
        self.app = app
        # The ref of the line that says what is wrong while disconnected, updated in place.
        # Negative: the chat client's refs are positive.
        self._outage_ref = 0

    def trace(self, text: str) -> None:
        if not self.app.settings.quiet:
            self.app.add_trace(text)

    def warn(self, text: str) -> None:
        self.app.add_trace(text)
        now = time.time()
        if text.startswith("[KNOWN_HOSTS]"):
            self.app.trust_message = text
        kind = "error" if text.startswith(("[!]", "@")) or "WARNING" in text else "notice"
        for part in text.splitlines():
            self.app.add_line(Line(kind, now, part))

    def show(self, line: Line, current_room: str = "") -> None:
        self.app.add_line(line)

    def status(self, state: str, detail: str = "") -> None:
        self.app.set_state(state, detail)

    def changed(self) -> None:
        self.app.refresh_members()

    def outage(self, text: str, first: bool, changed: bool) -> None:
        """One line per outage, updated in place: a line of its own for the first news."""
        self.app.add_trace(text)
        if first or not self._outage_ref:
            self._outage_ref -= 1
        text = text.removeprefix("[*] ")  # a notice shows as one already
        self.app.add_line(Line("notice", time.time(), text, ref=self._outage_ref))
