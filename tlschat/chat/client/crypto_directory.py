"""The other devices this device encrypts for: the key directory as this client verified it.

The server's directory answers ``keys_query`` with each user's devices; an entry is used only if
its ``key`` is the identity key of the fingerprint it is listed for and that key signed it
(``verify_device_keys``). One-time keys from ``claimed`` are used only if the device they are
for signed them. The lists are a cache: a ``keys_changed``, a ``stale`` refusal or a new
connection (which may have missed a ``keys_changed``) forgets them, and they are asked again when
next needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...e2e.device import DeviceKeys, SignedOneTimeKey, verify_device_keys, verify_one_time_key
from ...protocol.alerts import ProtocolError
from ...protocol.identity import IdentityKey, PeerIdentity, fingerprints_equal
from ..e2e_frames import (
    MAX_CLAIMS,
    MAX_DEVICES_PER_KEY,
    MAX_QUERY,
    field_device,
    field_fingerprint,
    field_list,
    parse_device_keys,
    parse_one_time_key,
)
from ..frames import MAX_KEY_B64, FrameError, field_b64

DeviceRef = tuple[str, str]  # (user fingerprint, device id)


@dataclass(frozen=True)
class KeysAnswer:
    """What a ``keys`` frame said about one user: the devices that verified, and how many
    entries did not (never used)."""

    fingerprint: str
    devices: tuple[DeviceKeys, ...]
    rejected: int


@dataclass
class DeviceDirectory:
    identity: IdentityKey
    own_device: str
    # Verified device lists by user fingerprint, our own device left out.
    lists: dict[str, tuple[DeviceKeys, ...]] = field(default_factory=dict)
    # Users asked about and not answered yet, with when they were asked.
    querying: dict[str, float] = field(default_factory=dict)
    claiming: set[DeviceRef] = field(default_factory=set)
    claimed: dict[DeviceRef, SignedOneTimeKey] = field(default_factory=dict)
    # Devices the server had no usable one-time key for: the line being prepared goes without
    # them; the next line asks again.
    unreachable: set[DeviceRef] = field(default_factory=set)

    def known(self, fingerprint: str) -> bool:
        return fingerprint in self.lists

    def devices(self, fingerprint: str) -> tuple[DeviceKeys, ...]:
        return self.lists.get(fingerprint, ())

    def device(self, fingerprint: str, device_id: str) -> DeviceKeys | None:
        return next((d for d in self.devices(fingerprint) if d.device_id == device_id), None)

    def forget(self, fingerprint: str) -> None:
        """Ask again before encrypting for ``fingerprint``: its devices may have changed."""
        self.lists.pop(fingerprint, None)
        self.unreachable = {ref for ref in self.unreachable if ref[0] != fingerprint}

    def connection_lost(self) -> None:
        """Nothing asked is answered on another connection, and what changed meanwhile was not
        announced on this one: every list is asked again. Claimed keys stay ours to use."""
        self.lists.clear()
        self.querying.clear()
        self.claiming.clear()
        self.unreachable.clear()

    def query(self, fingerprints: list[str], now: float) -> list[dict[str, Any]]:
        """``keys_query`` frames for the users not known and not already asked about."""
        wanted = [fp for fp in dict.fromkeys(fingerprints) if fp not in self.querying]
        wanted = [fp for fp in wanted if fp not in self.lists]
        for fingerprint in wanted:
            self.querying[fingerprint] = now
        return [
            {"type": "keys_query", "fingerprints": wanted[start : start + MAX_QUERY]}
            for start in range(0, len(wanted), MAX_QUERY)
        ]

    def asked_since(self, fingerprints: list[str]) -> float | None:
        """When the oldest question still open about ``fingerprints`` was asked."""
        times = [self.querying[fp] for fp in fingerprints if fp in self.querying]
        return min(times) if times else None

    def receive_keys(self, frame: dict[str, Any]) -> KeysAnswer:
        """A ``keys`` frame: the devices of one user, each checked before it is kept."""
        fingerprint = field_fingerprint(frame, "fingerprint")
        self.querying.pop(fingerprint, None)
        try:
            entries = field_list(frame, "devices", MAX_DEVICES_PER_KEY)
        except FrameError:
            # An unusable answer leaves an empty list: nothing is encrypted for devices that
            # could not be checked, and a line for that user is refused rather than stuck.
            self.lists[fingerprint] = ()
            raise
        kept: dict[str, DeviceKeys] = {}
        rejected = 0
        for entry in entries:
            keys = self._checked(fingerprint, entry)
            if keys is None:
                rejected += 1
            elif keys.device_id != self.own_device and keys.device_id not in kept:
                kept[keys.device_id] = keys
        self.lists[fingerprint] = tuple(kept.values())
        still_listed = {(fingerprint, d) for d in kept}
        self.claimed = {
            ref: key
            for ref, key in self.claimed.items()
            if ref[0] != fingerprint or ref in still_listed
        }
        return KeysAnswer(fingerprint, tuple(kept.values()), rejected)

    def _checked(self, fingerprint: str, entry: dict[str, Any]) -> DeviceKeys | None:
        """The entry's device keys if they verify under the identity key of ``fingerprint``."""
        own = fingerprints_equal(fingerprint, self.identity.fingerprint)
        try:
            keys = parse_device_keys(entry)
            # Our own devices are checked against the key we hold, whatever the entry says.
            spki = self.identity.spki_der if own else field_b64(entry, "key", MAX_KEY_B64)
            owner = PeerIdentity.from_spki(spki)
        except (FrameError, ProtocolError):
            return None
        if not fingerprints_equal(keys.user, fingerprint):
            return None
        return keys if verify_device_keys(keys, owner) else None

    def claim(self, devices: list[DeviceKeys]) -> list[dict[str, Any]]:
        """``keys_claim`` frames for the devices not already being claimed."""
        refs = [(d.user, d.device_id) for d in devices]
        wanted = [ref for ref in dict.fromkeys(refs) if ref not in self.claiming]
        self.claiming.update(wanted)
        return [
            {
                "type": "keys_claim",
                "devices": [
                    {"fingerprint": fp, "device": device}
                    for fp, device in wanted[start : start + MAX_CLAIMS]
                ],
            }
            for start in range(0, len(wanted), MAX_CLAIMS)
        ]

    def receive_claimed(self, frame: dict[str, Any]) -> list[DeviceKeys]:
        """A ``claimed`` frame: keep each one-time key its device signed. Returns the devices
        asked for that got no usable key."""
        failed: list[DeviceKeys] = []
        for entry in field_list(frame, "keys", MAX_CLAIMS):
            ref = (field_fingerprint(entry, "fingerprint"), field_device(entry))
            if ref not in self.claiming:
                continue  # not asked for: a server cannot push keys on us
            self.claiming.discard(ref)
            device = self.device(*ref)
            key = self._claimed_key(device, entry)
            if key is not None:
                self.claimed[ref] = key
            elif device is not None:
                self.unreachable.add(ref)
                failed.append(device)
        return failed

    @staticmethod
    def _claimed_key(device: DeviceKeys | None, entry: dict[str, Any]) -> SignedOneTimeKey | None:
        raw = entry.get("one_time_key")
        if device is None or not isinstance(raw, dict):
            return None
        try:
            key = parse_one_time_key(raw)
        except FrameError:
            return None
        return key if verify_one_time_key(device, key) else None

    def take_claimed(self, device: DeviceKeys) -> SignedOneTimeKey | None:
        return self.claimed.pop((device.user, device.device_id), None)

    def has_claimed(self, device: DeviceKeys) -> bool:
        return (device.user, device.device_id) in self.claimed

    def is_unreachable(self, device: DeviceKeys) -> bool:
        return (device.user, device.device_id) in self.unreachable

    def is_claiming(self, device: DeviceKeys) -> bool:
        return (device.user, device.device_id) in self.claiming
