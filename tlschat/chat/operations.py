"""Operations on earlier lines (docs/PROTOCOL.md, "Operations on lines"): edits, deletions,
reactions and replies. Pure.

Each one is an ordinary signed line (section 21) whose body has a reserved form, as ``/me `` has:
the signed bytes do not change, so history, sealing and the server stay as they are, and the
author of an operation is the line's own signed sender. A line's id is ``SENDER:COUNTER``: both
are signed, and a sender's counters never repeat.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .frames import has_unsafe_text

EDIT_PREFIX = "/edit "
DELETE_PREFIX = "/delete "
REACT_PREFIX = "/react "
REPLY_PREFIX = "/re "
MAX_REACTION_BYTES = 16
# What a reply quotes of the line it answers, at most.
QUOTE_CHARS = 60
_ID = re.compile(r"(SHA256:[A-Za-z0-9+/]{43}):([0-9]{1,20})")


@dataclass(frozen=True)
class Edit:
    target: str
    text: str


@dataclass(frozen=True)
class Delete:
    target: str


@dataclass(frozen=True)
class React:
    target: str
    emoji: str


@dataclass(frozen=True)
class Reply:
    target: str
    text: str


Operation = Edit | Delete | React | Reply


def line_id(sender: str, counter: int) -> str:
    return f"{sender}:{counter}"


def id_sender(target: str) -> str:
    """The fingerprint part of a valid line id."""
    return target.rpartition(":")[0]


def valid_id(text: str) -> bool:
    return _ID.fullmatch(text) is not None


def parse_id(text: str) -> tuple[str, int] | None:
    """A line id -> (sender, counter), or None if ``text`` is not one."""
    match = _ID.fullmatch(text)
    return (match[1], int(match[2])) if match is not None else None


def valid_reaction(emoji: str) -> bool:
    """A short emoji-like string: 1 to 16 UTF-8 bytes, no space, no control character."""
    try:
        size = len(emoji.encode("utf-8"))
    except UnicodeEncodeError:
        return False
    return (
        0 < size <= MAX_REACTION_BYTES and not has_unsafe_text(emoji) and emoji.split() == [emoji]
    )


def parse_operation(body: str) -> Operation | None:
    """The operation a body carries, or None: an ordinary line (malformed forms included)."""
    for prefix in (EDIT_PREFIX, REPLY_PREFIX, REACT_PREFIX, DELETE_PREFIX):
        if body.startswith(prefix):
            target, _, rest = body[len(prefix) :].partition(" ")
            if not valid_id(target):
                return None
            if prefix == DELETE_PREFIX:
                return Delete(target) if not rest else None
            if prefix == REACT_PREFIX:
                return React(target, rest) if valid_reaction(rest) else None
            if not rest.strip():
                return None
            return Edit(target, rest) if prefix == EDIT_PREFIX else Reply(target, rest)
    return None


def operation_body(operation: Operation) -> str:
    """The body that carries ``operation``: what :func:`parse_operation` reads back."""
    if isinstance(operation, Edit):
        return f"{EDIT_PREFIX}{operation.target} {operation.text}"
    if isinstance(operation, Delete):
        return f"{DELETE_PREFIX}{operation.target}"
    if isinstance(operation, React):
        return f"{REACT_PREFIX}{operation.target} {operation.emoji}"
    return f"{REPLY_PREFIX}{operation.target} {operation.text}"


def quote(nick: str, text: str) -> str:
    """``bob: first 60 characters…`` of the line a reply answers, on one line."""
    flat = " ".join(text.split())
    short = flat if len(flat) <= QUOTE_CHARS else flat[:QUOTE_CHARS] + "…"
    return f"{nick}: {short}"


def unescape_newlines(text: str) -> str:
    """A line typed in line mode: ``\\n`` is a newline, ``\\\\`` a backslash; anything else as
    typed."""
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in "n\\":
            out.append("\n" if text[index + 1] == "n" else "\\")
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)
