"""Invitations in the SQLite store (docs/PROTOCOL.md, section 22, "Invitations"). Every write
commits at once; nothing is cached, so an invitation that ``tlschat invite`` writes into a running
server's database (WAL lets another process write) counts from its next ``hello``."""

from __future__ import annotations

import sqlite3

from .invitations import StoredInvitation, forgotten_before
from .sqlite_batch import SQLiteBatch

SCHEMA = """
CREATE TABLE IF NOT EXISTS invitations (
    id TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    made_by TEXT NOT NULL,
    made_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_by TEXT,
    used_at REAL,
    revoked_at REAL
) WITHOUT ROWID;
"""


COLUMNS = "id, digest, made_by, made_at, expires_at, used_by, used_at, revoked_at"


# Used or revoked, it ended then; else it ends when it expires (at most one of the two is set).
ENDED_AT = "COALESCE(used_at, revoked_at, expires_at)"


class SQLiteInvitations(SQLiteBatch):
    """The invitations of :class:`~tlschat.store.sqlite.SQLiteStore`, which opens ``_db``."""

    _db: sqlite3.Connection

    def add_invitation(self, invitation: StoredInvitation) -> bool:
        with self._transaction("IMMEDIATE"):
            row = (
                invitation.id,
                invitation.digest,
                invitation.made_by,
                invitation.made_at,
                invitation.expires_at,
                invitation.used_by,
                invitation.used_at,
                invitation.revoked_at,
            )
            added = self._db.execute(
                f"INSERT OR IGNORE INTO invitations ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            ).rowcount
            if added:
                self._db.execute(
                    f"DELETE FROM invitations WHERE {ENDED_AT} < ?",
                    (forgotten_before(invitation.made_at),),
                )
        return added > 0

    def invitation(self, invitation_id: str) -> StoredInvitation | None:
        row = self._db.execute(
            f"SELECT {COLUMNS} FROM invitations WHERE id = ?", (invitation_id,)
        ).fetchone()
        return None if row is None else StoredInvitation(*row)

    def invitations(self) -> list[StoredInvitation]:
        rows = self._db.execute(f"SELECT {COLUMNS} FROM invitations ORDER BY made_at DESC, id DESC")
        return [StoredInvitation(*row) for row in rows]

    def open_invitations(self, now: float) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM invitations"
            " WHERE used_at IS NULL AND revoked_at IS NULL AND expires_at > ?",
            (now,),
        ).fetchone()
        return int(row[0])

    def use_invitation(self, invitation_id: str, fingerprint: str, at: float) -> None:
        self._db.execute(
            "UPDATE invitations SET used_by = ?, used_at = ?"
            " WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL",
            (fingerprint, at, invitation_id),
        )

    def revoke_invitation(self, invitation_id: str, at: float) -> None:
        self._db.execute(
            "UPDATE invitations SET revoked_at = ?"
            " WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL",
            (at, invitation_id),
        )
