"""The events of chat lines and of the end-to-end layer (its key directory and inboxes), as typed
values (see ``cluster_events``). Pure.

In a cluster the commit script decides what every server's replica must decide alike and adds
it to the event: the ids of inbox items, the device a ninth one evicts, the keys a claim takes.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..e2e_frames import MAX_CLAIMS, MAX_PRIVATE_KEYS, MAX_TO_DEVICE, MAX_UPLOAD_KEYS
from .cluster_events import SessionEvent
from .typed_json import at_most, to_json, wire


@dataclass(frozen=True, kw_only=True)
class Megolm:
    session: str
    ct: str


@dataclass(frozen=True, kw_only=True)
class OlmCiphertext:
    ct: str


@dataclass(frozen=True, kw_only=True)
class RelayedLine:
    """A committed line as its recipients get it (a ``message`` frame) and history keeps it:
    plain (``body`` and ``sig``), a Megolm room line, or a private line's ciphertext."""

    kind: ClassVar[str] = "message"
    nick: str = field(metadata=wire("from"))
    key: str
    network: str
    target: str
    sender: str
    counter: int
    ts: int
    body: str | None = None
    sig: str | None = None
    megolm: Megolm | None = None
    olm_private: OlmCiphertext | None = None

    def __post_init__(self) -> None:
        plain = (self.body, self.sig) != (None, None)
        if plain + (self.megolm is not None) + (self.olm_private is not None) != 1 or (
            plain and None in (self.body, self.sig)
        ):
            raise ValueError("a line is plain ('body' and 'sig'), 'megolm' or 'olm_private'")
        for name, text in (("key", self.key), ("sig", self.sig)):
            if text is not None and not _is_base64(text):
                raise ValueError(f"'{name}' is not base64")

    def frame(self) -> dict[str, Any]:
        if self.body is not None:
            # A plain line, nearly every line a server relays: built directly, as ``to_json``
            # would build it, for a tenth of its cost.
            return {
                "type": self.kind,
                "from": self.nick,
                "key": self.key,
                "network": self.network,
                "target": self.target,
                "sender": self.sender,
                "counter": self.counter,
                "ts": self.ts,
                "body": self.body,
                "sig": self.sig,
            }
        frame: dict[str, Any] = to_json(self)
        return frame


@dataclass(frozen=True, kw_only=True)
class InboxItem:
    """What one device's inbox gets (``payload``: a ``device_messages`` item's JSON, but its id)."""

    fingerprint: str
    device: str
    payload: str


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _check_ids(inbox: tuple[InboxItem, ...], ids: tuple[int, ...] | None) -> None:
    if ids is not None and len(ids) != len(inbox):
        raise ValueError("'ids' must name one id per item")


@dataclass(frozen=True, kw_only=True)
class CommittedLine(SessionEvent):
    """A chat line: committed once, by its sender's counter. ``digest`` stands for the signature
    of an encrypted line (``stored``)."""

    message: RelayedLine
    digest: str | None = None


@dataclass(frozen=True, kw_only=True)
class Message(CommittedLine):
    kind = "message"


@dataclass(frozen=True, kw_only=True)
class E2EPrivate(CommittedLine):
    """A private line: each of its devices' inboxes gets it with its own key to it (``ids``: the
    ids the commit script gave them)."""

    kind = "e2e_private"
    digest: str
    ts: int
    items: tuple[InboxItem, ...] = field(metadata=at_most(MAX_PRIVATE_KEYS))
    ids: tuple[int, ...] | None = field(default=None, metadata=at_most(MAX_PRIVATE_KEYS))

    def __post_init__(self) -> None:
        _check_ids(self.items, self.ids)


@dataclass(frozen=True, kw_only=True)
class ToDevice(SessionEvent):
    kind = "to_device"
    ts: int
    items: tuple[InboxItem, ...] = field(metadata=at_most(MAX_TO_DEVICE))
    ids: tuple[int, ...] | None = field(default=None, metadata=at_most(MAX_TO_DEVICE))

    def __post_init__(self) -> None:
        _check_ids(self.items, self.ids)


@dataclass(frozen=True, kw_only=True)
class DeviceAck(SessionEvent):
    kind = "device_ack"
    fingerprint: str
    device: str
    upto: int


# ----- the key directory -----


@dataclass(frozen=True, kw_only=True)
class DeviceKeys(SessionEvent):
    """A session's device keys (``keys``: their JSON), stored; ``evicted``: the device the commit
    script took out of a directory this one overfilled."""

    kind = "device"
    fingerprint: str
    device: str
    keys: str
    seen: float
    keys_follow: bool
    evicted: str | None = None


@dataclass(frozen=True, kw_only=True)
class KeysUpload(SessionEvent):
    """One-time keys and a fallback key, as (key id, the key's JSON)."""

    kind = "keys_upload"
    fingerprint: str
    device: str
    keys: tuple[tuple[str, str], ...] = field(metadata=at_most(MAX_UPLOAD_KEYS))
    fallback: tuple[str, str] | None


@dataclass(frozen=True, kw_only=True)
class ClaimedKey:
    """A one-time (or fallback) key as the directory keeps it."""

    id: str
    key: str
    fallback: bool
    sig: str


@dataclass(frozen=True, kw_only=True)
class KeysClaim(SessionEvent):
    """A key per (fingerprint, device); ``keys``: the ones the commit script took, in order."""

    kind = "keys_claim"
    devices: tuple[tuple[str, str], ...] = field(metadata=at_most(MAX_CLAIMS))
    keys: tuple[ClaimedKey | None, ...] | None = field(default=None, metadata=at_most(MAX_CLAIMS))

    def __post_init__(self) -> None:
        if self.keys is not None and len(self.keys) != len(self.devices):
            raise ValueError("'keys' must hold one key (or null) per device")


@dataclass(frozen=True, kw_only=True)
class DeviceRemove(SessionEvent):
    kind = "device_remove"
    fingerprint: str
    device: str
