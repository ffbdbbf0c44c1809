"""Rooms' roles and rules in both stores (docs/PROTOCOL.md, section 22, "Private rooms and room
roles"): SQLite (one server's database, kept over restarts) and memory (a cluster server's replica)
behave the same."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tlschat.store import Ban, SQLiteStore
from tlschat.store.memory import MemoryStore
from tlschat.store.room_state import RoomState

T0 = 1_700_000_000.0
FP_A = "SHA256:" + "A" * 43
FP_B = "SHA256:" + "B" * 43
FP_C = "SHA256:" + "C" * 43

SQLiteOrMemory = SQLiteStore | MemoryStore


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest) -> Iterator[SQLiteOrMemory]:
    made: SQLiteOrMemory = (
        SQLiteStore(":memory:") if request.param == "sqlite" else MemoryStore(history_limit=50)
    )
    yield made
    made.close()


def fill(store: SQLiteOrMemory) -> None:
    """#team: owned by A, invite-only, B an operator, B and C admitted, C banned from #ops for an
    hour and muted in #team for good."""
    store.set_room_owner("#team", FP_A)
    store.set_invite_only("#team", True)
    store.set_room_grant("#team", FP_B, "operator", True)
    store.set_room_grant("#team", FP_B, "admitted", True)
    store.set_room_grant("#team", FP_C, "admitted", True)
    store.set_room_ban("#ops", Ban(FP_C, T0 + 3600, "spam", FP_A))
    store.set_room_mute("#team", FP_C, None)


FILLED = {
    "#team": RoomState(
        "#team",
        owner=FP_A,
        invite_only=True,
        operators={FP_B},
        admitted={FP_B, FP_C},
        mutes={FP_C: None},
    ),
    "#ops": RoomState("#ops", bans={FP_C: Ban(FP_C, T0 + 3600, "spam", FP_A)}),
}


def test_nothing_stored_at_first(store: SQLiteOrMemory) -> None:
    assert store.room_states() == {}


def test_every_role_and_rule_comes_back(store: SQLiteOrMemory) -> None:
    fill(store)
    assert store.room_states() == FILLED


def test_an_owner_is_for_good(store: SQLiteOrMemory) -> None:
    store.set_room_owner("#team", FP_A)
    store.set_room_owner("#team", FP_B)
    assert store.room_states()["#team"].owner == FP_A
    # A room made invite-only before it had an owner gets one later.
    store.set_invite_only("#later", True)
    store.set_room_owner("#later", FP_B)
    assert store.room_states()["#later"] == RoomState("#later", owner=FP_B, invite_only=True)


def test_grants_and_sanctions_are_taken_back(store: SQLiteOrMemory) -> None:
    fill(store)
    store.set_invite_only("#team", False)
    store.set_room_grant("#team", FP_B, "operator", False)
    store.set_room_grant("#team", FP_C, "admitted", False)
    store.set_room_grant("#team", FP_A, "admitted", False)  # never given: nothing changes
    store.lift_room_ban("#ops", FP_C)
    store.lift_room_mute("#team", FP_C)
    rooms = store.room_states()
    assert rooms["#team"] == RoomState("#team", owner=FP_A, admitted={FP_B})
    assert rooms.get("#ops", RoomState("#ops")) == RoomState("#ops")


def test_a_sanction_again_replaces_the_first(store: SQLiteOrMemory) -> None:
    store.set_room_ban("#team", Ban(FP_B, T0, "first", FP_A))
    store.set_room_ban("#team", Ban(FP_B, None, "second", FP_A))
    store.set_room_mute("#team", FP_B, None)
    store.set_room_mute("#team", FP_B, T0 + 60)
    state = store.room_states()["#team"]
    assert state.bans == {FP_B: Ban(FP_B, None, "second", FP_A)}
    assert state.mutes == {FP_B: T0 + 60}


def test_what_the_store_hands_out_is_a_copy(store: SQLiteOrMemory) -> None:
    fill(store)
    store.room_states()["#team"].operators.add(FP_C)
    assert store.room_states() == FILLED


def test_sqlite_keeps_them_over_a_restart(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "chat.db")
    fill(store)
    store.close()
    again = SQLiteStore(tmp_path / "chat.db")
    assert again.room_states() == FILLED
    again.close()


def test_room_state_queries() -> None:
    state = FILLED["#team"].copy()
    assert state.admits(FP_A) and state.admits(FP_B) and state.admits(FP_C)
    assert not RoomState("#x").admits(FP_A)
    assert state.muted_until(FP_C, T0) == float("inf") and state.muted_until(FP_A, T0) is None
    banned = FILLED["#ops"]
    assert banned.active_ban(FP_C, T0) == Ban(FP_C, T0 + 3600, "spam", FP_A)
    assert banned.active_ban(FP_C, T0 + 3600) is None
    muted = RoomState("#m", mutes={FP_A: T0 + 1, FP_B: None})
    assert muted.muted_until(FP_A, T0) == T0 + 1 and muted.muted_until(FP_A, T0 + 1) is None
    assert banned.expired(T0 + 3600) == ([FP_C], []) and muted.expired(T0 + 2) == ([], [FP_A])
