"""The end-to-end layer's directory and inboxes in a cluster server's replica (docs/PROTOCOL.md,
"End-to-end layer"), with the SQLite store's semantics.

Redis decides (atomically, in the broker's commit script) which key a claim takes and which id an
inbox item gets; the replica applies those decisions from the cluster's log. After a reload it
reads the log again from before the load, so it applies some entries twice: an inbox item whose
id it has passed is ignored, as ``append_message`` ignores a counter it has seen.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field, replace

from .base import InboxBounds, InboxEntry, InboxItem, StoredDevice


@dataclass
class DeviceState:
    entry: StoredDevice
    # Key id -> one_time_key JSON, oldest first (dicts keep insertion order).
    one_time_keys: dict[str, str] = field(default_factory=dict)
    fallback: str | None = None
    inbox: collections.deque[InboxItem] = field(default_factory=collections.deque)
    inbox_bytes: int = 0
    # The highest inbox id the device was given: an item must pass it to be queued.
    inbox_last: int = 0

    def drop_oldest(self) -> InboxItem:
        item = self.inbox.popleft()
        self.inbox_bytes -= len(item.payload.encode())
        return item

    def drop_expired(self, now: float, bounds: InboxBounds) -> None:
        # Not only from the left: server clocks may step back, so ``created`` need not grow.
        cutoff = now - bounds.max_age
        if any(item.created < cutoff for item in self.inbox):
            self.inbox = collections.deque(item for item in self.inbox if item.created >= cutoff)
            self.inbox_bytes = sum(len(item.payload.encode()) for item in self.inbox)


class MemoryDirectory:
    """Inbox ids the replica assigns itself come from one sequence for the whole store, so a
    device's ids increase, also across its removal and return."""

    def __init__(self) -> None:
        # Fingerprint -> device id -> its state.
        self._devices: dict[str, dict[str, DeviceState]] = {}
        self._inbox_sequence = 0

    def _state(self, fingerprint: str, device: str) -> DeviceState | None:
        return self._devices.get(fingerprint, {}).get(device)

    def put_device(self, device: StoredDevice, max_devices: int) -> str | None:
        """The device just put is never the one removed; of the others, the one seen least
        recently (by device id on a tie) goes. One device is added at a time, so removing one
        keeps the bound."""
        devices = self._devices.setdefault(device.fingerprint, {})
        state = devices.get(device.device)
        if state is None:
            devices[device.device] = DeviceState(device)
        else:
            state.entry = device
        if len(devices) <= max_devices:
            return None
        others = [other.entry for name, other in devices.items() if name != device.device]
        if not others:
            return None
        evicted = min(others, key=lambda entry: (entry.last_seen, entry.device)).device
        del devices[evicted]
        return evicted

    def touch_device(self, fingerprint: str, device: str, now: float) -> None:
        state = self._state(fingerprint, device)
        if state is not None:
            state.entry = replace(state.entry, last_seen=now)

    def devices_of(self, fingerprint: str) -> list[StoredDevice]:
        devices = self._devices.get(fingerprint, {})
        return [devices[name].entry for name in sorted(devices)]

    def remove_device(self, fingerprint: str, device: str) -> bool:
        devices = self._devices.get(fingerprint)
        if devices is None or devices.pop(device, None) is None:
            return False
        if not devices:
            del self._devices[fingerprint]
        return True

    def add_one_time_keys(
        self,
        fingerprint: str,
        device: str,
        keys: list[tuple[str, str]],
        fallback: tuple[str, str] | None,
        max_keys: int,
    ) -> int:
        """An unknown device gets nothing (0). Of a key id given twice, the first is kept."""
        state = self._state(fingerprint, device)
        if state is None:
            return 0
        for key_id, key_json in keys:
            if len(state.one_time_keys) >= max_keys:
                break
            state.one_time_keys.setdefault(key_id, key_json)
        if fallback is not None:
            state.fallback = fallback[1]
        return len(state.one_time_keys)

    def one_time_key_count(self, fingerprint: str, device: str) -> tuple[int, bool]:
        state = self._state(fingerprint, device)
        if state is None:
            return 0, False
        return len(state.one_time_keys), state.fallback is not None

    def claim_one_time_key(self, fingerprint: str, device: str) -> str | None:
        state = self._state(fingerprint, device)
        if state is None:
            return None
        if state.one_time_keys:
            oldest = next(iter(state.one_time_keys))
            return state.one_time_keys.pop(oldest)
        return state.fallback

    def forget_one_time_key(self, fingerprint: str, device: str, key_id: str) -> None:
        state = self._state(fingerprint, device)
        if state is not None:
            state.one_time_keys.pop(key_id, None)

    def append_inbox(
        self,
        fingerprint: str,
        device: str,
        payload: str,
        now: float,
        bounds: InboxBounds,
        item_id: int | None = None,
    ) -> int:
        """0 when nothing was queued: an unknown device, an ``item_id`` not above the device's
        highest (applied already), or an item that alone passes ``bounds`` (which leaves the
        inbox as it was rather than emptying it)."""
        size = len(payload.encode())
        state = self._state(fingerprint, device)
        if state is None or size > bounds.max_bytes or bounds.max_items < 1:
            return 0
        if item_id is not None and item_id <= state.inbox_last:
            return 0
        new_id = self._inbox_sequence + 1 if item_id is None else item_id
        self._inbox_sequence = max(self._inbox_sequence, new_id)
        state.inbox_last = new_id
        state.inbox.append(InboxItem(new_id, fingerprint, device, now, payload))
        state.inbox_bytes += size
        state.drop_expired(now, bounds)
        # The new item alone fits both bounds: the loop stops before it.
        while len(state.inbox) > bounds.max_items or state.inbox_bytes > bounds.max_bytes:
            state.drop_oldest()
        return new_id

    def append_inbox_items(
        self, entries: list[InboxEntry], now: float, bounds: InboxBounds
    ) -> list[int]:
        return [
            self.append_inbox(e.fingerprint, e.device, e.payload, now, bounds, e.item_id)
            for e in entries
        ]

    def inbox(
        self, fingerprint: str, device: str, after: int, now: float, bounds: InboxBounds
    ) -> list[InboxItem]:
        """Items past ``bounds.max_age`` are deleted, not only left out."""
        state = self._state(fingerprint, device)
        if state is None:
            return []
        state.drop_expired(now, bounds)
        return [item for item in state.inbox if item.id > after]

    def ack_inbox(self, fingerprint: str, device: str, upto: int) -> int:
        state = self._state(fingerprint, device)
        deleted = 0
        while state is not None and state.inbox and state.inbox[0].id <= upto:
            state.drop_oldest()
            deleted += 1
        return deleted
