"""The users this user verified (``/verify``): their identity fingerprints, with the nick each
had then and when. Pure: the glue keeps the text in ``HOME/verified`` and passes the time in.

The text is JSON, ``{"version": 1, "verified": [{"fingerprint", "nick", "at"}, ...]}`` sorted
by fingerprint. Reading checks everything (size first) and raises :class:`DamagedVerifiedKeys`
for anything else: a damaged ledger is never half read, since a lost entry would silently show
a verified user as unverified, and a forged one the reverse.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ..e2e_frames import FINGERPRINT
from ..frames import valid_nick

VERSION = 1
MAX_ENTRIES = 10_000
MAX_TEXT = 2 * 1024 * 1024


class DamagedVerifiedKeys(ValueError):
    """The text is not a ledger of verified keys this version wrote."""


@dataclass(frozen=True)
class VerifiedUser:
    nick: str  # "" when the verification came with no nick
    at: float


def _check(fingerprint: str, nick: str, at: float) -> None:
    if not FINGERPRINT.fullmatch(fingerprint):
        raise ValueError("not a fingerprint")
    if nick and not valid_nick(nick):
        raise ValueError("not a nick")
    if not math.isfinite(at) or at < 0:
        raise ValueError("not a time")


class VerifiedKeys:
    """fingerprint → the nick it had when verified, and when; at most ``MAX_ENTRIES``."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: dict[str, VerifiedUser] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def is_verified(self, fingerprint: str) -> bool:
        return fingerprint in self._entries

    def get(self, fingerprint: str) -> VerifiedUser | None:
        return self._entries.get(fingerprint)

    def fingerprints_for(self, nick: str) -> list[str]:
        """The keys verified under ``nick`` (case-insensitively): a nick now shown with another
        key is one to warn about."""
        folded = nick.casefold()
        return sorted(fp for fp, user in self._entries.items() if user.nick.casefold() == folded)

    def add(self, fingerprint: str, nick: str, now: float) -> None:
        """``fingerprint`` was verified as ``nick`` at ``now``. When the ledger is full the
        oldest verification is forgotten: that user shows as unverified again, never the
        reverse."""
        _check(fingerprint, nick, now)
        self._entries.pop(fingerprint, None)
        if len(self._entries) >= self.max_entries:
            oldest = min(self._entries, key=lambda fp: (self._entries[fp].at, fp))
            del self._entries[oldest]
        self._entries[fingerprint] = VerifiedUser(nick, now)

    def remove(self, fingerprint: str) -> bool:
        """Forgets that ``fingerprint`` was verified; False if it was not."""
        return self._entries.pop(fingerprint, None) is not None

    def to_text(self) -> str:
        entries = [
            {"fingerprint": fp, "nick": user.nick, "at": user.at}
            for fp, user in sorted(self._entries.items())
        ]
        return json.dumps({"version": VERSION, "verified": entries}, indent=1) + "\n"

    @classmethod
    def from_text(cls, text: str, max_entries: int = MAX_ENTRIES) -> VerifiedKeys:
        if len(text) > MAX_TEXT:
            raise DamagedVerifiedKeys(f"the verified keys file is over {MAX_TEXT} characters")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise DamagedVerifiedKeys("the verified keys file is not JSON") from None
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise DamagedVerifiedKeys(f"the verified keys file is not version {VERSION}")
        entries = data.get("verified")
        if not isinstance(entries, list) or len(entries) > max_entries:
            raise DamagedVerifiedKeys(f"the verified keys file must list at most {max_entries}")
        ledger = cls(max_entries)
        for number, entry in enumerate(entries, 1):
            fingerprint, user = _parse_entry(entry, number)
            if fingerprint in ledger._entries:
                raise DamagedVerifiedKeys(f"entry {number} repeats {fingerprint}")
            ledger._entries[fingerprint] = user
        return ledger


def _parse_entry(entry: Any, number: int) -> tuple[str, VerifiedUser]:
    if not isinstance(entry, dict) or set(entry) != {"fingerprint", "nick", "at"}:
        raise DamagedVerifiedKeys(f"entry {number} is not {{fingerprint, nick, at}}")
    fingerprint, nick, at = entry["fingerprint"], entry["nick"], entry["at"]
    if (
        not isinstance(fingerprint, str)
        or not isinstance(nick, str)
        or not isinstance(at, int | float)
        or isinstance(at, bool)
    ):
        raise DamagedVerifiedKeys(f"entry {number} has a field of the wrong type")
    try:
        _check(fingerprint, nick, float(at))
    except (ValueError, OverflowError) as error:
        raise DamagedVerifiedKeys(f"entry {number}: {error}") from None
    return fingerprint, VerifiedUser(nick, float(at))
