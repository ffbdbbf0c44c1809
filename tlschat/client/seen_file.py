"""Where the client keeps what it has shown on each network, so that a replay stays a replay
after a restart: ``HOME/seen/<hash of the network>``, one ``sender counter time`` line per
record, appended as lines are shown and rewritten compactly when loaded or grown.

The file holds fingerprints and counters, no message text. It is written 0600; a file that is
unreadable or corrupt is replaced by an empty ledger with the horizon at the time it was found, so
nothing shown before that moment can pass as new.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from ..chat.client.receiving import ChatClient
from ..chat.seen import SeenEntry, SeenLedger
from ..protocol.identity import write_private_file

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 4 * 1024 * 1024
# The file is rewritten compactly once it holds this many times more lines than the ledger.
COMPACT_FACTOR = 4
MIN_COMPACT_LINES = 1000


def seen_path(home: Path, network: str) -> Path:
    digest = hashlib.sha256(network.encode("utf-8")).hexdigest()[:32]
    return home / "seen" / digest


def _parse(line: str) -> SeenEntry | None:
    parts = line.split()
    if len(parts) == 2 and parts[0] == "horizon" and parts[1].isdigit():
        return SeenEntry("", 0, int(parts[1]))
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return SeenEntry(parts[0], int(parts[1]), int(parts[2]))


def _format(entry: SeenEntry) -> str:
    if not entry.sender:
        return f"horizon {entry.timestamp_ms}\n"
    return f"{entry.sender} {entry.counter} {entry.timestamp_ms}\n"


class SeenFile:
    def __init__(self, home: Path, network: str) -> None:
        self.path = seen_path(home, network)
        self._lines = 0

    def load(self, now_ms: int) -> SeenLedger:
        """The ledger as it was when the client last ran on this network (compacted on disk)."""
        entries: list[SeenEntry] = []
        try:
            if self.path.stat().st_size > MAX_FILE_BYTES:
                raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
            with self.path.open(encoding="ascii") as handle:
                for line in handle:
                    entry = _parse(line)
                    if entry is None:
                        raise ValueError(f"malformed line {line[:80]!r}")
                    entries.append(entry)
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as error:
            log.warning("[SEEN] %s unusable (%s): starting afresh from now", self.path, error)
            entries = [SeenEntry("", 0, now_ms)]
        ledger = SeenLedger.restore(entries, now_ms)
        self.rewrite(ledger)
        return ledger

    def rewrite(self, ledger: SeenLedger) -> None:
        entries = ledger.entries()
        write_private_file(self.path, "".join(_format(e) for e in entries).encode("ascii"))
        self._lines = len(entries)

    def append(self, ledger: SeenLedger) -> None:
        """Add what the ledger recorded since the last call (a process crash loses nothing
        written; the file is flushed, not synced, for each batch)."""
        journal = ledger.take_journal()
        if not journal:
            return
        if self._lines + len(journal) > max(MIN_COMPACT_LINES, COMPACT_FACTOR * len(ledger)):
            self.rewrite(ledger)
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="ascii") as handle:
            handle.write("".join(_format(entry) for entry in journal))
        self._lines += len(journal)


class SeenFiles:
    """The ledgers of one client home: the file of the network the client is connected to."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.network = ""
        self._file: SeenFile | None = None

    def use(self, chat: ChatClient, network: str, now: float) -> None:
        """Connected to ``network``: hand ``chat`` what was shown on it (kept across reconnects
        to the same network, loaded from its file otherwise)."""
        if network == self.network and chat.network == network:
            return
        self._file = SeenFile(self.home, network)
        try:
            ledger = self._file.load(int(now * 1000))
        except OSError as error:
            log.warning(
                "[SEEN] cannot write %s (%s): replays are caught in this run only",
                self._file.path,
                error,
            )
            ledger = SeenLedger.restore([SeenEntry("", 0, int(now * 1000))], int(now * 1000))
        chat.use_network(network, ledger)
        self.network = network

    def save(self, chat: ChatClient) -> None:
        """Append what ``chat`` has shown since the last call."""
        if self._file is None or chat.network != self.network:
            return
        try:
            self._file.append(chat.verifier.ledger)
        except OSError as error:
            log.warning("[SEEN] cannot write %s (%s)", self._file.path, error)
