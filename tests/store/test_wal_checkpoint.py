"""Checkpoints from a connection and a thread of their own (store/sqlite_checkpoint.py): they copy
the log into chat.db without waiting for the server's writes, lose nothing the server committed,
and keep the log from growing."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.store.test_retention import message
from tlschat.store import Retention, SQLiteStore
from tlschat.store.sqlite_checkpoint import CheckpointResult, WalCheckpointer

NOW = 1_700_000_000.0


def wal_size(database: Path) -> int:
    wal = database.with_name(database.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def on_thread(thread: ThreadPoolExecutor, checkpointer: WalCheckpointer) -> CheckpointResult:
    return thread.submit(checkpointer.checkpoint).result(timeout=10)


def test_a_checkpoint_copies_every_committed_frame(tmp_path: Path) -> None:
    database = tmp_path / "chat.db"
    store = SQLiteStore(database)
    checkpointer = WalCheckpointer(database)
    with ThreadPoolExecutor(max_workers=1) as thread:
        for n in range(200):
            store.append_message(message("#a", n))
        store.commit()
        result = on_thread(thread, checkpointer)
        assert result.log_frames > 0
        assert result.complete
        # What the log held is now in chat.db itself: a reader of chat.db alone sees it.
        thread.submit(checkpointer.close).result()
    store.close()
    reader = sqlite3.connect(database)
    assert reader.execute("SELECT count(*) FROM messages").fetchone()[0] == 200
    reader.close()


def test_it_neither_waits_for_an_open_batch_nor_takes_its_lines(tmp_path: Path) -> None:
    database = tmp_path / "chat.db"
    store = SQLiteStore(database)
    checkpointer = WalCheckpointer(database)
    with ThreadPoolExecutor(max_workers=1) as thread:
        store.append_message(message("#a", 1))
        store.commit()
        store.append_message(message("#a", 2))  # the pass's batch, still open
        started = threading.Event()

        def checkpoint() -> CheckpointResult:
            started.set()
            return checkpointer.checkpoint()

        result = thread.submit(checkpoint).result(timeout=5)  # would time out if it waited
        assert started.is_set() and result.complete
        store.commit()
        assert [m.counter for m in store.recent_messages("#a", 10)] == [1, 2]
        thread.submit(checkpointer.close).result()
    store.close()


def write_rounds(database: Path, checkpoint: bool) -> list[int]:
    """30 rounds of 500 lines in batches of ten, with SQLite's own checkpoint inside a commit
    turned off; after each round, a checkpoint from the thread if ``checkpoint``. The log's
    size after each round."""
    store = SQLiteStore(database)
    store._db.execute("PRAGMA wal_autocheckpoint = 0")
    checkpointer = WalCheckpointer(database)
    counter = 0
    sizes = []
    with ThreadPoolExecutor(max_workers=1) as thread:
        for _ in range(30):
            for _ in range(50):
                for _ in range(10):
                    counter += 1
                    store.append_message(message(f"#r{counter % 4}", counter, size=200))
                store.commit()
            if checkpoint:
                assert on_thread(thread, checkpointer).complete
            sizes.append(wal_size(database))
        thread.submit(checkpointer.close).result()
    store.close()
    return sizes


def test_checkpoints_keep_the_log_as_small_as_what_is_written_between_them(
    tmp_path: Path,
) -> None:
    checkpointed = write_rounds(tmp_path / "a" / "chat.db", checkpoint=True)
    unchecked = write_rounds(tmp_path / "b" / "chat.db", checkpoint=False)
    # The server's next write after a complete checkpoint starts the log over, so it holds
    # about a round; left alone, it holds all 30.
    assert max(checkpointed) < 2 * checkpointed[0], checkpointed
    assert unchecked[-1] > 10 * checkpointed[0], unchecked


def pages(store: SQLiteStore, pragma: str) -> int:
    return int(store._db.execute(f"PRAGMA {pragma}").fetchone()[0])


def test_a_retention_pass_gives_pages_back_only_when_the_next_lines_would_not_take_them(
    tmp_path: Path,
) -> None:
    database = tmp_path / "chat.db"
    store = SQLiteStore(database)
    retention = Retention(keep_per_room=100, max_bytes=64 * 1024 * 1024)
    store.enforce_retention(retention, NOW)
    for n in range(50):
        store.append_message(message("#a", n))
    store.commit()
    # Only appended: nothing to give back, and the log is the checkpoint thread's to copy.
    assert store.enforce_retention(retention, NOW) == 0
    assert wal_size(database) > 0
    for n in range(50, 300):
        store.append_message(message("#a", n))
    store.commit()
    # A flood: the rows that went freed less than twice what came in since the last pass, so
    # their pages stay free for the next lines, and the log is left to the checkpoint thread.
    assert store.enforce_retention(retention, NOW) == 200
    free = pages(store, "freelist_count")
    assert free > 0
    assert wal_size(database) > 0
    size = pages(store, "page_count")
    for n in range(300, 500):
        store.append_message(message("#a", n))
    store.commit()
    assert pages(store, "freelist_count") < free  # taken again...
    assert pages(store, "page_count") < size + free  # ...before the file grew for them all
    assert store.enforce_retention(retention, NOW) == 200
    # The bound is lowered, nothing new comes: what that frees goes back at once, log included.
    assert store.enforce_retention(Retention(keep_per_room=10, max_bytes=64 * 1024 * 1024), NOW)
    assert pages(store, "freelist_count") == 0
    assert wal_size(database) == 0
    store.close()
