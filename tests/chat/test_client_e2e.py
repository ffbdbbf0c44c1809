"""End-to-end encryption through ChatClients and a real ChatServer: private messages to every
device of both users, the inbox of an offline device, encrypted rooms with rotation, keys that
come late, replays, forged directory entries, and a server that moves lines."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.e2e_frames import MegolmLine, device_keys_fields
from tlschat.chat.frames import b64
from tlschat.chat.lines import DELIVERED, REFUSED, Line
from tlschat.chat.server.events import ChatServer
from tlschat.chat.verify import REPLAYED
from tlschat.e2e.device import Device as E2eDevice
from tlschat.e2e.device import sign_device_keys
from tlschat.e2e.room_keys import MissingRoomKey
from tlschat.protocol.identity import IdentityKey

from .e2e_net import Device, E2eNet
from .helpers import NOW, hello, make_server

ALICE, BOB, BOB2, CAROL, ALICE2 = 1, 2, 3, 4, 5


@pytest.fixture
def server(ed_alice: IdentityKey) -> ChatServer:
    return make_server(operators=frozenset({ed_alice.fingerprint}))


@pytest.fixture
def net(server: ChatServer) -> E2eNet:
    return E2eNet(server)


@pytest.fixture
def alice(ed_alice: IdentityKey) -> Device:
    return Device(ed_alice, "alice")


@pytest.fixture
def bob(ed_bob: IdentityKey) -> Device:
    return Device(ed_bob, "bob")


@pytest.fixture
def carol(ed_carol: IdentityKey) -> Device:
    return Device(ed_carol, "carol")


def said(device: Device, text: str) -> Line:
    """The one message line ``device`` shows with ``text``."""
    found = [line for line in device.messages() if line.text == text]
    assert len(found) == 1, [line.render() for line in device.screen()]
    return found[0]


def frames_sent(net: E2eNet, kind: str) -> list[dict[str, Any]]:
    return [frame for _, frame in net.sent if frame["type"] == kind]


def encrypted_room(net: E2eNet, *devices: tuple[int, Device]) -> None:
    for session_id, device in devices:
        net.connect(session_id, device)
    net.type(devices[0][0], "/encrypt #general", NOW + 1)


# --- private messages ---------------------------------------------------------------------


def test_a_private_message_reaches_every_device_of_the_recipient_and_the_sender(
    net: E2eNet, alice: Device, bob: Device, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    bob2, alice2 = Device(ed_bob, "bob"), Device(ed_alice, "alice")
    for session_id, device in ((ALICE, alice), (BOB, bob), (BOB2, bob2), (ALICE2, alice2)):
        net.connect(session_id, device)
    net.type(ALICE, "/msg bob the canary sings", NOW + 1)

    sent = said(alice, "the canary sings")
    assert (sent.delivery, sent.encrypted, sent.room) == (DELIVERED, True, "@bob")
    for device in (bob, bob2):
        line = said(device, "the canary sings")
        assert (line.kind, line.verified, line.encrypted, line.nick) == (
            "private",
            True,
            True,
            "alice",
        )
        assert "🔒✓ *alice* the canary sings" in line.render()
    copy_line = said(alice2, "the canary sings")
    assert (copy_line.delivery, copy_line.room, copy_line.verified) == (DELIVERED, "@bob", True)
    assert "sent 🔒 → @bob *alice* the canary sings" in copy_line.render()
    # The server saw ciphertext only: one key item per other device, none for the sender's.
    (say,) = [f for f in frames_sent(net, "say") if "olm_private" in f]
    assert "body" not in say and "the canary sings" not in str(say)
    assert len(say["olm_private"]["keys"]) == 3
    # And /reply answers it, end to end.
    net.type(BOB2, "/reply and back", NOW + 2)
    assert said(alice, "and back").verified and said(alice2, "and back").encrypted
    assert said(bob, "and back").delivery == DELIVERED  # bob's other device: a copy


def test_an_offline_device_gets_its_private_messages_when_it_connects(
    net: E2eNet, alice: Device, bob: Device, ed_bob: IdentityKey
) -> None:
    bob2 = Device(ed_bob, "bob")
    net.connect(ALICE, alice)
    net.connect(BOB, bob)
    net.connect(BOB2, bob2)
    net.disconnect(BOB2)
    net.disconnect(BOB)
    net.type(ALICE, "/msg bob while you were out", NOW + 1)
    net.type(ALICE, "/msg bob and a second one", NOW + 2)
    assert said(alice, "and a second one").delivery == DELIVERED

    bob2.client = None  # a new process on that home, from its files
    net.connect(BOB2, bob2, NOW + 60)
    first, second = (said(bob2, t) for t in ("while you were out", "and a second one"))
    assert first.verified and first.encrypted and second.verified
    assert bob2.messages().index(first) < bob2.messages().index(second)
    # Acknowledged, so never again: a reconnect brings nothing new.
    shown = len(bob2.shown)
    net.disconnect(BOB2)
    net.connect(BOB2, bob2, NOW + 70)
    assert [line for line in bob2.shown[shown:] if line.kind == "private"] == []


def test_private_messages_are_refused_without_device_keys(ed_alice: IdentityKey) -> None:
    client = ChatClient(ed_alice, "alice")
    client.directory["bob"] = "SHA256:" + "b" * 43
    (line,) = client.user_input("/msg bob hello", NOW)
    assert line.kind == "error" and "end-to-end encrypted" in line.text
    assert client.outstanding == 0 and "device_keys" not in client.hello_frame()


def test_a_recipient_without_a_device_is_refused_with_a_reason(
    net: E2eNet, server: ChatServer, alice: Device, ed_bob: IdentityKey
) -> None:
    net.connect(ALICE, alice)
    hello(server, BOB, ed_bob, "bob")  # a client without device keys
    net.pump()
    net.type(ALICE, "/msg bob hello", NOW + 1)
    line = said(alice, "hello")
    assert line.delivery == REFUSED
    assert line.problem == "bob has no device that can receive end-to-end encrypted messages yet"
    assert [f for f in frames_sent(net, "say")] == []


def test_a_line_to_a_user_whose_devices_changed_is_encrypted_again(
    net: E2eNet, alice: Device, bob: Device, ed_bob: IdentityKey
) -> None:
    net.connect(ALICE, alice)
    net.connect(BOB, bob)
    net.type(ALICE, "/msg bob first", NOW + 1)
    net.type(ALICE, "/part #general", NOW + 2)  # no room shared: no keys_changed for bob
    bob2 = Device(ed_bob, "bob")
    net.connect(BOB2, bob2, NOW + 3)
    net.type(ALICE, "/msg bob second", NOW + 4)
    (refusal,) = [f for s, f in net.received if s == ALICE and "stale" in f]
    assert refusal["stale"] == [ed_bob.fingerprint]
    queries = [f["fingerprints"] for s, f in net.sent if s == ALICE and f["type"] == "keys_query"]
    assert queries[-1] == [ed_bob.fingerprint]
    assert said(alice, "second").delivery == DELIVERED
    assert said(bob, "second").verified and said(bob2, "second").verified


# --- encrypted rooms ----------------------------------------------------------------------


def test_encrypted_room_lines_reach_every_member_and_the_server_sees_ciphertext(
    net: E2eNet, alice: Device, bob: Device, carol: Device
) -> None:
    encrypted_room(net, (ALICE, alice), (BOB, bob), (CAROL, carol))
    net.type(ALICE, "the canary in the room", NOW + 2)
    net.type(BOB, "bob answers", NOW + 3)
    for device in (bob, carol):
        line = said(device, "the canary in the room")
        assert (line.verified, line.encrypted, line.room) == (True, True, "#general")
        assert "🔒✓ <alice> the canary in the room" in line.render()
    assert said(alice, "bob answers").encrypted and said(carol, "bob answers").verified
    says = frames_sent(net, "say")
    assert says and all("megolm" in f and "body" not in f for f in says)
    assert all("canary" not in str(f) for _, f in net.sent)
    stored = net.server.store.recent_messages("#general", 10)
    assert stored and all(m.body == "" and m.encrypted for m in stored)


def test_own_lines_decrypt_in_the_history_after_a_restart(
    net: E2eNet, alice: Device, bob: Device
) -> None:
    encrypted_room(net, (ALICE, alice), (BOB, bob))
    net.type(ALICE, "mine, later read back", NOW + 2)
    net.disconnect(ALICE)
    alice.client, alice.shown = None, []
    net.connect(ALICE, alice, NOW + 5)
    line = said(alice, "mine, later read back")
    assert line.verified and line.encrypted and line.history


def test_a_member_who_left_cannot_read_what_follows(
    net: E2eNet, alice: Device, bob: Device, carol: Device
) -> None:
    encrypted_room(net, (ALICE, alice), (BOB, bob), (CAROL, carol))
    net.type(ALICE, "before", NOW + 2)
    assert said(carol, "before").verified
    net.type(CAROL, "/part #general", NOW + 3)
    net.type(ALICE, "after carol left", NOW + 4)
    assert said(bob, "after carol left").verified

    (before, after) = [
        f["megolm"] for f in frames_sent(net, "say") if f["sender"] == alice.identity.fingerprint
    ]
    assert before["session"] != after["session"]  # rotated when carol left
    assert carol.client is not None and carol.client.crypto is not None
    crypto = carol.client.crypto
    with pytest.raises(MissingRoomKey):
        crypto.rooms.decrypt(
            crypto.room_keys,
            carol.client.network,
            "#general",
            alice.identity.fingerprint,
            MegolmLine(after["session"], after["ct"]),
        )
    # Back in the room, the line is in the history, and stays unreadable to her.
    net.type(CAROL, "/join #general", NOW + 5)
    waiting = [line for line in carol.screen() if line.encrypted and line.verified is None]
    assert len(waiting) == 1 and "waiting for the key" in waiting[0].render()
    net.type(ALICE, "welcome back", NOW + 6)
    assert said(carol, "welcome back").verified  # her devices got the new key on her return


def test_a_line_whose_key_comes_late_is_decrypted_then(
    net: E2eNet, alice: Device, bob: Device
) -> None:
    encrypted_room(net, (ALICE, alice), (BOB, bob))
    held: list[dict[str, Any]] = []

    def hold_inbox(session_id: int, frame: dict[str, Any]) -> dict[str, Any] | None:
        if session_id == BOB and frame["type"] == "device_messages":
            held.append(frame)
            return None
        return frame

    net.tamper = hold_inbox
    net.type(ALICE, "key comes later", NOW + 2)
    (waiting,) = [line for line in bob.shown if line.encrypted and line.verified is None]
    assert (
        waiting.ref and waiting.text == "" and "🔒 waiting for the key <alice>" in waiting.render()
    )
    net.tamper = None
    assert bob.client is not None
    for frame in held:
        bob.shown += bob.client.handle(frame, NOW + 3)
    net.pump(NOW + 3)
    line = said(bob, "key comes later")
    assert (line.ref, line.verified, line.encrypted) == (waiting.ref, True, True)
    assert line.history is None  # shown as new: it is only seconds old


def test_rotation_after_a_hundred_lines(net: E2eNet, alice: Device, bob: Device) -> None:
    encrypted_room(net, (ALICE, alice), (BOB, bob))
    for number in range(101):
        net.type(ALICE, f"line {number}", NOW + 2 + number)
    sessions = [f["megolm"]["session"] for f in frames_sent(net, "say")]
    assert len(set(sessions)) == 2 and sessions[99] != sessions[100]
    assert said(bob, "line 100").verified


# --- replays, forgeries, a server that moves lines ------------------------------------------


def test_a_replayed_room_line_is_refused_even_after_a_restart(
    net: E2eNet, alice: Device, bob: Device
) -> None:
    encrypted_room(net, (ALICE, alice), (BOB, bob))
    relayed: list[dict[str, Any]] = []

    def keep(session_id: int, frame: dict[str, Any]) -> dict[str, Any]:
        if session_id == BOB and frame["type"] == "message":
            relayed.append(copy.deepcopy(frame))
        return frame

    net.tamper = keep
    net.type(ALICE, "only once", NOW + 2)
    assert bob.client is not None
    assert bob.client.handle(relayed[0], NOW + 3) == []  # a copy in the same session
    net.disconnect(BOB)
    # A new process, with nothing shown yet in this run (no history either: the line comes
    # back only as the server's live replay).
    bob.client, bob.shown = None, []
    net.tamper = lambda session_id, frame: None if frame["type"] == "history" else frame
    net.connect(BOB, bob, NOW + 4)
    assert bob.client is not None
    (line,) = bob.client.handle(relayed[0], NOW + 5)
    assert line.verified is False and line.problem == REPLAYED and line.text != "only once"


def test_a_replayed_private_message_is_not_shown_again(
    net: E2eNet, alice: Device, bob: Device
) -> None:
    net.connect(ALICE, alice)
    net.connect(BOB, bob)
    inbox: list[dict[str, Any]] = []

    def keep(session_id: int, frame: dict[str, Any]) -> dict[str, Any]:
        if session_id == BOB and frame["type"] == "device_messages":
            inbox.append(copy.deepcopy(frame))
        return frame

    net.tamper = keep
    net.type(ALICE, "/msg bob just once", NOW + 1)
    assert said(bob, "just once").verified
    net.tamper = None
    net.disconnect(BOB)
    bob.client, bob.shown = None, []
    net.connect(BOB, bob, NOW + 2)
    assert bob.client is not None
    for frame in inbox:  # the server hands the same items out again, under new ids
        for item in frame["messages"]:
            item["id"] += 1000
        bob.shown += bob.client.handle(frame, NOW + 3)
    assert [line for line in bob.messages() if line.text == "just once"] == []


def test_a_forged_directory_entry_is_never_used(
    net: E2eNet, alice: Device, bob: Device, ed_bob: IdentityKey, ed_dave: IdentityKey
) -> None:
    mallory = E2eDevice.create()
    # A device signed by another key, listed under bob's fingerprint and key.
    forged = {
        **device_keys_fields(sign_device_keys(mallory, ed_dave)),
        "fingerprint": ed_bob.fingerprint,
        "key": b64(ed_bob.spki_der),
    }
    # And a device of dave's listed for bob with dave's own key.
    other = {**device_keys_fields(sign_device_keys(E2eDevice.create(), ed_dave))}
    other = {**other, "fingerprint": ed_bob.fingerprint, "key": b64(ed_dave.spki_der)}

    def forge(session_id: int, frame: dict[str, Any]) -> dict[str, Any]:
        if frame["type"] == "keys" and frame["fingerprint"] == ed_bob.fingerprint:
            return {**frame, "devices": [*frame["devices"], forged, other]}
        return frame

    net.connect(ALICE, alice)
    net.connect(BOB, bob)
    net.tamper = forge
    net.type(ALICE, "/msg bob for bob only", NOW + 1)
    assert said(bob, "for bob only").verified
    (say,) = [f for f in frames_sent(net, "say") if "olm_private" in f]
    assert {item["device"] for item in say["olm_private"]["keys"]} == {
        bob.client.crypto.device_id  # type: ignore[union-attr]
    }
    claims = [d for f in frames_sent(net, "keys_claim") for d in f["devices"]]
    assert all(d["device"] != mallory.device_id for d in claims)
    assert any("did not sign: never used" in text for text in alice.texts("error"))


def test_a_room_line_moved_to_another_room_is_unverified(
    net: E2eNet, alice: Device, bob: Device
) -> None:
    encrypted_room(net, (ALICE, alice), (BOB, bob))
    net.type(BOB, "/join #other", NOW + 2)

    def move(session_id: int, frame: dict[str, Any]) -> dict[str, Any]:
        if frame["type"] == "message" and "megolm" in frame:
            return {**frame, "target": "#other"}
        return frame

    net.tamper = move
    net.type(ALICE, "said in #general", NOW + 3)
    (line,) = [line for line in bob.messages() if line.fingerprint == alice.identity.fingerprint]
    assert line.verified is False and line.room == "#other" and line.text != "said in #general"


def test_a_private_message_moved_to_another_recipient_is_unverified(
    net: E2eNet, alice: Device, bob: Device, carol: Device
) -> None:
    for session_id, device in ((ALICE, alice), (BOB, bob), (CAROL, carol)):
        net.connect(session_id, device)

    def move(session_id: int, frame: dict[str, Any]) -> dict[str, Any]:
        if frame["type"] == "device_messages":
            for item in frame["messages"]:
                if "message" in item:
                    item["message"]["target"] = "@" + carol.identity.fingerprint
        return frame

    net.tamper = move
    net.type(ALICE, "/msg bob for bob", NOW + 1)
    (line,) = bob.messages()
    assert line.verified is False and line.text != "for bob"


# --- prerequisites that fail, and what goes again -------------------------------------------


def test_a_line_waits_for_the_directory_then_gives_up(
    net: E2eNet, alice: Device, bob: Device
) -> None:
    net.connect(ALICE, alice)
    net.connect(BOB, bob)
    net.tamper = lambda session_id, frame: None if frame["type"] == "keys" else frame
    net.type(ALICE, "/msg bob anyone?", NOW + 1)
    [pending] = [line for line in alice.screen() if line.text == "anyone?"]
    assert pending.delivery == "pending"
    assert alice.client is not None and alice.client.wake_at == NOW + 31
    net.tick(NOW + 31)
    line = said(alice, "anyone?")
    assert line.delivery == REFUSED and "did not answer" in line.problem
    assert alice.client.outstanding == 0


def test_a_device_without_one_time_keys_gets_nothing_and_is_reported(
    net: E2eNet, alice: Device, bob: Device, carol: Device
) -> None:
    encrypted_room(net, (ALICE, alice), (BOB, bob), (CAROL, carol))
    assert bob.client is not None and bob.client.crypto is not None
    bob_device = bob.client.crypto.device_id

    def no_key_for_bob(session_id: int, frame: dict[str, Any]) -> dict[str, Any]:
        if frame["type"] == "claimed":
            for item in frame["keys"]:
                if item["device"] == bob_device:
                    item["one_time_key"] = None
        return frame

    net.tamper = no_key_for_bob
    net.type(ALICE, "/msg bob hello", NOW + 2)
    refused = said(alice, "hello")
    assert refused.delivery == REFUSED and "server has no one-time key" in refused.problem
    net.type(ALICE, "to the room", NOW + 3)
    assert said(alice, "to the room").delivery == DELIVERED
    assert said(carol, "to the room").verified
    assert [line.text for line in bob.messages()] == [""]  # a line waiting for a key
    notes = [t for t in alice.texts("notice") if "gets nothing end-to-end encrypted" in t]
    assert notes == [
        f"device {bob_device} of bob gets nothing end-to-end encrypted: the server"
        " has no one-time key for it"
    ]
    # Once the server has a key for it again, the next line reaches it.
    net.tamper = None
    net.type(ALICE, "/msg bob hello again", NOW + 4)
    assert said(alice, "hello again").delivery == DELIVERED
    assert said(bob, "hello again").verified


def test_an_encrypted_line_lost_with_the_connection_goes_again_byte_for_byte(
    net: E2eNet, alice: Device, bob: Device
) -> None:
    encrypted_room(net, (ALICE, alice), (BOB, bob))
    lost: list[dict[str, Any]] = []

    def lose(session_id: int, frame: dict[str, Any]) -> bool:
        if session_id == ALICE and frame["type"] in ("to_device", "say"):
            lost.append(frame)
            return True
        return False

    net.lose = lose
    net.type(ALICE, "lost, then sent again", NOW + 2)
    assert [f["type"] for f in lost] == ["to_device", "say"]
    net.lose = None
    net.disconnect(ALICE, NOW + 3)
    net.connect(ALICE, alice, NOW + 4)
    resent = [f for s, f in net.sent if s == ALICE and f["type"] in ("to_device", "say")]
    assert resent == lost
    assert said(alice, "lost, then sent again").delivery == DELIVERED
    assert said(bob, "lost, then sent again").verified


def test_rotation_after_seven_days(net: E2eNet, alice: Device, bob: Device) -> None:
    encrypted_room(net, (ALICE, alice), (BOB, bob))
    net.type(ALICE, "monday", NOW + 2)
    net.type(ALICE, "tuesday", NOW + 3 + 86400)
    net.type(ALICE, "next week", NOW + 4 + 7 * 86400)
    sessions = [f["megolm"]["session"] for f in frames_sent(net, "say")]
    assert sessions[0] == sessions[1] != sessions[2]
    assert said(bob, "next week").verified


def test_the_longest_line_fits_encrypted(
    net: E2eNet, alice: Device, bob: Device, ed_bob: IdentityKey
) -> None:
    encrypted_room(net, (ALICE, alice), (BOB, bob), (BOB2, Device(ed_bob, "bob")))
    longest = "é" * 2048  # 4096 bytes, the most a line may carry
    net.type(ALICE, longest, NOW + 2)
    net.type(ALICE, "/msg bob " + longest, NOW + 3)
    assert [line.delivery for line in alice.messages()] == [DELIVERED, DELIVERED]
    assert [line.verified for line in bob.messages()] == [True, True]


def test_an_rsa_identity_vouches_for_its_device_too(
    net: E2eNet, bob: Device, rsa_alice: IdentityKey
) -> None:
    alice = Device(rsa_alice, "alice")
    net.connect(ALICE, alice)
    net.connect(BOB, bob)
    net.type(ALICE, "/msg bob signed with RSA", NOW + 1)
    net.type(BOB, "/reply and back", NOW + 2)
    assert said(bob, "signed with RSA").verified and said(alice, "and back").verified
