"""Private key and known_hosts files are refused, as ssh refuses them, when others could read
or change them: a key readable or writable by group or others, or not the user's; a known_hosts
writable by group or others, or not the user's. What tlschat writes passes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tlschat.protocol import IdentityKey, KnownHosts
from tlschat.protocol.identity import (
    InsecureFileError,
    check_known_hosts_file,
    check_private_file,
)

from .helpers import Keys

FINGERPRINT = "SHA256:" + "A" * 43


@pytest.fixture
def key_file(keys: Keys, tmp_path: Path) -> Path:
    path = tmp_path / "identity.pem"
    keys["ed25519"].save(path)
    return path


@pytest.fixture
def someone_else(monkeypatch: pytest.MonkeyPatch) -> int:
    """Make the files' owner (this process's uid) look like another user."""
    real = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real + 1)
    return real + 1


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700])
def test_private_key_of_the_owner_alone_is_loaded(key_file: Path, keys: Keys, mode: int) -> None:
    os.chmod(key_file, mode)
    check_private_file(key_file)
    assert IdentityKey.load(key_file).fingerprint == keys["ed25519"].fingerprint
    assert IdentityKey.load_or_create(key_file, "ed25519")[0].fingerprint == (
        keys["ed25519"].fingerprint
    )


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o610, 0o601, 0o666])
def test_private_key_open_to_group_or_others_is_refused(key_file: Path, mode: int) -> None:
    os.chmod(key_file, mode)
    expected = (
        f"Permissions {mode:04o} for '{key_file}' are too open. It is required that your "
        f"private key files are NOT accessible by others. Run: chmod 600 {key_file}"
    )
    for load in (
        lambda: check_private_file(key_file),
        lambda: IdentityKey.load(key_file),
        lambda: IdentityKey.load_or_create(key_file, "ed25519"),
    ):
        with pytest.raises(InsecureFileError) as excinfo:
            load()
        assert str(excinfo.value) == expected
    assert stat.S_IMODE(key_file.stat().st_mode) == mode  # refused, not changed behind our back


def test_private_key_path_in_the_fix_is_quoted_for_the_shell(keys: Keys, tmp_path: Path) -> None:
    path = tmp_path / "my keys" / "identity.pem"
    keys["ed25519"].save(path)
    os.chmod(path, 0o644)
    with pytest.raises(InsecureFileError) as excinfo:
        IdentityKey.load(path)
    assert str(excinfo.value).endswith(f"Run: chmod 600 '{path}'")


def test_private_key_owned_by_someone_else_is_refused(key_file: Path, someone_else: int) -> None:
    owner = key_file.stat().st_uid
    with pytest.raises(InsecureFileError) as excinfo:
        IdentityKey.load(key_file)
    assert str(excinfo.value) == (
        f"'{key_file}' is owned by uid {owner}, not by you (uid {someone_else}). It is required "
        f"that your private key files are NOT accessible by others. Run (as root): chown "
        f"{someone_else} {key_file}"
    )


def test_a_new_key_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        key, created = IdentityKey.load_or_create(tmp_path / "home" / "identity.pem", "ed25519")
    finally:
        os.umask(old)
    assert created
    assert stat.S_IMODE((tmp_path / "home" / "identity.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "home").stat().st_mode) == 0o700
    assert IdentityKey.load(tmp_path / "home" / "identity.pem").fingerprint == key.fingerprint


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o444, 0o640])
def test_known_hosts_only_the_owner_writes_is_read(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(f"chat.example:7000 {FINGERPRINT}\n")
    os.chmod(path, mode)
    check_known_hosts_file(path)
    assert KnownHosts(path).lookup("chat.example", 7000) == (1, FINGERPRINT)


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666, 0o620, 0o602])
def test_known_hosts_writable_by_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(f"chat.example:7000 {FINGERPRINT}\n")
    os.chmod(path, mode)
    hosts = KnownHosts(path)
    expected = (
        f"Permissions {mode:04o} for '{path}' are too open. It is required that your "
        f"known_hosts files are NOT writable by others. Run: chmod go-w {path}"
    )
    for use in (
        hosts.check_file,
        lambda: hosts.lookup("chat.example", 7000),
        lambda: hosts.check("chat.example", 7000, FINGERPRINT),
        lambda: hosts.add("other.example", 7000, FINGERPRINT),
    ):
        with pytest.raises(InsecureFileError) as excinfo:
            use()
        assert str(excinfo.value) == expected
    assert path.read_text() == f"chat.example:7000 {FINGERPRINT}\n"  # nothing added


def test_known_hosts_owned_by_someone_else_is_refused(tmp_path: Path, someone_else: int) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(f"chat.example:7000 {FINGERPRINT}\n")
    with pytest.raises(InsecureFileError) as excinfo:
        KnownHosts(path).check_file()
    assert "is owned by uid" in str(excinfo.value)
    assert "known_hosts files are NOT accessible by others" in str(excinfo.value)


def test_no_known_hosts_yet_is_fine_and_a_new_one_is_private(tmp_path: Path) -> None:
    path = tmp_path / "home" / "known_hosts"
    hosts = KnownHosts(path)
    hosts.check_file()  # absent: nothing to refuse
    old = os.umask(0)
    try:
        hosts.add("chat.example", 7000, FINGERPRINT)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert hosts.lookup("chat.example", 7000) == (1, FINGERPRINT)
