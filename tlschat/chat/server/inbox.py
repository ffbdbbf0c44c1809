"""Each device's inbox: what other devices send it (``to_device``, and the keys of encrypted private
messages), stored until the device acknowledges it, handed out in pages, oldest first.

An item's id increases per device. In a cluster the commit script assigns the ids (and skips the
items for devices it does not know) and writes them into the event, so every server's replica
holds the same items under the same ids.
"""

from __future__ import annotations

import json
from typing import Any

from ...store.base import InboxBounds, InboxEntry
from ..e2e_frames import MAX_TO_DEVICE, field_list, parse_olm_item
from ..frames import MAX_FRAME, FrameError, encode_frame, field_int
from .base import ServerBase
from .cluster_events import ClusterEvent
from .line_events import DeviceAck, E2EPrivate, InboxItem, ToDevice
from .model import Outgoing, Session
from .stored import dumps

# What each device's inbox keeps (docs/PROTOCOL.md, "End-to-end layer").
INBOX_BOUNDS = InboxBounds()


NO_DEVICE = "upload your device keys first"


MAX_INBOX_ID = (1 << 63) - 1


# Room in a page for the frame's own fields around its items.
PAGE_MARGIN = 256


def inbox_payload(
    now_ms: int, sender: str, sender_device: str, olm: dict[str, Any], **more: Any
) -> str:
    """The JSON text of a ``device_messages`` item, but its id (assigned when it is stored)."""
    return dumps({"ts": now_ms, "from": sender, "from_device": sender_device, "olm": olm, **more})


class ServerInbox(ServerBase):
    """The inboxes of the devices of this server's sessions."""

    def _device_of(self, session: Session) -> str:
        """The session's device: to-device messages and encrypted lines come from one."""
        if session.device is None:
            raise FrameError(NO_DEVICE)
        return session.device

    def _on_to_device(self, session: Session, frame: dict[str, Any], now: float) -> list[Outgoing]:
        device = self._device_of(session)
        items = [parse_olm_item(item) for item in field_list(frame, "messages", MAX_TO_DEVICE)]
        if not items:
            return []
        now_ms = int(now * 1000)
        return self.publish(
            ToDevice(
                **self._origin(session),
                ts=now_ms,
                items=tuple(
                    InboxItem(
                        fingerprint=item.fingerprint,
                        device=item.device,
                        payload=inbox_payload(
                            now_ms,
                            session.fingerprint,
                            device,
                            {"type": item.message_type, "body": item.body},
                        ),
                    )
                    for item in items
                ),
            )
        )

    def _on_device_ack(self, session: Session, frame: dict[str, Any], now: float) -> list[Outgoing]:
        device = self._device_of(session)
        # A session acknowledges what it was sent, no more: a client that names a later id
        # must not delete items it never saw.
        upto = min(field_int(frame, "upto", MAX_INBOX_ID), session.inbox_sent)
        if upto <= 0:
            return []
        return self.publish(
            DeviceAck(
                **self._origin(session), fingerprint=session.fingerprint, device=device, upto=upto
            )
        )

    def _apply_to_device(self, event: ToDevice) -> list[Outgoing]:
        return self._store_items(event)

    def _apply_device_ack(self, event: DeviceAck) -> list[Outgoing]:
        fingerprint, device = event.fingerprint, event.device
        self.store.ack_inbox(fingerprint, device, event.upto)
        sender = self._sender_of_event(event)
        if sender is None or sender.device != device or not sender.inbox_more:
            return []
        return self._send_inbox(sender)

    def _store_items(self, event: ToDevice | E2EPrivate) -> list[Outgoing]:
        """Store an event's inbox items (with the ids the cluster's log gave them, if it did) and
        send each device's new items to its sessions that have the rest already."""
        ids = event.ids
        created = event.ts / 1000
        # With the id the cluster's log gave each (0: an unknown device, skipped everywhere);
        # an item applied again after a reload of the store is not stored twice.
        entries = [
            InboxEntry(
                item.fingerprint, item.device, item.payload, None if ids is None else ids[index]
            )
            for index, item in enumerate(event.items)
        ]
        wanted = [entry for entry in entries if entry.item_id != 0]
        stored = self.store.append_inbox_items(wanted, created, INBOX_BOUNDS)
        new: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for entry, new_id in zip(wanted, stored, strict=True):
            if new_id:
                new.setdefault((entry.fingerprint, entry.device), []).append(
                    (new_id, entry.payload)
                )
        out: list[Outgoing] = []
        for session in self.sessions.values():
            items = new.get((session.fingerprint, session.device or ""))
            if items is not None and not session.inbox_more:
                out += self._send_new(session, items)
        return out

    def _send_new(self, session: Session, items: list[tuple[int, str]]) -> list[Outgoing]:
        """A session that was sent its whole inbox gets the items just stored as they are, not
        read back from the store; more than a frame holds goes the usual way, page by page."""
        page = _page(items)
        if len(page) < len(items):
            return self._send_inbox(session)
        return [(session.session_id, self._page_frame(session, page, more=False))]

    def _send_inbox(self, session: Session) -> list[Outgoing]:
        """The next page of the session's inbox: what it was not sent yet, oldest first, as much
        as fits one frame; ``more`` says whether a device_ack will bring another page."""
        if session.device is None:
            return []
        items = self.store.inbox(
            session.fingerprint, session.device, session.inbox_sent, self.now, INBOX_BOUNDS
        )
        if not items:
            session.inbox_more = False
            return []
        page = _page([(item.id, item.payload) for item in items])
        frame = self._page_frame(session, page, more=len(page) < len(items))
        return [(session.session_id, frame)]

    @staticmethod
    def _page_frame(session: Session, page: list[dict[str, Any]], more: bool) -> dict[str, Any]:
        session.inbox_sent = page[-1]["id"]
        session.inbox_more = more
        return {"type": "device_messages", "messages": page, "more": more}

    def _sender_of_event(self, event: ClusterEvent) -> Session | None:
        """This server's session that caused ``event``, if it is still here."""
        sender = self._sender_of(event)
        return self.sessions.get(sender) if sender is not None else None


def _page(items: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """The first of ``items`` (id, payload) that fit one ``device_messages`` frame."""
    budget = MAX_FRAME - PAGE_MARGIN
    page: list[dict[str, Any]] = []
    for item_id, payload in items:
        entry = {"id": item_id, **json.loads(payload)}
        budget -= len(encode_frame(entry)) + 1
        if budget < 0:
            break
        page.append(entry)
    return page
