"""One user's chat state: who they are, where they talk, whom they ignore, what they owe the
server (the outbox), and what it takes to start again after a lost connection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...protocol.identity import IdentityKey, fingerprints_equal
from ..delivery import DeliveryQueue
from ..lines import Line
from ..seen import SeenLedger
from ..verify import Verifier
from .crypto import ClientCrypto
from .joining import JoinRequests

DEFAULT_ROOM = "#general"


# How the server refuses a message whose counter it has seen: for a re-sent one, the proof that
# the first sending was delivered before the connection was lost.
REPLAYED_COUNTER = "replayed or out-of-order counter"


@dataclass(frozen=True)
class Member:
    """Someone in a room, as the server last described them."""

    nick: str
    fingerprint: str
    away: str = ""


class ClientBase:
    """One user's view: who they are, where they talk, whom they ignore, what verified."""

    def __init__(
        self, identity: IdentityKey, nick: str = "", crypto: ClientCrypto | None = None
    ) -> None:
        self.identity = identity
        # This home's end-to-end state; None: plain rooms only, and no private messages.
        self.crypto = crypto
        self.wanted_nick = nick
        self.nick = ""
        self.rooms: list[str] = []
        self.room = DEFAULT_ROOM
        self.quit_requested = False
        # Commands the glue answers before this client sees them (the full-screen client's
        # /trust), by name: usage and summary, for /help.
        self.ui_commands: dict[str, tuple[str, str]] = {}
        # The keys of the glue's input (Ctrl-C, Ctrl-D...), one line each, for /help.
        self.keys_help: list[str] = []
        self.dismissed = ""
        self.outbox: list[dict[str, Any]] = []
        self._counter = 0
        # The first key seen for each nick this session; another key later is flagged loudly.
        self._nick_keys: dict[str, str] = {}
        self.directory: dict[str, str] = {}
        self.ignored: set[str] = set()
        self.last_private: tuple[str, str] | None = None
        self._rejoin: list[str] = []
        # The rooms the client was in when its connection was lost, until each is back (or a
        # rejoin is refused): the full-screen client keeps their buffers, and the room the user
        # talks in stays one of them.
        self.rejoining: set[str] = set()
        # The user's /join commands waiting for their answer.
        self.joins = JoinRequests()
        # Who is in each room we are in, by casefolded nick (for a member list).
        self.members: dict[str, dict[str, Member]] = {}
        # The round trip of the last ping/pong, in seconds (None before the first pong).
        self.latency: float | None = None
        self._ping_sent: float | None = None
        # The server said its cluster store is unreachable: messages are not being delivered.
        self.degraded = False
        self.verifier = Verifier(identity.fingerprint)
        self.queue = DeliveryQueue()
        # The lines refused or given up this session: what the user is told at the end.
        self.undelivered: list[Line] = []
        # Nothing queued goes out before the server's welcome and the rejoin of every room:
        # a message sent first could be refused for a room not yet rejoined.
        self._welcomed = False
        self._awaiting_rejoin: set[str] = set()
        # The nick whose key a 'whois' is asking for, so that a /msg can be signed for it.
        self._resolving = ""
        # When the glue should call tick(): the queue's pace allows the next message then.
        self.wake_at: float | None = None
        # The server as the user named it (HOST:PORT), set by the glue: where the invitations
        # an operator makes here send new users, unless the operator names another address.
        self.server_address = ""

    @property
    def network(self) -> str:
        return self.verifier.network

    def use_network(self, network: str, ledger: SeenLedger) -> None:
        """Connected to the server whose key is ``network``; ``ledger`` is what was shown on it
        before (the glue keeps it per network in the client's home)."""
        self.verifier.use_network(network, ledger)

    def hello_frame(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "hello", "nick": self.wanted_nick}
        if self.crypto is not None:
            frame["device_keys"] = self.crypto.device_keys_fields()
            keys = self.crypto.hello_keys()
            if keys:
                frame["one_time_keys"] = keys
        return frame

    def prepare_reconnect(self) -> None:
        """Before a new session: ask for the same nick and rooms; keep keys, ignores, counters,
        and the room the user talks in (what is typed meanwhile is for it).

        Messages still in flight are sent again, unchanged, once the new session has rejoined,
        and the queued lines after them. Idempotent, since several attempts may fail before one
        gets through.
        """
        if self.rooms:
            current = self.room
            self._rejoin = [room for room in self.rooms if room not in (DEFAULT_ROOM, current)]
            if current and (self._rejoin or current != DEFAULT_ROOM):
                self._rejoin.append(current)
            self.rejoining = set(self.rooms)
        self.wanted_nick = self.nick or self.wanted_nick
        self.rooms = []
        self.joins.connection_lost()
        self.members.clear()
        self._ping_sent = None
        self.outbox.clear()
        self.degraded = False
        self._welcomed = False
        self._resolving = ""
        self._awaiting_rejoin.clear()
        self.queue.connection_lost()
        self.wake_at = None

    def talks_in(self, room: str) -> bool:
        """Whether what is typed for ``room`` goes there: the client is in it, or it comes back
        with a reconnect's rejoin (what is typed meanwhile waits for it)."""
        return room in self.rooms or room in self.rejoining

    @property
    def outstanding(self) -> int:
        """Lines sent or queued that have no outcome yet."""
        return self.queue.outstanding

    @property
    def unacknowledged(self) -> list[dict[str, Any]]:
        """The 'say' frames signed and not yet acknowledged, oldest first."""
        items = sorted(
            (item for item in [*self.queue.waiting, *self.queue.in_flight.values()]),
            key=lambda item: item.ref,
        )
        return [item.frame for item in items if item.frame is not None and item.command is None]

    def ping(self, now: float) -> None:
        """Queue a ping; the pong that answers it sets :attr:`latency`."""
        self._ping_sent = now
        self.outbox.append({"type": "ping"})

    def take_outbox(self) -> list[dict[str, Any]]:
        frames, self.outbox = self.outbox, []
        return frames

    def _learn(self, nick: str, fingerprint: str) -> None:
        self.directory[nick.casefold()] = fingerprint

    def _key_changed(self, nick: str, fingerprint: str) -> bool:
        first = self._nick_keys.setdefault(nick.casefold(), fingerprint)
        return not fingerprints_equal(first, fingerprint)
