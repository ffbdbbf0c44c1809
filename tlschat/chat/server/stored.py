"""A room line as the store keeps it and as it is relayed, plain or end-to-end encrypted, and the
tag that tells a copy of a line from another line with the same counter. Pure."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from ...store.base import StoredMessage
from ..e2e_frames import EncryptedSay, MegolmLine, PrivateLine
from ..frames import b64
from .line_events import CommittedLine, RelayedLine
from .typed_json import to_json


def dumps(value: Any) -> str:
    """Compact JSON, as frames are written: the text the store and the cluster's log keep."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def stored_message(relayed: RelayedLine) -> StoredMessage:
    """The room line a committed ``message`` event carries."""
    megolm = relayed.megolm
    return StoredMessage(
        relayed.target,
        relayed.sender,
        relayed.nick,
        base64.b64decode(relayed.key),
        relayed.counter,
        relayed.ts,
        relayed.body or "",
        base64.b64decode(relayed.sig or ""),
        dumps(to_json(megolm)) if megolm is not None else "",
    )


def relayed_frame(message: StoredMessage, network: str) -> dict[str, Any]:
    """A stored line as relayed (live or in history): the store keeps only lines this network
    accepted. An encrypted one carries its ``megolm`` object instead of ``body`` and ``sig``."""
    frame: dict[str, Any] = {
        "type": "message",
        "from": message.nick,
        "key": b64(message.key_der),
        "network": network,
        "target": message.room,
        "sender": message.sender,
        "counter": message.counter,
        "ts": message.timestamp_ms,
    }
    if message.encrypted:
        frame["megolm"] = json.loads(message.encrypted)
    else:
        frame |= {"body": message.body, "sig": b64(message.signature)}
    return frame


# "The same message again" (docs/PROTOCOL.md, section 21) is a copy with the same sender, counter
# and target, and the same signature; an encrypted line has no signature the server can check, so
# the digest of its ciphertexts stands in for it. The prefix keeps the two kinds of tag apart.
TAG_PREFIX = "e2e:"


def _digest(*parts: str) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8")
        hasher.update(len(data).to_bytes(4, "big") + data)
    return TAG_PREFIX + hasher.hexdigest()


def megolm_tag(line: MegolmLine) -> str:
    return _digest("megolm", line.session, line.ciphertext)


def private_tag(line: PrivateLine) -> str:
    items = [
        part
        for item in line.keys
        for part in (item.fingerprint, item.device, str(item.message_type), item.body)
    ]
    return _digest("private", line.ciphertext, *items)


def encrypted_tag(message: EncryptedSay) -> str:
    if message.megolm is not None:
        return megolm_tag(message.megolm)
    assert message.private is not None
    return private_tag(message.private)


def stored_tag(message: StoredMessage) -> str:
    """The tag of a line from the store: its signature, or its ciphertext's digest."""
    if not message.encrypted:
        return b64(message.signature)
    megolm = json.loads(message.encrypted)
    return megolm_tag(MegolmLine(str(megolm["session"]), str(megolm["ct"])))


def event_tag(event: CommittedLine) -> str:
    """The tag of the line an event commits: an encrypted line's event carries it."""
    return event.digest if event.digest is not None else event.message.sig or ""
