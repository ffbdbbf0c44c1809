"""The end-to-end part of the worked example: one encrypted private message and one encrypted
room line from alice's device to bob's (docs/PROTOCOL.md section 23).

vodozemac draws its keys from the operating system, so the devices and sessions are inputs:
``tests/data/test_only_e2e.json`` holds them pickled under a test-only pickle key (alice's and
bob's accounts, the Olm session alice started from one of bob's one-time keys, and alice's
Megolm session for ``#general``). From those states on, Olm and Megolm encryption is
deterministic; the private message's one-time key and nonce come from a counting byte stream.
Bob's side decrypts both, so the example is checked end to end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import vodozemac
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tlschat.chat.e2e_frames import (
    EncryptedSay,
    MegolmLine,
    OlmItem,
    PrivateLine,
    device_keys_fields,
    one_time_key_fields,
    open_sealed_line,
    parse_one_time_key,
    seal_line,
)
from tlschat.chat.envelope import SignedMessage
from tlschat.chat.frames import b64, encode_frame
from tlschat.e2e.codec import b64encode
from tlschat.e2e.device import (
    Device,
    DeviceKeys,
    device_keys_signed_bytes,
    sign_device_keys,
    verify_device_keys,
    verify_one_time_key,
)
from tlschat.e2e.private import PRIVATE_AAD, open_private
from tlschat.protocol import IdentityKey, PeerIdentity

DATA_DIR = Path(__file__).resolve().parent.parent / "tests" / "data"
BOB_KEY_FILE = DATA_DIR / "test_only_bob_ed25519_key.pem"
E2E_FILE = DATA_DIR / "test_only_e2e.json"
ROOM = "#general"
PRIVATE_BODY = "hello, bob"
ROOM_BODY = "hello, encrypted room"
PRIVATE_COUNTER = 1_767_225_600_000_001
ROOM_COUNTER = 1_767_225_600_000_002
TIMESTAMP_MS = 1_767_225_600_000
PRIVATE_KEY_START = 0x40


def _compact(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def make_fixtures() -> list[Path]:
    """Create bob's test-only key and the pickled device states; refuse to overwrite."""
    existing = [p for p in (BOB_KEY_FILE, E2E_FILE) if p.exists()]
    if existing:
        raise SystemExit(f"refusing to overwrite {', '.join(map(str, existing))}")
    BOB_KEY_FILE.write_bytes(IdentityKey.generate("ed25519").to_pem())
    pickle_key = bytes(range(0xA0, 0xC0))
    alice, bob = Device.create(), Device.create()
    bob.generate_one_time_keys(1)
    claimed = bob.unpublished_one_time_keys()[0]
    bob.mark_keys_as_published()
    session = alice.account.create_outbound_session(
        vodozemac.Curve25519PublicKey.from_base64(bob.curve25519_key),
        vodozemac.Curve25519PublicKey.from_base64(claimed.key),
    )
    fixtures = {
        "note": "test-only device states for docs/PROTOCOL.md's worked example; never use them",
        "pickle_key": pickle_key.hex(),
        "alice_device": alice.pickle(pickle_key),
        "bob_device": bob.pickle(pickle_key),
        "bob_one_time_key": one_time_key_fields(claimed),
        "alice_olm_session": session.pickle(pickle_key),
        "alice_megolm_session": vodozemac.GroupSession().pickle(pickle_key),
    }
    E2E_FILE.write_text(json.dumps(fixtures, indent=1) + "\n", encoding="utf-8")
    return [BOB_KEY_FILE, E2E_FILE]


def _load_ed25519(path: Path) -> IdentityKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise TypeError(f"{path} is not an Ed25519 key")
    return IdentityKey(key)


@dataclass
class Devices:
    pickle_key: bytes
    alice: Device
    bob: Device
    bob_one_time_key: dict[str, Any]
    olm: vodozemac.Session
    megolm: vodozemac.GroupSession


def _load_devices() -> Devices:
    fixtures = json.loads(E2E_FILE.read_text(encoding="utf-8"))
    pickle_key = bytes.fromhex(fixtures["pickle_key"])
    return Devices(
        pickle_key,
        Device.from_pickle(fixtures["alice_device"], pickle_key),
        Device.from_pickle(fixtures["bob_device"], pickle_key),
        fixtures["bob_one_time_key"],
        vodozemac.Session.from_pickle(fixtures["alice_olm_session"], pickle_key),
        vodozemac.GroupSession.from_pickle(fixtures["alice_megolm_session"], pickle_key),
    )


def _payload(alice: DeviceKeys, bob: DeviceKeys, kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "sender": alice.user,
        "sender_device": alice.device_id,
        "recipient": bob.user,
        "recipient_device": bob.device_id,
        **fields,
    }


def _counting(start: int, n: int) -> bytes:
    return bytes((start + i) % 256 for i in range(n))


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(f"worked example (end-to-end): {what}")


def e2e_block(alice_identity: IdentityKey, network: str) -> list[str]:
    """The section's end-to-end part, as Markdown lines."""
    bob_identity = _load_ed25519(BOB_KEY_FILE)
    devices = _load_devices()
    alice_keys = sign_device_keys(devices.alice, alice_identity)
    bob_keys = sign_device_keys(devices.bob, bob_identity)
    _check(verify_device_keys(alice_keys, PeerIdentity.from_spki(alice_identity.spki_der)), "alice")
    _check(verify_device_keys(bob_keys, PeerIdentity.from_spki(bob_identity.spki_der)), "bob")
    claimed = parse_one_time_key(devices.bob_one_time_key)
    _check(verify_one_time_key(bob_keys, claimed), "bob's one-time key")
    alice_entry = {**device_keys_fields(alice_keys), "key": b64(alice_identity.spki_der)}
    bob_entry = {**device_keys_fields(bob_keys), "key": b64(bob_identity.spki_der)}
    alice_bytes = device_keys_signed_bytes(
        alice_keys.user, alice_keys.device_id, alice_keys.curve25519, alice_keys.ed25519
    )

    private_message = SignedMessage.create(
        alice_identity,
        network,
        "@" + bob_identity.fingerprint,
        PRIVATE_COUNTER,
        TIMESTAMP_MS,
        PRIVATE_BODY,
    )
    sealed_private = seal_line(private_message)
    one_time = _counting(PRIVATE_KEY_START, 32)
    nonce = _counting(PRIVATE_KEY_START + 32, 12)
    private_ct = nonce + AESGCM(one_time).encrypt(nonce, sealed_private, PRIVATE_AAD)
    private_payload = _compact(_payload(alice_keys, bob_keys, "private", key=b64encode(one_time)))
    olm_type, olm_body = devices.olm.encrypt(private_payload).to_parts()
    private_say = EncryptedSay(
        network,
        private_message.target,
        alice_identity.fingerprint,
        PRIVATE_COUNTER,
        TIMESTAMP_MS,
        None,
        PrivateLine(
            b64encode(private_ct),
            (OlmItem(bob_keys.user, bob_keys.device_id, olm_type, b64encode(olm_body)),),
        ),
    )

    room_key = _payload(
        alice_keys,
        bob_keys,
        "room_key",
        network=network,
        room=ROOM,
        session=devices.megolm.session_id,
        key=devices.megolm.session_key.to_base64(),
    )
    room_key_type, room_key_body = devices.olm.encrypt(_compact(room_key)).to_parts()
    room_message = SignedMessage.create(
        alice_identity, network, ROOM, ROOM_COUNTER, TIMESTAMP_MS, ROOM_BODY
    )
    sealed_room = seal_line(room_message)
    megolm_ct = devices.megolm.encrypt(sealed_room).to_base64()
    room_say = EncryptedSay(
        network,
        ROOM,
        alice_identity.fingerprint,
        ROOM_COUNTER,
        TIMESTAMP_MS,
        MegolmLine(devices.megolm.session_id, megolm_ct),
        None,
    )

    # Bob reads both: the Olm pre-key message starts his session; the rest follows from it.
    bob_session, opened = devices.bob.account.create_inbound_session(
        vodozemac.Curve25519PublicKey.from_base64(alice_keys.curve25519),
        vodozemac.AnyOlmMessage.from_parts(olm_type, olm_body).to_pre_key(),
    )
    _check(opened == private_payload, "bob opens the private payload")
    opened_line = open_private(one_time, private_ct)
    _check(open_sealed_line(opened_line) == private_message, "bob opens the private message")
    shared = bob_session.decrypt(vodozemac.AnyOlmMessage.from_parts(room_key_type, room_key_body))
    inbound = vodozemac.InboundGroupSession(vodozemac.SessionKey(json.loads(shared)["key"]))
    line = inbound.decrypt(vodozemac.MegolmMessage.from_base64(megolm_ct)).plaintext
    _check(open_sealed_line(line) == room_message, "bob opens the room line")

    def frame(value: dict[str, Any]) -> str:
        return encode_frame(value).decode("utf-8")

    return [
        "### End to end",
        "",
        "alice's device (the client key above) sends bob (a second test-only key) one private",
        "message and one line in `#general`, which an operator made end-to-end encrypted.",
        "",
        f"- bob's key fingerprint: `{bob_identity.fingerprint}`",
        f"- alice's device: `{alice_keys.device_id}`; bob's device: `{bob_keys.device_id}`",
        "",
        "alice's device keys, as her `hello` carries them, and the bytes her identity key signed:",
        "",
        "```text",
        f"device_keys_bytes ({len(alice_bytes)} bytes)",
        *_wrap(alice_bytes),
        "```",
        "",
        "```json",
        frame({"type": "hello", "nick": "alice", "device_keys": alice_entry}),
        "```",
        "",
        "The server's answer to her `keys_query` and `keys_claim` for bob:",
        "",
        "```json",
        frame(
            {
                "type": "keys",
                "fingerprint": bob_keys.user,
                "devices": [bob_entry],
            }
        ),
        frame(
            {
                "type": "claimed",
                "keys": [
                    {
                        "fingerprint": bob_keys.user,
                        "device": bob_keys.device_id,
                        "one_time_key": one_time_key_fields(claimed),
                    }
                ],
            }
        ),
        "```",
        "",
        f"**The private message** `{PRIVATE_BODY}`: its sealed line (u16 signature length,",
        "signature, the signed bytes of section 21), the one-time key K and the nonce (a",
        f"counting stream from `{PRIVATE_KEY_START:02x}`), the AES-256-GCM ciphertext, and the",
        "Olm plaintext that carries K to bob's device:",
        "",
        "```text",
        f"sealed_line ({len(sealed_private)} bytes)",
        *_wrap(sealed_private),
        f"private_key ({len(one_time)} bytes)",
        *_wrap(one_time),
        f"private_nonce ({len(nonce)} bytes)",
        *_wrap(nonce),
        f"private_ct ({len(private_ct)} bytes: nonce || ciphertext || tag)",
        *_wrap(private_ct),
        "```",
        "",
        "```json",
        private_payload.decode("utf-8"),
        "```",
        "",
        "The `say` frame (the Olm message is a pre-key message, type 0: bob has not answered yet):",
        "",
        "```json",
        frame({"type": "say", **private_say.fields()}),
        "```",
        "",
        "**The room line** `" + ROOM_BODY + "`: first the key of alice's Megolm session goes to",
        "bob's device over the same Olm session (the payload, then the `to_device` frame), then",
        "the line, sealed and Megolm-encrypted:",
        "",
        "```json",
        _compact(room_key).decode("utf-8"),
        frame(
            {
                "type": "to_device",
                "messages": [
                    OlmItem(
                        bob_keys.user, bob_keys.device_id, room_key_type, b64encode(room_key_body)
                    ).to_dict()
                ],
            }
        ),
        frame({"type": "say", **room_say.fields()}),
        "```",
    ]


def _wrap(data: bytes, width: int = 64) -> list[str]:
    text = data.hex()
    return ["  " + text[i : i + width] for i in range(0, len(text), width)]
