"""Group commit in the SQLite store (store/sqlite_batch.py): the lines of a pass are durable
together at ``commit``; a commit that fails keeps none of them and restores the counters; every
other write commits the open batch first, so it can never roll back lines already handed out."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tlschat.store import Retention, SQLiteStore, StoredMessage
from tlschat.store.base import Ban, HistoryNotCommitted

ALICE = "SHA256:" + "A" * 43
BOB = "SHA256:" + "B" * 43


def line(sender: str, counter: int) -> StoredMessage:
    return StoredMessage(
        room="#a",
        sender=sender,
        nick="n",
        key_der=b"\x30\x2a" + bytes(42),
        counter=counter,
        timestamp_ms=1_700_000_000_000 + counter,
        body=f"line {counter}",
        signature=bytes(64),
    )


def durable(path: Path) -> list[tuple[str, int]]:
    """What another connection (a restarted server) would find."""
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT sender, counter FROM messages ORDER BY id").fetchall()
        return [(str(s), int(c)) for s, c in rows]
    finally:
        db.close()


class FailingCommit:
    """The store's connection, except that COMMIT fails once."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._real = db

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT":
            self._real.execute("SELECT 1")
            self.__dict__["execute"] = self._real.execute
            raise sqlite3.OperationalError("disk I/O error")
        return self._real.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def __enter__(self) -> sqlite3.Connection:
        return self._real.__enter__()

    def __exit__(self, *details: Any) -> Any:
        return self._real.__exit__(*details)


def test_lines_are_durable_at_commit_not_before(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SQLiteStore(path)
    store.append_message(line(ALICE, 1))
    store.append_message(line(BOB, 1))
    assert durable(path) == []
    # The store itself sees them at once (history, replay checks).
    assert [m.counter for m in store.recent_messages("#a", 10)] == [1, 1]
    assert store.last_counter(ALICE) == 1
    store.commit()
    assert durable(path) == [(ALICE, 1), (BOB, 1)]
    store.commit()  # nothing open: nothing to do
    store.close()


def test_a_failed_commit_keeps_none_of_the_batch_and_restores_the_counters(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chat.db"
    store = SQLiteStore(path)
    store.append_message(line(ALICE, 1))
    store.commit()
    real = store._db
    store._db = FailingCommit(real)  # type: ignore[assignment]
    store.append_message(line(ALICE, 2))
    store.append_message(line(BOB, 5))
    with pytest.raises(HistoryNotCommitted) as failed:
        store.commit()
    assert failed.value.lines == ((ALICE, 2), (BOB, 5))
    assert "disk I/O error" in str(failed.value)
    assert store.last_counter(ALICE) == 1 and store.last_counter(BOB) == -1
    assert [m.counter for m in store.recent_messages("#a", 10)] == [1]
    # The same lines, sent again, are taken.
    store._db = real
    store.append_message(line(ALICE, 2))
    store.commit()
    assert durable(path) == [(ALICE, 1), (ALICE, 2)]
    store.close()


def test_other_writes_commit_the_open_batch_first(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SQLiteStore(path)
    store.append_message(line(ALICE, 1))
    assert store.register_nick("alice", ALICE)  # a write in a transaction of its own
    assert durable(path) == [(ALICE, 1)]
    store.append_message(line(ALICE, 2))
    store.enforce_retention(Retention(keep_per_room=100), 0.0)
    assert durable(path) == [(ALICE, 1), (ALICE, 2)]
    store.close()


def test_a_write_that_fails_does_not_roll_back_the_batch(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SQLiteStore(path)
    store.append_message(line(ALICE, 1))
    store.add_ban(Ban(BOB, None, "spam", "op"))
    with pytest.raises(sqlite3.Error):
        store._db.execute("INSERT INTO nicks (nick_folded, nick) VALUES ('x', 'x')")
    store.commit()
    assert durable(path) == [(ALICE, 1)]
    store.close()
    reopened = SQLiteStore(path)
    assert reopened.active_ban(BOB, 0.0) is not None
    reopened.close()


def test_close_commits_what_is_open(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SQLiteStore(path)
    store.append_message(line(ALICE, 1))
    store.close()
    assert durable(path) == [(ALICE, 1)]


def test_a_batch_lost_on_the_way_to_another_write_is_reported_by_the_next_commit(
    tmp_path: Path,
) -> None:
    """The nick write commits the open batch first; that commit fails. The nick is still
    written, and the lost lines are named by the commit the server makes before any socket
    write, so no one hears of them."""
    path = tmp_path / "chat.db"
    store = SQLiteStore(path)
    real = store._db
    store._db = FailingCommit(real)  # type: ignore[assignment]
    store.append_message(line(ALICE, 1))
    assert store.register_nick("alice", ALICE)
    store._db = real
    with pytest.raises(HistoryNotCommitted) as failed:
        store.commit()
    assert failed.value.lines == ((ALICE, 1),)
    assert store.last_counter(ALICE) == -1
    store.commit()  # reported once
    assert durable(path) == []
    assert store.nick_owner("alice") == ALICE
    store.close()


def test_retention_reports_no_loss_itself_but_keeps_it_for_the_next_commit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chat.db"
    store = SQLiteStore(path)
    real = store._db
    store._db = FailingCommit(real)  # type: ignore[assignment]
    store.append_message(line(BOB, 4))
    store.enforce_retention(Retention(keep_per_room=100), 0.0)
    store._db = real
    with pytest.raises(HistoryNotCommitted) as failed:
        store.commit()
    assert failed.value.lines == ((BOB, 4),)
    store.close()
