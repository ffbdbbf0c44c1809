"""Search over a cluster server's replica of the history (:class:`MemoryStore`): no index, the
replica is capped per room, so a case-insensitive substring match of every word of the query
against each plain line kept, newest first."""

from __future__ import annotations

import collections
from collections.abc import Collection

from .base import StoredMessage
from .search import MAX_RESULTS, query_words


class MemorySearch:
    """The search half of :class:`~tlschat.store.memory.MemoryStore`."""

    _messages: dict[str, collections.deque[StoredMessage]]

    def search_messages(
        self, rooms: Collection[str], text: str, limit: int = MAX_RESULTS
    ) -> list[StoredMessage]:
        words = query_words(text)
        if not words or limit <= 0:
            return []
        found: list[StoredMessage] = []
        for room in set(rooms):
            for message in self._messages.get(room, ()):
                body = message.body.casefold()
                if not message.encrypted and all(word in body for word in words):
                    found.append(message)
        found.sort(key=lambda m: m.timestamp_ms, reverse=True)
        return found[: min(limit, MAX_RESULTS)]
