"""The full-screen client's message pane: the rows of one buffer (:func:`~.view.pane_rows`: its
lines, day changes and the read marker), each line rendered for the user's nick.

A RichLog only appends. A line that changes after it was shown (a delivery state) is written
again from its first row on, so the pane keeps where each line starts; older lines put above
(scrollback) write the pane afresh, scrolled so that what the user looked at stays in place. The
pane says when the user scrolls to its top (or on past it): :class:`MessageLog.ReachedTop`.
"""

from __future__ import annotations

from typing import Any

from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.widgets import RichLog

from ..chat.lines import Line
from .view import day_line, read_marker, render_line, start_marker


class MessageLog(RichLog):
    class ReachedTop(Message):
        """The user scrolled to the top of the pane, or on past it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Where each line of the buffer shown starts (its first row of the log), by its index in
        # the buffer. Not known while the log defers its writes (no size yet), nor once it
        # dropped old rows: then a change rewrites the whole pane.
        self.line_starts: dict[int, int] = {}
        self.starts_known = False

    @property
    def at_end(self) -> bool:
        return self.scroll_y >= self.max_scroll_y

    def page_up(self) -> None:
        """One page up (PageUp), at once."""
        height = self.scrollable_content_region.height
        self.scroll_to(y=self.scroll_y - height, animate=False, immediate=True)
        self._tell_if_at_top()

    def to_top(self) -> None:
        self.scroll_to(y=0, animate=False, immediate=True)
        self._tell_if_at_top()

    def action_scroll_home(self) -> None:
        self.to_top()

    def action_scroll_up(self) -> None:
        self.scroll_to(y=self.scroll_y - 1, animate=False, immediate=True)
        self._tell_if_at_top()

    def _on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        super()._on_mouse_scroll_up(event)
        self._tell_if_at_top()

    def _tell_if_at_top(self) -> None:
        if self.scroll_target_y <= 0:
            self.post_message(self.ReachedTop())

    def insert_above(self, rows: list[Line | str], added: int, nick: str) -> None:
        """``added`` older lines went in at the top of the buffer shown (``rows``: its rows as
        they are now): the pane afresh, with what the user looked at where it was."""
        first = self.line_starts.get(0) if self.starts_known else None
        scrolled = self.scroll_y
        self.show_rows(rows, nick)
        moved = self.line_starts.get(added) if self.starts_known else None
        if first is not None and moved is not None:
            self.scroll_to(y=scrolled + moved - first, animate=False, immediate=True)

    def show_rows(self, rows: list[Line | str], nick: str) -> None:
        """The pane afresh: all the ``rows`` of a buffer."""
        self.clear()
        self.line_starts, self.starts_known = {}, True
        self.append_rows(rows, 0, nick, False)

    def rewrite_rows_from(self, rows: list[Line | str], index: int, nick: str) -> None:
        """Line ``index`` of the buffer shown changed (``rows``: the buffer's rows as they are
        now): the pane from that line on is written again, keeping where the user scrolled."""
        at_end, scrolled = self.at_end, self.scroll_y
        start = self.line_starts.get(index) if self.starts_known else None
        if start is None or index == 0:
            self.show_rows(rows, nick)
        else:
            position = [n for n, row in enumerate(rows) if isinstance(row, Line)][index]
            kept, width = self.lines[:start], self.virtual_size.width
            self.clear()
            self.lines.extend(kept)
            self.virtual_size = Size(width, len(kept))
            self.line_starts = {i: at for i, at in self.line_starts.items() if i < index}
            self.append_rows(rows[position:], index, nick, False)
        if at_end:
            self.scroll_end(animate=False)
        else:
            self.scroll_to(y=scrolled, animate=False, immediate=True)

    def append_rows(self, rows: list[Line | str], index: int, nick: str, scroll_end: bool) -> None:
        """Append ``rows``; ``index`` is the buffer index of the first line among them."""
        for row in rows:
            before = len(self.lines)
            if isinstance(row, Line):
                self.line_starts[index] = before
                index += 1
                self.write(render_line(row, nick), scroll_end=scroll_end)
            elif row == "marker":
                self.write(read_marker(), scroll_end=scroll_end)
            elif row == "start":
                self.write(start_marker(), scroll_end=scroll_end)
            else:
                self.write(day_line(float(row.removeprefix("day:"))), scroll_end=scroll_end)
            trimmed = self.max_lines is not None and len(self.lines) >= self.max_lines
            if len(self.lines) <= before or trimmed:
                self.starts_known = False  # deferred (no size yet), or old rows dropped
