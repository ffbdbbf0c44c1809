"""Where the client's lines go in the line modes: stdout and stderr, as text or JSON; the
:class:`Output` the full-screen client implements too."""

from __future__ import annotations

import json
import sys
from typing import Any, Protocol

from ..chat.lines import PENDING, Line
from .settings import ClientSettings


class Output(Protocol):
    """Where a session's output goes: :class:`Terminal` here, the full-screen UI in tui.py."""

    def trace(self, text: str) -> None: ...

    def warn(self, text: str) -> None: ...

    def show(self, line: Line, current_room: str = "") -> None: ...

    def status(self, state: str, detail: str = "") -> None:
        """The connection's state changed: connecting, connected (detail: the server's
        fingerprint), reconnecting or retrying (detail: when), or disconnected."""

    def outage(self, text: str, first: bool, changed: bool) -> None:
        """What is wrong while there is no connection and what the client does next:
        ``first`` of this outage, or ``changed`` from the last one said (or -v)."""

    def changed(self) -> None:
        """The chat client's state may have changed without a line to show (a member list
        came whole, someone went away): what shows it is drawn again."""


class Terminal:
    """Where output goes: line mode splits data (stdout) from trace (stderr)."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings

    def _write(self, text: str, stream: Any) -> None:
        if self.settings.plain:
            print(text, file=stream, flush=True)
        else:
            from prompt_toolkit import print_formatted_text

            print_formatted_text(text)

    def trace(self, text: str) -> None:
        if not self.settings.quiet:
            self._write(text, sys.stderr)

    def warn(self, text: str) -> None:
        self._write(text, sys.stderr)

    def show(self, line: Line, current_room: str = "") -> None:
        if line.delivery == PENDING and not self.settings.json:
            return  # the line as typed is on screen already; its outcome follows
        if self.settings.json:
            self._write(json.dumps(line.to_json(), ensure_ascii=False), sys.stdout)
        else:
            self._write(line.render(current_room), sys.stdout)

    def status(self, state: str, detail: str = "") -> None:
        """Line modes say it all in trace and warning lines already."""

    def changed(self) -> None:
        """Line modes show only lines."""

    def outage(self, text: str, first: bool, changed: bool) -> None:
        """A line when something new happened: an output that cannot rewrite a line it
        printed does not repeat the same news at every attempt."""
        if first or changed:
            self.warn(text)
