"""The SQLite store's end-to-end tables: durable across restarts, added to an older database,
and counted in the database's size bound, which never deletes the directory."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tlschat.store import Retention, SQLiteStore, StoredMessage
from tlschat.store.base import InboxBounds

from .test_e2e_store import (
    BOUNDS,
    DEV_1,
    DEV_2,
    FP_A,
    FP_B,
    T0,
    device,
    encrypted_message,
    key_ids,
    otk,
)


def test_sqlite_keeps_everything_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SQLiteStore(path)
    store.put_device(device(FP_A, DEV_1, T0), 8)
    store.put_device(device(FP_A, DEV_2, T0), 8)
    store.touch_device(FP_A, DEV_2, T0 + 9)
    store.add_one_time_keys(FP_A, DEV_1, [otk("k1"), otk("k2"), otk("k3")], otk("fb"), 100)
    assert key_ids([store.claim_one_time_key(FP_A, DEV_1)]) == ["k1"]
    first = store.append_inbox(FP_A, DEV_1, "one", T0, BOUNDS)
    second = store.append_inbox(FP_A, DEV_1, "two", T0, BOUNDS)
    store.ack_inbox(FP_A, DEV_1, second)  # the inbox is empty, its ids are not forgotten
    store.set_encrypted("#secret")
    store.append_message(encrypted_message(5))
    # Committed as each write returned: another connection sees it all before close.
    other = sqlite3.connect(path)
    assert other.execute("SELECT COUNT(*) FROM devices").fetchone() == (2,)
    assert other.execute("SELECT COUNT(*) FROM one_time_keys").fetchone() == (2,)
    assert other.execute("SELECT room FROM encrypted_rooms").fetchall() == [("#secret",)]
    other.close()
    store.close()

    again = SQLiteStore(path)
    assert again.devices_of(FP_A) == [device(FP_A, DEV_1, T0), device(FP_A, DEV_2, T0 + 9)]
    assert again.one_time_key_count(FP_A, DEV_1) == (2, True)
    claimed = [again.claim_one_time_key(FP_A, DEV_1) for _ in range(3)]
    assert key_ids(claimed) == ["k2", "k3", "fb"]
    assert again.inbox(FP_A, DEV_1, 0, T0, BOUNDS) == []
    assert again.append_inbox(FP_A, DEV_1, "one again", T0, BOUNDS, item_id=first) == 0
    assert again.append_inbox(FP_A, DEV_1, "three", T0, BOUNDS) > second
    assert again.encrypted_rooms() == {"#secret"}
    assert again.recent_messages("#secret", 10) == [encrypted_message(5)]
    again.close()


def test_sqlite_adds_the_encrypted_column_to_an_older_database(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            room TEXT NOT NULL,
            sender TEXT NOT NULL,
            nick TEXT NOT NULL,
            key_der BLOB NOT NULL,
            counter INTEGER NOT NULL,
            timestamp_ms INTEGER NOT NULL,
            body TEXT NOT NULL,
            signature BLOB NOT NULL
        );
        CREATE TABLE counters (fingerprint TEXT PRIMARY KEY, counter INTEGER NOT NULL);
        INSERT INTO messages (room, sender, nick, key_der, counter, timestamp_ms, body, signature)
            VALUES ('#secret', 'fp', 'bob', x'30', 1, 1000, 'from before', x'5151');
        INSERT INTO counters VALUES ('fp', 1);
        """
    )
    old.commit()
    old.close()
    store = SQLiteStore(path)
    before = StoredMessage("#secret", "fp", "bob", b"\x30", 1, 1000, "from before", b"QQ")
    assert store.recent_messages("#secret", 10) == [before]
    assert store.last_counter("fp") == 1
    store.append_message(encrypted_message(2))
    store.close()
    again = SQLiteStore(path)  # opening it twice adds nothing twice
    assert again.recent_messages("#secret", 10) == [before, encrypted_message(2)]
    again.close()


def test_the_size_bound_takes_history_before_inbox_items_and_never_the_directory(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "chat.db")
    store.put_device(device(FP_A, DEV_1), 8)
    store.add_one_time_keys(FP_A, DEV_1, [otk(f"k{n}") for n in range(50)], otk("fb"), 100)
    bound = 256 * 1024
    store.enforce_retention(Retention(max_bytes=bound), T0)
    bounds = InboxBounds(max_items=10_000, max_bytes=10 * 1024 * 1024)
    first = store.append_inbox(FP_A, DEV_1, "i" * 3000, T0, bounds)
    # A flood of history: the oldest lines go as it comes, the inbox item stays.
    for n in range(200):
        store.append_message(
            StoredMessage("#a", FP_B, "bob", b"\x30", n, 1_700_000_000_000, "m" * 3000, b"s")
        )
    store.enforce_retention(Retention(max_bytes=bound), T0)
    assert store.used_bytes() <= bound
    history = [m.counter for m in store.recent_messages("#a", 200)]
    assert 10 < len(history) < 100 and history[-1] == 199
    assert [i.id for i in store.inbox(FP_A, DEV_1, 0, T0, bounds)] == [first]
    # A flood of inbox items: all history goes first, then the oldest items.
    ids = [store.append_inbox(FP_A, DEV_1, "i" * 3000, T0, bounds) for _ in range(200)]
    store.enforce_retention(Retention(max_bytes=bound), T0)
    assert store.used_bytes() <= bound - bound // 8
    assert store.recent_messages("#a", 100) == []
    kept = [i.id for i in store.inbox(FP_A, DEV_1, 0, T0, bounds)]
    assert 10 < len(kept) < 200
    assert kept == ids[-len(kept) :]
    assert [d.device for d in store.devices_of(FP_A)] == [DEV_1]
    assert store.one_time_key_count(FP_A, DEV_1) == (50, True)
    store.close()


def test_the_search_index_of_deleted_history_goes_before_any_inbox_item(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "chat.db")
    store.put_device(device(FP_A, DEV_1), 8)
    bounds = InboxBounds(max_items=10_000, max_bytes=10 * 1024 * 1024)
    item = store.append_inbox(FP_A, DEV_1, "i" * 3000, T0, bounds)
    now_ms = int(T0 * 1000)
    # Lines of many different words: an index about as large as the lines themselves.
    for n in range(400):
        words = " ".join(f"w{n}x{k}" for k in range(60))
        store.append_message(StoredMessage("#a", FP_B, "bob", b"\x30", n, now_ms, words, b"s"))
    while store.index_for_search():
        pass
    # Smaller than the index alone: all history goes, and what the index held of it with it.
    bound = 256 * 1024
    store.enforce_retention(Retention(max_bytes=bound), T0)
    assert store.recent_messages("#a", 10) == []
    assert store.used_bytes() <= bound - bound // 8
    assert [i.id for i in store.inbox(FP_A, DEV_1, 0, T0, bounds)] == [item]
    store.append_message(StoredMessage("#a", FP_B, "bob", b"\x30", 400, now_ms, "after", b"s"))
    assert [m.counter for m in store.search_messages(["#a"], "after", 5)] == [400]
    store._db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
    store.close()


def test_the_size_bound_ends_when_only_the_directory_is_left(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "chat.db")
    for n in range(8):
        name = f"DEVICE{n}AAAAAAAAAA"
        store.put_device(device(FP_A, name, tag="t" * 2000), 8)
        keys = [otk(f"{name}-{k}") for k in range(100)]
        store.add_one_time_keys(FP_A, name, keys, otk("fb"), 100)
    # Far smaller than the directory: everything deletable goes, the directory stays.
    assert store.enforce_retention(Retention(max_bytes=64 * 1024), T0) == 0
    assert len(store.devices_of(FP_A)) == 8
    assert store.one_time_key_count(FP_A, "DEVICE0AAAAAAAAAA") == (100, True)
    store.close()
