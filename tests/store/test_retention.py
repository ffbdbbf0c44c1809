"""History retention (issue 13): per room, by age and by the database's size; counters stay."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chat.helpers import NOW, NOW_MS, hello, make_server, say
from tlschat.protocol.identity import IdentityKey
from tlschat.store import Retention, SQLiteStore, StoredMessage
from tlschat.store.memory import MemoryStore

DAY = 86400.0
FP = "SHA256:" + "A" * 43


def message(
    room: str, n: int, ts_ms: int = NOW_MS, sender: str = FP, size: int = 20
) -> StoredMessage:
    return StoredMessage(
        room=room,
        sender=sender,
        nick="alice",
        key_der=b"\x30\x2a" + bytes(42),
        counter=n,
        timestamp_ms=ts_ms,
        body=f"{n:08d} " + "x" * size,
        signature=bytes(64),
    )


def counters(messages: list[StoredMessage]) -> list[int]:
    return [m.counter for m in messages]


@pytest.fixture
def store() -> Iterator[SQLiteStore]:
    store = SQLiteStore(":memory:")
    yield store
    store.close()


def on_disk(database: Path) -> int:
    """chat.db and its -wal, in bytes."""
    wal = database.with_name(database.name + "-wal")
    return database.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


# --- count per room ----------------------------------------------------------------------------


def test_count_per_room_keeps_the_newest_of_each_room(store: SQLiteStore) -> None:
    for n in range(30):
        store.append_message(message("#a", n))
        store.append_message(message("#b", 100 + n))
    store.append_message(message("#c", 500))
    assert store.enforce_retention(Retention(keep_per_room=10), NOW) == 40
    assert counters(store.recent_messages("#a", 100)) == list(range(20, 30))
    assert counters(store.recent_messages("#b", 100)) == list(range(120, 130))
    assert counters(store.recent_messages("#c", 100)) == [500]
    # Nothing appended since: nothing to do. Then only the room appended to is trimmed.
    assert store.enforce_retention(Retention(keep_per_room=10), NOW) == 0
    store.append_message(message("#a", 30))
    assert store.enforce_retention(Retention(keep_per_room=10), NOW) == 1
    assert counters(store.recent_messages("#a", 100)) == list(range(21, 31))
    # A lower count (a reloaded configuration) reaches the rooms nothing was appended to.
    assert store.enforce_retention(Retention(keep_per_room=3), NOW) == 14
    assert counters(store.recent_messages("#b", 100)) == [127, 128, 129]
    assert counters(store.recent_messages("#c", 100)) == [500]


def test_count_per_room_is_enforced_on_start_for_every_room(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SQLiteStore(path)
    for n in range(20):
        store.append_message(message(f"#r{n % 4}", n))
    store.close()
    again = SQLiteStore(path)
    assert again.enforce_retention(Retention(keep_per_room=2), NOW) == 12
    assert counters(again.recent_messages("#r3", 10)) == [15, 19]
    again.close()


def test_memory_store_keeps_the_newest_per_room() -> None:
    store = MemoryStore(history_limit=50)
    for n in range(30):
        store.append_message(message("#a", n))
    assert store.enforce_retention(Retention(keep_per_room=10), NOW) == 20
    assert counters(store.recent_messages("#a", 100)) == list(range(20, 30))
    assert store.last_counter(FP) == 29


# --- age ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_age_deletes_what_is_older_than_now_minus_max_age(kind: str) -> None:
    store = SQLiteStore(":memory:") if kind == "sqlite" else MemoryStore(history_limit=100)
    cutoff_ms = int((NOW - 30 * DAY) * 1000)
    store.append_message(message("#a", 1, ts_ms=cutoff_ms - 86_400_000))
    store.append_message(message("#b", 2, ts_ms=cutoff_ms - 1))
    store.append_message(message("#a", 3, ts_ms=cutoff_ms))
    store.append_message(message("#b", 4, ts_ms=NOW_MS))
    assert store.enforce_retention(Retention(max_age=30 * DAY), NOW) == 2
    assert counters(store.recent_messages("#a", 10)) == [3]
    assert counters(store.recent_messages("#b", 10)) == [4]
    # Time passes with nothing appended: the age bound still applies.
    assert store.enforce_retention(Retention(max_age=30 * DAY), NOW + 1.0) == 1
    assert store.recent_messages("#a", 10) == []
    assert store.last_counter(FP) == 4
    store.close()


def test_zero_turns_every_bound_off(store: SQLiteStore) -> None:
    for n in range(50):
        store.append_message(message("#a", n, ts_ms=0))
    assert store.enforce_retention(Retention(), NOW) == 0
    assert len(store.recent_messages("#a", 100)) == 50


# --- size --------------------------------------------------------------------------------------


def test_size_bound_keeps_the_database_under_it_during_a_flood(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SQLiteStore(path)
    bound = 512 * 1024
    senders = [f"SHA256:{n:043d}" for n in range(20)]
    counter = 0

    def flood(count: int) -> None:
        nonlocal counter
        for _ in range(count):  # 4 KB bodies from 20 keys in 12 rooms
            counter += 1
            sender = senders[counter % len(senders)]
            store.append_message(message(f"#room{counter % 12}", counter, sender=sender, size=4000))

    flood(700)
    assert on_disk(path) > bound  # no pass yet: the store does not know the bound
    assert store.enforce_retention(Retention(max_bytes=bound), NOW) > 0
    assert on_disk(path) <= bound
    assert os.path.getsize(path.with_name("chat.db-wal")) == 0  # checkpointed and truncated
    # From then on the bound holds as messages are appended, not only at each pass.
    peak = 0
    for _ in range(140):
        flood(10)
        peak = max(peak, on_disk(path))
    assert peak <= bound, peak
    store.enforce_retention(Retention(max_bytes=bound), NOW)
    assert on_disk(path) <= bound
    # The newest are what is kept: the last message of each room, and far more than a few.
    for room in range(12):
        newest = store.recent_messages(f"#room{room}", 1)
        assert newest and newest[0].counter > counter - 12
    kept = sum(len(store.recent_messages(f"#room{room}", 10_000)) for room in range(12))
    assert 40 <= kept < 130, kept
    store.close()


def test_pages_kept_for_the_next_lines_never_take_the_file_past_the_size_bound(
    tmp_path: Path,
) -> None:
    # Each pass deletes by count what the last 100 lines pushed out; their pages are kept for
    # the next lines only while the file with them still fits its share of the bound.
    store = SQLiteStore(tmp_path / "chat.db")
    bound = 1024 * 1024
    retention = Retention(keep_per_room=150, max_bytes=bound)
    store.enforce_retention(retention, NOW)
    counter = 0
    for _ in range(4):
        for _ in range(100):
            counter += 1
            store.append_message(message("#a", counter, size=2000))
        store.commit()
        store.enforce_retention(retention, NOW)
        file_bytes = store._file_bytes()
        assert file_bytes <= bound - bound // 8, file_bytes
    store.close()


def test_size_bound_leaves_counters_nicks_bans_and_topics(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SQLiteStore(path)
    store.register_nick("alice", FP)
    store.set_topic("#a", "the topic")
    for n in range(400):
        store.append_message(message("#a", n, size=4000))
    # Above what the empty schema alone takes (20 pages of 4 KiB with the end-to-end tables).
    bound = 128 * 1024
    store.enforce_retention(Retention(max_bytes=bound), NOW)
    store.close()
    again = SQLiteStore(path)  # no cached counters: read from the file
    assert again.last_counter(FP) == 399
    assert again.nick_of(FP) == "alice"
    assert again.topics() == {"#a": "the topic"}
    assert again.used_bytes() <= bound
    again.close()


def test_a_database_made_before_retention_gives_its_space_back(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "chat.db"
    with sqlite3.connect(path) as old:  # no auto_vacuum, as databases were made before
        old.execute("CREATE TABLE counters (fingerprint TEXT PRIMARY KEY, counter INTEGER)")
    old.close()
    store = SQLiteStore(path)
    for n in range(300):
        store.append_message(message("#a", n, size=4000))
    store.enforce_retention(Retention(max_bytes=128 * 1024), NOW)
    assert on_disk(path) <= 128 * 1024
    store.close()


def test_a_replayed_counter_is_refused_after_its_message_was_deleted(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    alice = IdentityKey.generate("ed25519")
    server = make_server(SQLiteStore(path))
    hello(server, 1, alice, "alice")
    first = say(alice, counter=1, body="first")
    assert "sent" in [frame["type"] for _, frame in server.receive(1, first, NOW)]
    assert server.store.enforce_retention(Retention(max_age=1.0), NOW + 60) == 1
    assert server.store.recent_messages("#general", 10) == []
    server.store.close()

    restarted = make_server(SQLiteStore(path))
    hello(restarted, 1, alice, "alice", now=NOW + 60)
    replies = restarted.receive(1, first, NOW + 60)
    assert [frame["type"] for _, frame in replies] == ["error"]
    assert "replayed" in replies[0][1]["text"]
    assert restarted.store.recent_messages("#general", 10) == []
    restarted.store.close()
