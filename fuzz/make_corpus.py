"""Regenerate the seed corpus under fuzz/corpus/ (deterministic: the same bytes on every run).

Run from the repository root: ``python -m fuzz.make_corpus``. Seeds are named ``seed-*``; inputs
the fuzzer found and we chose to keep are named ``found-*`` and are left alone.
"""

from __future__ import annotations

from pathlib import Path

from fuzz.common import (
    CLIENT_HELLO,
    CLIENT_IDENTITY,
    PEER_IDENTITY,
    SERVER_CERTIFICATE,
    inner_records,
    new_client,
    new_server,
    transcript,
)
from fuzz.fuzz_frames import NETWORK, ROOM
from fuzz.fuzz_record import SECRET, SUITES
from tlschat.chat.envelope import SignedMessage
from tlschat.chat.frames import b64, encode_frame, message_fields
from tlschat.protocol.alerts import AlertLevel
from tlschat.protocol.messages import (
    Certificate,
    CertificateType,
    CertificateVerify,
    Finished,
    KeyUpdate,
    ServerHello,
    SignatureScheme,
    encode_handshake,
)
from tlschat.protocol.record import ContentType, DirectionKeys, plaintext_record

CORPUS = Path(__file__).resolve().parent / "corpus"


def record_seeds() -> dict[str, bytes]:
    seeds = {
        "plain-client-hello": CLIENT_HELLO,
        "plain-alert": plaintext_record(ContentType.alert, bytes([2, 40])),
        "plain-empty-handshake": plaintext_record(ContentType.handshake, b""),
    }
    for suite in SUITES:
        keys = DirectionKeys(suite, SECRET)
        name = f"sealed-{int(suite)}"
        data = keys.seal(ContentType.application_data, b"\x00\x00\x05hello")
        seeds[f"{name}-data"] = data
        data += keys.seal(ContentType.handshake, encode_handshake(KeyUpdate(False)))
        data += keys.seal(ContentType.alert, bytes([AlertLevel.WARNING, 0]))
        seeds[f"{name}-three"] = data
        seeds[f"{name}-then-plain-alert"] = seeds[f"{name}-data"] + seeds["plain-alert"]
    return seeds


def handshake_seeds() -> dict[str, bytes]:
    messages = {
        "client-hello": CLIENT_HELLO[5:],
        "server-hello": encode_handshake(ServerHello(1, bytes(32), 1, bytes(range(32)))),
        "certificate": encode_handshake(Certificate(CertificateType.x509, SERVER_CERTIFICATE)),
        "certificate-rpk": encode_handshake(
            Certificate(CertificateType.raw_public_key, CLIENT_IDENTITY.spki_der)
        ),
        "certificate-verify": encode_handshake(
            CertificateVerify(SignatureScheme.ed25519, bytes(64))
        ),
        "finished": encode_handshake(Finished(bytes(32))),
        "key-update": encode_handshake(KeyUpdate(True)),
    }
    messages["coalesced"] = b"".join(messages.values())
    return messages


def server_seeds() -> dict[str, bytes]:
    client_out, _ = transcript()
    return {
        "client-hello": client_out[0],
        "whole-session": b"".join(client_out),
        "after-hello": b"".join(client_out[1:]),
        "after-hello-handshake-only": client_out[1],
        # For the sealed mode: the same session, decrypted (re-sealed by the target).
        "whole-session-inner": inner_records(new_server(), b"".join(client_out)),
    }


def client_seeds() -> dict[str, bytes]:
    _, server_out = transcript()
    client = new_client()
    client.start_handshake()
    return {
        "server-flight": server_out[0],
        "whole-session": b"".join(server_out),
        "handshake-only": b"".join(server_out[:2]),
        "whole-session-inner": inner_records(client, b"".join(server_out), trust=True),
    }


def frame_seeds() -> dict[str, bytes]:
    key = b64(PEER_IDENTITY.spki_der)
    fingerprint = PEER_IDENTITY.fingerprint
    room_message = SignedMessage.create(
        PEER_IDENTITY, NETWORK, ROOM, 7, 1_700_000_000_000, "hi all"
    )
    private = SignedMessage.create(
        PEER_IDENTITY, NETWORK, "@" + CLIENT_IDENTITY.fingerprint, 8, 1_700_000_000_001, "/me waves"
    )
    message = {"type": "message", **message_fields(room_message), "from": "alice", "key": key}
    frames = {
        "welcome": {"type": "welcome", "nick": "fuzzer", "server": "tlschat", "operator": True},
        "joined": {
            "type": "joined",
            "room": ROOM,
            "members": [{"nick": "alice", "fingerprint": fingerprint}],
            "topic": "fuzzing",
        },
        "parted": {"type": "parted", "room": ROOM},
        "join": {"type": "join", "nick": "alice", "room": ROOM, "fingerprint": fingerprint},
        "leave": {
            "type": "leave",
            "nick": "alice",
            "room": ROOM,
            "fingerprint": fingerprint,
            "reason": "quit",
        },
        "nick": {"type": "nick", "old": "alice", "new": "bob", "fingerprint": fingerprint},
        "notice": {"type": "notice", "text": "hello"},
        "motd": {"type": "motd", "text": "line one\r\nline two"},
        "error": {"type": "error", "text": "no"},
        "info": {"type": "info", "title": "Help", "lines": ["a", "b"]},
        "topic": {"type": "topic", "room": ROOM, "topic": "new", "by": "alice"},
        "whois": {
            "type": "whois",
            "query": "alice",
            "nick": "alice",
            "fingerprint": fingerprint,
            "online": True,
            "connected_since": 1_700_000_000,
            "idle": 5,
            "rooms": [ROOM],
            "away": "lunch",
            "operator": True,
        },
        "whois-missing": {"type": "whois", "query": "carol", "found": False},
        "bye": {"type": "bye", "reason": "kicked"},
        "message": message,
        "private": {"type": "message", **message_fields(private), "from": "alice", "key": key},
        "history": {"type": "history", "room": ROOM, "messages": [message]},
        "say": {"type": "say", **message_fields(room_message)},
    }
    return {name: encode_frame(frame) for name, frame in frames.items()}


TARGETS = {
    "fuzz_record": record_seeds,
    "fuzz_handshake": handshake_seeds,
    "fuzz_server_connection": server_seeds,
    "fuzz_client_connection": client_seeds,
    "fuzz_frames": frame_seeds,
}


def main() -> None:
    for target, make in TARGETS.items():
        directory = CORPUS / target
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("seed-*"):
            old.unlink()
        for name, data in make().items():
            (directory / f"seed-{name}").write_bytes(data)


if __name__ == "__main__":
    main()
