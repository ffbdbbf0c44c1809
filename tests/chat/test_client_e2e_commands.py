"""The client commands of the end-to-end layer, against a real ChatServer: /msg and /reply (always
encrypted), /encrypt, /devices, /verify; and how encrypted lines look."""

from __future__ import annotations

import json
import time

import pytest

from tlschat.chat.lines import DELIVERED, PENDING, REFUSED, Line
from tlschat.chat.server.events import ChatServer
from tlschat.protocol.identity import IdentityKey

from .e2e_net import Device, E2eNet
from .helpers import NOW, make_server

ALICE, BOB, BOB2, DAVE = 1, 2, 3, 4


@pytest.fixture
def server(ed_alice: IdentityKey) -> ChatServer:
    return make_server(operators=frozenset({ed_alice.fingerprint}))


@pytest.fixture
def net(server: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey) -> E2eNet:
    net = E2eNet(server)
    net.connect(ALICE, Device(ed_alice, "alice"))
    net.connect(BOB, Device(ed_bob, "bob"))
    return net


def _clock(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp))


def test_msg_to_a_known_nick_is_pending_then_delivered_encrypted(
    net: E2eNet, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    bob, alice = net.sessions[BOB], net.sessions[ALICE]
    assert bob.client is not None
    [pending] = bob.client.user_input("/msg ALICE hi there", NOW)
    assert (pending.kind, pending.room, pending.delivery, pending.encrypted) == (
        "private",
        "@ALICE",
        PENDING,
        True,
    )
    assert pending.render().endswith("sending… 🔒 → @ALICE *bob* hi there")
    net.pump()
    [delivered] = [line for line in bob.shown if line.ref == pending.ref]
    assert delivered.delivery == DELIVERED and delivered.encrypted
    [line] = alice.messages()
    assert line == Line(
        "private",
        NOW,
        "hi there",
        "bob",
        ed_bob.fingerprint,
        "",
        True,
        False,
        encrypted=True,
        id=f"{ed_bob.fingerprint}:{int(NOW * 1_000_000)}",
    )
    assert line.render("#general") == f"[{_clock(NOW)}] 🔒✓ *bob* hi there"
    assert alice.client is not None and alice.client.last_private == ("bob", ed_bob.fingerprint)
    assert line.to_json() == {
        "kind": "private",
        "timestamp": NOW,
        "text": "hi there",
        "nick": "bob",
        "fingerprint": ed_bob.fingerprint,
        "verified": True,
        "key_changed": False,
        "encrypted": True,
        "id": f"{ed_bob.fingerprint}:{int(NOW * 1_000_000)}",
    }


def test_msg_to_an_unknown_nick_asks_whois_then_the_directory(
    net: E2eNet, ed_dave: IdentityKey
) -> None:
    dave = Device(ed_dave, "dave")
    net.connect(DAVE, dave)
    net.type(DAVE, "/part #general", NOW)
    bob = net.sessions[BOB]
    assert bob.client is not None
    bob.client.directory.pop("dave", None)
    before = len(net.sent)
    net.type(BOB, "/msg dave are you there?", NOW + 1)
    kinds = [f["type"] for s, f in net.sent[before:] if s == BOB]
    assert kinds == ["command", "keys_query", "keys_claim", "say"]
    assert bob.client.directory["dave"] == ed_dave.fingerprint
    [line] = dave.messages()
    assert (line.text, line.nick, line.verified, line.encrypted) == (
        "are you there?",
        "bob",
        True,
        True,
    )


def test_msg_to_a_nick_nobody_has(net: E2eNet) -> None:
    net.type(BOB, "/msg zed hello")
    net.type(BOB, "/msg zed anyone?")
    bob = net.sessions[BOB]
    refused = [line for line in bob.screen() if line.delivery == REFUSED]
    assert [(line.text, line.problem) for line in refused] == [
        ("hello", "no such nick: zed"),
        ("anyone?", "no such nick: zed"),
    ]
    assert bob.client is not None and bob.client.outstanding == 0


def test_reply_answers_the_last_private_message_and_ignore_hides_it(
    net: E2eNet, ed_alice: IdentityKey
) -> None:
    alice, bob = net.sessions[ALICE], net.sessions[BOB]
    assert alice.client is not None
    assert alice.client.user_input("/reply hi", NOW) == [
        Line("error", NOW, "nobody has sent you a private message yet")
    ]
    net.type(BOB, "/msg alice ping", NOW + 1)
    net.type(ALICE, "/reply pong", NOW + 2)
    [line] = bob.messages()[1:]
    assert (line.text, line.fingerprint, line.verified, line.encrypted) == (
        "pong",
        ed_alice.fingerprint,
        True,
        True,
    )
    net.type(BOB, "/ignore alice", NOW + 3)
    net.type(ALICE, "/msg bob psst", NOW + 4)
    assert [line.text for line in bob.messages()] == ["ping", "pong"]


def test_encrypt_sends_the_server_command_and_the_room_says_so(net: E2eNet) -> None:
    net.type(ALICE, "/encrypt", NOW)
    assert [f for s, f in net.sent if s == ALICE and f["type"] == "command"][-1] == {
        "type": "command",
        "name": "encrypt",
        "args": "#general",
    }
    bob = net.sessions[BOB]
    assert "#general is now end-to-end encrypted (by alice)" in bob.texts("notice")
    assert bob.client is not None and bob.client.crypto is not None
    assert bob.client.crypto.rooms.is_encrypted(bob.client.network, "#general")
    net.type(BOB, "now secret", NOW + 1)
    [pending] = [line for line in bob.screen() if line.text == "now secret"]
    assert pending.encrypted and pending.delivery == DELIVERED


def test_devices_lists_and_removes(net: E2eNet, ed_bob: IdentityKey) -> None:
    bob2 = Device(ed_bob, "bob")
    net.connect(BOB2, bob2)
    bob = net.sessions[BOB]
    assert bob.client is not None and bob.client.crypto is not None
    assert bob2.client is not None and bob2.client.crypto is not None
    own, other = bob.client.crypto.device_id, bob2.client.crypto.device_id
    net.type(BOB, "/devices", NOW)
    assert bob.texts("info")[-3:] == [
        f"  {own} (this device)",
        f"  {other}",
        "  /devices remove ID removes one",
    ]
    net.type(BOB, f"/devices remove {own}", NOW)
    assert bob.texts("error")[-1] == "that is this device: remove it from another one"
    net.type(BOB, f"/devices remove {other}", NOW)
    assert f"device {other} removed" in bob.texts("notice")
    net.type(BOB, "/devices", NOW)
    assert bob.texts("info")[-2:] == [f"  {own} (this device)", "  /devices remove ID removes one"]
    net.type(BOB, "/devices drop it", NOW)
    assert bob.texts("error")[-1] == "usage: /devices, or /devices remove DEVICE_ID"


def test_verify_compares_emoji_and_marks_the_user_verified(
    net: E2eNet, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    alice, bob = net.sessions[ALICE], net.sessions[BOB]
    net.type(ALICE, "/verify bob", NOW + 1)
    assert any("wants to verify you" in text for text in bob.texts("notice"))
    net.type(BOB, "/verify yes", NOW + 2)
    emoji = [t for t in alice.texts("notice") if t.startswith("  ") and "numbers" not in t]
    assert emoji and emoji == [t for t in bob.texts("notice") if t in emoji]
    net.type(ALICE, "/verify yes", NOW + 3)
    net.type(BOB, "/verify yes", NOW + 4)
    assert any(t.startswith("✓✓ bob is verified") for t in alice.texts("notice"))
    assert any(t.startswith("✓✓ alice is verified") for t in bob.texts("notice"))
    ledger = json.loads(bob.files["verified"])
    assert [(e["fingerprint"], e["nick"]) for e in ledger["verified"]] == [
        (ed_alice.fingerprint, "alice")
    ]
    net.type(ALICE, "hello, verified", NOW + 5)
    [line] = bob.messages()
    assert line.trusted and "✓✓ <alice> hello, verified" in line.render()
    assert line.to_json()["trusted"] is True


def test_verify_no_refuses_and_verifies_nothing(net: E2eNet) -> None:
    alice, bob = net.sessions[ALICE], net.sessions[BOB]
    net.type(ALICE, "/verify bob", NOW + 1)
    net.type(BOB, "/verify no", NOW + 2)
    assert any("Nothing was verified" in text for text in alice.texts("notice"))
    assert (
        "verified" not in json.loads(bob.files["verified"])
        or not json.loads(bob.files["verified"])["verified"]
    )


def test_verify_needs_a_known_nick(net: E2eNet) -> None:
    net.type(ALICE, "/verify zed", NOW)
    alice = net.sessions[ALICE]
    assert alice.texts("error")[-1] == "unknown nick zed; /whois zed first"
    net.type(ALICE, "/verify", NOW)
    assert alice.texts("error")[-1] == (
        "usage: /verify NICK|yes|no — compare emoji with NICK to verify their key"
    )


def test_help_lists_the_end_to_end_commands(net: E2eNet) -> None:
    net.type(ALICE, "/help", NOW)
    texts = "\n".join(net.sessions[ALICE].texts("info"))
    for usage in ("/encrypt [#room]", "/verify NICK|yes|no", "/devices [remove ID]"):
        assert usage in texts
