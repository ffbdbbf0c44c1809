"""ClientCrypto: the device's state, kept in sealed files, and its one-time keys; Line's marks."""

from __future__ import annotations

import pytest

from tlschat.chat.client.crypto import STATE_FILES, ClientCrypto
from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.e2e_frames import MAX_UPLOAD_KEYS, parse_device_keys, parse_one_time_key
from tlschat.chat.frames import b64
from tlschat.chat.lines import Line
from tlschat.e2e.device import verify_device_keys, verify_one_time_key
from tlschat.e2e.errors import UnreadablePickle
from tlschat.protocol.identity import IdentityKey, PeerIdentity

from .e2e_net import PICKLE_KEY, Device, E2eNet
from .helpers import NOW, make_server

OTHER_KEY = bytes(range(1, 33))


def test_a_first_run_makes_a_device_and_every_state_file(ed_alice: IdentityKey) -> None:
    crypto = ClientCrypto(ed_alice, PICKLE_KEY, {})
    files = crypto.take_dirty()
    assert sorted(files) == sorted(STATE_FILES)
    assert crypto.take_dirty() == {}
    again = ClientCrypto(ed_alice, PICKLE_KEY, files)
    assert again.device_id == crypto.device_id and again.own_keys == crypto.own_keys
    assert again.take_dirty() == {}


def test_state_files_open_with_their_pickle_key_only(ed_alice: IdentityKey) -> None:
    files = ClientCrypto(ed_alice, PICKLE_KEY, {}).take_dirty()
    others = ClientCrypto(ed_alice, OTHER_KEY, {}).take_dirty()
    for name in ("device", "olm_sessions", "room_keys", "rooms"):
        with pytest.raises(UnreadablePickle):
            ClientCrypto(ed_alice, PICKLE_KEY, {**files, name: others[name]})
        damaged = {**files, name: files[name][:-8] + "AAAAAAAA"}
        with pytest.raises(UnreadablePickle):
            ClientCrypto(ed_alice, PICKLE_KEY, damaged)
    with pytest.raises(ValueError):
        ClientCrypto(ed_alice, bytes(31), files)


def test_no_state_file_holds_what_was_said(ed_alice: IdentityKey, ed_bob: IdentityKey) -> None:
    net = E2eNet(make_server(operators=frozenset({ed_alice.fingerprint})))
    alice, bob = Device(ed_alice, "alice"), Device(ed_bob, "bob")
    net.connect(1, alice)
    net.connect(2, bob)
    net.type(1, "/encrypt #general", NOW)
    net.type(1, "canary in the room", NOW + 1)
    net.type(2, "/msg alice canary in private", NOW + 2)
    assert [line.text for line in alice.messages()][-1] == "canary in private"
    for device in (alice, bob):
        for text in device.files.values():
            assert "canary" not in text
    # Restarted from its files, bob's device still reads the room's history.
    net.disconnect(2)
    bob.client, bob.shown = None, []
    net.connect(2, bob, NOW + 3)
    assert "canary in the room" in [line.text for line in bob.messages()]


def test_device_keys_in_hello_carry_the_identity_key_that_signed_them(
    ed_alice: IdentityKey,
) -> None:
    crypto = ClientCrypto(ed_alice, PICKLE_KEY, {})
    hello = ChatClient(ed_alice, "alice", crypto=crypto).hello_frame()
    fields = hello["device_keys"]
    assert fields["key"] == b64(ed_alice.spki_der)
    keys = parse_device_keys(fields)
    assert keys == crypto.own_keys
    assert verify_device_keys(keys, PeerIdentity.from_spki(ed_alice.spki_der))


def test_a_new_devices_first_hello_carries_its_keys_and_later_ones_do_not(
    ed_alice: IdentityKey,
) -> None:
    crypto = ClientCrypto(ed_alice, PICKLE_KEY, {})
    client = ChatClient(ed_alice, "alice", crypto=crypto)
    keys = [parse_one_time_key(item) for item in client.hello_frame()["one_time_keys"]]
    assert len(keys) == MAX_UPLOAD_KEYS and [k.fallback for k in keys].count(True) == 1
    assert all(verify_one_time_key(crypto.own_keys, key) for key in keys)
    assert "device" in crypto.take_dirty()  # published: written before the hello goes
    assert "one_time_keys" not in client.hello_frame()
    held = {"type": "keys_uploaded", "device": crypto.device_id, "one_time_keys": 49}
    assert client.handle({**held, "fallback": True}, NOW) == [] and client.take_outbox() == []


def test_one_time_keys_are_topped_up_below_twenty_five(ed_alice: IdentityKey) -> None:
    crypto = ClientCrypto(ed_alice, PICKLE_KEY, {})
    crypto.take_dirty()
    first = crypto.upload_frame(0, False)
    assert first is not None
    keys = [parse_one_time_key(item) for item in first["one_time_keys"]]
    assert len(keys) == MAX_UPLOAD_KEYS and [k.fallback for k in keys].count(True) == 1
    assert all(verify_one_time_key(crypto.own_keys, key) for key in keys)
    assert list(crypto.take_dirty()) == ["device"]  # published: written before it goes
    assert crypto.upload_frame(25, True) is None
    more = crypto.upload_frame(24, True)
    assert more is not None
    again = [parse_one_time_key(item) for item in more["one_time_keys"]]
    assert len(again) == MAX_UPLOAD_KEYS and not any(k.fallback for k in again)
    assert not {k.key_id for k in again} & {k.key_id for k in keys}
    fallback_only = crypto.upload_frame(40, False)
    assert fallback_only is not None
    (fallback,) = fallback_only["one_time_keys"]
    assert fallback["fallback"] is True


def test_keys_uploaded_for_another_device_asks_for_nothing(ed_alice: IdentityKey) -> None:
    client = ChatClient(ed_alice, "alice", crypto=ClientCrypto(ed_alice, PICKLE_KEY, {}))
    frame = {"type": "keys_uploaded", "device": "A" * 16, "one_time_keys": 0, "fallback": False}
    assert client.handle(frame, NOW) == [] and client.take_outbox() == []
    assert client.crypto is not None
    own = {**frame, "device": client.crypto.device_id}
    assert client.handle(own, NOW) == []
    [upload] = client.take_outbox()
    assert upload["type"] == "keys_upload"


def test_encrypted_marks_render_and_serialize() -> None:
    waiting = Line("message", NOW, "", "bob", room="#a", ref=7, encrypted=True)
    assert waiting.render("#a").endswith("] 🔒 waiting for the key <bob>")
    assert waiting.to_json() == {
        "kind": "message",
        "timestamp": NOW,
        "nick": "bob",
        "room": "#a",
        "ref": 7,
        "encrypted": True,
    }  # no "verified": not checked yet
    shown = Line("message", NOW, "hi", "bob", room="#a", verified=True, encrypted=True, ref=7)
    assert shown.render("#a").endswith("] 🔒✓ <bob> hi")
    trusted = Line("action", NOW, "waves", "bob", room="#a", verified=True, trusted=True)
    assert trusted.render("#a").endswith("] ✓✓ * bob waves")
    failed = Line(
        "message", NOW, "x", "bob", room="#a", verified=False, encrypted=True, problem="p"
    )
    assert failed.render("#a").endswith("] ✗ UNVERIFIED (p) <bob> x")
    plain = Line("message", NOW, "x", "bob", room="#a", verified=True, encrypted=False)
    assert plain.render("#a").endswith("] ✓ <bob> x") and plain.to_json()["encrypted"] is False
