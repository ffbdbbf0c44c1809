"""What the server's chat logic is made of: its settings, its sessions and the other servers',
what it sends and how it publishes events (``cluster_events``), the limits and texts it shares
with the glue. Pure."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...protocol.identity import PeerIdentity
from ..frames import (
    FrameError,
)
from ..limits import SAY_WORK, TokenBucket
from ..presence import DEFAULT_PRESENCE_BURST, DEFAULT_PRESENCE_RATE
from .cluster_events import ClusterEvent

DEFAULT_ROOM = "#general"


MAX_CLOCK_SKEW_MS = 10 * 60 * 1000


MAX_TOPIC_BYTES = 300


MAX_AWAY_BYTES = 200


MAX_ROOMS_PER_USER = 20


DEFAULT_LARGE_ROOM = 1000


# Rooms a session may watch at once (every join and leave of a large room).
MAX_WATCHED_ROOMS = 4


# Lines in one page of scrollback ('history #room BEFORE').
HISTORY_PAGE = 50


FINGERPRINT_PATTERN = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")


REPLAY_REJECTION = "message rejected: replayed or out-of-order counter"


PLAIN_PRIVATE_REJECTION = (
    "message rejected: private messages are end-to-end encrypted; send it with 'olm_private'"
)


# What a session may send between its hello and the verdict on the nick it claims (a client
# rejoins its rooms and re-sends its unacknowledged messages at once).
MAX_HELD = 300


DEGRADED_REJECTION = "message not sent: chat degraded (the cluster's store is unreachable)"


DEGRADED_NOTICE = (
    "chat degraded: the cluster's store is unreachable; messages are not being delivered"
)


RESTORED_NOTICE = "chat restored"


RESYNCHRONISED_NOTICE = (
    "this server lost track of the chat for a while; what you may have missed follows as history"
)


# A connection's frame budget is what its key may do (commands and pings by their work, messages
# by SAY_WORK) plus this headroom for hello, pongs and lines sent again after a reconnect: a client
# that paces itself by the welcome's budgets never reaches it.
CONNECTION_HEADROOM_RATE = 10.0


CONNECTION_HEADROOM_BURST = 100


Outgoing = tuple[int, dict[str, Any]]


Publish = Callable[[ClusterEvent], list[Outgoing]]


@dataclass
class ChatSettings:
    server_name: str = "tlschat"
    motd: str = ""
    history_limit: int = 50
    operators: frozenset[str] = frozenset()
    allowlist: frozenset[str] | None = None
    rate_per_second: float = 2.0
    burst: int = 10
    max_body_bytes: int = 4096
    # What a key's commands and pings may make the server do: WORK_COSTS units each, this many
    # per second after a burst. A join (history, presence to a room) costs ten pings.
    work_rate: float = 30.0
    work_burst: int = 300
    # Join and leave notices per room per second (after a burst) to its bystanders.
    presence_rate: float = DEFAULT_PRESENCE_RATE
    presence_burst: int = DEFAULT_PRESENCE_BURST
    # Rooms of more keys than this are large: 'joined' gives only how many members they have,
    # and only the keys that speak, and the changes a watcher asked for, are announced
    # (docs/PROTOCOL.md, "Large rooms").
    large_room: int = DEFAULT_LARGE_ROOM

    def connection_budget(self) -> TokenBucket:
        """The frame budget of one connection (see CONNECTION_HEADROOM_RATE)."""
        return TokenBucket(
            self.work_rate + SAY_WORK * self.rate_per_second + CONNECTION_HEADROOM_RATE,
            self.work_burst + SAY_WORK * self.burst + CONNECTION_HEADROOM_BURST,
        )


@dataclass
class Session:
    session_id: int
    identity: PeerIdentity
    address: str
    connected_at: float
    last_active: float
    nick: str = ""
    rooms: list[str] = field(default_factory=list)
    away: str = ""
    said_hello: bool = False
    # Sent a bye: the glue is closing it, and nothing more it sends is acted on.
    dismissed: bool = False
    # Between hello and the store's (a cluster's log's) verdict on the nick it claims: it joins
    # nothing and what it sends waits in ``held``, so nothing goes out under a nick it may lose.
    claiming: bool = False
    held: list[tuple[dict[str, Any], float]] = field(default_factory=list)
    # The nick is the one its hello asked for (not a fallback nor its key's other sessions').
    nick_asked: bool = False
    # Nicks (casefolded) whose claim the cluster's log refused to this session.
    refused: list[str] = field(default_factory=list)
    # The counter flood control refused, holding back the session's later messages until it
    # comes again (since ``held_since``).
    held_counter: int | None = None
    held_since: float = 0.0
    # Rooms whose join is on its way through the cluster's log: the session is in the room (it
    # hears its lines) from where the join is in the log, where its history is taken, so history
    # and live lines meet without a gap or a line twice.
    joining: list[str] = field(default_factory=list)
    # What its frames may cost, whatever becomes of them (ChatSettings.connection_budget), and
    # how many in a row that budget refused.
    frames: TokenBucket = field(default_factory=lambda: ChatSettings().connection_budget())
    refused_frames: int = 0
    # The end-to-end device this session speaks for (its hello's device_keys, once stored), the
    # newest inbox id it was sent, and whether its inbox holds more than it was sent: then new
    # items wait for its device_ack, so that it gets them in order.
    device: str | None = None
    inbox_sent: int = 0
    inbox_more: bool = False
    # A key the allowlist did not admit at its handshake: only a hello that brings an invitation
    # lets it in (chat/server/invitations.py). That hello, and when it came, while the
    # invitation's use is on its way through the cluster's log.
    invited_only: bool = False
    # Large rooms whose every join and leave it asked to hear ('watch', MAX_WATCHED_ROOMS).
    watching: set[str] = field(default_factory=set)
    invitation_hello: tuple[dict[str, Any], float] | None = None

    @property
    def fingerprint(self) -> str:
        return self.identity.fingerprint

    def describe(self) -> dict[str, str]:
        return {"nick": self.nick, "fingerprint": self.fingerprint, "away": self.away}


@dataclass
class RemoteSession:
    """A session of another server of the cluster, as its events told us."""

    node: str
    session_id: int
    fingerprint: str
    nick: str
    connected_at: float
    last_active: float
    rooms: list[str] = field(default_factory=list)
    away: str = ""

    def describe(self) -> dict[str, str]:
        return {"nick": self.nick, "fingerprint": self.fingerprint, "away": self.away}


Member = Session | RemoteSession


class TooFast(FrameError):
    """A command or ping refused: the key's work budget is spent for ``wait`` seconds."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"slow down: too many commands; you can send again in {wait:.1f} s")
        self.wait = wait


class Throttled(FrameError):
    """A message refused by flood control; the sender may send again after ``wait`` seconds."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"flood control: message not sent; you can send again in {wait:.1f} s")
        self.wait = wait
