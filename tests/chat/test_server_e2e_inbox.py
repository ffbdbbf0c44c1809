"""Each device's inbox (docs/PROTOCOL.md, "End-to-end layer"): to_device items stored and delivered
to the device's sessions, kept for a device that is offline, paged, acknowledged, bounded."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tlschat.chat.frames import MAX_FRAME, encode_frame
from tlschat.chat.server.events import ChatServer
from tlschat.chat.server.inbox import INBOX_BOUNDS
from tlschat.e2e.device import Device
from tlschat.protocol.identity import IdentityKey
from tlschat.store.memory import MemoryStore

from .helpers import ALICE, BOB, NOW, NOW_MS, make_server
from .server_e2e_helpers import ciphertext, hello_device, olm, to

BOB_AGAIN = 12


@pytest.fixture
def phone() -> Device:
    return Device.create()


@pytest.fixture
def laptop() -> Device:
    return Device.create()


@pytest.fixture
def pair(ed_alice: IdentityKey, ed_bob: IdentityKey, phone: Device, laptop: Device) -> ChatServer:
    """alice on her phone, bob on his laptop."""
    server = make_server()
    hello_device(server, ALICE, ed_alice, "alice", phone)
    hello_device(server, BOB, ed_bob, "bob", laptop)
    return server


def to_device(
    server: ChatServer, session_id: int, items: list[dict[str, Any]], now: float = NOW
) -> list[tuple[int, dict[str, Any]]]:
    return server.receive(session_id, {"type": "to_device", "messages": items}, now)


def test_to_device_reaches_every_session_of_the_device_and_only_it(
    pair: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey, phone: Device, laptop: Device
) -> None:
    hello_device(pair, BOB_AGAIN, ed_bob, "bob", laptop)
    body = ciphertext()
    out = to_device(pair, ALICE, [olm(ed_bob.fingerprint, laptop.device_id, body, kind=0)])
    item = {
        "id": 1,
        "ts": NOW_MS,
        "from": ed_alice.fingerprint,
        "from_device": phone.device_id,
        "olm": {"type": 0, "body": body},
    }
    page = {"type": "device_messages", "messages": [item], "more": False}
    assert out == [(BOB, page), (BOB_AGAIN, page)]
    assert [
        i.id for i in pair.store.inbox(ed_bob.fingerprint, laptop.device_id, 0, NOW, INBOX_BOUNDS)
    ] == [1]


def test_items_for_unknown_devices_are_skipped(
    pair: ChatServer, ed_bob: IdentityKey, ed_carol: IdentityKey, phone: Device, laptop: Device
) -> None:
    out = to_device(
        pair,
        ALICE,
        [
            olm(ed_carol.fingerprint, laptop.device_id),
            olm(ed_bob.fingerprint, phone.device_id),  # alice's device id, under bob's key
            olm(ed_bob.fingerprint, laptop.device_id),
        ],
    )
    [(_, page)] = out
    assert [item["id"] for item in page["messages"]] == [1]
    assert pair.store.inbox(ed_bob.fingerprint, phone.device_id, 0, NOW, INBOX_BOUNDS) == []


def test_a_device_that_is_offline_gets_its_items_when_it_connects(
    ed_alice: IdentityKey, ed_bob: IdentityKey, phone: Device, laptop: Device
) -> None:
    server = make_server()
    hello_device(server, ALICE, ed_alice, "alice", phone)
    hello_device(server, BOB, ed_bob, "bob", laptop)
    server.disconnect(BOB, "quit")
    bodies = [ciphertext() for _ in range(3)]
    assert (
        to_device(server, ALICE, [olm(ed_bob.fingerprint, laptop.device_id, b) for b in bodies])
        == []
    )
    out = hello_device(server, BOB_AGAIN, ed_bob, "bob", laptop, now=NOW + 60)
    assert [f["type"] for _, f in out if _ == BOB_AGAIN] == [
        "welcome",
        "keys_uploaded",
        "device_messages",
        "joined",
    ]
    [page] = to(BOB_AGAIN, out, "device_messages")
    assert [item["olm"]["body"] for item in page["messages"]] == bodies
    assert [item["id"] for item in page["messages"]] == [1, 2, 3]
    assert page["more"] is False


def test_an_inbox_larger_than_a_frame_comes_in_pages_acknowledged_one_by_one(
    pair: ChatServer, ed_bob: IdentityKey, laptop: Device
) -> None:
    pair.disconnect(BOB, "quit")
    big = ciphertext(3000)
    for _ in range(5):
        to_device(pair, ALICE, [olm(ed_bob.fingerprint, laptop.device_id, big)] * 16)
    out = hello_device(pair, BOB_AGAIN, ed_bob, "bob", laptop)
    [first] = to(BOB_AGAIN, out, "device_messages")
    assert first["more"] is True
    assert len(encode_frame(first)) <= MAX_FRAME
    ids = [item["id"] for item in first["messages"]]
    assert ids == list(range(1, len(ids) + 1))
    # While it pages, a new item waits for its turn rather than jumping the queue.
    late = ciphertext()
    assert to_device(pair, ALICE, [olm(ed_bob.fingerprint, laptop.device_id, late)]) == []
    seen = list(ids)
    frame = first
    while frame["more"]:
        out = pair.receive(BOB_AGAIN, {"type": "device_ack", "upto": seen[-1]}, NOW)
        [frame] = to(BOB_AGAIN, out, "device_messages")
        seen += [item["id"] for item in frame["messages"]]
    assert seen == list(range(1, 82))
    assert frame["messages"][-1]["olm"]["body"] == late
    # Acknowledged items are gone; the last page is deleted by the last ack.
    held = pair.store.inbox(ed_bob.fingerprint, laptop.device_id, 0, NOW, INBOX_BOUNDS)
    assert [item.id for item in held] == [i for i in seen if i > seen[-len(frame["messages"]) - 1]]
    assert pair.receive(BOB_AGAIN, {"type": "device_ack", "upto": 81}, NOW) == []
    assert pair.store.inbox(ed_bob.fingerprint, laptop.device_id, 0, NOW, INBOX_BOUNDS) == []
    # Caught up, the session gets new items at once.
    out = to_device(pair, ALICE, [olm(ed_bob.fingerprint, laptop.device_id)])
    assert [item["id"] for item in to(BOB_AGAIN, out)[0]["messages"]] == [82]


def test_an_ack_past_what_the_session_was_sent_deletes_only_what_it_was_sent(
    pair: ChatServer, ed_bob: IdentityKey, laptop: Device
) -> None:
    pair.disconnect(BOB, "quit")
    for _ in range(3):
        to_device(pair, ALICE, [olm(ed_bob.fingerprint, laptop.device_id, ciphertext(3000))] * 16)
    out = hello_device(pair, BOB_AGAIN, ed_bob, "bob", laptop)
    [first] = to(BOB_AGAIN, out, "device_messages")
    last = first["messages"][-1]["id"]
    assert last < 48
    out = pair.receive(BOB_AGAIN, {"type": "device_ack", "upto": 1_000_000}, NOW)
    [second] = to(BOB_AGAIN, out, "device_messages")
    assert second["messages"][0]["id"] == last + 1
    held = pair.store.inbox(ed_bob.fingerprint, laptop.device_id, 0, NOW, INBOX_BOUNDS)
    assert held[0].id == last + 1


def test_an_inbox_keeps_its_newest_items_within_its_bounds(
    pair: ChatServer, ed_bob: IdentityKey, laptop: Device
) -> None:
    pair.disconnect(BOB, "quit")
    for _ in range(8):
        to_device(pair, ALICE, [olm(ed_bob.fingerprint, laptop.device_id)] * 128)
    held = pair.store.inbox(ed_bob.fingerprint, laptop.device_id, 0, NOW, INBOX_BOUNDS)
    assert [item.id for item in held] == list(range(25, 1025))
    # None older than seven days is handed out.
    later = NOW + INBOX_BOUNDS.max_age + 1
    out = hello_device(pair, BOB_AGAIN, ed_bob, "bob", laptop, now=later)
    assert to(BOB_AGAIN, out, "device_messages") == []


@pytest.mark.parametrize(
    ("frame", "text"),
    [
        ({"type": "to_device", "messages": [{}] * 129}, "'messages' has more than 128 items"),
        ({"type": "to_device", "messages": {}}, "'messages' must be a list"),
        (
            {"type": "to_device", "messages": [{"fingerprint": "x"}]},
            "'type' must be an integer in [0, 1]",
        ),
        (
            {"type": "to_device", "messages": [{"type": 1, "body": "A" * 4097}]},
            "'body' is longer than 4096 bytes",
        ),
        (
            {"type": "to_device", "messages": [{"type": 1, "body": "not base64!"}]},
            "'body' is not base64",
        ),
        (
            {"type": "to_device", "messages": [{"type": 2, "body": "aGk="}]},
            "'type' must be an integer in [0, 1]",
        ),
        (
            {"type": "device_ack", "upto": -1},
            "'upto' must be an integer in [0, 9223372036854775807]",
        ),
        (
            {"type": "device_ack", "upto": "7"},
            "'upto' must be an integer in [0, 9223372036854775807]",
        ),
        (
            {"type": "device_ack", "upto": True},
            "'upto' must be an integer in [0, 9223372036854775807]",
        ),
    ],
)
def test_bad_inbox_frames_are_refused(pair: ChatServer, frame: dict[str, Any], text: str) -> None:
    assert pair.receive(ALICE, frame, NOW) == [(ALICE, {"type": "error", "text": text})]


def test_a_removed_device_loses_its_inbox(
    pair: ChatServer, ed_bob: IdentityKey, laptop: Device
) -> None:
    to_device(pair, ALICE, [olm(ed_bob.fingerprint, laptop.device_id)])
    pair.receive(BOB, {"type": "device_remove", "device": laptop.device_id}, NOW)
    assert pair.store.inbox(ed_bob.fingerprint, laptop.device_id, 0, NOW, INBOX_BOUNDS) == []
    # Its session speaks for no device any more, and new items for it are skipped.
    assert to_device(pair, ALICE, [olm(ed_bob.fingerprint, laptop.device_id)]) == []
    assert pair.receive(BOB, {"type": "device_ack", "upto": 1}, NOW) == [
        (BOB, {"type": "error", "text": "upload your device keys first"})
    ]


def test_after_a_reload_of_the_store_a_session_gets_what_its_device_missed(
    ed_alice: IdentityKey, ed_bob: IdentityKey, phone: Device, laptop: Device
) -> None:
    """A cluster's server that lost track of the log loads its replica anew: items stored for a
    session's device meanwhile are sent, and a device removed meanwhile is no longer spoken for."""
    server = make_server(MemoryStore(50))
    hello_device(server, ALICE, ed_alice, "alice", phone)
    hello_device(server, BOB, ed_bob, "bob", laptop)
    reloaded = MemoryStore(50)
    for stored in server.store.devices_of(ed_bob.fingerprint):
        reloaded.put_device(stored, 8)
    payload = json.dumps(
        {
            "ts": NOW_MS,
            "from": ed_alice.fingerprint,
            "from_device": phone.device_id,
            "olm": {"type": 1, "body": "aGk="},
        }
    )
    reloaded.append_inbox(ed_bob.fingerprint, laptop.device_id, payload, NOW, INBOX_BOUNDS, 7)
    server.store = reloaded
    out = server.resynchronised()
    [page] = to(BOB, out, "device_messages")
    assert page["messages"] == [{"id": 7, **json.loads(payload)}]
    [note] = [f["text"] for f in to(ALICE, out, "notice") if "device" in f["text"]]
    assert note.startswith(f"device {phone.device_id} left your key's directory while")
    assert server.sessions[ALICE].device is None
