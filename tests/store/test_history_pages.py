"""Scrollback: the messages of a room before a given one, alike in SQLite and in a cluster
server's in-memory replica."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tlschat.store import SQLiteStore, Store
from tlschat.store.base import StoredMessage
from tlschat.store.memory import MemoryStore

FP_A = "SHA256:" + "A" * 43
FP_B = "SHA256:" + "B" * 43


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    made: Store = SQLiteStore(":memory:") if request.param == "sqlite" else MemoryStore(1000)
    yield made
    made.close()


def line(room: str, sender: str, counter: int, number: int) -> StoredMessage:
    return StoredMessage(room, sender, "n", b"k", counter, counter, f"{room} {number}", b"s")


def fill(store: Store) -> None:
    """Two senders taking turns in #a (line N has counter 10 N), with #b's lines in between."""
    for number in range(1, 21):
        sender = FP_A if number % 2 else FP_B
        store.append_message(line("#a", sender, 10 * number, number))
        store.append_message(line("#b", sender, 10 * number + 1, number))


def bodies(messages: list[StoredMessage] | None) -> list[str]:
    assert messages is not None
    return [m.body for m in messages]


def test_pages_walk_back_through_a_room_oldest_first(store: Store) -> None:
    fill(store)
    assert bodies(store.messages_before("#a", (FP_B, 200), 5)) == [f"#a {n}" for n in range(15, 20)]
    assert bodies(store.messages_before("#a", (FP_A, 150), 5)) == [f"#a {n}" for n in range(10, 15)]
    # The oldest page is short, and before the first line there is nothing.
    assert bodies(store.messages_before("#a", (FP_A, 30), 5)) == ["#a 1", "#a 2"]
    assert bodies(store.messages_before("#a", (FP_A, 10), 5)) == []


def test_an_anchor_the_room_does_not_hold_is_none(store: Store) -> None:
    fill(store)
    assert store.messages_before("#a", (FP_A, 11), 5) is None  # a line of #b
    assert store.messages_before("#a", (FP_A, 999), 5) is None
    assert store.messages_before("#c", (FP_A, 10), 5) is None


def test_a_page_of_nothing_asked_is_empty(store: Store) -> None:
    fill(store)
    assert store.messages_before("#a", (FP_B, 200), 0) == []
