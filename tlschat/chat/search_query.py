"""How ``/search TEXT [#room]`` reads, for the server and the client alike. Pure."""

from __future__ import annotations

from ..store.search import MAX_QUERY_BYTES, MAX_RESULTS, query_words
from .frames import valid_room

__all__ = ["MAX_QUERY_BYTES", "MAX_RESULTS", "USAGE", "matches", "split_search"]

USAGE = "usage: /search TEXT [#room]"


def split_search(args: str) -> tuple[str, str]:
    """The query and the room it is limited to (empty: every room the caller is in). A last
    word that names a room, after other words, is the room."""
    words = args.split()
    if len(words) > 1 and valid_room(words[-1]):
        return " ".join(words[:-1]), words[-1]
    return args.strip(), ""


def matches(text: str, query: str) -> bool:
    """Whether ``text`` contains every word of ``query``, case-insensitively: how the client
    searches what it decrypted, and a cluster server its capped replica."""
    folded = text.casefold()
    words = query_words(query)
    return bool(words) and all(word in folded for word in words)
