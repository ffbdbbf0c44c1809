"""The files of this client's device (docs/PROTOCOL.md, "End-to-end layer"): ``HOME/device/``.

The directory is 0700. ``pickle.key`` holds the 32 random bytes that seal every state file (the
end-to-end layer seals its pickles with it, tlschat/e2e/codec.py); it is made once, 0600, and
refused, as ssh refuses a private key, if anyone but its owner may read or change it, or if it
is not 32 bytes. The state files, one per name, each hold sealed text; each is replaced
atomically, so a crash leaves either its old or its new content, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import stat
import tempfile
from pathlib import Path

from ..e2e.codec import PICKLE_KEY_SIZE
from ..protocol.identity import InsecureFileError, write_private_file

DEVICE_DIRECTORY = "device"
PICKLE_KEY_FILE = "pickle.key"
PRIVATE_DIRECTORY = 0o700
# State file names: no dot, so neither the key nor a temporary file is ever read as state.
STATE_NAME = re.compile(r"[a-z0-9_-]{1,64}")


class DeviceFileError(InsecureFileError):
    """The device's directory or pickle key cannot be used safely. The message says what is
    wrong and how to fix it; the command line shows it as it shows a refused identity key."""


def _check_private(path: Path, what: str, fix: str) -> None:
    """Refuse ``path`` if it is not the user's own or group or others have any access to it."""
    status = path.stat()
    uid = os.getuid()
    if status.st_uid != uid:
        raise DeviceFileError(
            f"{what} '{path}' is owned by uid {status.st_uid}, not by you (uid {uid}); it holds "
            f"the keys of your end-to-end encryption. Run (as root): chown {uid} "
            f"{shlex.quote(str(path))}"
        )
    mode = stat.S_IMODE(status.st_mode)
    if mode & 0o077:
        raise DeviceFileError(
            f"Permissions {mode:04o} for {what} '{path}' are too open: other users could read "
            f"the keys of your end-to-end encryption. Run: {fix} {shlex.quote(str(path))}"
        )


class DeviceStore:
    """``HOME/device/``: its pickle key, and the state files of the end-to-end layer by name."""

    def __init__(self, home: Path) -> None:
        self.directory = home / DEVICE_DIRECTORY
        self.key_path = self.directory / PICKLE_KEY_FILE

    def pickle_key(self) -> bytes:
        """The device's pickle key, made (with the directory) on first use; DeviceFileError if
        the directory or the key is open to others, or the key is not 32 bytes."""
        self._directory()
        if not self.key_path.exists():
            # Written whole to a 0600 temporary file, then linked in: never seen half made.
            with contextlib.suppress(FileExistsError):  # another client process was first
                write_private_file(
                    self.key_path, secrets.token_bytes(PICKLE_KEY_SIZE), replace=False
                )
        _check_private(self.key_path, "the device key", "chmod 600")
        with self.key_path.open("rb") as handle:
            key = handle.read(PICKLE_KEY_SIZE + 1)
        if len(key) != PICKLE_KEY_SIZE:
            size = self.key_path.stat().st_size
            raise DeviceFileError(
                f"The device key '{self.key_path}' holds {size} bytes, not "
                f"{PICKLE_KEY_SIZE}: it was not written by tlschat, or was damaged. Your "
                "device's state cannot be opened without it. Restore it from a backup, or move "
                f"{shlex.quote(str(self.directory))} aside to start as a new device (the people "
                "you talk to will see a new device of yours)."
            )
        return key

    def _directory(self) -> None:
        """Make ``HOME/device`` 0700 if absent; refuse it if it is open to others."""
        self.directory.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY)
        try:
            self.directory.mkdir(mode=PRIVATE_DIRECTORY)
        except FileExistsError:
            _check_private(self.directory, "the device directory", "chmod 700")
        else:
            os.chmod(self.directory, PRIVATE_DIRECTORY)  # exactly 0700, whatever the umask

    def load(self) -> dict[str, str]:
        """Every state file, by name (none before the first save)."""
        if not self.directory.exists():
            return {}
        self._directory()
        return {
            path.name: path.read_bytes().decode("utf-8")  # as saved: no newline translation
            for path in sorted(self.directory.iterdir())
            if STATE_NAME.fullmatch(path.name) and path.is_file()
        }

    def save(self, files: dict[str, str]) -> None:
        """Write the files given (the others stay as they are), each replaced atomically: a
        temporary 0600 file in the directory, synced, renamed over the old one, and the
        directory synced so that the rename lasts. ValueError for a name that is not
        ``[a-z0-9_-]{1,64}``, before anything is written."""
        for name in files:
            if not STATE_NAME.fullmatch(name):
                raise ValueError(f"not a device state file name: {name!r}")
        self._directory()
        for name, text in files.items():
            self._replace(name, text.encode("utf-8"))
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def _replace(self, name: str, data: bytes) -> None:
        # mkstemp: a new name with O_EXCL and mode 0600, whatever the umask.
        fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.directory / name)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
