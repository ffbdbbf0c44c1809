"""The full-screen client's input helpers, as plain objects (no terminal): tab completion and the
history of the lines the user entered."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class Completer:
    """Tab completion of nicks, commands and rooms; pressing Tab again cycles the candidates."""

    def __init__(self) -> None:
        self._candidates: list[str] = []
        self._index = 0
        self._start = 0
        self._last: tuple[str, int] | None = None

    def complete(
        self,
        text: str,
        cursor: int,
        nicks: Iterable[str],
        commands: Iterable[str],
        rooms: Iterable[str],
    ) -> tuple[str, int] | None:
        """The text and cursor after completing the word before ``cursor``, or None."""
        if self._last == (text, cursor) and self._candidates:
            self._index = (self._index + 1) % len(self._candidates)
            return self._apply(text, cursor)
        start = cursor
        while start > 0 and not text[start - 1].isspace():
            start -= 1
        word = text[start:cursor]
        if not word:
            return None
        pool: Sequence[str]
        if word.startswith("/") and start == 0:
            pool = [f"/{c}" for c in commands]
        elif word.startswith("#"):
            pool = list(rooms)
        else:
            pool = list(nicks)
        found = sorted({c for c in pool if c.casefold().startswith(word.casefold())}, key=str.lower)
        if not found:
            return None
        self._candidates, self._index, self._start = found, 0, start
        return self._apply(text, cursor)

    def _apply(self, text: str, cursor: int) -> tuple[str, int]:
        candidate = self._candidates[self._index]
        # A nick at the start of the line addresses someone: "bob: ".
        first_nick = self._start == 0 and not candidate.startswith(("/", "#"))
        suffix = (":" if first_nick else "") + ("" if text[cursor:].startswith(" ") else " ")
        before = text[: self._start]
        new = before + candidate + suffix + text[cursor:]
        new_cursor = len(before + candidate + suffix)
        self._last = (new, new_cursor)
        return new, new_cursor

    def reset(self) -> None:
        self._last = None
        self._candidates = []


class History:
    """Lines the user entered, browsed with Up and Down like a shell."""

    def __init__(self, limit: int = 500) -> None:
        self.entries: list[str] = []
        self.limit = limit
        self._position = 0
        self._draft = ""

    def add(self, text: str) -> None:
        if text and (not self.entries or self.entries[-1] != text):
            self.entries.append(text)
            del self.entries[: -self.limit]
        self._position = len(self.entries)
        self._draft = ""

    def previous(self, current: str) -> str:
        if self._position == len(self.entries):
            self._draft = current
        self._position = max(0, self._position - 1)
        return self.entries[self._position] if self.entries else current

    def next(self) -> str:
        self._position = min(len(self.entries), self._position + 1)
        if self._position == len(self.entries):
            return self._draft
        return self.entries[self._position]
