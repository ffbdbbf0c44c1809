"""Full-text search over the SQLite store's room history: an FTS5 index of ``messages.body``,
kept in step with ``messages`` by triggers, so every delete (retention's included) and any
later edit of a row reaches it. End-to-end encrypted lines have an empty ``body``: nothing of
them is indexed, and they are never searched (the server holds only their ciphertext)."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection

from .base import StoredMessage
from .search import MAX_RESULTS, query_words

# An external-content index: the text is kept once, in ``messages``.
SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(
    body, content = 'messages', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_update AFTER UPDATE OF body ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
END;
"""


def add_index(db: sqlite3.Connection) -> None:
    """Create the index and its triggers; a database made before search gets its history
    indexed, once."""
    existed = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages_fts'"
    ).fetchone()
    db.executescript(SCHEMA)
    if existed is None:
        db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')")


def fts_query(text: str) -> str:
    """The user's words, each quoted as an FTS5 string, so none is read as query syntax
    (``"``, ``*``, ``NEAR(``, ``AND`` are words to find); all must match."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in query_words(text))


class SQLiteSearch:
    """The search half of :class:`~tlschat.store.sqlite.SQLiteStore`."""

    _db: sqlite3.Connection

    def search_messages(
        self, rooms: Collection[str], text: str, limit: int = MAX_RESULTS
    ) -> list[StoredMessage]:
        """The plain lines of ``rooms`` that contain every word of ``text`` (whole words,
        case- and accent-insensitively), newest first, ``limit`` at most."""
        query = fts_query(text)
        if not rooms or not query or limit <= 0:
            return []
        marks = ", ".join("?" for _ in rooms)
        try:
            rows = self._db.execute(
                "SELECT m.room, m.sender, m.nick, m.key_der, m.counter, m.timestamp_ms, m.body,"
                " m.signature, m.encrypted FROM messages_fts JOIN messages AS m"
                " ON m.id = messages_fts.rowid WHERE messages_fts MATCH ?"
                f" AND m.encrypted = '' AND m.room IN ({marks}) ORDER BY m.id DESC LIMIT ?",
                (query, *rooms, min(limit, MAX_RESULTS)),
            ).fetchall()
        except sqlite3.OperationalError:
            # Quoted words are never syntax, so none is known to be refused; a refusal all the
            # same matches nothing rather than failing the command.
            return []
        return [StoredMessage(*row) for row in rows]
