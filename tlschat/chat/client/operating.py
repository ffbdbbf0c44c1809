"""Edits, deletions, reactions and replies (docs/PROTOCOL.md, "Operations on lines"): the
commands that sign them, and what the lines that carry them do to the lines kept by id. Pure."""

from __future__ import annotations

from dataclasses import replace

from ...protocol.identity import IdentityKey
from ..delivery import Outgoing
from ..envelope import SignedMessage
from ..lines import Line
from ..message_book import MessageBook, conversation
from ..operations import (
    Delete,
    Edit,
    Operation,
    React,
    Reply,
    id_sender,
    line_id,
    operation_body,
    parse_operation,
    valid_id,
    valid_reaction,
)
from .commands import error
from .crypto import ClientCrypto
from .sending import ClientSending

USAGES = {
    "edit": "usage: /edit [ID|last] NEW TEXT",
    "delete": "usage: /delete [ID|last]",
    "react": "usage: /react ID|last EMOJI (at most 16 bytes)",
    "re": "usage: /re ID|last TEXT",
}
REFUSED_OPERATION = "refused_operation"
_NAMES = {Edit: "edit", Delete: "deletion", React: "reaction", Reply: "reply"}


class ClientOperating(ClientSending):
    """Operations on earlier lines, sent and received."""

    def __init__(
        self, identity: IdentityKey, nick: str = "", crypto: ClientCrypto | None = None
    ) -> None:
        super().__init__(identity, nick, crypto)
        self.book = MessageBook()

    # --- commands -------------------------------------------------------------------------

    def operate(self, name: str, args: str, now: float) -> list[Line]:
        """``/edit``, ``/delete``, ``/react`` and ``/re``: an operation on a kept line."""
        first, _, rest = args.partition(" ")
        own = name in ("edit", "delete")
        target = self._find(first, own)
        named = first == "last" or valid_id(first) or _counter(first)
        if target is None and own and not named:
            # No ID given: the user's last line here.
            target, rest = self._find("last", own), args
        if target is None:
            return error(f"no such line here: {first or 'last'}; " + USAGES[name], now)
        operation: Operation
        if name == "edit":
            if not rest.strip():
                return error(USAGES[name], now)
            operation = Edit(target, rest)
        elif name == "delete":
            if rest.strip():
                return error(USAGES[name], now)
            operation = Delete(target)
        elif name == "react":
            if not valid_reaction(rest):
                return error(USAGES[name], now)
            operation = React(target, rest)
        else:
            if not rest.strip():
                return error(USAGES[name], now)
            operation = Reply(target, rest)
        return self._send_operation(operation, now)

    def _find(self, word: str, own: bool) -> str | None:
        """The id of a kept line the user names: ``last``, a counter of theirs, or an id."""
        mine = self.identity.fingerprint
        if word == "last":
            line = self.book.last(conversation(mine, self.room), mine if own else "")
            return line.id if line is not None else None
        if _counter(word):
            word = line_id(mine, int(word))
        if own and id_sender(word) != mine:
            return None  # only the author's own lines can be changed
        return word if valid_id(word) and self.book.get(word) is not None else None

    def _send_operation(self, operation: Operation, now: float) -> list[Line]:
        where = self.book.where(operation.target) or ""
        body = operation_body(operation)
        if not where.startswith("@"):
            return self.say(body, now, where)
        target = self.book.get(operation.target)
        assert target is not None  # _find found it
        mine = self.identity.fingerprint
        other = next((fp for fp in where[1:].split("|") if fp != mine), mine)
        nick = target.room[1:] if target.room.startswith("@") else target.nick
        return self.say(body, now, "@" + other, nick)

    def _shown_for(self, line: Line, body: str) -> Line:
        """How a line the user sends is shown while it waits: an operation says what it does."""
        operation = parse_operation(body)
        if operation is None:
            return line
        if isinstance(operation, Reply):
            return self._reply_line(operation, line)
        if isinstance(operation, Edit):
            return replace(line, kind="message", text=f"(edit) {operation.text}")
        if isinstance(operation, Delete):
            return replace(line, kind="message", text="(delete)")
        return replace(line, kind="message", text=f"(reaction) {operation.emoji}")

    # --- outcomes -------------------------------------------------------------------------

    def _deliver_signed(self, line: Line, body: str, target: str, counter: int) -> list[Line]:
        """A line of the user's was delivered: kept by id (a message or a reply), or applied
        (an edit, a deletion, a reaction), as its recipients will."""
        mine = self.identity.fingerprint
        line = replace(line, id=line_id(mine, counter))
        where = conversation(mine, target)
        operation = parse_operation(body)
        if operation is None or isinstance(operation, Reply):
            self.book.add(line, where)
            return [line]
        applied = self.book.apply(mine, where, operation, line)
        if applied.line is None:
            name = _NAMES[type(operation)]
            return [line, *error(f"your {name} did nothing: {applied.refused}", line.timestamp)]
        return [line, applied.line]

    def _deliver(self, item: Outgoing) -> list[Line]:
        lines = super()._deliver(item)
        if len(lines) != 1 or item.frame is None:
            return lines
        return self._deliver_signed(lines[0], item.body, item.target, item.counter)

    def _received(self, line: Line, message: SignedMessage) -> Line:
        """A received line, kept by id; an operation line becomes what it does."""
        line = replace(line, id=line_id(message.sender, message.counter))
        if not line.verified:
            return line  # an unverified line is shown as it came, and changes nothing
        where = conversation(message.sender, message.target)
        operation = parse_operation(message.body)
        if operation is None:
            self.book.add(line, where)
            return line
        applied = self.book.apply(message.sender, where, operation, line)
        if applied.line is None:
            name = _NAMES[type(operation)]
            text = f"{line.nick or message.sender}'s {name} was refused: {applied.refused}"
            return replace(line, kind=REFUSED_OPERATION, text=text)
        if isinstance(operation, Reply):
            self.book.add(applied.line, where)
        return applied.line

    def _reply_line(self, operation: Reply, line: Line) -> Line:
        # A reply changes no kept line: applying it only quotes what it answers.
        where = self.book.where(operation.target) or ""
        return self.book.apply("", where, operation, line).line or line


def _counter(word: str) -> bool:
    """Whether ``word`` is a counter (ASCII digits, up to 20)."""
    return word.isascii() and word.isdigit() and len(word) <= 20
