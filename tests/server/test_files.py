"""The server's data directory and key, and the clean refusal of an exposed key or known_hosts
by `tlschat server`, `tlschat client` and the other commands (no traceback)."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from tlschat.cli import main
from tlschat.protocol import IdentityKey
from tlschat.protocol.identity import InsecureFileError
from tlschat.server.keys import KEY_FILE, load_or_create_server_identity


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def too_open(path: Path, mode: int = 0o644) -> str:
    return (
        f"[!] Permissions {mode:04o} for '{path}' are too open. It is required that your private"
        f" key files are NOT accessible by others. Run: chmod 600 {path}"
    )


def test_first_start_makes_a_private_data_directory_and_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    old = os.umask(0o022)
    try:
        key, _, created = load_or_create_server_identity(data, key_type="ed25519")
    finally:
        os.umask(old)
    assert created
    assert mode_of(data) == 0o700
    assert mode_of(data / KEY_FILE) == 0o600
    assert mode_of(data / "server_cert.der") == 0o600
    again, _, created = load_or_create_server_identity(data, key_type="ed25519")
    assert not created and again.fingerprint == key.fingerprint


def test_server_key_others_can_read_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    load_or_create_server_identity(data, key_type="ed25519")
    os.chmod(data / KEY_FILE, 0o640)
    with pytest.raises(InsecureFileError, match=r"Permissions 0640 for .* are too open"):
        load_or_create_server_identity(data, key_type="ed25519")


def test_server_with_an_exposed_key_exits_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging, "basicConfig", lambda **kwargs: None)  # keep pytest's logging
    data = tmp_path / "data"
    IdentityKey.generate("ed25519").save(data / KEY_FILE)
    os.chmod(data / KEY_FILE, 0o644)
    code = main(["server", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(data)])
    assert code == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == too_open(data / KEY_FILE)
    assert "LISTENING" not in captured.out
    assert not (data / "chat.db").exists()  # refused before anything was written


def test_client_with_an_exposed_identity_exits_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    IdentityKey.generate("ed25519").save(home / "identity.pem")
    os.chmod(home / "identity.pem", 0o604)
    args = ["--host", "127.0.0.1", "--port", "1", "--plain", "--home", str(home)]
    assert main(["client", *args]) == 1
    assert capsys.readouterr().err.strip() == too_open(home / "identity.pem", 0o604)
    # `tlschat fingerprint` and `tlschat keygen` refuse it the same way.
    assert main(["fingerprint", "--home", str(home)]) == 1
    assert capsys.readouterr().err.strip() == too_open(home / "identity.pem", 0o604)
    assert main(["keygen", "--home", str(home), "--key-type", "ed25519"]) == 1
    assert capsys.readouterr().err.strip() == too_open(home / "identity.pem", 0o604)


def test_client_with_a_group_writable_known_hosts_exits_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    IdentityKey.generate("ed25519").save(home / "identity.pem")
    known_hosts = home / "known_hosts"
    known_hosts.write_text("127.0.0.1:1 SHA256:" + "A" * 43 + "\n")
    os.chmod(known_hosts, 0o664)
    args = ["--host", "127.0.0.1", "--port", "1", "--plain", "--home", str(home)]
    assert main(["client", *args]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        f"[!] Permissions 0664 for '{known_hosts}' are too open. It is required that your "
        f"known_hosts files are NOT writable by others. Run: chmod go-w {known_hosts}"
    )
    assert "Cannot connect" not in captured.err + captured.out


def test_keygen_still_creates_a_private_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    assert main(["keygen", "--home", str(home), "--key-type", "ed25519"]) == 0
    assert "Created identity" in capsys.readouterr().out
    assert mode_of(home / "identity.pem") == 0o600
    assert main(["fingerprint", "--home", str(home)]) == 0
