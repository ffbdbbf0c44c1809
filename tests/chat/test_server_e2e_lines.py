"""End-to-end encrypted lines at the server (docs/PROTOCOL.md, sections 21 and 23): encrypted rooms,
Megolm room lines and Olm private messages, checked on what the server can read, committed once,
answered once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tlschat.chat.frames import b64
from tlschat.chat.server.events import ChatServer
from tlschat.chat.server.inbox import INBOX_BOUNDS
from tlschat.e2e.device import Device
from tlschat.protocol.identity import IdentityKey
from tlschat.store import SQLiteStore

from .helpers import (
    ALICE,
    BOB,
    CAROL,
    NETWORK,
    NOW,
    NOW_MS,
    OTHER_NETWORK,
    Frames,
    command,
    hello,
    make_server,
    rejected,
    say,
    sent,
    throttled,
)
from .server_e2e_helpers import hello_device, megolm_say, olm, private_say, to

ALICE_LAPTOP = 11
BOB_TABLET = 12


@pytest.fixture
def devices() -> dict[str, Device]:
    return {name: Device.create() for name in ("alice", "alice2", "bob", "bob2", "carol")}


@pytest.fixture
def secret(
    ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey, devices: dict[str, Device]
) -> ChatServer:
    """alice (an operator, on her phone), bob and carol with a device each, all in #secret, which
    alice made encrypted."""
    server = make_server(operators=frozenset({ed_alice.fingerprint}))
    for session_id, key, nick in (
        (ALICE, ed_alice, "alice"),
        (BOB, ed_bob, "bob"),
        (CAROL, ed_carol, "carol"),
    ):
        hello_device(server, session_id, key, nick, devices[nick])
        command(server, session_id, "join", "#secret")
    command(server, ALICE, "encrypt", "#secret")
    return server


# --- encrypted rooms -------------------------------------------------------------------------


def test_an_operator_makes_a_room_encrypted_for_good(
    ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey, tmp_path: Path
) -> None:
    store = SQLiteStore(tmp_path / "chat.db")
    server = make_server(store, operators=frozenset({ed_alice.fingerprint}))
    hello(server, ALICE, ed_alice, "alice")
    hello(server, BOB, ed_bob, "bob")
    hello(server, CAROL, ed_carol, "carol")
    command(server, CAROL, "join", "#elsewhere")
    assert command(server, BOB, "encrypt", "#general") == [
        (BOB, {"type": "error", "text": "/encrypt is for operators"})
    ]
    encrypted = {"type": "encrypted", "room": "#general", "by": "alice"}
    assert command(server, ALICE, "encrypt", "#general") == [
        (ALICE, encrypted),
        (BOB, encrypted),
        (CAROL, encrypted),
        (ALICE, {"type": "notice", "text": "#general is end-to-end encrypted now, for good"}),
    ]
    assert command(server, ALICE, "encrypt", "#general") == [
        (ALICE, {"type": "error", "text": "#general is already encrypted"})
    ]
    assert command(server, ALICE, "encrypt", "general") == [
        (ALICE, {"type": "error", "text": "usage: /encrypt #room"})
    ]
    [(_, joined)] = command(server, BOB, "join", "#general")
    assert joined["encrypted"] is True
    [plain] = to(BOB, command(server, BOB, "join", "#elsewhere"), "joined")
    assert "encrypted" not in plain
    [(_, rooms)] = command(server, BOB, "rooms")
    assert rooms["lines"] == [
        "#elsewhere (2 members)",
        "#general (3 members, end-to-end encrypted)",
    ]
    store.close()
    # It stays encrypted across a restart.
    again = make_server(SQLiteStore(tmp_path / "chat.db"))
    assert again.encrypted_rooms == {"#general"}


def test_help_lists_encrypt_for_operators(secret: ChatServer) -> None:
    [(_, help_text)] = command(secret, ALICE, "help")
    line = f"{'/encrypt #room':<28} make a room end-to-end encrypted, for good"
    assert line in help_text["lines"]
    # Every user's help too: a room's owner and operators may encrypt it
    # (tests/chat/test_server_room_roles.py).
    [(_, for_users)] = command(secret, BOB, "help")
    assert line in for_users["lines"]


def test_a_plain_line_in_an_encrypted_room_and_an_encrypted_one_in_a_plain_room_are_refused(
    secret: ChatServer, ed_alice: IdentityKey
) -> None:
    assert secret.receive(ALICE, say(ed_alice, 1, target="#secret"), NOW) == rejected(
        ALICE, "message rejected: #secret is end-to-end encrypted", 1
    )
    assert secret.receive(ALICE, megolm_say(ed_alice, 2, "#general"), NOW) == rejected(
        ALICE, "message rejected: #general is not encrypted", 2
    )
    assert secret.store.recent_messages("#secret", 50) == []
    assert secret.store.recent_messages("#general", 50) == []


# --- Megolm room lines -----------------------------------------------------------------------


def test_a_megolm_line_is_stored_and_relayed_as_ciphertext(
    secret: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    frame = megolm_say(ed_alice, 1, "#secret")
    out = secret.receive(ALICE, frame, NOW)
    relayed = {
        "type": "message",
        "from": "alice",
        "key": b64(ed_alice.spki_der),
        **{k: v for k, v in frame.items() if k != "type"},
    }
    assert out == [(BOB, relayed), (CAROL, relayed), sent(ALICE, "#secret", 1)]
    [stored] = secret.store.recent_messages("#secret", 50)
    assert (stored.body, stored.signature) == ("", b"")
    assert json.loads(stored.encrypted) == frame["megolm"]
    # History carries it the same way.
    assert to(BOB, command(secret, BOB, "part", "#secret")) == [
        {"type": "parted", "room": "#secret"}
    ]
    [history] = to(BOB, command(secret, BOB, "join", "#secret"), "history")
    assert history["messages"] == [relayed]


def test_a_megolm_line_sent_again_is_acknowledged_again_and_a_replay_is_refused(
    secret: ChatServer, ed_alice: IdentityKey
) -> None:
    frame = megolm_say(ed_alice, 1, "#secret")
    secret.receive(ALICE, frame, NOW)
    assert secret.receive(ALICE, frame, NOW + 5) == [sent(ALICE, "#secret", 1)]
    # The same counter with other ciphertext is a replay, refused; and refused again the same way.
    other = megolm_say(ed_alice, 1, "#secret")
    replayed = rejected(ALICE, "message rejected: replayed or out-of-order counter", 1)
    assert secret.receive(ALICE, other, NOW + 5) == replayed
    assert secret.receive(ALICE, other, NOW + 6) == replayed
    assert len(secret.store.recent_messages("#secret", 50)) == 1


def test_a_megolm_line_in_history_is_recognised_after_a_restart(
    ed_alice: IdentityKey, tmp_path: Path
) -> None:
    """The tag of an encrypted line in history is its ciphertext's digest: a copy sent to a new
    server process (which remembers nothing but its store) is acknowledged, not refused."""
    device = Device.create()
    server = make_server(
        SQLiteStore(tmp_path / "chat.db"), operators=frozenset({ed_alice.fingerprint})
    )
    hello_device(server, ALICE, ed_alice, "alice", device)
    command(server, ALICE, "encrypt", "#general")
    frame = megolm_say(ed_alice, 5, "#general")
    server.receive(ALICE, frame, NOW)
    server.store.close()
    again = make_server(SQLiteStore(tmp_path / "chat.db"))
    hello_device(again, ALICE, ed_alice, "alice", device)
    assert again.receive(ALICE, frame, NOW) == [sent(ALICE, "#general", 5)]
    other = megolm_say(ed_alice, 5, "#general", session=frame["megolm"]["session"])
    assert again.receive(ALICE, other, NOW)[0][1]["text"] == (
        "message rejected: replayed or out-of-order counter"
    )


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"sender": "SHA256:" + "A" * 43}, "message rejected: it names another sender"),
        ({"network": OTHER_NETWORK}, "message rejected: signed for another network"),
        ({"target": "#elsewhere"}, "message rejected: you are not in #elsewhere"),
        ({"ts": NOW_MS + 600_001}, "message rejected: timestamp too far from the server's clock"),
    ],
)
def test_megolm_lines_pass_the_checks_of_signed_lines(
    secret: ChatServer, ed_alice: IdentityKey, change: dict[str, Any], text: str
) -> None:
    frame = megolm_say(ed_alice, 3, "#secret") | change
    assert secret.receive(ALICE, frame, NOW) == rejected(ALICE, text, 3)


def test_a_muted_key_says_nothing_encrypted_in_rooms_but_may_whisper(
    secret: ChatServer, ed_bob: IdentityKey, ed_alice: IdentityKey, devices: dict[str, Device]
) -> None:
    command(secret, ALICE, "mute", "bob")
    assert secret.receive(BOB, megolm_say(ed_bob, 1, "#secret"), NOW) == rejected(
        BOB, "message rejected: you are muted", 1
    )
    keys = [olm(ed_alice.fingerprint, devices["alice"].device_id)]
    out = secret.receive(BOB, private_say(ed_bob, 2, ed_alice.fingerprint, keys), NOW)
    assert out[-1] == sent(BOB, "@" + ed_alice.fingerprint, 2)


def test_a_session_without_a_device_sends_nothing_encrypted(
    secret: ChatServer, ed_dave: IdentityKey, ed_alice: IdentityKey, devices: dict[str, Device]
) -> None:
    hello(secret, 4, ed_dave, "dave")
    command(secret, 4, "join", "#secret")
    refusal = "upload your device keys first"
    assert secret.receive(4, megolm_say(ed_dave, 1, "#secret"), NOW) == rejected(4, refusal, 1)
    keys = [olm(ed_alice.fingerprint, devices["alice"].device_id)]
    frame = private_say(ed_dave, 2, ed_alice.fingerprint, keys)
    assert secret.receive(4, frame, NOW) == rejected(4, refusal, 2)


def test_encrypted_lines_share_flood_control_and_its_order_with_plain_ones(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    server = make_server(operators=frozenset({ed_alice.fingerprint}), burst=2, rate_per_second=1.0)
    hello_device(server, ALICE, ed_alice, "alice", Device.create())
    hello(server, BOB, ed_bob, "bob")
    command(server, ALICE, "encrypt", "#general")
    for counter in (1, 2):
        assert server.receive(ALICE, megolm_say(ed_alice, counter), NOW)[-1] == sent(
            ALICE, "#general", counter
        )
    third, fourth = megolm_say(ed_alice, 3), megolm_say(ed_alice, 4)
    assert server.receive(ALICE, third, NOW) == throttled(ALICE, 1.0, 3)
    # Refilled, the fourth is still held behind the third, until the third comes again.
    assert server.receive(ALICE, fourth, NOW + 1)[0][1]["retry_after"] == 0.0
    assert server.receive(ALICE, third, NOW + 1)[-1] == sent(ALICE, "#general", 3)
    assert server.receive(ALICE, fourth, NOW + 2)[-1] == sent(ALICE, "#general", 4)
    stored = [m.counter for m in server.store.recent_messages("#general", 50)]
    assert stored == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("megolm", "text"),
    [
        ({"session": "s", "ct": "A" * 8193}, "'ct' is longer than 8192 bytes"),
        ({"session": "s" * 65, "ct": "AAAA"}, "'session' is longer than 64 bytes"),
        ({"session": "s!", "ct": "AAAA"}, "'session' is not a Megolm session id"),
        ({"session": "s", "ct": "not base64"}, "'ct' is not base64"),
        ("AAAA", "'megolm' must be an object"),
    ],
)
def test_oversize_or_malformed_megolm_fields_are_refused(
    secret: ChatServer, ed_alice: IdentityKey, megolm: object, text: str
) -> None:
    frame = megolm_say(ed_alice, 1, "#secret") | {"megolm": megolm}
    assert secret.receive(ALICE, frame, NOW) == [(ALICE, {"type": "error", "text": text})]


def test_a_frame_both_encrypted_and_plain_is_refused(
    secret: ChatServer, ed_alice: IdentityKey
) -> None:
    frame = megolm_say(ed_alice, 1, "#secret") | {"body": "hello", "sig": "AAAA"}
    assert secret.receive(ALICE, frame, NOW) == [
        (ALICE, {"type": "error", "text": "an encrypted message carries no 'body' or 'sig'"})
    ]


# --- Olm private messages --------------------------------------------------------------------


@pytest.fixture
def whisper(ed_alice: IdentityKey, ed_bob: IdentityKey, devices: dict[str, Device]) -> ChatServer:
    """alice on two devices (her phone sends), bob on two devices (his tablet offline)."""
    server = make_server()
    hello_device(server, ALICE, ed_alice, "alice", devices["alice"])
    hello_device(server, ALICE_LAPTOP, ed_alice, "alice", devices["alice2"])
    hello_device(server, BOB, ed_bob, "bob", devices["bob"])
    hello_device(server, BOB_TABLET, ed_bob, "bob", devices["bob2"])
    server.disconnect(BOB_TABLET, "quit")
    return server


def _keys_for(
    ed_alice: IdentityKey, ed_bob: IdentityKey, devices: dict[str, Device]
) -> list[dict[str, Any]]:
    return [
        olm(ed_bob.fingerprint, devices["bob"].device_id),
        olm(ed_bob.fingerprint, devices["bob2"].device_id),
        olm(ed_alice.fingerprint, devices["alice2"].device_id),
    ]


def test_a_private_message_goes_to_every_device_with_its_own_key(
    whisper: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey, devices: dict[str, Device]
) -> None:
    keys = _keys_for(ed_alice, ed_bob, devices)
    frame = private_say(ed_alice, 1, ed_bob.fingerprint, keys)
    out = whisper.receive(ALICE, frame, NOW)
    message = {
        "type": "message",
        "from": "alice",
        "key": b64(ed_alice.spki_der),
        "network": NETWORK,
        "target": "@" + ed_bob.fingerprint,
        "sender": ed_alice.fingerprint,
        "counter": 1,
        "ts": NOW_MS,
        "olm_private": {"ct": frame["olm_private"]["ct"]},
    }

    def item(key: dict[str, Any]) -> dict[str, Any]:
        return {
            "ts": NOW_MS,
            "from": ed_alice.fingerprint,
            "from_device": devices["alice"].device_id,
            "olm": {"type": key["type"], "body": key["body"]},
            "message": message,
        }

    def received(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
        [page] = frames
        assert page["type"] == "device_messages" and page["more"] is False
        return [{k: v for k, v in entry.items() if k != "id"} for entry in page["messages"]]

    assert received(to(BOB, out)) == [item(keys[0])]
    assert received(to(ALICE_LAPTOP, out)) == [item(keys[2])]
    assert out[-1] == sent(ALICE, "@" + ed_bob.fingerprint, 1)
    assert to(ALICE, out) == [out[-1][1]]
    # bob's tablet, offline, gets it when it connects.
    later = hello_device(whisper, 20, ed_bob, "bob", devices["bob2"], now=NOW + 3600)
    assert received(to(20, later, "device_messages")) == [item(keys[1])]
    assert whisper.store.last_counter(ed_alice.fingerprint) == 1


def test_an_encrypted_private_message_to_a_key_that_is_offline_is_kept(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    server = make_server()
    phone, laptop = Device.create(), Device.create()
    hello_device(server, ALICE, ed_alice, "alice", phone)
    hello_device(server, BOB, ed_bob, "bob", laptop)
    server.disconnect(BOB, "quit")
    keys = [olm(ed_bob.fingerprint, laptop.device_id)]
    assert server.receive(ALICE, private_say(ed_alice, 1, ed_bob.fingerprint, keys), NOW) == [
        sent(ALICE, "@" + ed_bob.fingerprint, 1)
    ]
    out = hello_device(server, BOB, ed_bob, "bob", laptop)
    [page] = to(BOB, out, "device_messages")
    assert page["messages"][0]["message"]["counter"] == 1


@pytest.mark.parametrize("case", ["one missing", "one too many", "the sending device"])
def test_keys_for_other_devices_than_the_directory_lists_are_stale(
    whisper: ChatServer,
    ed_alice: IdentityKey,
    ed_bob: IdentityKey,
    devices: dict[str, Device],
    case: str,
) -> None:
    keys = _keys_for(ed_alice, ed_bob, devices)
    changed = {
        "one missing": keys[:1] + keys[2:],
        "one too many": [*keys, olm(ed_bob.fingerprint, devices["carol"].device_id)],
        "the sending device": [*keys, olm(ed_alice.fingerprint, devices["alice"].device_id)],
    }[case]
    stale = [ed_alice.fingerprint] if case == "the sending device" else [ed_bob.fingerprint]
    nick = "alice" if case == "the sending device" else "bob"
    frame = private_say(ed_alice, 7, ed_bob.fingerprint, changed)
    refusal = {
        "type": "error",
        "text": f"message not sent: the devices of {nick} changed",
        "counter": 7,
        "stale": stale,
    }
    assert whisper.receive(ALICE, frame, NOW) == [(ALICE, refusal)]
    # Its copy gets the same answer; the line encrypted again, same counter, goes through.
    assert whisper.receive(ALICE, frame, NOW) == [(ALICE, refusal)]
    again = private_say(ed_alice, 7, ed_bob.fingerprint, keys)
    assert whisper.receive(ALICE, again, NOW)[-1] == sent(ALICE, "@" + ed_bob.fingerprint, 7)


def test_both_keys_stale_are_both_named(
    whisper: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey, devices: dict[str, Device]
) -> None:
    keys = [olm(ed_bob.fingerprint, devices["bob"].device_id)]
    [(_, refusal)] = whisper.receive(ALICE, private_say(ed_alice, 1, ed_bob.fingerprint, keys), NOW)
    assert refusal["stale"] == [ed_bob.fingerprint, ed_alice.fingerprint]


def test_keys_for_a_third_key_or_a_recipient_without_devices_are_refused(
    whisper: ChatServer,
    ed_alice: IdentityKey,
    ed_bob: IdentityKey,
    ed_carol: IdentityKey,
    devices: dict[str, Device],
) -> None:
    keys = [
        *_keys_for(ed_alice, ed_bob, devices),
        olm(ed_carol.fingerprint, devices["carol"].device_id),
    ]
    assert whisper.receive(
        ALICE, private_say(ed_alice, 1, ed_bob.fingerprint, keys), NOW
    ) == rejected(ALICE, "message rejected: its keys name a device of a third key", 1)
    hello(whisper, CAROL, ed_carol, "carol")
    keys = [olm(ed_alice.fingerprint, devices["alice2"].device_id)]
    assert whisper.receive(
        ALICE, private_say(ed_alice, 2, ed_carol.fingerprint, keys), NOW
    ) == rejected(ALICE, "message not delivered: carol has no device that can read it", 2)


def test_a_private_message_sent_again_is_stored_once(
    whisper: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey, devices: dict[str, Device]
) -> None:
    frame = private_say(ed_alice, 1, ed_bob.fingerprint, _keys_for(ed_alice, ed_bob, devices))
    whisper.receive(ALICE, frame, NOW)
    assert whisper.receive(ALICE, frame, NOW + 1) == [sent(ALICE, "@" + ed_bob.fingerprint, 1)]
    bob2 = devices["bob2"].device_id
    assert len(whisper.store.inbox(ed_bob.fingerprint, bob2, 0, NOW, INBOX_BOUNDS)) == 1
    # The same counter with other ciphertext is a replay.
    other = private_say(ed_alice, 1, ed_bob.fingerprint, _keys_for(ed_alice, ed_bob, devices))
    assert whisper.receive(ALICE, other, NOW + 1) == rejected(
        ALICE, "message rejected: replayed or out-of-order counter", 1
    )


def test_the_recipient_away_is_said_for_encrypted_messages_too(
    whisper: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey, devices: dict[str, Device]
) -> None:
    command(whisper, BOB, "away", "lunch")
    frame = private_say(ed_alice, 1, ed_bob.fingerprint, _keys_for(ed_alice, ed_bob, devices))
    out: Frames = whisper.receive(ALICE, frame, NOW)
    assert to(ALICE, out) == [
        {"type": "notice", "text": "bob is away: lunch"},
        {"type": "sent", "target": "@" + ed_bob.fingerprint, "counter": 1},
    ]


@pytest.mark.parametrize(
    ("private", "text"),
    [
        ({"ct": "A" * 8193, "keys": []}, "'ct' is longer than 8192 bytes"),
        ({"ct": "AAAA", "keys": [{}] * 17}, "'keys' has more than 16 items"),
        ({"ct": "AAAA"}, "'keys' must be a list"),
        (
            {
                "ct": "AAAA",
                "keys": [
                    {
                        "fingerprint": "SHA256:" + "A" * 43,
                        "device": "A" * 16,
                        "type": 1,
                        "body": "aGk=",
                    }
                ]
                * 2,
            },
            "'keys' names a device twice",
        ),
    ],
)
def test_oversize_or_malformed_private_fields_are_refused(
    whisper: ChatServer,
    ed_alice: IdentityKey,
    ed_bob: IdentityKey,
    private: dict[str, Any],
    text: str,
) -> None:
    frame = private_say(ed_alice, 1, ed_bob.fingerprint, []) | {"olm_private": private}
    assert whisper.receive(ALICE, frame, NOW) == [(ALICE, {"type": "error", "text": text})]


def test_a_private_target_must_be_a_fingerprint(whisper: ChatServer, ed_alice: IdentityKey) -> None:
    frame = private_say(ed_alice, 1, "bob", [])
    assert whisper.receive(ALICE, frame, NOW) == rejected(
        ALICE, "message rejected: a private message names a fingerprint", 1
    )


def test_a_private_line_with_megolm_is_refused(
    whisper: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    frame = megolm_say(ed_alice, 1, "@" + ed_bob.fingerprint)
    assert whisper.receive(ALICE, frame, NOW) == [
        (
            ALICE,
            {"type": "error", "text": "a private message is 'olm_private', a room line 'megolm'"},
        )
    ]
