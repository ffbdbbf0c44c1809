"""A fixed scene for the snapshot tests: deterministic keys, frames and times (TZ=UTC).

Ed25519 signatures are deterministic, so the same frames render to the same screen every run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tlschat.chat.client.crypto import ClientCrypto
from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.e2e_frames import device_keys_fields, one_time_key_fields
from tlschat.chat.envelope import SignedMessage
from tlschat.chat.frames import b64, message_fields
from tlschat.chat.seen import SeenLedger
from tlschat.client.settings import ClientSettings
from tlschat.client.tui import ChatApp
from tlschat.e2e.codec import PICKLE_KEY_SIZE
from tlschat.e2e.device import Device, sign_device_keys
from tlschat.protocol.identity import IdentityKey

NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
TRACE = [
    "[TLS] Step 1: ClientHello sent",
    "[TLS] Step 2: ServerHello + Certificate received | Cipher: AES-GCM-256",
    "[TLS] Step 3: Shared secret derived via ECDHE",
    "[TLS] Step 4: Session key derived (HKDF)",
    "[KNOWN_HOSTS] Server key matches known_hosts",
    "[TLS] Step 5: Client Finished sent",
    "[TLS] Step 6: Server Finished verified",
    "[TLS] Handshake complete — Secure channel established",
]


def fixed_key(seed: int) -> IdentityKey:
    return IdentityKey(Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32))


ALICE, BOB, CAROL, MALLORY, SERVER = (fixed_key(n) for n in (1, 2, 3, 4, 5))


def member(nick: str, key: IdentityKey, away: str = "") -> dict[str, str]:
    return {"nick": nick, "fingerprint": key.fingerprint, "away": away}


def message(key: IdentityKey, nick: str, target: str, counter: int, ts: float, body: str) -> Any:
    signed = SignedMessage.create(key, SERVER.fingerprint, target, counter, int(ts * 1000), body)
    return {"type": "message", "from": nick, "key": b64(key.spki_der), **message_fields(signed)}


def scene_frames() -> list[tuple[float, dict[str, Any]]]:
    """What the server sends alice: a welcome, #general with history, chat, a private message,
    and a message under bob's nick signed by another key."""
    yesterday = NOW - 86_400
    members = [member("alice", ALICE), member("bob", BOB), member("carol", CAROL, "lunch")]
    return [
        (NOW, {"type": "welcome", "server": "tlschat", "nick": "alice", "operator": False}),
        (NOW, {"type": "motd", "text": "Welcome! Be kind."}),
        (NOW, {"type": "joined", "room": "#general", "topic": "all things", "members": members}),
        (
            NOW,
            {
                "type": "history",
                "room": "#general",
                "messages": [message(BOB, "bob", "#general", 1, yesterday, "see you tomorrow")],
            },
        ),
        (NOW + 5, message(BOB, "bob", "#general", 2, NOW + 5, "morning all")),
        (NOW + 9, message(CAROL, "carol", "#general", 3, NOW + 9, "alice: have you seen #rust?")),
        (NOW + 12, message(CAROL, "carol", "@" + ALICE.fingerprint, 4, NOW + 12, "psst")),
        (NOW + 20, message(MALLORY, "bob", "#general", 5, NOW + 20, "send me your password")),
    ]


def scene_app(home: Path) -> ChatApp:
    settings = ClientSettings(home=home, host="chat.example.org", port=8443, nick="alice")
    # A device of its own, as every client has: a private line waits for its recipient's
    # devices (which this offline scene never sends) rather than being refused.
    crypto = ClientCrypto(ALICE, bytes(PICKLE_KEY_SIZE), {})
    return ChatApp(settings, ALICE, ChatClient(ALICE, "alice", crypto=crypto), connect=False)


def play(app: ChatApp) -> None:
    """Feed the scene into a mounted app exactly as a session would."""
    for step in TRACE:
        app.output.trace(step)
    app.output.status("connecting", "chat.example.org:8443")
    app.output.status("connected", SERVER.fingerprint)
    app.chat.use_network(SERVER.fingerprint, SeenLedger())
    for now, frame in scene_frames():
        for line in app.chat.handle(frame, now):
            app.output.show(line, app.chat.room)
    app.chat.latency = 0.012
    app.refresh_status()


CAROL_DEVICE = Device.create()
CAROL_DEVICE.generate_one_time_keys(1)


def answer_directory(app: ChatApp, now: float) -> None:
    """Play the server's key directory for a private line to carol: carol has one device, with
    a one-time key; alice has only the device of this client."""
    chat = app.chat
    assert chat.crypto is not None
    carol = {
        **device_keys_fields(sign_device_keys(CAROL_DEVICE, CAROL)),
        "key": b64(CAROL.spki_der),
    }
    answers = [
        {"type": "keys", "fingerprint": CAROL.fingerprint, "devices": [carol]},
        {
            "type": "keys",
            "fingerprint": ALICE.fingerprint,
            "devices": [chat.crypto.device_keys_fields()],
        },
    ]
    [key] = CAROL_DEVICE.unpublished_one_time_keys()
    claimed = {"fingerprint": CAROL.fingerprint, "device": CAROL_DEVICE.device_id}
    answers.append(
        {"type": "claimed", "keys": [{**claimed, "one_time_key": one_time_key_fields(key)}]}
    )
    for frame in answers:
        for line in chat.handle(frame, now):
            app.output.show(line, chat.room)
