"""Full-text search over the SQLite store's room history: an FTS5 index of ``messages.body``.

Lines are indexed in bulk, not one by one as they are stored: an FTS5 insert costs about 55 us
in a transaction of its own and under 3 us in one of a hundred lines or more (docs/BENCHMARKS.md).
The server indexes what is new every second (``server/search_index.py``), and a search indexes
what is left before it looks, so a search always sees every line stored before it.
``search_progress`` holds the last row indexed; the triggers keep the indexed rows in step with
``messages``, so every delete (retention's included) and any later edit reaches the index, and
leave rows not yet indexed to the next bulk insert.

A deleted line leaves a deletion marker in the index; the marker and the line's entries go when
FTS5 merges the segments that hold them. FTS5 merges a level's segments as they accumulate
(``automerge``), here at 2 rather than its default 4: while a room's 10,000 lines turn over, the
index peaks at 2.7 times its least size (7.5 at 4), more for a small history, whose fixed
overhead counts (docs/BENCHMARKS.md, "Issue 16, third round"). Nothing runs 'optimize', which
rewrites the whole index: after each retention pass that deleted a line, on the event loop,
that took 240 ms with 400,000 lines stored (122 MB) and grows with the index; and SQLite 3.40
(Python 3.11's here) reports the database malformed after about 1,240 of them with little
written between (tests/store/test_search_store.py). An index damaged that way by an older version is
emptied and rebuilt from the history when the database is opened.

End-to-end encrypted lines have an empty ``body``: nothing of them is indexed, and they are never
searched (the server holds only their ciphertext).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Collection

from .base import StoredMessage
from .search import MAX_RESULTS, query_words
from .sqlite_batch import SQLiteBatch

# An external-content index: the text is kept once, in ``messages``.
SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(
    body, content = 'messages', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS search_progress (
    only INTEGER PRIMARY KEY CHECK (only = 0),
    indexed_upto INTEGER NOT NULL
);
"""
# Replaced whenever the database is opened: an older database indexed every row as it was
# inserted, and its delete and update triggers did not look at search_progress.
TRIGGERS = """
DROP TRIGGER IF EXISTS messages_fts_insert;
DROP TRIGGER IF EXISTS messages_fts_delete;
DROP TRIGGER IF EXISTS messages_fts_update;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.id <= (SELECT indexed_upto FROM search_progress) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages
WHEN old.id <= (SELECT indexed_upto FROM search_progress) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
END;
"""
# Lines indexed in one transaction at most: a backlog is indexed in slices this size.
INDEX_SLICE = 2000
# Segments of one level that FTS5 merges into one (its default is 4).
AUTOMERGE = 2

log = logging.getLogger("tlschat.store")


def add_index(db: sqlite3.Connection) -> None:
    """Create the index, its progress and its triggers. A database made before search has its
    history indexed now, once; one made before bulk indexing was indexed row by row, to its
    last row; one whose index cannot be read has it rebuilt from the history, all of it."""
    existed = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages_fts'"
    ).fetchone()
    db.executescript(SCHEMA)
    rebuild = existed is None or not index_readable(db)
    if existed is not None and rebuild:
        log.warning(
            "[HISTORY] The search index cannot be read (SQLite 3.40 damages it after"
            " many 'optimize' runs, which older versions of tlschat made); rebuilding it from"
            " the history"
        )
    # One transaction: an index rebuilt holds every row, and its progress must say so.
    db.execute("BEGIN")
    if rebuild:
        if existed is not None:
            empty_index(db)
        db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')")
    db.execute(
        "INSERT OR IGNORE INTO search_progress (only, indexed_upto)"
        " SELECT 0, coalesce(max(id), 0) FROM messages"
    )
    if rebuild:
        db.execute(
            "UPDATE search_progress SET indexed_upto = (SELECT coalesce(max(id), 0) FROM messages)"
        )
    db.execute("COMMIT")
    db.execute(
        "INSERT INTO messages_fts (messages_fts, rank) VALUES ('automerge', ?)", (AUTOMERGE,)
    )
    db.executescript(TRIGGERS)


def index_readable(db: sqlite3.Connection) -> bool:
    """Whether a search reads the index: one whose structure is damaged fails every search,
    and every delete of an indexed line, as malformed."""
    try:
        db.execute("SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'tlschat' LIMIT 1")
    except sqlite3.DatabaseError:
        return False
    return True


def empty_index(db: sqlite3.Connection) -> None:
    """Empty an index that FTS5 cannot open (its 'rebuild' fails too): its records become an
    empty index's, copied from one made for the purpose in the connection's temp schema."""
    db.execute(
        "CREATE VIRTUAL TABLE temp.empty_fts USING fts5("
        "body, content = 'messages', content_rowid = 'id')"
    )
    db.execute("DELETE FROM main.messages_fts_data")
    db.execute("INSERT INTO main.messages_fts_data SELECT * FROM temp.empty_fts_data")
    db.execute("DELETE FROM main.messages_fts_idx")
    db.execute("DELETE FROM main.messages_fts_docsize")
    db.execute("DROP TABLE temp.empty_fts")


def fts_query(text: str) -> str:
    """The user's words, each quoted as an FTS5 string, so none is read as query syntax
    (``"``, ``*``, ``NEAR(``, ``AND`` are words to find); all must match."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in query_words(text))


class SQLiteSearch(SQLiteBatch):
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
        while self.index_for_search():
            pass
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

    def index_for_search(self) -> int:
        """Index the next slice of the lines stored since the last call (all of them, up to
        INDEX_SLICE); how many."""
        with self._transaction():
            upto = int(self._db.execute("SELECT indexed_upto FROM search_progress").fetchone()[0])
            last = self._db.execute(
                "SELECT max(id), count(*) FROM (SELECT id FROM messages WHERE id > ?"
                " ORDER BY id LIMIT ?)",
                (upto, INDEX_SLICE),
            ).fetchone()
            if last[0] is None:
                return 0
            self._db.execute(
                "INSERT INTO messages_fts (rowid, body)"
                " SELECT id, body FROM messages WHERE id > ? AND id <= ?",
                (upto, last[0]),
            )
            self._db.execute("UPDATE search_progress SET indexed_upto = ?", (last[0],))
            return int(last[1])
