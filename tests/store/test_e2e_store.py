"""The end-to-end layer's directory, one-time keys, inboxes and encrypted rooms in both stores:
SQLite (one server's database) and memory (a cluster server's replica) behave the same."""

from __future__ import annotations

import collections
import json
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tlschat.store import SQLiteStore, Store, StoredMessage
from tlschat.store.base import InboxBounds, InboxEntry, StoredDevice
from tlschat.store.memory import MemoryStore

T0 = 1_700_000_000.0
FP_A = "SHA256:" + "A" * 43
FP_B = "SHA256:" + "B" * 43
DEV_1, DEV_2, DEV_3, DEV_4 = (f"DEVICE{n}AAAAAAAAAA" for n in range(1, 5))
BOUNDS = InboxBounds()
KINDS = ["sqlite", "memory"]

SQLiteOrMemory = SQLiteStore | MemoryStore


def make_store(kind: str) -> SQLiteOrMemory:
    return SQLiteStore(":memory:") if kind == "sqlite" else MemoryStore(history_limit=50)


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest) -> Iterator[SQLiteOrMemory]:
    made = make_store(request.param)
    yield made
    made.close()


def device(fingerprint: str, name: str, last_seen: float = T0, tag: str = "") -> StoredDevice:
    keys = {"fingerprint": fingerprint, "device": name, "curve25519": "c" * 43, "sig": tag}
    return StoredDevice(fingerprint, name, json.dumps(keys), last_seen)


def otk(key_id: str, fallback: bool = False) -> tuple[str, str]:
    return key_id, json.dumps({"id": key_id, "key": "k" * 43, "fallback": fallback, "sig": "s"})


def key_ids(claimed: list[str | None]) -> list[str | None]:
    return [None if text is None else json.loads(text)["id"] for text in claimed]


def test_both_stores_satisfy_the_protocol(store: SQLiteOrMemory) -> None:
    typed: Store = store
    assert typed is store


# --- devices -----------------------------------------------------------------------------------


def test_put_device_stores_and_refreshes(store: SQLiteOrMemory) -> None:
    assert store.devices_of(FP_A) == []
    assert store.put_device(device(FP_A, DEV_2), 8) is None
    assert store.put_device(device(FP_A, DEV_1), 8) is None
    assert store.put_device(device(FP_B, DEV_1), 8) is None
    assert store.devices_of(FP_A) == [device(FP_A, DEV_1), device(FP_A, DEV_2)]  # by id
    refreshed = device(FP_A, DEV_2, T0 + 5, tag="again")
    assert store.put_device(refreshed, 8) is None
    assert store.devices_of(FP_A) == [device(FP_A, DEV_1), refreshed]
    assert store.devices_of(FP_B) == [device(FP_B, DEV_1)]


def test_touch_device_moves_last_seen_and_ignores_an_unknown_device(store: SQLiteOrMemory) -> None:
    store.put_device(device(FP_A, DEV_1), 8)
    store.touch_device(FP_A, DEV_1, T0 + 60)
    store.touch_device(FP_A, DEV_2, T0 + 60)
    assert [(d.device, d.last_seen) for d in store.devices_of(FP_A)] == [(DEV_1, T0 + 60)]


def test_a_device_past_the_bound_evicts_the_least_recently_seen(store: SQLiteOrMemory) -> None:
    for n, name in enumerate((DEV_1, DEV_2, DEV_3)):
        store.put_device(device(FP_A, name, T0 + n), 3)
    store.put_device(device(FP_B, DEV_4, T0 - 100), 3)  # another key's devices do not count
    store.touch_device(FP_A, DEV_1, T0 + 10)  # DEV_2 is now the least recently seen
    store.add_one_time_keys(FP_A, DEV_2, [otk("k1")], otk("fb", True), 100)
    store.append_inbox(FP_A, DEV_2, "for dev 2", T0, BOUNDS)
    assert store.put_device(device(FP_A, DEV_4, T0 + 11), 3) == DEV_2
    assert [d.device for d in store.devices_of(FP_A)] == [DEV_1, DEV_3, DEV_4]
    assert store.one_time_key_count(FP_A, DEV_2) == (0, False)
    assert store.claim_one_time_key(FP_A, DEV_2) is None
    assert store.inbox(FP_A, DEV_2, 0, T0, BOUNDS) == []
    assert [d.device for d in store.devices_of(FP_B)] == [DEV_4]


def test_the_device_put_is_never_the_one_evicted(store: SQLiteOrMemory) -> None:
    store.put_device(device(FP_A, DEV_1, T0), 1)
    assert store.put_device(device(FP_A, DEV_2, T0 - 50), 1) == DEV_1
    assert [d.device for d in store.devices_of(FP_A)] == [DEV_2]
    # Refreshing the one device there is evicts nothing.
    assert store.put_device(device(FP_A, DEV_2, T0), 1) is None


def test_eviction_ties_go_by_device_id(store: SQLiteOrMemory) -> None:
    store.put_device(device(FP_A, DEV_3, T0), 2)
    store.put_device(device(FP_A, DEV_2, T0), 2)
    assert store.put_device(device(FP_A, DEV_1, T0), 2) == DEV_2


def test_remove_device_takes_its_keys_and_inbox(store: SQLiteOrMemory) -> None:
    store.put_device(device(FP_A, DEV_1), 8)
    store.put_device(device(FP_A, DEV_2), 8)
    for name in (DEV_1, DEV_2):
        store.add_one_time_keys(FP_A, name, [otk("k1"), otk("k2")], otk("fb", True), 100)
        store.append_inbox(FP_A, name, f"for {name}", T0, BOUNDS)
    assert store.remove_device(FP_A, DEV_1) is True
    assert store.remove_device(FP_A, DEV_1) is False
    assert store.remove_device(FP_B, DEV_1) is False
    assert [d.device for d in store.devices_of(FP_A)] == [DEV_2]
    assert store.one_time_key_count(FP_A, DEV_1) == (0, False)
    assert store.inbox(FP_A, DEV_1, 0, T0, BOUNDS) == []
    # The other device keeps everything.
    assert store.one_time_key_count(FP_A, DEV_2) == (2, True)
    assert [item.payload for item in store.inbox(FP_A, DEV_2, 0, T0, BOUNDS)] == [f"for {DEV_2}"]
    # Back again, it starts empty.
    store.put_device(device(FP_A, DEV_1), 8)
    assert store.one_time_key_count(FP_A, DEV_1) == (0, False)
    assert store.inbox(FP_A, DEV_1, 0, T0, BOUNDS) == []


# --- one-time keys -----------------------------------------------------------------------------


def test_one_time_keys_are_counted_deduplicated_and_capped(store: SQLiteOrMemory) -> None:
    store.put_device(device(FP_A, DEV_1), 8)
    assert store.one_time_key_count(FP_A, DEV_1) == (0, False)
    assert store.add_one_time_keys(FP_A, DEV_1, [otk("k1"), otk("k2")], None, 4) == 2
    # A held id is ignored (and does not count against the cap); past the cap the rest drop.
    keys = [otk("k2"), otk("k3"), otk("k3"), otk("k4"), otk("k5"), otk("k6")]
    assert store.add_one_time_keys(FP_A, DEV_1, keys, None, 4) == 4
    assert store.one_time_key_count(FP_A, DEV_1) == (4, False)
    claimed = [store.claim_one_time_key(FP_A, DEV_1) for _ in range(5)]
    assert key_ids(claimed) == ["k1", "k2", "k3", "k4", None]


def test_one_time_keys_for_an_unknown_device_are_not_kept(store: SQLiteOrMemory) -> None:
    assert store.add_one_time_keys(FP_A, DEV_1, [otk("k1")], otk("fb", True), 100) == 0
    assert store.one_time_key_count(FP_A, DEV_1) == (0, False)
    store.put_device(device(FP_A, DEV_1), 8)
    assert store.one_time_key_count(FP_A, DEV_1) == (0, False)
    assert store.claim_one_time_key(FP_A, DEV_1) is None


def test_claims_hand_each_key_out_once_oldest_first_then_the_fallback(
    store: SQLiteOrMemory,
) -> None:
    store.put_device(device(FP_A, DEV_1), 8)
    store.put_device(device(FP_A, DEV_2), 8)
    store.add_one_time_keys(FP_A, DEV_1, [otk("k2"), otk("k1")], otk("fb1", True), 100)
    store.add_one_time_keys(FP_A, DEV_1, [otk("k0")], None, 100)
    store.add_one_time_keys(FP_A, DEV_2, [otk("other")], None, 100)
    claimed = [store.claim_one_time_key(FP_A, DEV_1) for _ in range(5)]
    assert key_ids(claimed) == ["k2", "k1", "k0", "fb1", "fb1"]  # the fallback stays
    assert store.one_time_key_count(FP_A, DEV_1) == (0, True)
    # A later fallback key replaces the first; the other device's key was not touched.
    store.add_one_time_keys(FP_A, DEV_1, [], otk("fb2", True), 100)
    assert key_ids([store.claim_one_time_key(FP_A, DEV_1)]) == ["fb2"]
    assert key_ids([store.claim_one_time_key(FP_A, DEV_2)]) == ["other"]
    assert store.claim_one_time_key(FP_A, DEV_2) is None  # neither key nor fallback
    assert store.claim_one_time_key(FP_B, DEV_1) is None  # unknown device


def test_forget_one_time_key_takes_that_key_only(store: SQLiteOrMemory) -> None:
    store.put_device(device(FP_A, DEV_1), 8)
    store.add_one_time_keys(FP_A, DEV_1, [otk("k1"), otk("k2"), otk("k3")], otk("fb"), 100)
    store.forget_one_time_key(FP_A, DEV_1, "k2")
    store.forget_one_time_key(FP_A, DEV_1, "nope")
    store.forget_one_time_key(FP_B, DEV_1, "k1")
    assert store.one_time_key_count(FP_A, DEV_1) == (2, True)
    claimed = [store.claim_one_time_key(FP_A, DEV_1) for _ in range(3)]
    assert key_ids(claimed) == ["k1", "k3", "fb"]


KEY_OPERATION = st.one_of(
    st.tuples(st.just("add"), st.lists(st.integers(0, 30), max_size=8)),
    st.tuples(st.just("claim"), st.sampled_from([DEV_1, DEV_2])),
    st.tuples(st.just("forget"), st.integers(0, 30)),
)


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(KINDS), operations=st.lists(KEY_OPERATION, max_size=40))
def test_claims_never_hand_a_key_out_twice(kind: str, operations: list[tuple[str, object]]) -> None:
    """Whatever the interleaving of uploads, claims and forgets: a claim hands out the oldest
    key held and forgets it, so a key is handed out once per upload that was kept (an id the
    device uploads again after its claim is a new upload), and the count is what is held."""
    store = make_store(kind)
    store.put_device(device(FP_A, DEV_1), 8)
    store.put_device(device(FP_A, DEV_2), 8)
    held: list[str] = []  # DEV_1's keys, oldest first, as a model
    kept_uploads: collections.Counter[str] = collections.Counter()
    handed_out: collections.Counter[str] = collections.Counter()
    for operation, argument in operations:
        if operation == "add":
            assert isinstance(argument, list)
            keys = [otk(f"k{n}") for n in argument]
            count = store.add_one_time_keys(FP_A, DEV_1, keys, None, 10)
            for key_id, _ in keys:
                if key_id not in held and len(held) < 10:
                    held.append(key_id)
                    kept_uploads[key_id] += 1
            assert count == len(held)
        elif operation == "claim":
            claimed = store.claim_one_time_key(FP_A, str(argument))
            if argument == DEV_2:
                assert claimed is None
                continue
            expected = held.pop(0) if held else None
            assert key_ids([claimed]) == [expected]
            if expected is not None:
                handed_out[expected] += 1
        else:
            key_id = f"k{argument}"
            store.forget_one_time_key(FP_A, DEV_1, key_id)
            if key_id in held:
                held.remove(key_id)
        assert store.one_time_key_count(FP_A, DEV_1) == (len(held), False)
        for key_id, times in handed_out.items():
            assert times + (key_id in held) <= kept_uploads[key_id]
    store.close()


# --- inboxes -----------------------------------------------------------------------------------


def test_inbox_ids_increase_per_device_and_ack_deletes(store: SQLiteOrMemory) -> None:
    store.put_device(device(FP_A, DEV_1), 8)
    store.put_device(device(FP_B, DEV_2), 8)
    ids_1 = [store.append_inbox(FP_A, DEV_1, f"a{n}", T0 + n, BOUNDS) for n in range(3)]
    ids_2 = [store.append_inbox(FP_B, DEV_2, f"b{n}", T0 + n, BOUNDS) for n in range(2)]
    ids_1.append(store.append_inbox(FP_A, DEV_1, "a3", T0 + 3, BOUNDS))
    assert ids_1 == sorted(set(ids_1)) and ids_1[0] > 0
    assert ids_2 == sorted(set(ids_2)) and ids_2[0] > 0
    items = store.inbox(FP_A, DEV_1, 0, T0 + 3, BOUNDS)
    assert [(i.id, i.payload, i.created) for i in items] == [
        (ids_1[n], f"a{n}", T0 + n) for n in range(4)
    ]
    assert {(i.fingerprint, i.device) for i in items} == {(FP_A, DEV_1)}
    assert [i.payload for i in store.inbox(FP_A, DEV_1, ids_1[1], T0 + 3, BOUNDS)] == ["a2", "a3"]
    assert store.ack_inbox(FP_A, DEV_1, ids_1[2]) == 3
    assert store.ack_inbox(FP_A, DEV_1, ids_1[2]) == 0
    assert [i.payload for i in store.inbox(FP_A, DEV_1, 0, T0 + 3, BOUNDS)] == ["a3"]
    assert [i.payload for i in store.inbox(FP_B, DEV_2, 0, T0 + 3, BOUNDS)] == ["b0", "b1"]
    # Ids go on increasing after an ack that emptied the inbox.
    assert store.ack_inbox(FP_A, DEV_1, ids_1[3]) == 1
    assert store.append_inbox(FP_A, DEV_1, "a4", T0 + 4, BOUNDS) > ids_1[3]


def test_items_for_many_devices_are_queued_as_one_write(store: SQLiteOrMemory) -> None:
    store.put_device(device(FP_A, DEV_1), 8)
    store.put_device(device(FP_B, DEV_2), 8)
    entries = [
        InboxEntry(FP_A, DEV_1, "key for a"),
        InboxEntry(FP_B, "UNKNOWNDEVICE234", "nobody"),
        InboxEntry(FP_B, DEV_2, "key for b"),
        InboxEntry(FP_A, DEV_1, "x" * (BOUNDS.max_bytes + 1)),
    ]
    ids = store.append_inbox_items(entries, T0, BOUNDS)
    assert ids[1] == 0 and ids[3] == 0 and 0 < ids[0] < ids[2]
    assert [i.payload for i in store.inbox(FP_A, DEV_1, 0, T0, BOUNDS)] == ["key for a"]
    assert [i.payload for i in store.inbox(FP_B, DEV_2, 0, T0, BOUNDS)] == ["key for b"]
    # The same items again with the ids a cluster's log gave them: applied once only.
    again = [InboxEntry(FP_A, DEV_1, "key for a", ids[0]), InboxEntry(FP_B, DEV_2, "b", ids[2])]
    assert store.append_inbox_items(again, T0, BOUNDS) == [0, 0]
    assert store.append_inbox_items([], T0, BOUNDS) == []


def test_an_unknown_device_gets_nothing(store: SQLiteOrMemory) -> None:
    assert store.append_inbox(FP_A, DEV_1, "lost", T0, BOUNDS) == 0
    assert store.inbox(FP_A, DEV_1, 0, T0, BOUNDS) == []
    assert store.ack_inbox(FP_A, DEV_1, 100) == 0
    store.put_device(device(FP_A, DEV_1), 8)
    assert store.inbox(FP_A, DEV_1, 0, T0, BOUNDS) == []


def test_ids_are_not_reused_when_a_device_comes_back(store: SQLiteOrMemory) -> None:
    store.put_device(device(FP_A, DEV_1), 8)
    first = store.append_inbox(FP_A, DEV_1, "before", T0, BOUNDS)
    store.remove_device(FP_A, DEV_1)
    store.put_device(device(FP_A, DEV_1), 8)
    assert store.append_inbox(FP_A, DEV_1, "after", T0, BOUNDS) > first


def test_inbox_keeps_at_most_max_items_dropping_the_oldest(store: SQLiteOrMemory) -> None:
    store.put_device(device(FP_A, DEV_1), 8)
    store.put_device(device(FP_A, DEV_2), 8)
    bounds = InboxBounds(max_items=3)
    store.append_inbox(FP_A, DEV_2, "other device", T0, bounds)
    for n in range(5):
        store.append_inbox(FP_A, DEV_1, f"m{n}", T0, bounds)
    assert [i.payload for i in store.inbox(FP_A, DEV_1, 0, T0, bounds)] == ["m2", "m3", "m4"]
    assert [i.payload for i in store.inbox(FP_A, DEV_2, 0, T0, bounds)] == ["other device"]


def test_inbox_keeps_at_most_max_bytes_of_payloads(store: SQLiteOrMemory) -> None:
    store.put_device(device(FP_A, DEV_1), 8)
    bounds = InboxBounds(max_bytes=10)
    for payload in ("aaaa", "bbbb", "éé"):  # 4 + 4 + 4 bytes of UTF-8
        assert store.append_inbox(FP_A, DEV_1, payload, T0, bounds) > 0
    assert [i.payload for i in store.inbox(FP_A, DEV_1, 0, T0, bounds)] == ["bbbb", "éé"]
    assert store.append_inbox(FP_A, DEV_1, "cc", T0, bounds) > 0  # 10 bytes: fits exactly
    assert [i.payload for i in store.inbox(FP_A, DEV_1, 0, T0, bounds)] == ["bbbb", "éé", "cc"]


def test_an_item_that_alone_passes_a_bound_is_refused_and_the_inbox_kept(
    store: SQLiteOrMemory,
) -> None:
    store.put_device(device(FP_A, DEV_1), 8)
    store.append_inbox(FP_A, DEV_1, "kept", T0, InboxBounds(max_bytes=10))
    assert store.append_inbox(FP_A, DEV_1, "x" * 11, T0, InboxBounds(max_bytes=10)) == 0
    assert store.append_inbox(FP_A, DEV_1, "y", T0, InboxBounds(max_items=0)) == 0
    assert [i.payload for i in store.inbox(FP_A, DEV_1, 0, T0, BOUNDS)] == ["kept"]


def test_inbox_items_older_than_max_age_are_neither_kept_nor_handed_out(
    store: SQLiteOrMemory,
) -> None:
    store.put_device(device(FP_A, DEV_1), 8)
    bounds = InboxBounds(max_age=100.0)
    for offset in (0.0, 10.0, 20.0):
        store.append_inbox(FP_A, DEV_1, f"at {offset:g}", T0 + offset, bounds)
    # Exactly max_age old is still kept; older is not handed out.
    assert [i.payload for i in store.inbox(FP_A, DEV_1, 0, T0 + 110.0, bounds)] == [
        "at 10",
        "at 20",
    ]
    # ... nor kept: seen from an earlier clock it is gone.
    assert [i.payload for i in store.inbox(FP_A, DEV_1, 0, T0, bounds)] == ["at 10", "at 20"]
    # An append drops what has aged too.
    store.append_inbox(FP_A, DEV_1, "late", T0 + 115.0, bounds)
    assert [i.payload for i in store.inbox(FP_A, DEV_1, 0, T0, bounds)] == ["at 20", "late"]


def test_an_item_id_from_the_log_is_used_and_applied_once(store: SQLiteOrMemory) -> None:
    store.put_device(device(FP_A, DEV_1), 8)
    assert store.append_inbox(FP_A, DEV_1, "seven", T0, BOUNDS, item_id=7) == 7
    assert store.append_inbox(FP_A, DEV_1, "seven again", T0, BOUNDS, item_id=7) == 0
    assert store.append_inbox(FP_A, DEV_1, "older", T0, BOUNDS, item_id=5) == 0
    assert store.append_inbox(FP_A, DEV_1, "nine", T0, BOUNDS, item_id=9) == 9
    assert [(i.id, i.payload) for i in store.inbox(FP_A, DEV_1, 0, T0, BOUNDS)] == [
        (7, "seven"),
        (9, "nine"),
    ]
    # Acknowledged, a re-applied entry still does not come back.
    assert store.ack_inbox(FP_A, DEV_1, 9) == 2
    assert store.append_inbox(FP_A, DEV_1, "nine again", T0, BOUNDS, item_id=9) == 0
    assert store.inbox(FP_A, DEV_1, 0, T0, BOUNDS) == []
    # An id the store assigns itself comes after every id it was given.
    assert store.append_inbox(FP_A, DEV_1, "next", T0, BOUNDS) > 9


INBOX_OPERATION = st.one_of(
    st.tuples(st.just("append"), st.sampled_from([DEV_1, DEV_2]), st.integers(0, 6)),
    st.tuples(st.just("ack"), st.sampled_from([DEV_1, DEV_2]), st.integers(0, 40)),
    st.tuples(st.just("wait"), st.sampled_from([DEV_1, DEV_2]), st.integers(0, 50)),
    st.tuples(st.just("remove"), st.sampled_from([DEV_1, DEV_2]), st.just(0)),
)


@settings(max_examples=60, deadline=None)
@given(operations=st.lists(INBOX_OPERATION, max_size=50))
def test_both_stores_keep_the_same_inboxes(operations: list[tuple[str, str, int]]) -> None:
    """The replica and the database agree on every answer, under any sequence of appends,
    acknowledgements, passing time and removals; ids only ever increase per device."""
    stores = [make_store(kind) for kind in KINDS]
    bounds = InboxBounds(max_items=4, max_bytes=12, max_age=60.0)
    now = T0
    last_id = {DEV_1: 0, DEV_2: 0}
    for operation, name, number in operations:
        answers: list[object] = []
        for store in stores:
            store.put_device(device(FP_A, name, now), 8)
            if operation == "append":
                answers.append(store.append_inbox(FP_A, name, "p" * number, now, bounds))
            elif operation == "ack":
                answers.append(store.ack_inbox(FP_A, name, number))
            elif operation == "remove":
                answers.append(store.remove_device(FP_A, name))
            answers.append(store.inbox(FP_A, name, 0, now, bounds))
        assert answers[: len(answers) // 2] == answers[len(answers) // 2 :]
        if operation == "append":
            assert isinstance(answers[0], int) and answers[0] > last_id[name]
            last_id[name] = answers[0]
        if operation == "wait":
            now += number
        kept = [store.inbox(FP_A, name, 0, now, bounds) for store in stores]
        assert kept[0] == kept[1]
        assert len(kept[0]) <= bounds.max_items
        assert sum(len(i.payload.encode()) for i in kept[0]) <= bounds.max_bytes
    for store in stores:
        store.close()


# --- encrypted rooms and lines -----------------------------------------------------------------


def test_encrypted_rooms_are_kept_for_good(store: SQLiteOrMemory) -> None:
    assert store.encrypted_rooms() == set()
    store.set_encrypted("#secret")
    store.set_encrypted("#secret")
    store.set_encrypted("#other")
    assert store.encrypted_rooms() == {"#secret", "#other"}


def encrypted_message(counter: int) -> StoredMessage:
    return StoredMessage(
        room="#secret",
        sender=FP_A,
        nick="alice",
        key_der=b"\x30\x2a" + bytes(42),
        counter=counter,
        timestamp_ms=1_700_000_000_000 + counter,
        body="",
        signature=b"",
        encrypted=json.dumps({"session": "S" * 43, "ct": "Q2lwaGVy"}),
    )


def test_an_encrypted_line_is_stored_with_its_megolm_text(store: SQLiteOrMemory) -> None:
    plain = StoredMessage("#secret", FP_A, "alice", b"\x30", 1, 1, "hello", b"sig")
    store.append_message(plain)
    store.append_message(encrypted_message(2))
    assert store.recent_messages("#secret", 10) == [plain, encrypted_message(2)]
