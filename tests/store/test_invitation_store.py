"""The stores' invitations: alike in SQLite (kept over restarts, and written by another process
while the server runs, as `tlschat invite` does) and in a cluster server's in-memory replica."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from tlschat.store import SQLiteStore, Store
from tlschat.store.invitations import KEPT_AFTER_END, StoredInvitation
from tlschat.store.memory import MemoryStore

FP = "SHA256:" + "A" * 43
NOW = 1_700_000_000.0
DAY = 86400.0


def made(invitation_id: str, at: float = NOW, lasts: float = 7 * DAY) -> StoredInvitation:
    return StoredInvitation(invitation_id, "d" * 64, "alice (SHA256:…)", at, at + lasts)


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    kept: Store = SQLiteStore(":memory:") if request.param == "sqlite" else MemoryStore(10)
    yield kept
    kept.close()


def test_an_invitation_is_kept_with_its_digest_and_listed_newest_first(store: Store) -> None:
    assert store.invitation("0badf00d") is None
    assert store.invitations() == [] and store.open_invitations(NOW) == 0
    assert store.add_invitation(made("aaaaaaaa"))
    assert store.add_invitation(made("bbbbbbbb", NOW + 1))
    assert store.invitation("aaaaaaaa") == made("aaaaaaaa")
    assert [i.id for i in store.invitations()] == ["bbbbbbbb", "aaaaaaaa"]
    assert store.open_invitations(NOW + 1) == 2


def test_an_id_taken_is_not_replaced(store: Store) -> None:
    assert store.add_invitation(made("aaaaaaaa"))
    assert not store.add_invitation(dataclasses.replace(made("aaaaaaaa"), digest="e" * 64))
    assert store.invitation("aaaaaaaa") == made("aaaaaaaa")


def test_a_use_ends_it_once_and_for_the_first_key(store: Store) -> None:
    store.add_invitation(made("aaaaaaaa"))
    store.use_invitation("aaaaaaaa", FP, NOW + 5)
    used = store.invitation("aaaaaaaa")
    assert used is not None
    assert (used.used_by, used.used_at, used.state(NOW + 6)) == (FP, NOW + 5, "used")
    store.use_invitation("aaaaaaaa", "SHA256:" + "B" * 43, NOW + 9)
    store.revoke_invitation("aaaaaaaa", NOW + 9)
    assert store.invitation("aaaaaaaa") == used
    assert store.open_invitations(NOW + 6) == 0


def test_a_revocation_ends_it(store: Store) -> None:
    store.add_invitation(made("aaaaaaaa"))
    store.revoke_invitation("aaaaaaaa", NOW + 5)
    store.use_invitation("aaaaaaaa", FP, NOW + 6)
    revoked = store.invitation("aaaaaaaa")
    assert revoked is not None
    assert (revoked.revoked_at, revoked.used_at, revoked.state(NOW + 6)) == (
        NOW + 5,
        None,
        "revoked",
    )


def test_it_expires_at_its_expiry(store: Store) -> None:
    store.add_invitation(made("aaaaaaaa", lasts=60))
    invitation = store.invitation("aaaaaaaa")
    assert invitation is not None
    assert invitation.state(NOW + 59.9) == "open" and store.open_invitations(NOW + 59.9) == 1
    assert invitation.state(NOW + 60) == "expired" and store.open_invitations(NOW + 60) == 0


def test_making_one_forgets_those_that_ended_long_before(store: Store) -> None:
    store.add_invitation(made("expired0", lasts=DAY))  # ended NOW + 1 day
    store.add_invitation(made("used0000"))
    store.use_invitation("used0000", FP, NOW + 2 * DAY)
    store.add_invitation(made("revoked0"))
    store.revoke_invitation("revoked0", NOW + 3 * DAY)
    store.add_invitation(made("open0000", lasts=365 * DAY))
    # Just within the time an ended one is kept: nothing is forgotten.
    store.add_invitation(made("new00000", NOW + DAY + KEPT_AFTER_END))
    assert len(store.invitations()) == 5
    store.add_invitation(made("new00001", NOW + 1.5 * DAY + KEPT_AFTER_END))
    kept = {"used0000", "revoked0", "open0000", "new00000", "new00001"}
    assert {i.id for i in store.invitations()} == kept
    store.add_invitation(made("new00002", NOW + 4 * DAY + KEPT_AFTER_END))
    assert {i.id for i in store.invitations()} == {"open0000", "new00000", "new00001", "new00002"}


def test_sqlite_keeps_them_over_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    first = SQLiteStore(path)
    first.add_invitation(made("aaaaaaaa"))
    first.add_invitation(made("bbbbbbbb"))
    first.use_invitation("aaaaaaaa", FP, NOW + 1)
    first.revoke_invitation("bbbbbbbb", NOW + 2)
    kept = first.invitations()
    first.close()
    again = SQLiteStore(path)
    assert again.invitations() == kept
    again.close()


def test_sqlite_sees_an_invitation_another_process_wrote_while_it_runs(tmp_path: Path) -> None:
    """`tlschat invite` opens the running server's database and writes into it (WAL)."""
    path = tmp_path / "chat.db"
    server = SQLiteStore(path)
    assert server.open_invitations(NOW) == 0
    other = SQLiteStore(path)
    assert other.add_invitation(made("aaaaaaaa"))
    other.close()
    assert server.invitation("aaaaaaaa") == made("aaaaaaaa")
    assert server.open_invitations(NOW) == 1
    server.use_invitation("aaaaaaaa", FP, NOW + 1)
    server.close()
