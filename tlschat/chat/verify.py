"""What a ✓ promises, checked for each line a client receives. Pure.

A line is verified when its sender's key signed exactly it, for the network the client is
connected to, for where it is shown (a room the client is in, or the client's own key), and, for a
live line, it is new: signed recently and never shown before on this network (across restarts too,
through the :class:`~tlschat.chat.seen.SeenLedger` the glue persists).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol.alerts import ProtocolError
from ..protocol.identity import PeerIdentity, fingerprints_equal
from .envelope import SignedMessage
from .seen import SeenLedger

MAX_REMEMBERED_SHOWN = 10_000

ANOTHER_NETWORK = "signed for another network"
ANOTHER_ROOM = "signed for another room"
NOT_FOR_YOU = "signed for someone else"
BAD_KEY = "unusable key"
BAD_SIGNATURE = "bad signature"
REPLAYED = "replayed: shown before"
FROM_THE_FUTURE = "dated in the future"


@dataclass(frozen=True)
class Verdict:
    """How to show one received line.

    ``duplicate``: exactly this line was shown in this session already (a re-delivery after a
    reconnect); showing it again adds nothing. ``late``: verified, but signed longer ago than a
    live line may be; shown as history.
    """

    verified: bool
    problem: str = ""
    duplicate: bool = False
    late: bool = False


class Verifier:
    def __init__(self, own_fingerprint: str) -> None:
        self.own_fingerprint = own_fingerprint
        self.network = ""
        self.ledger = SeenLedger()
        # (sender, counter) of the lines shown lately, exactly: a history replay after a
        # reconnect shows only what was missed.
        self._shown: dict[tuple[str, int], None] = {}

    def use_network(self, network: str, ledger: SeenLedger) -> None:
        """The connection's server key is ``network``; ``ledger`` is what was shown on it."""
        if network != self.network:
            self.network = network
            self.ledger = ledger
            self._shown.clear()

    def remember_own(self, message: SignedMessage, now: float) -> None:
        """Our own line: it comes back only in a history replay, where it is nothing new."""
        self.ledger.record(message.sender, message.counter, message.timestamp_ms, int(now * 1000))
        self._remember(message.sender, message.counter)

    def was_shown(self, sender: object, counter: object) -> bool:
        return (
            isinstance(sender, str)
            and isinstance(counter, int)
            and not isinstance(counter, bool)
            and (sender, counter) in self._shown
        )

    def check(
        self,
        message: SignedMessage,
        key_der: bytes,
        rooms: list[str],
        history_room: str,
        now: float,
    ) -> Verdict:
        """The verdict on a live line (``history_room`` empty) or a history entry of that room."""
        now_ms = int(now * 1000)
        if message.network != self.network:
            return Verdict(False, ANOTHER_NETWORK)
        if message.target.startswith("@"):
            if not fingerprints_equal(message.target[1:], self.own_fingerprint):
                return Verdict(False, NOT_FOR_YOU)
        elif message.target not in ([history_room] if history_room else rooms):
            return Verdict(False, ANOTHER_ROOM)
        try:
            key = PeerIdentity.from_spki(key_der)
        except ProtocolError:
            return Verdict(False, BAD_KEY)
        if not message.verify(key):
            return Verdict(False, BAD_SIGNATURE)
        if message.timestamp_ms > now_ms + self.ledger.skew_ms:
            return Verdict(False, FROM_THE_FUTURE)
        if self.was_shown(message.sender, message.counter):
            return Verdict(True, duplicate=True)
        late = False
        if not history_room:
            if self.ledger.was_shown(message.sender, message.counter):
                return Verdict(False, REPLAYED)
            late = self.ledger.is_stale(message.timestamp_ms, now_ms)
        self.ledger.record(message.sender, message.counter, message.timestamp_ms, now_ms)
        self._remember(message.sender, message.counter)
        return Verdict(True, late=late)

    def _remember(self, sender: str, counter: int) -> None:
        self._shown[(sender, counter)] = None
        if len(self._shown) > MAX_REMEMBERED_SHOWN:
            del self._shown[next(iter(self._shown))]
