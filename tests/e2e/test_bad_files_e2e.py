"""Every bad path, permission or key file ends a command with one line on stderr that says what
to do, and a nonzero exit: never a traceback. Each case runs `python -m tlschat.cli` for real."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .harness import EXIT_WAIT, HOST, Harness

IDENTITY_FIX = "restore it from a backup, or move it away and run `tlschat keygen`"
SERVER_KEY_FIX = "restore it from a backup, or move it away and start the server"
NOT_A_KEY = "holds no private key tlschat can use (Unable to load PEM file)"


def run(harness: Harness, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        harness.command(*args),
        env=harness.env,
        cwd=harness.root,
        capture_output=True,
        text=True,
        timeout=EXIT_WAIT,
        check=False,
    )


def refused(harness: Harness, *args: str, code: int = 1) -> str:
    """Run a command expected to refuse: its one line on stderr (checked: no traceback)."""
    result = run(harness, *args)
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr + result.stdout, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result
    assert lines[0].startswith("[!] "), result
    assert "LISTENING" not in result.stdout, result
    return lines[0]


def client(home: Path) -> tuple[str, ...]:
    """A line-mode client of ``home`` (no server needed: it stops before connecting)."""
    return ("client", "--plain", "--host", HOST, "--port", "9", "--home", str(home))


def damaged_key(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    os.chmod(path, 0o600)
    return path


@contextlib.contextmanager
def locked(directory: Path, mode: int) -> Iterator[None]:
    """``directory`` made unusable to this user: its mode for a user, the immutable attribute
    for root (whom modes do not stop)."""
    if os.geteuid() != 0:
        os.chmod(directory, mode)
        try:
            yield
        finally:
            os.chmod(directory, 0o700)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(directory)], check=False).returncode:
        pytest.skip("running as root on a file system without the immutable attribute")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(directory)], check=True)


# ----- the client's home: client and keygen -----

HOME_COMMANDS: dict[str, Callable[[Path], tuple[str, ...]]] = {
    "client": client,
    "keygen": lambda home: ("keygen", "--home", str(home)),
}


@pytest.mark.parametrize("command", HOME_COMMANDS)
def test_a_home_that_is_a_file(harness: Harness, command: str) -> None:
    home = harness.root / "not-a-directory"
    home.write_text("")
    line = refused(harness, *HOME_COMMANDS[command](home))
    assert line == (
        f"[!] The home directory {home} is a file, not a directory: give --home a directory "
        "(one that does not exist yet is made)"
    )


@pytest.mark.parametrize("command", HOME_COMMANDS)
def test_a_home_below_a_file(harness: Harness, command: str) -> None:
    blocking = harness.root / "a-file"
    blocking.write_text("")
    home = blocking / "deeper" / "home"
    line = refused(harness, *HOME_COMMANDS[command](home))
    assert line == (
        f"[!] Cannot make the home directory {home}: {blocking} is a file, not a directory; "
        "give --home another path"
    )


def test_a_home_whose_parents_do_not_exist_yet_is_made(harness: Harness) -> None:
    home = harness.root / "new" / "parents" / "home"
    result = run(harness, "keygen", "--home", str(home), "--key-type", "ed25519")
    assert result.returncode == 0, result
    assert result.stdout.startswith("Created identity SHA256:")
    assert (home / "identity.pem").is_file()


@pytest.mark.parametrize("command", HOME_COMMANDS)
def test_an_unwritable_home(harness: Harness, command: str) -> None:
    home = harness.root / "locked-home"
    home.mkdir(mode=0o700)
    with locked(home, 0o500):
        line = refused(harness, *HOME_COMMANDS[command](home))
    assert line.startswith(f"[!] Cannot read and write the home directory {home}: ")
    assert line.endswith("or give --home another directory")
    assert not (home / "identity.pem").exists()


@pytest.mark.parametrize("command", ["client", "keygen", "fingerprint"])
def test_a_damaged_identity(harness: Harness, command: str) -> None:
    home = harness.root / "home"
    key = damaged_key(home / "identity.pem")
    before = key.read_bytes()
    args = ("fingerprint", "--home", str(home)) if command == "fingerprint" else ()
    line = refused(harness, *(args or HOME_COMMANDS[command](home)))
    assert line.startswith(f"[!] {key} {NOT_A_KEY}: {IDENTITY_FIX}")
    assert key.read_bytes() == before  # never replaced


def test_an_identity_that_is_a_directory(harness: Harness) -> None:
    home = harness.root / "home"
    (home / "identity.pem").mkdir(parents=True, mode=0o700)
    line = refused(harness, *client(home))
    assert line.startswith(f"[!] Cannot read {home / 'identity.pem'} (Is a directory): ")


@pytest.mark.parametrize("content", [b"\xff\xfe not text", None], ids=["binary", "directory"])
def test_a_known_hosts_that_cannot_be_read(harness: Harness, content: bytes | None) -> None:
    home = harness.home("dora")
    known_hosts = home / "known_hosts"
    if content is None:
        known_hosts.mkdir(mode=0o700)
    else:
        known_hosts.write_bytes(content)
    line = refused(harness, *client(home))
    assert line.startswith(f"[!] Cannot read {known_hosts} (")
    assert line.endswith(
        "make it a text file you can read, or move it away (every server's key is then asked "
        "about again)"
    )


def test_a_device_directory_that_is_a_file(harness: Harness) -> None:
    home = harness.home("erin")
    (home / "device").write_text("")
    os.chmod(home / "device", 0o600)  # private, as a device directory must be: but a file
    line = refused(harness, *client(home))
    assert line.startswith(f"[!] Cannot use the device directory '{home / 'device'}' (")


# ----- the server's data directory: server and fingerprint --data-dir -----


def server(data_dir: Path) -> tuple[str, ...]:
    return ("server", "--host", HOST, "--port", "0", "--data-dir", str(data_dir))


def test_a_data_dir_that_is_a_file(harness: Harness) -> None:
    data = harness.root / "data"
    data.write_text("")
    line = refused(harness, *server(data))
    assert line == (
        f"[!] The data directory {data} is a file, not a directory: give --data-dir a "
        "directory (one that does not exist yet is made)"
    )
    assert data.read_text() == ""  # left as it was (its mode too)


def test_a_data_dir_below_a_file(harness: Harness) -> None:
    blocking = harness.root / "a-file"
    blocking.write_text("")
    line = refused(harness, *server(blocking / "data"))
    assert line == (
        f"[!] Cannot make the data directory {blocking / 'data'}: {blocking} is a file, not a "
        "directory; give --data-dir another path"
    )


def test_an_unusable_data_dir(harness: Harness) -> None:
    data = harness.root / "data"
    data.mkdir(mode=0o700)
    with locked(data, 0o000):
        line = refused(harness, *server(data))
    assert line.startswith("[!] Cannot ")
    assert f"the data directory {data}" in line
    assert "--data-dir" in line


def test_a_damaged_server_key(harness: Harness) -> None:
    data = harness.root / "data"
    key = damaged_key(data / "server_key.pem")
    line = refused(harness, *server(data))
    assert line.startswith(f"[!] {key} {NOT_A_KEY}: {SERVER_KEY_FIX}")
    line = refused(harness, "fingerprint", "--data-dir", str(data))
    assert line.startswith(f"[!] {key} {NOT_A_KEY}: {SERVER_KEY_FIX}")


def test_a_damaged_database(harness: Harness) -> None:
    data = harness.root / "data"
    data.mkdir(mode=0o700)
    shutil.copy(harness.home("server") / "identity.pem", data / "server_key.pem")
    (data / "chat.db").write_bytes(b"not a database " * 100)
    line = refused(harness, *server(data))
    assert line == (
        f"[!] {data / 'chat.db'} is not a database tlschat can open (file is not a database): "
        "restore it from a backup, or move it away to start with no history, nicks or bans"
    )


# ----- `tlschat fingerprint` without a key -----


def test_fingerprint_without_an_identity_points_to_keygen(harness: Harness) -> None:
    home = harness.root / "empty-home"
    line = refused(harness, "fingerprint", "--home", str(home))
    assert line == f"[!] No identity key in {home}: run `tlschat keygen --home {home}` to make one"
    assert not home.exists()  # looking made nothing
    default = Path(harness.env["TLSCHAT_HOME"])
    line = refused(harness, "fingerprint")
    assert line == f"[!] No identity key in {default}: run `tlschat keygen` to make one"


def test_fingerprint_without_a_server_key_says_where_it_comes_from(harness: Harness) -> None:
    data = harness.root / "data"
    line = refused(harness, "fingerprint", "--data-dir", str(data))
    assert line == (
        f"[!] No server key in {data}: the server makes one when it first starts "
        f"(tlschat server --data-dir {data})"
    )


# ----- a flag that does nothing, refused the same way -----


def test_json_without_plain_is_refused_before_anything_happens(harness: Harness) -> None:
    home = harness.root / "home"
    # (--line: with the test's stdin not a terminal, a bare --json would pick --plain itself.)
    line = refused(harness, "client", "--line", "--json", "--home", str(home), code=2)
    assert line == "[!] --json does nothing without --plain (it makes --plain print JSON lines)"
    assert not home.exists()
