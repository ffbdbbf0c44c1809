"""VerifiedKeys: the users this user verified, kept as text in HOME/verified."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tlschat.chat.client.verified import (
    MAX_ENTRIES,
    MAX_TEXT,
    DamagedVerifiedKeys,
    VerifiedKeys,
    VerifiedUser,
)

from .helpers import NOW

A = "SHA256:" + "a" * 43
B = "SHA256:" + "b" * 43
C = "SHA256:" + "c" * 43


def test_add_lookup_and_remove() -> None:
    ledger = VerifiedKeys()
    assert ledger.max_entries == MAX_ENTRIES
    assert not ledger.is_verified(A) and len(ledger) == 0
    ledger.add(A, "alice", NOW)
    ledger.add(B, "bob", NOW + 1)
    assert ledger.is_verified(A) and ledger.is_verified(B) and not ledger.is_verified(C)
    assert ledger.get(A) == VerifiedUser("alice", NOW)
    assert ledger.get(C) is None
    assert ledger.remove(A) is True
    assert ledger.remove(A) is False
    assert not ledger.is_verified(A) and len(ledger) == 1


def test_verifying_again_updates_nick_and_time() -> None:
    ledger = VerifiedKeys()
    ledger.add(A, "alice", NOW)
    ledger.add(A, "alicia", NOW + 5)
    assert ledger.get(A) == VerifiedUser("alicia", NOW + 5)
    assert len(ledger) == 1


def test_the_keys_a_nick_was_verified_with() -> None:
    """What the client needs to say loudly that a verified nick now has another key."""
    ledger = VerifiedKeys()
    ledger.add(B, "Alice", NOW)
    ledger.add(A, "alice", NOW)
    ledger.add(C, "carol", NOW)
    assert ledger.fingerprints_for("ALICE") == [A, B]
    assert ledger.fingerprints_for("dave") == []


def test_a_full_ledger_forgets_the_oldest_verification() -> None:
    ledger = VerifiedKeys(max_entries=2)
    ledger.add(A, "alice", NOW + 2)
    ledger.add(B, "bob", NOW)
    ledger.add(A, "alice", NOW + 3)  # already there: nothing forgotten
    assert len(ledger) == 2
    ledger.add(C, "carol", NOW + 4)
    assert not ledger.is_verified(B)
    assert ledger.is_verified(A) and ledger.is_verified(C)


@pytest.mark.parametrize(
    ("fingerprint", "nick", "at"),
    [
        ("SHA256:short", "alice", NOW),
        ("sha1:" + "a" * 43, "alice", NOW),
        (A, "not a nick", NOW),
        (A, "alice", float("nan")),
        (A, "alice", -1.0),
    ],
)
def test_add_refuses_what_is_not_a_verification(fingerprint: str, nick: str, at: float) -> None:
    with pytest.raises(ValueError):
        VerifiedKeys().add(fingerprint, nick, at)


def test_an_unknown_nick_is_kept_as_empty() -> None:
    ledger = VerifiedKeys()
    ledger.add(A, "", NOW)
    assert VerifiedKeys.from_text(ledger.to_text()).get(A) == VerifiedUser("", NOW)


def test_the_text_is_sorted_versioned_json_and_reads_back() -> None:
    ledger = VerifiedKeys()
    ledger.add(B, "bob", NOW + 1)
    ledger.add(A, "alice", NOW)
    text = ledger.to_text()
    assert json.loads(text) == {
        "version": 1,
        "verified": [
            {"fingerprint": A, "nick": "alice", "at": NOW},
            {"fingerprint": B, "nick": "bob", "at": NOW + 1},
        ],
    }
    again = VerifiedKeys.from_text(text)
    assert again.to_text() == text
    assert again.get(B) == VerifiedUser("bob", NOW + 1)
    assert VerifiedKeys.from_text(VerifiedKeys().to_text()).to_text() == VerifiedKeys().to_text()


def _text(entries: list[Any], version: Any = 1) -> str:
    return json.dumps({"version": version, "verified": entries})


ENTRY = {"fingerprint": A, "nick": "alice", "at": NOW}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is not JSON"),
        ("{", "is not JSON"),
        ("[" * 100_000, "is not JSON"),
        ("[]", "is not version 1"),
        (_text([], version=2), "is not version 1"),
        (json.dumps({"version": 1}), "must list at most"),
        (_text([ENTRY, ENTRY]), f"entry 2 repeats {A}"),
        (_text([[A, "alice", NOW]]), "entry 1 is not {fingerprint, nick, at}"),
        (_text([{**ENTRY, "extra": 1}]), "entry 1 is not {fingerprint, nick, at}"),
        (_text([{**ENTRY, "at": "yesterday"}]), "entry 1 has a field of the wrong type"),
        (_text([{**ENTRY, "at": True}]), "entry 1 has a field of the wrong type"),
        (_text([{**ENTRY, "nick": 5}]), "entry 1 has a field of the wrong type"),
        (_text([{**ENTRY, "at": 10**400}]), "entry 1: int too large to convert to float"),
        (_text([{**ENTRY, "fingerprint": "SHA256:x"}]), "entry 1: not a fingerprint"),
        (_text([{**ENTRY, "nick": "a b"}]), "entry 1: not a nick"),
        (
            _text([{**ENTRY, "at": float("nan")}]),  # json writes NaN, which it also reads
            "entry 1: not a time",
        ),
        (" " * (MAX_TEXT + 1), f"is over {MAX_TEXT} characters"),
    ],
)
def test_a_damaged_file_is_refused_whole(text: str, message: str) -> None:
    with pytest.raises(DamagedVerifiedKeys, match=message.replace("{", r"\{")):
        VerifiedKeys.from_text(text)


def test_a_file_over_the_bound_is_refused() -> None:
    entries = [{"fingerprint": A, "nick": "alice", "at": NOW}] * 3
    with pytest.raises(DamagedVerifiedKeys, match="at most 2"):
        VerifiedKeys.from_text(_text(entries), max_entries=2)


@given(st.text(max_size=200))
def test_any_text_reads_as_a_ledger_or_a_clear_error(text: str) -> None:
    try:
        ledger = VerifiedKeys.from_text(text)
    except DamagedVerifiedKeys:
        return
    assert VerifiedKeys.from_text(ledger.to_text()).to_text() == ledger.to_text()
