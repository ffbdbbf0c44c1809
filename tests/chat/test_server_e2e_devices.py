"""The server's key directory (docs/PROTOCOL.md, "End-to-end layer"): device keys in hello, one-time
keys uploaded and claimed once each, queries, removals, the ninth device, keys_changed."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from tlschat.chat.e2e_frames import device_keys_fields
from tlschat.chat.frames import b64
from tlschat.chat.limits import frame_cost
from tlschat.chat.server.events import ChatServer
from tlschat.e2e.device import Device, device_keys_signed_bytes, sign_device_keys
from tlschat.protocol.identity import IdentityKey
from tlschat.store import SQLiteStore

from .helpers import ALICE, BOB, CAROL, NOW, command, hello, make_server
from .server_e2e_helpers import device_keys, fallback_key, hello_device, one_time_keys, to

ELSEWHERE = 9


@pytest.fixture
def phone() -> Device:
    return Device.create()


@pytest.fixture
def laptop() -> Device:
    return Device.create()


def refused(out: list[tuple[int, dict[str, Any]]], session_id: int) -> str:
    [error] = to(session_id, out, "error")
    return str(error["text"])


# --- hello -----------------------------------------------------------------------------------


def test_hello_with_device_keys_stores_the_device_before_the_session_joins(
    ed_alice: IdentityKey, phone: Device
) -> None:
    server = make_server()
    out = hello_device(server, ALICE, ed_alice, "alice", phone)
    assert [f["type"] for _, f in out] == ["welcome", "keys_uploaded", "keys_changed", "joined"]
    assert to(ALICE, out, "keys_uploaded") == [
        {"type": "keys_uploaded", "device": phone.device_id, "one_time_keys": 0, "fallback": False}
    ]
    [stored] = server.store.devices_of(ed_alice.fingerprint)
    assert json.loads(stored.keys_json) == device_keys(ed_alice, phone)
    assert stored.last_seen == NOW
    assert server.sessions[ALICE].device == phone.device_id


def test_a_new_device_brings_its_first_keys_in_hello_and_is_never_listed_without_them(
    ed_alice: IdentityKey, ed_bob: IdentityKey, phone: Device, laptop: Device
) -> None:
    server = make_server()
    keys = [*one_time_keys(phone, 3), fallback_key(phone)]
    out = hello_device(server, ALICE, ed_alice, "alice", phone, one_time_keys=keys)
    assert [f["type"] for _, f in out] == ["welcome", "keys_changed", "keys_uploaded", "joined"]
    assert to(ALICE, out, "keys_uploaded") == [
        {"type": "keys_uploaded", "device": phone.device_id, "one_time_keys": 3, "fallback": True}
    ]
    # Whoever sees alice join can start a session with her device at once.
    hello_device(server, BOB, ed_bob, "bob", laptop)
    claim = {
        "type": "keys_claim",
        "devices": [{"fingerprint": ed_alice.fingerprint, "device": phone.device_id}],
    }
    [(_, claimed)] = server.receive(BOB, claim, NOW)
    assert claimed["keys"][0]["one_time_key"] == keys[0]


def test_bad_one_time_keys_in_hello_refuse_the_device(ed_alice: IdentityKey, phone: Device) -> None:
    server = make_server()
    keys = [fallback_key(phone), fallback_key(phone)]
    out = hello_device(server, ALICE, ed_alice, "alice", phone, one_time_keys=keys)
    assert refused(out, ALICE) == (
        "device keys refused: 'one_time_keys' holds more than one fallback key; "
        "this session has no end-to-end encryption"
    )
    assert server.store.devices_of(ed_alice.fingerprint) == []


def test_the_same_device_again_is_no_news(ed_alice: IdentityKey, phone: Device) -> None:
    server = make_server()
    hello_device(server, ALICE, ed_alice, "alice", phone)
    out = hello_device(server, ELSEWHERE, ed_alice, "alice", phone, now=NOW + 5)
    assert to(ALICE, out, "keys_changed") == to(ELSEWHERE, out, "keys_changed") == []
    assert [d.last_seen for d in server.store.devices_of(ed_alice.fingerprint)] == [NOW + 5]
    assert server.sessions[ELSEWHERE].device == phone.device_id


def test_a_hello_without_device_keys_has_no_device(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    server = make_server()
    out = hello(server, ALICE, ed_alice, "alice")
    assert [f["type"] for _, f in out] == ["welcome", "joined"]
    assert server.sessions[ALICE].device is None
    item = {"fingerprint": ed_bob.fingerprint, "device": "A" * 16, "type": 1, "body": "aGk="}
    for frame in (
        {"type": "to_device", "messages": [item]},
        {"type": "keys_upload", "one_time_keys": []},
        {"type": "device_ack", "upto": 1},
    ):
        assert server.receive(ALICE, frame, NOW) == [
            (ALICE, {"type": "error", "text": "upload your device keys first"})
        ]


def _forged(owner: IdentityKey, signer: IdentityKey, device: Device) -> dict[str, Any]:
    """Device keys naming ``owner`` but signed by ``signer``."""
    payload = device_keys_signed_bytes(
        owner.fingerprint, device.device_id, device.curve25519_key, device.ed25519_key
    )
    keys = dataclasses.replace(sign_device_keys(device, owner), signature=signer.sign(payload))
    return {**device_keys_fields(keys), "key": b64(owner.spki_der)}


@pytest.mark.parametrize(
    ("case", "text"),
    [
        ("signed by another key", "your key did not sign them, or the device id is not theirs"),
        ("naming another key", "they name another key"),
        ("another device id", "your key did not sign them, or the device id is not theirs"),
        ("not an object", "'device_keys' must be an object"),
        ("oversize signature", "'sig' is longer than 2048 bytes"),
        ("not a key", "'curve25519' is not a 32-byte key"),
        ("with another identity key", "their 'key' is not the key of this session"),
        ("without the identity key", "'key' must be a string"),
    ],
)
def test_bad_device_keys_are_refused_and_the_session_carries_on_without_a_device(
    ed_alice: IdentityKey,
    rsa_mallory: IdentityKey,
    phone: Device,
    laptop: Device,
    case: str,
    text: str,
) -> None:
    mine = device_keys(ed_alice, phone)
    entry: object
    if case == "signed by another key":
        entry = _forged(ed_alice, rsa_mallory, phone)
    elif case == "naming another key":
        entry = device_keys(rsa_mallory, phone)
    elif case == "another device id":
        entry = mine | {"device": laptop.device_id}
    elif case == "not an object":
        entry = [mine]
    elif case == "oversize signature":
        entry = mine | {"sig": "A" * 2052}
    elif case == "with another identity key":
        entry = mine | {"key": b64(rsa_mallory.spki_der)}
    elif case == "without the identity key":
        entry = {name: value for name, value in mine.items() if name != "key"}
    else:
        entry = mine | {"curve25519": "!" * 43}
    server = make_server()
    out = hello_device(server, ALICE, ed_alice, "alice", None, device_keys=entry)
    assert refused(out, ALICE) == (
        f"device keys refused: {text}; this session has no end-to-end encryption"
    )
    assert [f["type"] for _, f in out] == ["welcome", "error", "joined"]
    assert server.store.devices_of(ed_alice.fingerprint) == []
    assert server.store.devices_of(rsa_mallory.fingerprint) == []
    assert server.sessions[ALICE].device is None


def test_a_device_signed_by_an_rsa_key_is_accepted(rsa_alice: IdentityKey, phone: Device) -> None:
    server = make_server()
    hello_device(server, ALICE, rsa_alice, "alice", phone)
    assert server.sessions[ALICE].device == phone.device_id


# --- one-time keys ---------------------------------------------------------------------------


def test_keys_upload_counts_what_the_server_holds(ed_alice: IdentityKey, phone: Device) -> None:
    server = make_server()
    hello_device(server, ALICE, ed_alice, "alice", phone)
    keys = one_time_keys(phone, 10)
    upload = {"type": "keys_upload", "one_time_keys": [*keys, fallback_key(phone)]}
    uploaded = {"type": "keys_uploaded", "device": phone.device_id}
    assert server.receive(ALICE, upload, NOW) == [
        (ALICE, {**uploaded, "one_time_keys": 10, "fallback": True})
    ]
    # Keys held already are not counted twice; an empty upload asks for the count.
    again = {"type": "keys_upload", "one_time_keys": keys[:4]}
    assert server.receive(ALICE, again, NOW) == [
        (ALICE, {**uploaded, "one_time_keys": 10, "fallback": True})
    ]
    assert server.receive(ALICE, {"type": "keys_upload", "one_time_keys": []}, NOW) == [
        (ALICE, {**uploaded, "one_time_keys": 10, "fallback": True})
    ]


def test_the_server_keeps_at_most_100_one_time_keys(ed_alice: IdentityKey, phone: Device) -> None:
    server = make_server()
    hello_device(server, ALICE, ed_alice, "alice", phone)
    counts = []
    for _ in range(3):
        [(_, answer)] = server.receive(
            ALICE, {"type": "keys_upload", "one_time_keys": one_time_keys(phone, 50)}, NOW
        )
        counts.append(answer["one_time_keys"])
    assert counts == [50, 100, 100]


@pytest.mark.parametrize(
    ("keys", "text"),
    [
        ("51", "'one_time_keys' has more than 50 items"),
        ("two fallbacks", "'one_time_keys' holds more than one fallback key"),
        ("an id twice", "'one_time_keys' names a key twice"),
        ("not a list", "'one_time_keys' must be a list"),
        ("bad id", "'id' is not a key id"),
    ],
)
def test_bad_uploads_are_refused(
    ed_alice: IdentityKey, phone: Device, keys: str, text: str
) -> None:
    server = make_server()
    hello_device(server, ALICE, ed_alice, "alice", phone)
    key = one_time_keys(phone, 1)[0]
    value: object = {
        "51": [key] * 51,
        "two fallbacks": [fallback_key(phone), fallback_key(phone)],
        "an id twice": [key, key],
        "not a list": key,
        "bad id": [key | {"id": "no spaces"}],
    }[keys]
    out = server.receive(ALICE, {"type": "keys_upload", "one_time_keys": value}, NOW)
    assert out == [(ALICE, {"type": "error", "text": text})]
    assert server.store.one_time_key_count(ed_alice.fingerprint, phone.device_id) == (0, False)


def test_keys_query_answers_one_frame_per_fingerprint(
    ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey, phone: Device, laptop: Device
) -> None:
    server = make_server()
    hello_device(server, ALICE, ed_alice, "alice", phone)
    hello_device(server, BOB, ed_bob, "bob", laptop)
    query = [ed_bob.fingerprint, ed_carol.fingerprint, ed_bob.fingerprint, ed_alice.fingerprint]
    hello(server, CAROL, ed_carol, "carol")
    out = server.receive(CAROL, {"type": "keys_query", "fingerprints": query}, NOW)
    assert out == [
        (
            CAROL,
            {
                "type": "keys",
                "fingerprint": ed_bob.fingerprint,
                "devices": [device_keys(ed_bob, laptop)],
            },
        ),
        (CAROL, {"type": "keys", "fingerprint": ed_carol.fingerprint, "devices": []}),
        (
            CAROL,
            {
                "type": "keys",
                "fingerprint": ed_alice.fingerprint,
                "devices": [device_keys(ed_alice, phone)],
            },
        ),
    ]


@pytest.mark.parametrize(
    ("fingerprints", "text"),
    [
        (["SHA256:" + "A" * 43] * 33, "'fingerprints' has more than 32 items"),
        (["bob"], "'fingerprints' must hold fingerprints"),
        ([7], "'fingerprints' must hold fingerprints"),
        ("SHA256:" + "A" * 43, "'fingerprints' must be a list"),
    ],
)
def test_bad_queries_are_refused(room: ChatServer, fingerprints: object, text: str) -> None:
    out = room.receive(BOB, {"type": "keys_query", "fingerprints": fingerprints}, NOW)
    assert out == [(BOB, {"type": "error", "text": text})]


def _claim(server: ChatServer, session_id: int, *devices: tuple[str, str]) -> list[dict[str, Any]]:
    frame = {
        "type": "keys_claim",
        "devices": [{"fingerprint": fp, "device": device} for fp, device in devices],
    }
    [(_, answer)] = server.receive(session_id, frame, NOW)
    assert answer["type"] == "claimed", answer
    return list(answer["keys"])


def test_each_one_time_key_is_handed_out_once_then_the_fallback_key(
    ed_alice: IdentityKey, ed_bob: IdentityKey, phone: Device, laptop: Device
) -> None:
    server = make_server()
    hello_device(server, ALICE, ed_alice, "alice", phone)
    hello_device(server, BOB, ed_bob, "bob", laptop)
    keys, fallback = one_time_keys(laptop, 3), fallback_key(laptop)
    server.receive(BOB, {"type": "keys_upload", "one_time_keys": [*keys, fallback]}, NOW)
    handed = [
        _claim(server, ALICE, (ed_bob.fingerprint, laptop.device_id))[0]["one_time_key"]
        for _ in range(5)
    ]
    assert handed == [*keys, fallback, fallback]
    # An unknown device (and a device of a key with none) has none to hand out.
    unknown = _claim(server, ALICE, (ed_bob.fingerprint, phone.device_id))
    assert unknown == [
        {"fingerprint": ed_bob.fingerprint, "device": phone.device_id, "one_time_key": None}
    ]
    assert server.store.one_time_key_count(ed_bob.fingerprint, laptop.device_id) == (0, True)


def test_a_hostile_key_draining_keys_is_held_to_its_work_budget(
    ed_alice: IdentityKey, rsa_mallory: IdentityKey, phone: Device, laptop: Device
) -> None:
    """Draining a device's one-time keys leaves it its fallback key (a session still starts), and
    costs the drainer one unit of its work budget per key: 300 at once, then 30 a second."""
    server = make_server(work_burst=40, work_rate=1.0)
    hello_device(server, ALICE, ed_alice, "alice", phone)
    hello(server, BOB, rsa_mallory, "mallory")
    keys, fallback = one_time_keys(phone, 50), fallback_key(phone)
    server.receive(ALICE, {"type": "keys_upload", "one_time_keys": keys}, NOW)
    server.receive(ALICE, {"type": "keys_upload", "one_time_keys": [fallback]}, NOW)
    target = {"fingerprint": ed_alice.fingerprint, "device": phone.device_id}
    handed: list[Any] = []
    refusals = []
    for _ in range(60):
        [(_, answer)] = server.receive(BOB, {"type": "keys_claim", "devices": [target]}, NOW)
        if answer["type"] == "claimed":
            handed.append(answer["keys"][0]["one_time_key"])
        else:
            refusals.append(answer)
    assert handed == keys[:40]
    assert refusals[0]["text"].startswith("slow down: too many commands; you can send again in")
    assert refusals[0]["retry_after"] == pytest.approx(1.0)
    # Later, past the budget's refill, the keys run out and the fallback key is handed out.
    for second in range(1, 20):
        frame = {"type": "keys_claim", "devices": [target]}
        [(_, answer)] = server.receive(BOB, frame, NOW + second)
        handed.append(answer["keys"][0]["one_time_key"])
    assert handed[:50] == keys and handed[50:] == [fallback] * 9
    assert len({json.dumps(k) for k in handed[:50]}) == 50


@pytest.mark.parametrize(
    ("devices", "text"),
    [
        (
            [{"fingerprint": "SHA256:" + "A" * 43, "device": "A" * 16}] * 2,
            "'devices' names a device twice",
        ),
        (
            [{"fingerprint": "SHA256:" + "A" * 43, "device": f"A{n:0>15}"} for n in range(33)],
            "'devices' has more than 32 items",
        ),
        (
            [{"fingerprint": "SHA256:" + "A" * 43, "device": "a" * 16}],
            "'device' is not a device id",
        ),
        ([{"fingerprint": "bob", "device": "A" * 16}], "'fingerprint' is not a fingerprint"),
        (["SHA256:" + "A" * 43], "'devices' must hold objects"),
    ],
)
def test_bad_claims_are_refused(room: ChatServer, devices: object, text: str) -> None:
    out = room.receive(BOB, {"type": "keys_claim", "devices": devices}, NOW)
    assert out == [(BOB, {"type": "error", "text": text})]


# --- removal, the ninth device, keys_changed -------------------------------------------------


def test_device_remove_forgets_the_device_and_tells_who_shares_a_room(
    ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey, phone: Device, laptop: Device
) -> None:
    server = make_server()
    hello_device(server, ALICE, ed_alice, "alice", phone)
    hello_device(server, ELSEWHERE, ed_alice, "alice", laptop)
    hello(server, BOB, ed_bob, "bob")
    hello(server, CAROL, ed_carol, "carol")
    command(server, CAROL, "part", "#general")
    server.receive(
        ELSEWHERE, {"type": "keys_upload", "one_time_keys": one_time_keys(laptop, 5)}, NOW
    )
    out = server.receive(ALICE, {"type": "device_remove", "device": laptop.device_id}, NOW)
    changed = {"type": "keys_changed", "fingerprint": ed_alice.fingerprint}
    assert to(ALICE, out) == [
        {"type": "notice", "text": f"device {laptop.device_id} removed"},
        changed,
    ]
    assert to(ELSEWHERE, out) == [
        {
            "type": "notice",
            "text": f"device {laptop.device_id} was removed by a session of your key; this "
            "session has no end-to-end encryption until it reconnects",
        },
        changed,
    ]
    assert to(BOB, out) == [changed]
    assert to(CAROL, out) == []  # shares no room with alice
    assert [d.device for d in server.store.devices_of(ed_alice.fingerprint)] == [phone.device_id]
    assert server.store.one_time_key_count(ed_alice.fingerprint, laptop.device_id) == (0, False)
    assert server.sessions[ELSEWHERE].device is None
    assert server.receive(ALICE, {"type": "device_remove", "device": laptop.device_id}, NOW) == [
        (ALICE, {"type": "error", "text": f"your key has no device {laptop.device_id}"})
    ]


def test_another_keys_device_cannot_be_removed(
    ed_alice: IdentityKey, ed_bob: IdentityKey, phone: Device, laptop: Device
) -> None:
    server = make_server()
    hello_device(server, ALICE, ed_alice, "alice", phone)
    hello_device(server, BOB, ed_bob, "bob", laptop)
    out = server.receive(ALICE, {"type": "device_remove", "device": laptop.device_id}, NOW)
    assert out == [(ALICE, {"type": "error", "text": f"your key has no device {laptop.device_id}"})]
    assert len(server.store.devices_of(ed_bob.fingerprint)) == 1


def test_a_ninth_device_replaces_the_one_connected_least_recently(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    server = make_server()
    hello(server, BOB, ed_bob, "bob")
    devices = [Device.create() for _ in range(9)]
    # The first connects last of the first eight: the second is the least recently connected.
    order = [1, 2, 3, 4, 5, 6, 7, 0]
    for step, index in enumerate(order):
        hello_device(server, 10 + index, ed_alice, "alice", devices[index], now=NOW + step)
    assert len(server.store.devices_of(ed_alice.fingerprint)) == 8
    out = hello_device(server, 20, ed_alice, "alice", devices[8], now=NOW + 10)
    listed = {d.device for d in server.store.devices_of(ed_alice.fingerprint)}
    assert listed == {d.device_id for d in devices} - {devices[1].device_id}
    [note] = to(11, out, "notice")
    assert note["text"].startswith(f"device {devices[1].device_id} left your key's directory")
    assert server.sessions[11].device is None
    assert to(BOB, out, "keys_changed") == [
        {"type": "keys_changed", "fingerprint": ed_alice.fingerprint}
    ]


def test_devices_outlive_the_server(ed_alice: IdentityKey, phone: Device, tmp_path: Any) -> None:
    store = SQLiteStore(tmp_path / "chat.db")
    server = make_server(store)
    hello_device(server, ALICE, ed_alice, "alice", phone)
    server.receive(ALICE, {"type": "keys_upload", "one_time_keys": one_time_keys(phone, 3)}, NOW)
    store.close()
    again = make_server(SQLiteStore(tmp_path / "chat.db"))
    out = hello_device(again, ALICE, ed_alice, "alice", phone)
    assert to(ALICE, out, "keys_uploaded")[0]["one_time_keys"] == 3
    assert to(ALICE, out, "keys_changed") == []


# --- costs -----------------------------------------------------------------------------------


def test_end_to_end_frames_cost_one_unit_plus_one_per_eight_items() -> None:
    assert frame_cost({"type": "keys_query", "fingerprints": ["x"] * 7}) == 1
    assert frame_cost({"type": "keys_query", "fingerprints": ["x"] * 32}) == 5
    assert frame_cost({"type": "to_device", "messages": [{}] * 128}) == 17
    assert frame_cost({"type": "keys_upload", "one_time_keys": [{}] * 50}) == 7
    assert frame_cost({"type": "keys_claim", "devices": [{}] * 8}) == 2
    assert frame_cost({"type": "device_ack", "upto": 3}) == 1
    assert frame_cost({"type": "device_remove", "device": "x"}) == 1
    # Malformed lists cost the minimum: they are refused when read.
    assert frame_cost({"type": "to_device", "messages": "x" * 1000}) == 1
    assert frame_cost({"type": "say", "olm_private": {"ct": "", "keys": [{}] * 16}}) == 4
    assert frame_cost({"type": "say", "megolm": {}}) == 2


def test_a_connection_flooding_to_device_frames_is_told_to_slow_down(
    ed_alice: IdentityKey, phone: Device
) -> None:
    server = make_server()
    hello_device(server, ALICE, ed_alice, "alice", phone)
    item = {"fingerprint": ed_alice.fingerprint, "device": "A" * 16, "type": 1, "body": "aGk="}
    frame = {"type": "to_device", "messages": [item] * 128}
    answers = [server.receive(ALICE, frame, NOW) for _ in range(30)]
    # 17 units each, of the connection's 420 (the defaults): 24 pass (to an unknown device).
    assert answers[:24] == [[]] * 24
    assert answers[24][0][1]["text"] == "slow down: this connection sends too much"


def test_stored_device_keys_are_what_the_client_signed(
    ed_alice: IdentityKey, phone: Device
) -> None:
    server = make_server()
    hello_device(server, ALICE, ed_alice, "alice", phone)
    [stored] = server.store.devices_of(ed_alice.fingerprint)
    assert dataclasses.asdict(stored)["keys_json"] == json.dumps(
        device_keys(ed_alice, phone), separators=(",", ":")
    )
