"""Encrypted private messages at the server, as chat lines (docs/PROTOCOL.md, sections 21 and 23):
who gets them and who does not, acknowledgements, copies, replays across a restart, flood
control, away notices. They are the only private messages: a plain one is refused
(test_server_messages.py); their checks and stale devices are in test_server_e2e_lines.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tlschat.chat.server.events import ChatServer
from tlschat.chat.server.inbox import INBOX_BOUNDS
from tlschat.e2e.device import Device
from tlschat.protocol.identity import IdentityKey
from tlschat.store import SQLiteStore

from .helpers import (
    ALICE,
    BOB,
    CAROL,
    NOW,
    Frames,
    command,
    hello,
    make_server,
    rejected,
    sent,
    throttled,
)
from .server_e2e_helpers import hello_device, olm, private_say, to

ALICE_AGAIN = 10  # a second session of alice's phone
BOB_AGAIN = 11  # a second session of bob's laptop
REPLAY = "message rejected: replayed or out-of-order counter"


@pytest.fixture
def devices() -> dict[str, Device]:
    return {name: Device.create() for name in ("phone", "bob", "carol")}


@pytest.fixture
def chat(
    ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey, devices: dict[str, Device]
) -> ChatServer:
    """alice on her phone (twice), bob on his laptop (twice), carol on hers; all in #general."""
    server = make_server()
    hello_device(server, ALICE, ed_alice, "alice", devices["phone"])
    hello_device(server, ALICE_AGAIN, ed_alice, "alice", devices["phone"])
    hello_device(server, BOB, ed_bob, "bob", devices["bob"])
    hello_device(server, BOB_AGAIN, ed_bob, "bob", devices["bob"])
    hello_device(server, CAROL, ed_carol, "carol", devices["carol"])
    return server


def _to_bob(
    ed_alice: IdentityKey, ed_bob: IdentityKey, devices: dict[str, Device], counter: int
) -> dict[str, Any]:
    """A line from alice's phone to bob's laptop (her only device): new ciphertext each call."""
    keys = [olm(ed_bob.fingerprint, devices["bob"].device_id)]
    return private_say(ed_alice, counter, ed_bob.fingerprint, keys)


def _inbox(server: ChatServer, key: IdentityKey, device: Device) -> list[int]:
    return [
        i.id for i in server.store.inbox(key.fingerprint, device.device_id, 0, NOW, INBOX_BOUNDS)
    ]


def test_every_session_of_the_recipients_device_gets_it_and_no_one_else(
    chat: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey, devices: dict[str, Device]
) -> None:
    frame = _to_bob(ed_alice, ed_bob, devices, 1_001)
    out = chat.receive(ALICE, frame, NOW)
    for session_id in (BOB, BOB_AGAIN):
        [page] = to(session_id, out)
        [item] = page["messages"]
        assert item["message"]["olm_private"] == {"ct": frame["olm_private"]["ct"]}
    # The acknowledgement, naming the line's own target and counter, to the sending session only;
    # alice's other session (the same device) and carol get nothing.
    assert to(ALICE, out) == [
        {"type": "sent", "target": "@" + ed_bob.fingerprint, "counter": 1_001}
    ]
    assert {sid for sid, _ in out} == {ALICE, BOB, BOB_AGAIN}
    # Kept in the device's inbox, not in any room's history.
    assert _inbox(chat, ed_bob, devices["bob"]) == [1]
    assert chat.store.recent_messages("#general", 10) == []
    assert chat.store.recent_messages("@" + ed_bob.fingerprint, 10) == []


def test_no_shared_room_is_needed(
    chat: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey, devices: dict[str, Device]
) -> None:
    for session_id in (BOB, BOB_AGAIN):
        command(chat, session_id, "part", "#general")
    out = chat.receive(ALICE, _to_bob(ed_alice, ed_bob, devices, 1), NOW)
    assert [frame["type"] for frame in to(BOB, out)] == ["device_messages"]
    assert out[-1] == sent(ALICE, "@" + ed_bob.fingerprint, 1)


def test_a_copy_from_another_session_of_the_key_is_acknowledged_again_and_stored_once(
    chat: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey, devices: dict[str, Device]
) -> None:
    frame = _to_bob(ed_alice, ed_bob, devices, 6)
    assert chat.receive(ALICE, frame, NOW)[-1] == sent(ALICE, "@" + ed_bob.fingerprint, 6)
    for session_id in (ALICE, ALICE_AGAIN):
        assert chat.receive(session_id, frame, NOW) == [
            sent(session_id, "@" + ed_bob.fingerprint, 6)
        ]
    # Another line under its counter, from either session, is a replay.
    for session_id in (ALICE, ALICE_AGAIN):
        other = _to_bob(ed_alice, ed_bob, devices, 6)
        assert chat.receive(session_id, other, NOW) == rejected(session_id, REPLAY, 6)
    assert _inbox(chat, ed_bob, devices["bob"]) == [1]
    assert chat.store.last_counter(ed_alice.fingerprint) == 6


def test_a_restarted_server_refuses_a_copy_as_a_replay(
    tmp_path: Path,
    ed_alice: IdentityKey,
    ed_bob: IdentityKey,
    devices: dict[str, Device],
) -> None:
    store = SQLiteStore(tmp_path / "chat.db")
    server = make_server(store)
    hello_device(server, ALICE, ed_alice, "alice", devices["phone"])
    hello_device(server, BOB, ed_bob, "bob", devices["bob"])
    frame = _to_bob(ed_alice, ed_bob, devices, 43)
    assert server.receive(ALICE, frame, NOW)[-1] == sent(ALICE, "@" + ed_bob.fingerprint, 43)
    store.close()

    restarted = make_server(SQLiteStore(tmp_path / "chat.db"))
    hello_device(restarted, ALICE, ed_alice, "alice", devices["phone"])
    hello_device(restarted, BOB, ed_bob, "bob", devices["bob"])
    # It is in no history: after the restart the server cannot tell it from a replay, and its
    # counter is persisted, so it is refused; a new line goes through.
    assert restarted.receive(ALICE, frame, NOW) == rejected(ALICE, REPLAY, 43)
    assert restarted.receive(ALICE, _to_bob(ed_alice, ed_bob, devices, 44), NOW)[-1] == sent(
        ALICE, "@" + ed_bob.fingerprint, 44
    )


def test_flood_control_counts_private_messages(
    ed_alice: IdentityKey, ed_bob: IdentityKey, devices: dict[str, Device]
) -> None:
    server = make_server(rate_per_second=1, burst=3)
    hello_device(server, ALICE, ed_alice, "alice", devices["phone"])
    hello_device(server, BOB, ed_bob, "bob", devices["bob"])
    for counter in (1, 2, 3):
        out = server.receive(ALICE, _to_bob(ed_alice, ed_bob, devices, counter), NOW)
        assert [sid for sid, _ in out] == [BOB, ALICE]
        assert out[-1] == sent(ALICE, "@" + ed_bob.fingerprint, counter)
    fourth = _to_bob(ed_alice, ed_bob, devices, 4)
    assert server.receive(ALICE, fourth, NOW) == throttled(ALICE, 1.0, 4)
    # Nothing stored or counted for the refused line; a second later it goes.
    assert _inbox(server, ed_bob, devices["bob"]) == [1, 2, 3]
    assert server.store.last_counter(ed_alice.fingerprint) == 3
    later = server.receive(ALICE, fourth, NOW + 1)
    assert later[-1] == sent(ALICE, "@" + ed_bob.fingerprint, 4)


def test_the_away_notice_stops_when_the_recipient_is_back(
    chat: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey, devices: dict[str, Device]
) -> None:
    command(chat, BOB, "away", "lunch")
    out: Frames = chat.receive(ALICE, _to_bob(ed_alice, ed_bob, devices, 1), NOW)
    assert [f["type"] for f in to(ALICE, out)] == ["notice", "sent"]
    command(chat, BOB, "back")
    out = chat.receive(ALICE, _to_bob(ed_alice, ed_bob, devices, 2), NOW)
    assert to(ALICE, out) == [{"type": "sent", "target": "@" + ed_bob.fingerprint, "counter": 2}]


def test_a_message_no_device_can_read_uses_no_counter(
    chat: ChatServer, ed_alice: IdentityKey, ed_dave: IdentityKey
) -> None:
    hello(chat, 4, ed_dave, "dave")
    frame = private_say(ed_alice, 1, ed_dave.fingerprint, [])
    assert chat.receive(ALICE, frame, NOW) == rejected(
        ALICE, "message not delivered: dave has no device that can read it", 1
    )
    assert chat.store.last_counter(ed_alice.fingerprint) == -1


@pytest.mark.parametrize("recipient", ["bob", "SHA256:short", "", "SHA256:" + "A" * 44])
def test_a_malformed_private_target_is_refused(
    chat: ChatServer, ed_alice: IdentityKey, recipient: str
) -> None:
    assert chat.receive(ALICE, private_say(ed_alice, 1, recipient, []), NOW) == rejected(
        ALICE, "message rejected: a private message names a fingerprint", 1
    )
