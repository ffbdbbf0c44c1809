"""The directories and key files every command starts from: a client's home, a server's data
directory, the keys in them. Each is checked before anything else happens, and a problem with one
ends the command with a single line that says what is wrong and what to do, never a traceback."""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from pathlib import Path

from .protocol.identity import IdentityKey, KeyFileError, KnownHosts

IDENTITY_FILE = "identity.pem"
IDENTITY_FIX = (
    "restore it from a backup, or move it away and run `tlschat keygen` for a new identity"
)
SERVER_KEY_FIX = (
    "restore it from a backup, or move it away and start the server to make a new key "
    "(clients that know the old key refuse the new one until they remove its known_hosts line)"
)


class UnusableFile(Exception):
    """A home, data directory or key file a command cannot use. The message is one line: what,
    what is wrong with it, and what to do."""


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; a path this user may not even look at is unusable."""
    try:
        return path.exists()
    except OSError as error:
        raise UnusableFile(
            f"Cannot look at {path} ({_reason(error)}): as the owner of the directory above it, "
            f"run chmod u+rx on that directory, or choose another place"
        ) from None


def _file_in_the_way(path: Path) -> Path | None:
    """The first of ``path``'s parents, or ``path`` itself, that exists but is no directory."""
    for candidate in (*reversed(path.parents), path):
        if _exists(candidate) and not candidate.is_dir():
            return candidate
    return None


def make_directory(path: Path) -> None:
    """Create ``path`` (and its missing parents) readable by its owner only, if absent."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)


def usable_directory(
    path: Path, what: str, flag: str, make: Callable[[Path], None] = make_directory
) -> None:
    """Make sure ``path`` is a directory this user can read and write: ``make`` creates it (with
    its missing parents) if it is not there yet. ``what`` names it ("home directory"), ``flag``
    is the option that chooses another."""
    blocking = _file_in_the_way(path)
    if blocking == path:
        raise UnusableFile(
            f"The {what} {path} is a file, not a directory: give {flag} a directory "
            "(one that does not exist yet is made)"
        )
    if blocking is not None:
        raise UnusableFile(
            f"Cannot make the {what} {path}: {blocking} is a file, not a directory; "
            f"give {flag} another path"
        )
    try:
        make(path)
    except OSError as error:
        raise UnusableFile(
            f"Cannot make or use the {what} {path} ({_reason(error)}): "
            f"give {flag} a directory you can write"
        ) from None
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise UnusableFile(
            f"Cannot read and write the {what} {path}: as its owner, run chmod u+rwx "
            f"{shlex.quote(str(path))}, or give {flag} another directory"
        )


def _damaged(path: Path, error: KeyFileError, fix: str) -> UnusableFile:
    return UnusableFile(f"{path} holds no private key tlschat can use ({error}): {fix}")


def read_key(path: Path, fix: str) -> IdentityKey:
    """The private key in ``path``, which exists; ``fix`` says what to do if it is unusable.
    A key others could read or change is refused as it always is (InsecureFileError)."""
    try:
        return IdentityKey.load(path)
    except KeyFileError as error:
        raise _damaged(path, error, fix) from None
    except OSError as error:
        raise UnusableFile(f"Cannot read {path} ({_reason(error)}): {fix}") from None


def existing_key(path: Path, missing: str, fix: str) -> IdentityKey:
    """The private key in ``path``; ``missing`` is the line for a key that is not there."""
    if not _exists(path):
        raise UnusableFile(missing)
    return read_key(path, fix)


def load_or_create_key(path: Path, key_type: str, fix: str) -> tuple[IdentityKey, bool]:
    """The key in ``path`` (in a directory checked by :func:`usable_directory`), made first if
    there is none; True if it was made now."""
    if _exists(path):
        return read_key(path, fix), False
    try:
        return IdentityKey.load_or_create(path, key_type)
    except KeyFileError as error:  # another process made it meanwhile, and it is damaged
        raise _damaged(path, error, fix) from None
    except OSError as error:
        raise UnusableFile(
            f"Cannot write the new key {path} ({_reason(error)}): make room on its disk, "
            "or choose another directory"
        ) from None


def home_identity(home: Path, key_type: str) -> tuple[IdentityKey, bool]:
    """The identity in the client home ``home`` (made, with the home, if there is none)."""
    usable_directory(home, "home directory", "--home")
    return load_or_create_key(home / IDENTITY_FILE, key_type, IDENTITY_FIX)


def readable_known_hosts(home: Path) -> KnownHosts:
    """The home's known_hosts, read once now: refused (InsecureFileError) if others may change
    it, unusable if it cannot be read as text."""
    known_hosts = KnownHosts(home / "known_hosts")
    try:
        known_hosts.entries()
    except (OSError, UnicodeDecodeError) as error:
        reason = _reason(error) if isinstance(error, OSError) else str(error)
        raise UnusableFile(
            f"Cannot read {known_hosts.path} ({reason}): make it a text file you can read, or "
            "move it away (every server's key is then asked about again)"
        ) from None
    return known_hosts
