"""A store held in memory: a cluster server's replica of what Redis holds durably.

In a cluster every change reaches Redis first (atomically, in the broker's commit script) and then
every server's replica through the cluster's log, so reads stay synchronous and local.
"""

from __future__ import annotations

import collections

from .base import Ban, Retention, StoredMessage
from .memory_directory import MemoryDirectory
from .memory_invitations import MemoryInvitations
from .memory_rooms import MemoryRooms
from .memory_search import MemorySearch


class MemoryStore(MemoryDirectory, MemoryRooms, MemoryInvitations, MemorySearch):
    def __init__(self, history_limit: int) -> None:
        super().__init__()
        MemoryRooms.__init__(self)  # (the directory's __init__ does not chain on)
        MemoryInvitations.__init__(self)
        self.history_limit = max(1, history_limit)
        self._messages: dict[str, collections.deque[StoredMessage]] = {}
        self._nick_owners: dict[str, str] = {}
        self._nicks: dict[str, str] = {}
        self._counters: dict[str, int] = {}
        self._bans: dict[str, Ban] = {}
        self._topics: dict[str, str] = {}
        self._encrypted: set[str] = set()
        self._allowed: dict[str, bool] = {}

    def append_message(self, message: StoredMessage) -> None:
        """Keep ``message`` unless its counter was seen: a server that reloads its replica
        reads the log again from before the load."""
        if message.counter <= self.last_counter(message.sender):
            return
        self.add_history(message)
        self.set_last_counter(message.sender, message.counter)

    def commit(self) -> None:
        """Nothing to commit: a cluster's lines are durable in Redis before they are applied."""

    def index_for_search(self) -> int:
        """The replica is searched as it is: nothing to index."""
        return 0

    def add_history(self, message: StoredMessage) -> None:
        """Append to a room's history as loaded, without touching the sender's counter."""
        room = self._messages.setdefault(message.room, collections.deque(maxlen=self.history_limit))
        room.append(message)

    def recent_messages(self, room: str, limit: int) -> list[StoredMessage]:
        messages = list(self._messages.get(room, ()))
        return messages[-limit:] if limit > 0 else []

    def messages_before(
        self, room: str, anchor: tuple[str, int], limit: int
    ) -> list[StoredMessage] | None:
        messages = list(self._messages.get(room, ()))
        for index, message in enumerate(messages):
            if (message.sender, message.counter) == anchor:
                return messages[max(0, index - limit) : index] if limit > 0 else []
        return None

    def nick_owner(self, nick: str) -> str | None:
        return self._nick_owners.get(nick.casefold())

    def nick_of(self, fingerprint: str) -> str | None:
        return self._nicks.get(fingerprint)

    def register_nick(self, nick: str, fingerprint: str) -> bool:
        owner = self.nick_owner(nick)
        if owner is not None and owner != fingerprint:
            return False
        old = self._nicks.get(fingerprint)
        if old is not None:
            self._nick_owners.pop(old.casefold(), None)
        self._nicks[fingerprint] = nick
        self._nick_owners[nick.casefold()] = fingerprint
        return True

    def last_counter(self, fingerprint: str) -> int:
        return self._counters.get(fingerprint, -1)

    def set_last_counter(self, fingerprint: str, counter: int) -> None:
        self._counters[fingerprint] = max(counter, self._counters.get(fingerprint, -1))

    def add_ban(self, ban: Ban) -> None:
        self._bans[ban.fingerprint] = ban

    def remove_ban(self, fingerprint: str) -> bool:
        return self._bans.pop(fingerprint, None) is not None

    def active_ban(self, fingerprint: str, now: float) -> Ban | None:
        ban = self._bans.get(fingerprint)
        if ban is not None and ban.until is not None and ban.until <= now:
            del self._bans[fingerprint]
            return None
        return ban

    def set_topic(self, room: str, topic: str) -> None:
        self._topics[room] = topic

    def topics(self) -> dict[str, str]:
        return dict(self._topics)

    def set_allowed(self, fingerprint: str, allowed: bool) -> None:
        self._allowed[fingerprint] = allowed

    def allowed(self, fingerprint: str) -> bool | None:
        return self._allowed.get(fingerprint)

    def release_nick(self, nick: str) -> str | None:
        owner = self._nick_owners.pop(nick.casefold(), None)
        if owner is not None:
            self._nicks.pop(owner, None)
        return owner

    def set_encrypted(self, room: str) -> None:
        self._encrypted.add(room)

    def encrypted_rooms(self) -> set[str]:
        return set(self._encrypted)

    def enforce_retention(self, retention: Retention, now: float) -> int:
        """Per room and by age; there is no database here to bound by size (each room holds at
        most ``history_limit`` messages, each inbox its :class:`InboxBounds`, and Redis caps its
        own streams)."""
        deleted = 0
        cutoff_ms = int((now - retention.max_age) * 1000) if retention.max_age > 0 else None
        for room, messages in list(self._messages.items()):
            if retention.keep_per_room > 0:
                while len(messages) > retention.keep_per_room:
                    messages.popleft()
                    deleted += 1
            if cutoff_ms is not None:
                while messages and messages[0].timestamp_ms < cutoff_ms:
                    messages.popleft()
                    deleted += 1
            if not messages:
                del self._messages[room]
        return deleted

    def close(self) -> None:
        """Nothing to release: the durable copy is Redis's."""
