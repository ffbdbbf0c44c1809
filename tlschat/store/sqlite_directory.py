"""The end-to-end layer's directory and inboxes in the SQLite store (docs/PROTOCOL.md,
"End-to-end layer"): devices, their one-time and fallback keys, and what waits for each device.

Every write is one committed transaction. One server process owns the database, so a claim is
atomic as one transaction (a DELETE ... RETURNING of the oldest key).
"""

from __future__ import annotations

from .base import InboxBounds, InboxEntry, InboxItem, StoredDevice
from .sqlite_retention import SQLiteRetention

# Each table or index costs the database at least a page: tables keyed by their primary key are
# WITHOUT ROWID (no second b-tree), and a device's one reusable fallback key is a column.
SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    fingerprint TEXT NOT NULL,
    device TEXT NOT NULL,
    keys_json TEXT NOT NULL,
    last_seen REAL NOT NULL,
    inbox_last INTEGER NOT NULL DEFAULT 0,
    fallback_key TEXT,
    PRIMARY KEY (fingerprint, device)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS one_time_keys (
    fingerprint TEXT NOT NULL,
    device TEXT NOT NULL,
    key_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    key_json TEXT NOT NULL,
    PRIMARY KEY (fingerprint, device, key_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL,
    device TEXT NOT NULL,
    created REAL NOT NULL,
    size INTEGER NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_by_device ON inbox (fingerprint, device, id);
"""
# The newest of a device's items that one of the bounds no longer keeps: counted from the newest.
BEYOND_BOUNDS = """
SELECT id FROM (
    SELECT id, ROW_NUMBER() OVER newest_first AS n, SUM(size) OVER newest_first AS total
    FROM inbox WHERE fingerprint = ? AND device = ?
    WINDOW newest_first AS (ORDER BY id DESC)
) WHERE n > ? OR total > ? ORDER BY id DESC LIMIT 1
"""
DEVICE = "fingerprint = ? AND device = ?"


class SQLiteDirectory(SQLiteRetention):
    """Inbox ids come from one sequence for the whole database (AUTOINCREMENT: never reused), so
    a device's ids increase, also across its removal and return; ``devices.inbox_last`` is the
    device's highest, which an ``item_id`` must pass to be queued."""

    def put_device(self, device: StoredDevice, max_devices: int) -> str | None:
        """The device just put is never the one removed; of the others, the one seen least
        recently (by device id on a tie) goes. One device is added at a time, so removing one
        keeps the bound."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO devices (fingerprint, device, keys_json, last_seen)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (fingerprint, device) DO UPDATE"
                " SET keys_json = excluded.keys_json, last_seen = excluded.last_seen",
                (device.fingerprint, device.device, device.keys_json, device.last_seen),
            )
            (count,) = self._db.execute(
                "SELECT COUNT(*) FROM devices WHERE fingerprint = ?", (device.fingerprint,)
            ).fetchone()
            evicted: str | None = None
            if count > max_devices:
                row = self._db.execute(
                    "SELECT device FROM devices WHERE fingerprint = ? AND device != ?"
                    " ORDER BY last_seen, device LIMIT 1",
                    (device.fingerprint, device.device),
                ).fetchone()
                if row is not None:
                    evicted = str(row[0])
                    self._delete_device(device.fingerprint, evicted)
        self._dirty = True
        self._added(len(device.keys_json.encode()))
        return evicted

    def touch_device(self, fingerprint: str, device: str, now: float) -> None:
        self._db.execute(
            f"UPDATE devices SET last_seen = ? WHERE {DEVICE}", (now, fingerprint, device)
        )

    def devices_of(self, fingerprint: str) -> list[StoredDevice]:
        rows = self._db.execute(
            "SELECT fingerprint, device, keys_json, last_seen FROM devices"
            " WHERE fingerprint = ? ORDER BY device",
            (fingerprint,),
        ).fetchall()
        return [StoredDevice(str(f), str(d), str(k), float(s)) for f, d, k, s in rows]

    def remove_device(self, fingerprint: str, device: str) -> bool:
        with self._transaction():
            removed = self._delete_device(fingerprint, device)
        self._dirty = True
        return removed

    def _delete_device(self, fingerprint: str, device: str) -> bool:
        """Within the caller's transaction."""
        for table in ("one_time_keys", "inbox"):
            self._db.execute(f"DELETE FROM {table} WHERE {DEVICE}", (fingerprint, device))
        cursor = self._db.execute(f"DELETE FROM devices WHERE {DEVICE}", (fingerprint, device))
        return cursor.rowcount > 0

    def _known(self, fingerprint: str, device: str) -> bool:
        row = self._db.execute(
            f"SELECT 1 FROM devices WHERE {DEVICE}", (fingerprint, device)
        ).fetchone()
        return row is not None

    def add_one_time_keys(
        self,
        fingerprint: str,
        device: str,
        keys: list[tuple[str, str]],
        fallback: tuple[str, str] | None,
        max_keys: int,
    ) -> int:
        """An unknown device gets nothing (0). Of a key id given twice, the first is kept."""
        added = 0
        with self._transaction():
            if not self._known(fingerprint, device):
                return 0
            held, last_seq = self._db.execute(
                f"SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM one_time_keys WHERE {DEVICE}",
                (fingerprint, device),
            ).fetchone()
            for key_id, key_json in keys:
                if held >= max_keys:
                    break
                last_seq += 1
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO one_time_keys"
                    " (fingerprint, device, key_id, seq, key_json) VALUES (?, ?, ?, ?, ?)",
                    (fingerprint, device, key_id, last_seq, key_json),
                )
                held += cursor.rowcount
                added += len(key_json.encode()) if cursor.rowcount else 0
            if fallback is not None:
                self._db.execute(
                    f"UPDATE devices SET fallback_key = ? WHERE {DEVICE}",
                    (fallback[1], fingerprint, device),
                )
                added += len(fallback[1].encode())
        self._dirty = True
        self._added(added)
        return int(held)

    def one_time_key_count(self, fingerprint: str, device: str) -> tuple[int, bool]:
        (count,) = self._db.execute(
            f"SELECT COUNT(*) FROM one_time_keys WHERE {DEVICE}", (fingerprint, device)
        ).fetchone()
        fallback = self._db.execute(
            f"SELECT 1 FROM devices WHERE {DEVICE} AND fallback_key IS NOT NULL",
            (fingerprint, device),
        ).fetchone()
        return int(count), fallback is not None

    def claim_one_time_key(self, fingerprint: str, device: str) -> str | None:
        # Keys exist only for a device in the directory (removal takes them with it).
        with self._transaction():
            rows = self._db.execute(
                f"DELETE FROM one_time_keys WHERE {DEVICE} AND key_id = (SELECT key_id"
                f" FROM one_time_keys WHERE {DEVICE} ORDER BY seq LIMIT 1) RETURNING key_json",
                (fingerprint, device, fingerprint, device),
            ).fetchall()
            if not rows:
                rows = self._db.execute(
                    f"SELECT fallback_key FROM devices WHERE {DEVICE} AND fallback_key IS NOT NULL",
                    (fingerprint, device),
                ).fetchall()
        self._dirty = True
        return str(rows[0][0]) if rows else None

    def forget_one_time_key(self, fingerprint: str, device: str, key_id: str) -> None:
        self._db.execute(
            f"DELETE FROM one_time_keys WHERE {DEVICE} AND key_id = ?",
            (fingerprint, device, key_id),
        )
        self._dirty = True

    def append_inbox(
        self,
        fingerprint: str,
        device: str,
        payload: str,
        now: float,
        bounds: InboxBounds,
        item_id: int | None = None,
    ) -> int:
        """0 when nothing was queued: an unknown device, an ``item_id`` not above the device's
        highest (already applied), or an item that alone passes ``bounds`` (which leaves the
        inbox as it was rather than emptying it). An ``item_id`` must not be another device's:
        this store's ids are unique in it."""
        [new_id] = self.append_inbox_items(
            [InboxEntry(fingerprint, device, payload, item_id)], now, bounds
        )
        return new_id

    def append_inbox_items(
        self, entries: list[InboxEntry], now: float, bounds: InboxBounds
    ) -> list[int]:
        with self._transaction():
            ids = [self._append(entry, now, bounds) for entry in entries]
        # Room for them is made after the commit: the size bound runs its own transactions.
        for entry, new_id in zip(entries, ids, strict=True):
            if new_id:
                self._dirty = True
                self._added(len(entry.payload.encode()))
        return ids

    def _append(self, entry: InboxEntry, now: float, bounds: InboxBounds) -> int:
        """One item, inside the caller's transaction."""
        fingerprint, device, item_id = entry.fingerprint, entry.device, entry.item_id
        size = len(entry.payload.encode())
        if size > bounds.max_bytes or bounds.max_items < 1:
            return 0
        row = self._db.execute(
            f"SELECT inbox_last FROM devices WHERE {DEVICE}", (fingerprint, device)
        ).fetchone()
        if row is None or (item_id is not None and item_id <= int(row[0])):
            return 0
        inserted = self._db.execute(
            "INSERT INTO inbox (id, fingerprint, device, created, size, payload)"
            " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (item_id, fingerprint, device, now, size, entry.payload),
        ).fetchone()
        new_id = int(inserted[0])
        self._db.execute(
            f"UPDATE devices SET inbox_last = ? WHERE {DEVICE}", (new_id, fingerprint, device)
        )
        self._drop_expired(fingerprint, device, now, bounds)
        beyond = self._db.execute(
            BEYOND_BOUNDS, (fingerprint, device, bounds.max_items, bounds.max_bytes)
        ).fetchone()
        if beyond is not None:
            self._db.execute(
                f"DELETE FROM inbox WHERE {DEVICE} AND id <= ?",
                (fingerprint, device, beyond[0]),
            )
        return new_id

    def _drop_expired(self, fingerprint: str, device: str, now: float, bounds: InboxBounds) -> None:
        self._db.execute(
            f"DELETE FROM inbox WHERE {DEVICE} AND created < ?",
            (fingerprint, device, now - bounds.max_age),
        )

    def inbox(
        self, fingerprint: str, device: str, after: int, now: float, bounds: InboxBounds
    ) -> list[InboxItem]:
        """Items past ``bounds.max_age`` are deleted, not only left out."""
        with self._transaction():
            self._drop_expired(fingerprint, device, now, bounds)
            rows = self._db.execute(
                "SELECT id, fingerprint, device, created, payload FROM inbox"
                f" WHERE {DEVICE} AND id > ? ORDER BY id",
                (fingerprint, device, after),
            ).fetchall()
        self._dirty = True
        return [InboxItem(int(i), str(f), str(d), float(c), str(p)) for i, f, d, c, p in rows]

    def ack_inbox(self, fingerprint: str, device: str, upto: int) -> int:
        cursor = self._db.execute(
            f"DELETE FROM inbox WHERE {DEVICE} AND id <= ?", (fingerprint, device, upto)
        )
        self._dirty = True
        return cursor.rowcount
