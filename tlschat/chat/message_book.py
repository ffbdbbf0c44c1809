"""The recent lines a client showed, by id, and what operations do to them. Pure.

Operations apply in the order they come (history replays them after their targets). An edit or
a deletion applies only to a line of the operation's own signed sender; a reaction counts each
reacting key once per emoji. The book is bounded: the oldest lines are forgotten, and an
operation on a forgotten or unknown line is shown as refused.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace

from .lines import Line
from .operations import Delete, Edit, Operation, React, Reply, id_sender, quote

MAX_LINES = 2000
MAX_EMOJI_PER_LINE = 20
NO_QUOTE = "(a line not shown here)"


def conversation(sender: str, target: str) -> str:
    """Where a line belongs: its room, or, for a private line, the pair of keys (the same for
    both directions)."""
    if not target.startswith("@"):
        return target
    return "@" + "|".join(sorted((sender, target[1:])))


@dataclass
class Entry:
    line: Line
    conversation: str
    reactions: dict[str, set[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Applied:
    """What an operation line becomes: the line to show (a target's new version with its
    ``ref``, or a reply), or the reason the operation was refused."""

    line: Line | None = None
    refused: str = ""


class MessageBook:
    def __init__(self, limit: int = MAX_LINES) -> None:
        self.limit = limit
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, line_id: str) -> Line | None:
        entry = self._entries.get(line_id)
        return entry.line if entry is not None else None

    def add(self, line: Line, where: str) -> None:
        """Keep ``line`` (one with an id), of the conversation ``where``, replacing an earlier
        version of it."""
        if not line.id:
            return
        entry = self._entries.pop(line.id, None)
        if entry is None:
            entry = Entry(line, where)
        else:
            entry.line = line
        self._entries[line.id] = entry
        while len(self._entries) > self.limit:
            self._entries.popitem(last=False)

    def where(self, line_id: str) -> str | None:
        """The conversation of a kept line."""
        entry = self._entries.get(line_id)
        return entry.conversation if entry is not None else None

    def last(self, where: str, sender: str = "") -> Line | None:
        """The newest line kept of the conversation ``where`` (by ``sender`` if given) that is
        not deleted."""
        for entry in reversed(self._entries.values()):
            line = entry.line
            mine = not sender or id_sender(line.id) == sender
            if entry.conversation == where and not line.deleted and mine:
                return line
        return None

    def apply(self, sender: str, where: str, operation: Operation, line: Line) -> Applied:
        """Apply ``operation``, signed by ``sender`` in the conversation ``where``; ``line`` is
        the operation's own line as it would be shown."""
        entry = self._entries.get(operation.target)
        if isinstance(operation, Reply):
            # Only a line of the same conversation is quoted: a reply in a room must not show
            # a private line to those who had it.
            shown = NO_QUOTE
            if entry is not None and entry.conversation == where:
                shown = quote(entry.line.nick, entry.line.shown_text())
            return Applied(
                replace(line, text=operation.text, reply_to=operation.target, quote=shown)
            )
        if entry is None:
            return Applied(refused="the line is unknown here")
        if entry.conversation != where:
            return Applied(refused="the line is in another conversation")
        if entry.line.deleted:
            return Applied(refused="the line was deleted")
        if isinstance(operation, React):
            who = entry.reactions.get(operation.emoji)
            if who is None:
                if len(entry.reactions) >= MAX_EMOJI_PER_LINE:
                    return Applied(refused="too many different reactions on that line")
                who = entry.reactions[operation.emoji] = set()
            who.add(sender)
            counts = tuple((emoji, len(keys)) for emoji, keys in entry.reactions.items())
            return self._updated(entry, replace(entry.line, reactions=counts))
        if id_sender(operation.target) != sender:
            return Applied(refused="only its author can change a line")
        if isinstance(operation, Edit):
            return self._updated(entry, replace(entry.line, text=operation.text, edited=True))
        assert isinstance(operation, Delete)
        return self._updated(entry, replace(entry.line, text="", deleted=True, reactions=()))

    def _updated(self, entry: Entry, line: Line) -> Applied:
        entry.line = line
        if line.deleted:
            entry.reactions.clear()
        return Applied(line)
