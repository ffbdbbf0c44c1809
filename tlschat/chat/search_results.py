"""What ``/search`` shows: each line the server found, checked as a history line is (docs/
PROTOCOL.md, section 21) but without touching what the client records as shown, and the lines
this client decrypted itself, kept in memory for this run only. Pure."""

from __future__ import annotations

from dataclasses import replace

from ..protocol.alerts import ProtocolError
from ..protocol.identity import PeerIdentity
from .envelope import SignedMessage
from .lines import DELIVERED, MESSAGE_KINDS, Line
from .search_query import MAX_RESULTS, matches
from .verify import ANOTHER_NETWORK, ANOTHER_ROOM, BAD_KEY, BAD_SIGNATURE, FROM_THE_FUTURE

# Decrypted lines kept for /search: the newest, in memory only (never written to disk, where it
# would be plaintext of end-to-end encrypted rooms), for this run.
MAX_DECRYPTED_LINES = 5000


def result_problem(
    message: SignedMessage,
    key_der: bytes,
    network: str,
    rooms: list[str],
    now_ms: int,
    skew_ms: int,
) -> str:
    """Why a line the server found is not verified ("" if it is): signed by the key it came
    with, for this network and for a room the client is in, not dated in the future."""
    if message.network != network:
        return ANOTHER_NETWORK
    if message.target not in rooms:
        return ANOTHER_ROOM
    try:
        key = PeerIdentity.from_spki(key_der)
    except ProtocolError:
        return BAD_KEY
    if not message.verify(key):
        return BAD_SIGNATURE
    if message.timestamp_ms > now_ms + skew_ms:
        return FROM_THE_FUTURE
    return ""


def is_decrypted(line: Line) -> bool:
    """A line the end-to-end layer decrypted and verified, or the user's own encrypted line
    the server took."""
    if line.kind not in MESSAGE_KINDS or line.encrypted is not True:
        return False
    return line.delivery == DELIVERED if line.delivery else line.verified is True


class DecryptedLines:
    """The newest lines this client decrypted (or sent encrypted) during this run, each once
    (a line can reach the client's output more than once: as it came and again in history)."""

    def __init__(self, limit: int = MAX_DECRYPTED_LINES) -> None:
        self._limit = limit
        self._lines: dict[tuple[str, str, float, str], Line] = {}

    def keep(self, lines: list[Line]) -> None:
        for line in lines:
            if not is_decrypted(line):
                continue
            # The user's own line is theirs as sent: shown verified, no longer as a delivery.
            kept = replace(line, verified=True, delivery="", ref=0, history=None)
            self._lines[(kept.fingerprint, kept.room, kept.timestamp, kept.text)] = kept
            if len(self._lines) > self._limit:
                del self._lines[next(iter(self._lines))]

    def search(self, query: str, room: str = "") -> list[Line]:
        """The kept lines with every word of ``query`` (of ``room`` only, if given), newest
        first, at most MAX_RESULTS."""
        found = [
            line
            for line in self._lines.values()
            if (not room or line.room == room) and matches(line.text, query)
        ]
        found.sort(key=lambda line: line.timestamp, reverse=True)
        return found[:MAX_RESULTS]
