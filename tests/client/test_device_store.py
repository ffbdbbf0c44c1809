"""HOME/device: a 0700 directory, a 0600 32-byte pickle key refused when others may read it,
and state files saved atomically, one by one."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tlschat.client.device_store import DeviceFileError, DeviceStore
from tlschat.protocol.identity import InsecureFileError


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o002, 0o000, 0o077], ids=lambda mask: f"umask-{mask:03o}")
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


# --- the pickle key ----------------------------------------------------------------------------


def test_the_first_use_makes_a_private_directory_and_key(tmp_path: Path, umask: int) -> None:
    home = tmp_path / "home"
    store = DeviceStore(home)
    key = store.pickle_key()
    assert len(key) == 32
    assert mode_of(home / "device") == 0o700
    assert mode_of(home / "device" / "pickle.key") == 0o600
    assert (home / "device" / "pickle.key").read_bytes() == key
    assert os.listdir(home / "device") == ["pickle.key"]  # no temporary file left
    # The same key every time after, also for another DeviceStore of the home.
    assert store.pickle_key() == key
    assert DeviceStore(home).pickle_key() == key


def test_each_home_gets_its_own_random_key(tmp_path: Path) -> None:
    assert DeviceStore(tmp_path / "a").pickle_key() != DeviceStore(tmp_path / "b").pickle_key()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o620, 0o660, 0o606])
def test_a_key_others_may_read_or_change_is_refused(tmp_path: Path, mode: int) -> None:
    store = DeviceStore(tmp_path)
    store.pickle_key()
    os.chmod(store.key_path, mode)
    with pytest.raises(DeviceFileError) as refused:
        store.pickle_key()
    message = str(refused.value)
    assert f"Permissions {mode:04o}" in message
    assert "too open" in message
    assert f"chmod 600 {store.key_path}" in message
    # The command line shows it as it shows a refused identity key.
    assert isinstance(refused.value, InsecureFileError)
    assert mode_of(store.key_path) == mode  # refused, not silently changed


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_a_key_of_the_wrong_size_is_refused(tmp_path: Path, size: int) -> None:
    store = DeviceStore(tmp_path)
    store.pickle_key()
    store.key_path.write_bytes(b"k" * size)
    with pytest.raises(DeviceFileError, match=rf"holds {size} bytes, not 32") as refused:
        store.pickle_key()
    assert "new device" in str(refused.value)
    assert store.key_path.read_bytes() == b"k" * size  # left for the user to restore


def test_a_device_directory_open_to_others_is_refused(tmp_path: Path) -> None:
    store = DeviceStore(tmp_path)
    store.pickle_key()
    os.chmod(store.directory, 0o755)
    with pytest.raises(DeviceFileError, match=r"Permissions 0755 .* chmod 700"):
        store.pickle_key()
    with pytest.raises(DeviceFileError):
        store.load()
    with pytest.raises(DeviceFileError):
        store.save({"account": "sealed"})


@pytest.mark.skipif(os.getuid() != 0, reason="giving a file away needs root")
def test_a_key_another_user_owns_is_refused(tmp_path: Path) -> None:
    store = DeviceStore(tmp_path)
    store.pickle_key()
    os.chown(store.key_path, 4242, -1)
    with pytest.raises(DeviceFileError, match=r"owned by uid 4242, not by you"):
        store.pickle_key()


# --- state files -------------------------------------------------------------------------------


def test_nothing_saved_loads_as_nothing(tmp_path: Path) -> None:
    store = DeviceStore(tmp_path / "home")
    assert store.load() == {}
    assert not store.directory.exists()  # reading makes nothing


def test_save_then_load_round_trip(tmp_path: Path, umask: int) -> None:
    store = DeviceStore(tmp_path)
    files = {"account": "v1.c2VhbGVk", "olm_sessions": "v1.b2xt", "room-keys_2": "ünïcødé ✓"}
    store.save(files)
    assert store.load() == files
    assert DeviceStore(tmp_path).load() == files
    assert mode_of(store.directory) == 0o700
    for name in files:
        assert mode_of(store.directory / name) == 0o600


def test_save_writes_only_the_files_given(tmp_path: Path) -> None:
    store = DeviceStore(tmp_path)
    store.save({"account": "one", "sessions": "two"})
    store.save({"sessions": "three"})
    assert store.load() == {"account": "one", "sessions": "three"}


def test_load_reads_state_files_only(tmp_path: Path) -> None:
    store = DeviceStore(tmp_path)
    store.pickle_key()
    store.save({"account": "sealed"})
    (store.directory / ".account.x1.tmp").write_text("a crashed save")
    (store.directory / "Account").write_text("not a state name")
    (store.directory / "notes.txt").write_text("not a state name")
    (store.directory / "subdir").mkdir()
    assert store.load() == {"account": "sealed"}


@pytest.mark.parametrize("name", ["", "Account", "pickle.key", "../escape", "a/b", "x" * 65])
def test_a_bad_name_is_refused_before_anything_is_written(tmp_path: Path, name: str) -> None:
    store = DeviceStore(tmp_path)
    with pytest.raises(ValueError, match="not a device state file name"):
        store.save({"account": "sealed", name: "text"})
    assert store.load() == {}
    assert not (tmp_path / "escape").exists()


def test_save_syncs_the_file_before_renaming_it_and_the_directory_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DeviceStore(tmp_path)
    store.pickle_key()
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        kind = "directory" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        events.append(f"fsync {kind}")
        real_fsync(fd)

    def replace(source: str | Path, target: str | Path) -> None:
        events.append(f"replace {Path(target).name}")
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    store.save({"account": "sealed"})
    assert events == ["fsync file", "replace account", "fsync directory"]


def test_a_failed_save_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DeviceStore(tmp_path)
    store.save({"account": "old state"})

    def crash(source: str | Path, target: str | Path) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        store.save({"account": "new state"})
    monkeypatch.undo()
    assert store.load() == {"account": "old state"}
    assert sorted(os.listdir(store.directory)) == ["account"]  # the temporary file is gone


@settings(max_examples=30, deadline=None)
@given(
    saves=st.lists(
        st.dictionaries(
            st.from_regex(r"[a-z0-9_-]{1,64}", fullmatch=True), st.text(max_size=50), max_size=4
        ),
        max_size=5,
    )
)
def test_load_gives_the_last_text_saved_under_each_name(
    tmp_path_factory: pytest.TempPathFactory, saves: list[dict[str, str]]
) -> None:
    store = DeviceStore(tmp_path_factory.mktemp("home"))
    expected: dict[str, str] = {}
    for files in saves:
        store.save(files)
        expected.update(files)
    assert store.load() == expected
