"""SQLiteStore: messages, nicks, counters, bans, topics; durable in a WAL-mode file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tlschat.store import Ban, SQLiteStore, Store, StoredMessage

T0 = 1_700_000_000.0
FP_A = "SHA256:" + "A" * 43
FP_B = "SHA256:" + "B" * 43
FP_C = "SHA256:" + "C" * 43


def message(room: str, n: int, sender: str = FP_A) -> StoredMessage:
    return StoredMessage(
        room=room,
        sender=sender,
        nick="alice",
        key_der=b"\x30\x2a" + bytes([n]) * 4,
        counter=n,
        timestamp_ms=1_700_000_000_000 + n,
        body=f"message {n} in {room} ✓",
        signature=bytes(range(64)),
    )


@pytest.fixture
def store() -> Iterator[SQLiteStore]:
    store = SQLiteStore(":memory:")
    yield store
    store.close()


def test_sqlite_store_satisfies_the_protocol(store: SQLiteStore) -> None:
    typed: Store = store
    assert typed is store


# --- messages --------------------------------------------------------------------------------


def test_no_messages(store: SQLiteStore) -> None:
    assert store.recent_messages("#general", 50) == []


def test_recent_messages_oldest_first_and_exact(store: SQLiteStore) -> None:
    stored = [message("#general", n) for n in range(5)]
    for item in stored:
        store.append_message(item)
    assert store.recent_messages("#general", 50) == stored


def test_recent_messages_limit_keeps_the_newest(store: SQLiteStore) -> None:
    for n in range(10):
        store.append_message(message("#general", n))
    assert [m.counter for m in store.recent_messages("#general", 3)] == [7, 8, 9]
    assert [m.counter for m in store.recent_messages("#general", 1)] == [9]
    assert store.recent_messages("#general", 0) == []


def test_recent_messages_are_per_room(store: SQLiteStore) -> None:
    for n in range(6):
        store.append_message(message("#general" if n % 2 else "#rust", n))
    assert [m.counter for m in store.recent_messages("#general", 50)] == [1, 3, 5]
    assert [m.counter for m in store.recent_messages("#rust", 2)] == [2, 4]
    assert store.recent_messages("#python", 50) == []


def test_order_is_arrival_not_counter(store: SQLiteStore) -> None:
    store.append_message(message("#general", 9, sender=FP_A))
    store.append_message(message("#general", 1, sender=FP_B))
    assert [m.sender for m in store.recent_messages("#general", 50)] == [FP_A, FP_B]


# --- nicks -----------------------------------------------------------------------------------


def test_unregistered(store: SQLiteStore) -> None:
    assert store.nick_owner("alice") is None
    assert store.nick_of(FP_A) is None


def test_register_and_look_up_case_insensitively(store: SQLiteStore) -> None:
    assert store.register_nick("Alice", FP_A) is True
    assert store.nick_owner("alice") == FP_A
    assert store.nick_owner("ALICE") == FP_A
    assert store.nick_of(FP_A) == "Alice"  # as registered


def test_another_key_cannot_take_a_nick_in_any_case(store: SQLiteStore) -> None:
    store.register_nick("alice", FP_A)
    assert store.register_nick("ALICE", FP_B) is False
    assert store.register_nick("alice", FP_B) is False
    assert store.nick_owner("alice") == FP_A
    assert store.nick_of(FP_B) is None


def test_reregistering_the_same_nick_is_fine(store: SQLiteStore) -> None:
    assert store.register_nick("alice", FP_A) is True
    assert store.register_nick("alice", FP_A) is True
    assert store.register_nick("ALICE", FP_A) is True  # the owner may change its case
    assert store.nick_of(FP_A) == "ALICE"
    assert store.nick_owner("alice") == FP_A


def test_one_nick_per_key_taking_a_new_one_frees_the_old(store: SQLiteStore) -> None:
    store.register_nick("alice", FP_A)
    assert store.register_nick("alicia", FP_A) is True
    assert store.nick_of(FP_A) == "alicia"
    assert store.nick_owner("alice") is None
    assert store.register_nick("alice", FP_B) is True
    assert store.nick_owner("alice") == FP_B


def test_failed_registration_changes_nothing(store: SQLiteStore) -> None:
    store.register_nick("alice", FP_A)
    store.register_nick("bob", FP_B)
    assert store.register_nick("alice", FP_B) is False
    assert store.nick_of(FP_B) == "bob"
    assert store.nick_owner("bob") == FP_B


# --- counters --------------------------------------------------------------------------------


def test_counters(store: SQLiteStore) -> None:
    assert store.last_counter(FP_A) == -1
    store.set_last_counter(FP_A, 0)
    assert store.last_counter(FP_A) == 0
    store.set_last_counter(FP_A, 1_700_000_000_000_000)
    assert store.last_counter(FP_A) == 1_700_000_000_000_000
    assert store.last_counter(FP_B) == -1


def test_counter_holds_64_bit_values(store: SQLiteStore) -> None:
    store.set_last_counter(FP_A, (1 << 63) - 1)
    assert store.last_counter(FP_A) == (1 << 63) - 1


# --- bans ------------------------------------------------------------------------------------


def test_ban_for_good(store: SQLiteStore) -> None:
    ban = Ban(FP_B, None, "spam", FP_A)
    store.add_ban(ban)
    assert store.active_ban(FP_B, T0) == ban
    assert store.active_ban(FP_B, T0 + 10**9) == ban
    assert store.active_ban(FP_C, T0) is None


def test_ban_expires_and_is_removed(store: SQLiteStore) -> None:
    ban = Ban(FP_B, T0 + 60, "spam", FP_A)
    store.add_ban(ban)
    assert store.active_ban(FP_B, T0) == ban
    assert store.active_ban(FP_B, T0 + 59.999) == ban
    assert store.active_ban(FP_B, T0 + 60) is None
    # The expired ban is gone, even for a time before it expired.
    assert store.active_ban(FP_B, T0) is None
    assert store.remove_ban(FP_B) is False


def test_ban_replaces_an_earlier_ban(store: SQLiteStore) -> None:
    store.add_ban(Ban(FP_B, T0 + 60, "spam", FP_A))
    store.add_ban(Ban(FP_B, None, "more spam", FP_C))
    assert store.active_ban(FP_B, T0 + 120) == Ban(FP_B, None, "more spam", FP_C)


def test_remove_ban(store: SQLiteStore) -> None:
    store.add_ban(Ban(FP_B, None, "spam", FP_A))
    assert store.remove_ban(FP_B) is True
    assert store.active_ban(FP_B, T0) is None
    assert store.remove_ban(FP_B) is False


# --- topics ----------------------------------------------------------------------------------


def test_topics(store: SQLiteStore) -> None:
    assert store.topics() == {}
    store.set_topic("#general", "Welcome")
    store.set_topic("#rust", "Borrowing ✓")
    store.set_topic("#general", "Welcome back")
    assert store.topics() == {"#general": "Welcome back", "#rust": "Borrowing ✓"}


# --- the file --------------------------------------------------------------------------------


def test_everything_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SQLiteStore(path)
    stored = [message("#general", 1), message("#general", 2)]
    for item in stored:
        store.append_message(item)
    store.register_nick("alice", FP_A)
    store.set_last_counter(FP_A, 42)
    store.add_ban(Ban(FP_B, T0 + 3600, "spam", FP_A))
    store.set_topic("#general", "Welcome")
    store.close()

    reopened = SQLiteStore(path)
    try:
        assert reopened.recent_messages("#general", 10) == stored
        assert reopened.nick_owner("ALICE") == FP_A
        assert reopened.last_counter(FP_A) == 42
        assert reopened.active_ban(FP_B, T0) == Ban(FP_B, T0 + 3600, "spam", FP_A)
        assert reopened.topics() == {"#general": "Welcome"}
    finally:
        reopened.close()


def test_writes_are_visible_to_another_connection_at_once(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SQLiteStore(path)
    store.append_message(message("#general", 1))
    store.register_nick("alice", FP_A)
    other = sqlite3.connect(path)
    try:
        assert other.execute("SELECT count(*) FROM messages").fetchone() == (1,)
        assert other.execute("SELECT nick, fingerprint FROM nicks").fetchall() == [("alice", FP_A)]
    finally:
        other.close()
        store.close()


def test_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        db.close()


def test_store_creates_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "data" / "nested" / "chat.db"
    SQLiteStore(path).close()
    assert path.is_file()


def test_appending_a_message_records_its_counter_in_the_same_transaction(
    store: SQLiteStore,
) -> None:
    stored = message("#general", 7)
    store.append_message(stored)
    assert store.last_counter(stored.sender) == stored.counter
    assert store.recent_messages("#general", 10) == [stored]
