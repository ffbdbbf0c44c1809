"""What the client keeps in its home while it chats: what it showed per network
(:mod:`seen_file`) and its device for the end-to-end layer (:mod:`device_store`)."""

from __future__ import annotations

import logging
from pathlib import Path

from ..chat.client.crypto import ClientCrypto
from ..chat.client.receiving import ChatClient
from ..chat.client.verified import DamagedVerifiedKeys
from ..e2e.errors import UnreadablePickle
from ..protocol.identity import IdentityKey
from .device_store import DeviceFileError, DeviceStore
from .seen_file import SeenFiles

log = logging.getLogger("tlschat.client")


def open_device(home: Path, identity: IdentityKey) -> ClientCrypto:
    """This home's device: created on first use, else read back. A state file that does not
    open is refused, never replaced: a new device would lose every session its peers hold."""
    store = DeviceStore(home)
    try:
        pickle_key = store.pickle_key()
        crypto = ClientCrypto(identity, pickle_key, store.load())
        # A new device is on disk before its keys reach any server.
        store.save(crypto.take_dirty())
    except (UnreadablePickle, DamagedVerifiedKeys, UnicodeDecodeError) as error:
        raise DeviceFileError(
            f"The end-to-end state in '{store.directory}' cannot be read ({error}). It is kept "
            "as it is; move that directory away to start a new device (your peers will then "
            "see a new device, and encrypted history sent before it stays unreadable here)."
        ) from None
    except OSError as error:
        raise DeviceFileError(
            f"Cannot use the device directory '{store.directory}' ({error.strerror or error}): "
            "make it a directory you can read and write, or move it away to start a new device"
        ) from None
    return crypto


class HomeFiles:
    """The files one client home changes as the chat goes on."""

    def __init__(self, home: Path) -> None:
        self.seen = SeenFiles(home)
        self.device = DeviceStore(home)

    def use_network(self, chat: ChatClient, network: str, now: float) -> None:
        self.seen.use(chat, network, now)

    def save(self, chat: ChatClient) -> None:
        """Write what changed. Called before the frames that follow from it are sent: a
        ``device_ack``, a used one-time key or a ratchet step must never reach the server
        before the device state it leads to is on disk."""
        if chat.crypto is not None:
            dirty = chat.crypto.take_dirty()
            try:
                if dirty:
                    self.device.save(dirty)
            except OSError as error:
                log.warning(
                    "[DEVICE] cannot write %s (%s): what was decrypted in this run may not be "
                    "readable after a restart",
                    self.device.directory,
                    error,
                )
        self.seen.save(chat)
