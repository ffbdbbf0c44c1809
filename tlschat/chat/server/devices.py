"""The key directory: each key's devices (their device keys, signed by the key), their one-time
keys, handed out once each, and the news that a key's devices changed.

Every change is an event. In a cluster the commit script decides what must be decided once for
every server (which device a ninth one replaces, which one-time key a claim takes) and writes it
into the event, so that every server's replica makes the same change.
"""

from __future__ import annotations

import json
from typing import Any

from ...e2e.device import verify_device_keys
from ...protocol.identity import fingerprints_equal
from ...store.base import StoredDevice
from ..e2e_frames import (
    FINGERPRINT,
    MAX_CLAIMS,
    MAX_DEVICES_PER_KEY,
    MAX_QUERY,
    MAX_SERVER_ONE_TIME_KEYS,
    MAX_UPLOAD_KEYS,
    device_keys_fields,
    field_device,
    field_fingerprint,
    field_list,
    field_object,
    one_time_key_fields,
    parse_device_keys,
    parse_one_time_key,
)
from ..frames import MAX_KEY_B64, FrameError, b64, field_str
from ..limits import claim_cost
from .inbox import ServerInbox
from .line_events import DeviceKeys, DeviceRemove, KeysClaim, KeysUpload
from .model import Outgoing, Session
from .replies import error_frame, notice_frame
from .stored import dumps
from .typed_json import to_json


class ServerDevices(ServerInbox):
    """Device keys from hello, one-time keys, queries, claims and removals."""

    def _hello_device(self, session: Session, frame: dict[str, Any], now: float) -> list[Outgoing]:
        """A hello's ``device_keys``: checked, then stored before the session joins anything (its
        event comes before its 'online'). A bad entry leaves the session without a device."""
        if "device_keys" not in frame:
            return []
        try:
            fields = field_object(frame, "device_keys")
            keys = parse_device_keys(fields)
            if not fingerprints_equal(keys.user, session.fingerprint):
                raise FrameError("they name another key")
            if field_str(fields, "key", MAX_KEY_B64) != b64(session.identity.spki_der):
                raise FrameError("their 'key' is not the key of this session")
            if not verify_device_keys(keys, session.identity):
                raise FrameError("your key did not sign them, or the device id is not theirs")
            # A new device brings its first one-time keys along: it is never listed without
            # them, so a peer that sees it join can start a session with it at once.
            upload = (
                self._upload_event(session, keys.device_id, frame)
                if "one_time_keys" in frame
                else None
            )
        except FrameError as error:
            text = f"device keys refused: {error}; this session has no end-to-end encryption"
            return [(session.session_id, error_frame(text))]
        out = self.publish(
            DeviceKeys(
                **self._origin(session),
                fingerprint=session.fingerprint,
                device=keys.device_id,
                keys=dumps({**device_keys_fields(keys), "key": b64(session.identity.spki_der)}),
                seen=now,
                keys_follow=upload is not None,
            )
        )
        return out + (self.publish(upload) if upload is not None else [])

    def _on_keys_upload(
        self, session: Session, frame: dict[str, Any], now: float
    ) -> list[Outgoing]:
        device = self._device_of(session)
        event = self._upload_event(session, device, frame)
        if event is None:
            return [(session.session_id, self._keys_uploaded(session.fingerprint, device))]
        return self.publish(event)

    def _upload_event(
        self, session: Session, device: str, frame: dict[str, Any]
    ) -> KeysUpload | None:
        """The ``keys_upload`` event of the frame's ``one_time_keys``; None if there are none."""
        items = field_list(frame, "one_time_keys", MAX_UPLOAD_KEYS)
        keys = [parse_one_time_key(item) for item in items]
        fallbacks = [key for key in keys if key.fallback]
        if len(fallbacks) > 1:
            raise FrameError("'one_time_keys' holds more than one fallback key")
        one_time = [key for key in keys if not key.fallback]
        if len({key.key_id for key in one_time}) != len(one_time):
            raise FrameError("'one_time_keys' names a key twice")
        if not keys:
            return None
        return KeysUpload(
            **self._origin(session),
            fingerprint=session.fingerprint,
            device=device,
            keys=tuple((key.key_id, dumps(one_time_key_fields(key))) for key in one_time),
            fallback=(
                (fallbacks[0].key_id, dumps(one_time_key_fields(fallbacks[0])))
                if fallbacks
                else None
            ),
        )

    def _on_keys_query(self, session: Session, frame: dict[str, Any], now: float) -> list[Outgoing]:
        out: list[Outgoing] = []
        for fingerprint in dict.fromkeys(_fingerprints(frame, "fingerprints", MAX_QUERY)):
            devices = [json.loads(d.keys_json) for d in self.store.devices_of(fingerprint)]
            frame_out = {"type": "keys", "fingerprint": fingerprint, "devices": devices}
            out.append((session.session_id, frame_out))
        return out

    def _on_keys_claim(self, session: Session, frame: dict[str, Any], now: float) -> list[Outgoing]:
        items = field_list(frame, "devices", MAX_CLAIMS)
        wanted = [(field_fingerprint(item, "fingerprint"), field_device(item)) for item in items]
        if len(set(wanted)) != len(wanted):
            raise FrameError("'devices' names a device twice")
        if not wanted:
            return [(session.session_id, {"type": "claimed", "keys": []})]
        # Each key claimed is one fewer for the device's other peers: a key pays for each.
        self._charge(session, claim_cost(len(wanted)), now)
        return self.publish(KeysClaim(**self._origin(session), devices=tuple(wanted)))

    def _on_device_remove(
        self, session: Session, frame: dict[str, Any], now: float
    ) -> list[Outgoing]:
        device = field_device(frame)
        if not self._has_device(session.fingerprint, device):
            raise FrameError(f"your key has no device {device}")
        return self.publish(
            DeviceRemove(**self._origin(session), fingerprint=session.fingerprint, device=device)
        )

    # ----- events -----

    def _apply_device(self, event: DeviceKeys) -> list[Outgoing]:
        fingerprint, device, keys = event.fingerprint, event.device, event.keys
        before = {d.device: d.keys_json for d in self.store.devices_of(fingerprint)}
        gone: list[str] = []
        evicted = event.evicted
        if evicted is not None and self.store.remove_device(fingerprint, evicted):
            gone.append(evicted)
        dropped = self.store.put_device(
            StoredDevice(fingerprint, device, keys, event.seen), MAX_DEVICES_PER_KEY
        )
        if dropped is not None:
            gone.append(dropped)
        out: list[Outgoing] = []
        for each in gone:
            text = (
                f"device {each} left your key's directory: a key keeps {MAX_DEVICES_PER_KEY} "
                "devices, and the one connected least recently goes"
            )
            out += self._unbind(fingerprint, each, text)
        session = self._sender_of_event(event)
        if session is not None and device not in gone:
            session.device, session.inbox_sent, session.inbox_more = device, 0, False
            if not event.keys_follow:  # else the keys' own event says how many it has
                out.append((session.session_id, self._keys_uploaded(fingerprint, device)))
            out += self._send_inbox(session)
        if before.get(device) != keys or gone:
            out += self._keys_changed(fingerprint)
        return out

    def _apply_keys_upload(self, event: KeysUpload) -> list[Outgoing]:
        fingerprint, device = event.fingerprint, event.device
        # A device removed meanwhile gets no keys: they would outlive it.
        if self._has_device(fingerprint, device):
            self.store.add_one_time_keys(
                fingerprint, device, list(event.keys), event.fallback, MAX_SERVER_ONE_TIME_KEYS
            )
        session = self._sender_of_event(event)
        if session is None or session.device != device:
            return []
        return [(session.session_id, self._keys_uploaded(fingerprint, device))]

    def _apply_claim(self, event: KeysClaim) -> list[Outgoing]:
        """Hand out a one-time key per device; in a cluster the log names the key each claim
        took (``keys``), and every replica forgets that one."""
        chosen = event.keys
        claimed: list[dict[str, Any]] = []
        for index, (fingerprint, device) in enumerate(event.devices):
            key: dict[str, Any] | None
            if chosen is None:
                text = self.store.claim_one_time_key(fingerprint, device)
                key = json.loads(text) if text is not None else None
            else:
                taken = chosen[index]
                key = to_json(taken)
                if taken is not None and not taken.fallback:
                    self.store.forget_one_time_key(fingerprint, device, taken.id)
            claimed.append({"fingerprint": fingerprint, "device": device, "one_time_key": key})
        session = self._sender_of_event(event)
        if session is None:
            return []
        return [(session.session_id, {"type": "claimed", "keys": claimed})]

    def _apply_device_remove(self, event: DeviceRemove) -> list[Outgoing]:
        fingerprint, device = event.fingerprint, event.device
        if not self.store.remove_device(fingerprint, device):
            return []
        session = self._sender_of_event(event)
        out: list[Outgoing] = []
        if session is not None:
            out.append((session.session_id, notice_frame(f"device {device} removed")))
        text = f"device {device} was removed by a session of your key"
        out += self._unbind(fingerprint, device, text)
        return out + self._keys_changed(fingerprint)

    # ----- helpers -----

    def _device_resynchronised(self, session: Session) -> list[Outgoing]:
        """The store was loaded anew: the session's device may have left the directory
        meanwhile, or been sent items this server did not see."""
        device = session.device
        if device is None:
            return []
        if not self._has_device(session.fingerprint, device):
            text = f"device {device} left your key's directory while this server was cut off"
            return self._unbind(session.fingerprint, device, text)
        return [] if session.inbox_more else self._send_inbox(session)

    def _has_device(self, fingerprint: str, device: str) -> bool:
        return any(d.device == device for d in self.store.devices_of(fingerprint))

    def _keys_uploaded(self, fingerprint: str, device: str) -> dict[str, Any]:
        count, fallback = self.store.one_time_key_count(fingerprint, device)
        return {
            "type": "keys_uploaded",
            "device": device,
            "one_time_keys": count,
            "fallback": fallback,
        }

    def _unbind(self, fingerprint: str, device: str, text: str) -> list[Outgoing]:
        """The sessions of a device that left the directory speak for no device any more."""
        out: list[Outgoing] = []
        for session in self._sessions_of(fingerprint):
            if session.device == device:
                session.device, session.inbox_sent, session.inbox_more = None, 0, False
                note = f"{text}; this session has no end-to-end encryption until it reconnects"
                out.append((session.session_id, notice_frame(note)))
        return out

    def _keys_changed(self, fingerprint: str) -> list[Outgoing]:
        """Tell whoever shares a room with the key (and the key's own sessions) to query its
        devices again before encrypting for it."""
        rooms = {room for member in self._online_of(fingerprint) for room in member.rooms}
        told = {s.session_id for room in rooms for s in self._members(room)}
        told |= {s.session_id for s in self._sessions_of(fingerprint)}
        frame = {"type": "keys_changed", "fingerprint": fingerprint}
        return [(target, frame) for target in sorted(told)]


def _fingerprints(frame: dict[str, Any], name: str, maximum: int) -> list[str]:
    value = frame.get(name)
    if not isinstance(value, list):
        raise FrameError(f"'{name}' must be a list")
    if len(value) > maximum:
        raise FrameError(f"'{name}' has more than {maximum} items")
    for item in value:
        if not isinstance(item, str) or not FINGERPRINT.fullmatch(item):
            raise FrameError(f"'{name}' must hold fingerprints")
    return value
