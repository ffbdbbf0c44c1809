"""The stores' administration at run time: operators' allow decisions and released nicks, alike in
SQLite (kept over restarts) and in a cluster server's in-memory replica."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tlschat.store import SQLiteStore, Store
from tlschat.store.memory import MemoryStore

FP_A = "SHA256:" + "A" * 43
FP_B = "SHA256:" + "B" * 43


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    made: Store = SQLiteStore(":memory:") if request.param == "sqlite" else MemoryStore(10)
    yield made
    made.close()


def test_an_allow_decision_is_the_latest_one(store: Store) -> None:
    assert store.allowed(FP_A) is None
    store.set_allowed(FP_A, True)
    assert store.allowed(FP_A) is True
    store.set_allowed(FP_A, False)
    assert store.allowed(FP_A) is False
    assert store.allowed(FP_B) is None


def test_release_frees_the_nick_and_the_key_owns_none(store: Store) -> None:
    store.register_nick("Bob", FP_A)
    assert store.release_nick("BOB") == FP_A
    assert store.nick_owner("bob") is None
    assert store.nick_of(FP_A) is None
    # Another key takes it; the old key may take another.
    assert store.register_nick("bob", FP_B)
    assert store.register_nick("bobby", FP_A)
    assert (store.nick_owner("bob"), store.nick_of(FP_A)) == (FP_B, "bobby")


def test_release_of_a_nick_nobody_owns(store: Store) -> None:
    store.register_nick("alice", FP_A)
    assert store.release_nick("bob") is None
    assert store.nick_owner("alice") == FP_A


def test_sqlite_keeps_decisions_and_releases_over_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    first = SQLiteStore(path)
    first.set_allowed(FP_A, True)
    first.set_allowed(FP_B, False)
    first.register_nick("carol", FP_A)
    first.release_nick("carol")
    first.close()
    again = SQLiteStore(path)
    try:
        assert (again.allowed(FP_A), again.allowed(FP_B)) == (True, False)
        assert again.nick_owner("carol") is None and again.nick_of(FP_A) is None
    finally:
        again.close()
