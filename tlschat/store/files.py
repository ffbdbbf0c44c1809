"""Modes of the server's data directory and database: its owner's alone, whatever the umask.

Room messages, nicks and bans are in the database, the server's private key beside it; no other
local user may read them. What is created is made private at once; an existing directory or
file that is open to group or others is tightened, and the log says so.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("tlschat.files")

PRIVATE_DIRECTORY = 0o700
PRIVATE_FILE = 0o600
# SQLite's companions of a database in WAL mode.
DATABASE_SUFFIXES = ("", "-wal", "-shm")


def tighten(path: Path, allowed: int) -> bool:
    """Clear the bits of ``path``'s mode outside ``allowed``, logging it; True if it did.
    A path that does not exist is left alone."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return False
    if not mode & ~allowed:
        return False
    os.chmod(path, mode & allowed)
    log.warning(
        "[FILES] %s was mode %04o, open to other users: now %04o", path, mode, mode & allowed
    )
    return True


def private_directory(path: Path) -> None:
    """Make ``path`` a directory only its owner can use: created 0700 (missing parents as the
    umask says), or tightened to at most 0700 if it exists and is looser."""
    try:
        path.mkdir(parents=True, mode=PRIVATE_DIRECTORY)
    except FileExistsError:
        tighten(path, PRIVATE_DIRECTORY)
    else:
        os.chmod(path, PRIVATE_DIRECTORY)  # exactly 0700, whatever the umask


def database_files(database: Path) -> list[Path]:
    """The database file and its WAL and shared-memory files."""
    return [database.with_name(database.name + suffix) for suffix in DATABASE_SUFFIXES]


def private_database(database: Path) -> None:
    """Create ``database`` empty with mode 0600 if absent (SQLite gives its -wal and -shm files
    the database's mode), and tighten it, its -wal and its -shm to at most 0600 if looser."""
    try:
        fd = os.open(database, os.O_RDWR | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        pass
    else:
        try:
            os.fchmod(fd, PRIVATE_FILE)  # exactly 0600, whatever the umask
        finally:
            os.close(fd)
    for path in database_files(database):
        tighten(path, PRIVATE_FILE)
