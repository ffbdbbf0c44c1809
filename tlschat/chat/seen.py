"""What a client has shown on one network, so that a replayed line is never shown as new. Pure.

A live line is new only if it was signed recently (within the clock skew the server allows, and
not before the ledger's horizon) and its counter is above every counter shown from its sender on
this network. Counters only grow per sender (the server refuses any other), so one number per
sender is enough. A sender whose newest line is older than the skew can be forgotten: any replay
of their lines is too old to pass as new anyway. When more senders than the bound were active
within the skew, the oldest is forgotten and the horizon moves up to its time, so the bound costs
late lines their "new", never a replay its "old".

The glue persists :class:`SeenEntry` records (``take_journal``) per network in the client's home
and hands them back (:meth:`SeenLedger.restore`) after a restart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MAX_SKEW_MS = 10 * 60 * 1000
MAX_SENDERS = 10_000


@dataclass(frozen=True)
class SeenEntry:
    """The newest line shown from ``sender``: its counter and the newest signed time shown.

    ``sender`` empty marks the ledger's horizon (``timestamp_ms``) instead.
    """

    sender: str
    counter: int
    timestamp_ms: int


class SeenLedger:
    def __init__(self, max_senders: int = MAX_SENDERS, skew_ms: int = MAX_SKEW_MS) -> None:
        self.max_senders = max_senders
        self.skew_ms = skew_ms
        self.horizon_ms = 0
        self._latest: dict[str, tuple[int, int]] = {}
        self._journal: list[SeenEntry] = []

    @classmethod
    def restore(
        cls,
        entries: Iterable[SeenEntry],
        now_ms: int,
        max_senders: int = MAX_SENDERS,
        skew_ms: int = MAX_SKEW_MS,
    ) -> SeenLedger:
        """A ledger from persisted entries (the highest counter and time win), pruned as of
        ``now_ms``."""
        ledger = cls(max_senders, skew_ms)
        for entry in entries:
            ledger._apply(entry)
        ledger.prune(now_ms)
        ledger._journal.clear()
        return ledger

    def __len__(self) -> int:
        return len(self._latest)

    def is_stale(self, timestamp_ms: int, now_ms: int) -> bool:
        """Signed too long ago (or before the horizon) to be shown as a new line."""
        return timestamp_ms <= self.horizon_ms or timestamp_ms < now_ms - self.skew_ms

    def was_shown(self, sender: str, counter: int) -> bool:
        """A line of ``sender`` with this counter, or a later one, was shown on this network."""
        latest = self._latest.get(sender)
        return latest is not None and counter <= latest[0]

    def is_new(self, sender: str, counter: int, timestamp_ms: int, now_ms: int) -> bool:
        return not self.is_stale(timestamp_ms, now_ms) and not self.was_shown(sender, counter)

    def record(self, sender: str, counter: int, timestamp_ms: int, now_ms: int) -> None:
        """``sender``'s line with ``counter`` was shown (live or as history)."""
        counter_before, newest_before = self._latest.get(sender, (-1, 0))
        entry = SeenEntry(sender, max(counter, counter_before), max(timestamp_ms, newest_before))
        if (entry.counter, entry.timestamp_ms) == (counter_before, newest_before):
            return
        self._apply(entry)
        self._journal.append(entry)
        if len(self._latest) > self.max_senders:
            self.prune(now_ms)

    def prune(self, now_ms: int) -> None:
        """Forget senders quiet for longer than the skew; past the bound, the oldest too."""
        cutoff = now_ms - self.skew_ms
        for sender, (_, newest) in list(self._latest.items()):
            if newest < cutoff:
                del self._latest[sender]
        if len(self._latest) > self.max_senders:
            by_age = sorted(self._latest.items(), key=lambda item: item[1][1])
            excess = by_age[: len(self._latest) - self.max_senders]
            for sender, _ in excess:
                del self._latest[sender]
            self._raise_horizon(excess[-1][1][1])

    def entries(self) -> list[SeenEntry]:
        """Everything the ledger holds, for rewriting its file compactly."""
        horizon = [SeenEntry("", 0, self.horizon_ms)] if self.horizon_ms else []
        return horizon + [SeenEntry(s, c, t) for s, (c, t) in self._latest.items()]

    def take_journal(self) -> list[SeenEntry]:
        """The entries recorded since the last call: what the glue appends to its file."""
        journal, self._journal = self._journal, []
        return journal

    def _raise_horizon(self, timestamp_ms: int) -> None:
        if timestamp_ms > self.horizon_ms:
            self.horizon_ms = timestamp_ms
            self._journal.append(SeenEntry("", 0, timestamp_ms))

    def _apply(self, entry: SeenEntry) -> None:
        if not entry.sender:
            self.horizon_ms = max(self.horizon_ms, entry.timestamp_ms)
            return
        counter, newest = self._latest.get(entry.sender, (-1, 0))
        self._latest[entry.sender] = (
            max(counter, entry.counter),
            max(newest, entry.timestamp_ms),
        )
