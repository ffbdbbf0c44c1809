"""A one-server ``chat.db``'s room history, read without changing the database: what a cluster
carries over (``tlschat cluster-import``) and what a cluster server checks it has at start.

Read-only (SQLite's ``mode=ro``): no table is made or migrated, so a database the standalone
server still runs on, or one from an older version, is read as it is.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .base import StoredMessage

COLUMNS = "room, sender, nick, key_der, counter, timestamp_ms, body, signature"


def read_history(path: Path, per_room: int) -> dict[str, list[StoredMessage]]:
    """The newest ``per_room`` lines of each room of the database at ``path``, oldest first, in
    the order the server stored them. sqlite3.Error when it is not a database SQLite can read."""
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if "messages" not in tables:
            return {}
        columns = {str(row[1]) for row in db.execute("PRAGMA table_info(messages)")}
        # A database made before end-to-end encryption has no column for encrypted lines.
        encrypted = "encrypted" if "encrypted" in columns else "''"
        rooms = [str(row[0]) for row in db.execute("SELECT DISTINCT room FROM messages")]
        history: dict[str, list[StoredMessage]] = {}
        for room in sorted(rooms):
            rows = db.execute(
                f"SELECT {COLUMNS}, {encrypted} FROM messages WHERE room = ?"
                " ORDER BY id DESC LIMIT ?",
                (room, per_room),
            ).fetchall()
            history[room] = [
                StoredMessage(
                    str(r[0]),
                    str(r[1]),
                    str(r[2]),
                    bytes(r[3]),
                    int(r[4]),
                    int(r[5]),
                    str(r[6]),
                    bytes(r[7]),
                    str(r[8]),
                )
                for r in reversed(rows)
            ]
        return history
    finally:
        db.close()
