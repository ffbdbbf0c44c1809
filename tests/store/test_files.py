"""The server's data directory is 0700 and its database, -wal and -shm 0600, whatever the umask;
an existing one that is looser is tightened, and the log says so."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tlschat.store import SQLiteStore
from tlschat.store.files import private_database, private_directory

from .test_sqlite import message


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o002, 0o000], ids=["umask-022", "umask-002", "umask-000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_new_data_directory_is_0700(tmp_path: Path, umask: int) -> None:
    data = tmp_path / "a" / "data"
    private_directory(data)
    assert data.is_dir()
    assert mode_of(data) == 0o700


@pytest.mark.parametrize(("before", "after"), [(0o755, 0o700), (0o777, 0o700), (0o750, 0o700)])
def test_existing_looser_data_directory_is_tightened_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, before: int, after: int
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, before)
    with caplog.at_level(logging.INFO, logger="tlschat.files"):
        private_directory(data)
    assert mode_of(data) == after
    assert caplog.messages == [
        f"[FILES] {data} was mode {before:04o}, open to other users: now {after:04o}"
    ]


@pytest.mark.parametrize("mode", [0o700, 0o500])
def test_private_data_directory_is_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, mode)
    with caplog.at_level(logging.INFO, logger="tlschat.files"):
        private_directory(data)
    assert mode_of(data) == mode
    assert caplog.messages == []


def test_new_database_and_its_wal_and_shm_are_0600(
    tmp_path: Path, umask: int, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "data" / "chat.db"
    with caplog.at_level(logging.INFO, logger="tlschat.files"):
        store = SQLiteStore(path)
    try:
        store.append_message(message("#general", 1))
        for name in ("chat.db", "chat.db-wal", "chat.db-shm"):
            assert mode_of(tmp_path / "data" / name) == 0o600, name
        assert mode_of(tmp_path / "data") == 0o700
    finally:
        store.close()
    assert caplog.messages == []  # made private, not tightened afterwards
    assert mode_of(path) == 0o600
    reopened = SQLiteStore(path)
    try:
        assert [m.counter for m in reopened.recent_messages("#general", 10)] == [1]
    finally:
        reopened.close()


def test_existing_looser_database_files_are_tightened_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "chat.db"
    store = SQLiteStore(path)
    store.append_message(message("#general", 1))
    store.close()
    # As an older tlschat left them (a crash keeps the -wal and -shm).
    wal, shm = tmp_path / "chat.db-wal", tmp_path / "chat.db-shm"
    wal.write_bytes(b"")
    shm.write_bytes(b"")
    for file in (path, wal, shm):
        os.chmod(file, 0o644)
    with caplog.at_level(logging.INFO, logger="tlschat.files"):
        private_database(path)
    for file in (path, wal, shm):
        assert mode_of(file) == 0o600, file
    assert caplog.messages == [
        f"[FILES] {file} was mode 0644, open to other users: now 0600" for file in (path, wal, shm)
    ]
    os.chmod(path, 0o664)
    reopened = SQLiteStore(path)
    try:
        assert mode_of(path) == 0o600
        assert [m.counter for m in reopened.recent_messages("#general", 10)] == [1]
    finally:
        reopened.close()


def test_in_memory_store_touches_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    SQLiteStore(":memory:").close()
    assert list(tmp_path.iterdir()) == []
