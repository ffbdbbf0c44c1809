"""The client home's device: made once and on disk before it is used, read back the same, never
silently replaced when its state does not open; what changes is written before it is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from tlschat.chat.client.receiving import ChatClient
from tlschat.client.device_store import DeviceFileError, DeviceStore
from tlschat.client.home_files import HomeFiles, open_device
from tlschat.protocol.identity import IdentityKey


@pytest.fixture
def identity() -> IdentityKey:
    return IdentityKey.generate("ed25519")


def test_a_new_device_is_on_disk_before_it_is_used(tmp_path: Path, identity: IdentityKey) -> None:
    crypto = open_device(tmp_path, identity)
    assert crypto.take_dirty() == {}
    saved = DeviceStore(tmp_path).load()
    assert "device" in saved
    assert crypto.device.curve25519_key not in "".join(saved.values())  # sealed, not plain


def test_the_same_device_comes_back(tmp_path: Path, identity: IdentityKey) -> None:
    first = open_device(tmp_path, identity)
    again = open_device(tmp_path, identity)
    assert again.device_id == first.device_id
    assert again.device_keys_fields() == first.device_keys_fields()


def test_a_damaged_state_is_refused_not_replaced(tmp_path: Path, identity: IdentityKey) -> None:
    open_device(tmp_path, identity)
    state = tmp_path / "device" / "device"
    state.write_text("v1.damaged", encoding="utf-8")
    with pytest.raises(DeviceFileError, match="cannot be read"):
        open_device(tmp_path, identity)
    assert state.read_text(encoding="utf-8") == "v1.damaged"


def test_a_state_sealed_with_another_key_is_refused(tmp_path: Path, identity: IdentityKey) -> None:
    open_device(tmp_path, identity)
    saved = DeviceStore(tmp_path).load()
    (tmp_path / "device" / "pickle.key").write_bytes(bytes(32))
    with pytest.raises(DeviceFileError, match="cannot be read"):
        open_device(tmp_path, identity)
    assert DeviceStore(tmp_path).load() == saved


def test_what_changed_is_saved_by_the_home(tmp_path: Path, identity: IdentityKey) -> None:
    crypto = open_device(tmp_path, identity)
    chat = ChatClient(identity, "alice", crypto=crypto)
    before = DeviceStore(tmp_path).load()
    crypto.mark("olm_sessions", "room_keys")
    HomeFiles(tmp_path).save(chat)
    after = DeviceStore(tmp_path).load()
    assert {"olm_sessions", "room_keys"} <= set(after)
    assert after["device"] == before["device"]
    assert crypto.take_dirty() == {}
