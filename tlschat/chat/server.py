"""The server's chat logic: sessions, rooms, private messages, history, moderation. Pure.

Time is passed in and every call returns the frames to send as ``(session_id, frame)`` pairs;
the asyncio glue only delivers them. A ``bye`` frame tells the glue to close that session after
sending it. Persistence goes through the :class:`~tlschat.store.base.Store` interface.

Every change that other sessions see — presence, messages, nicks, topics, moderation — is an
*event* handed to ``publish``. One server alone applies it at once (:meth:`ChatServer.apply`,
the default). In a cluster the broker commits it to the cluster's log and every server applies
it in the log's order, for its own sessions; the sessions of the other servers are known
through those events as :class:`RemoteSession`.
"""

from __future__ import annotations

import base64
import itertools
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..protocol.identity import PeerIdentity, fingerprints_equal
from ..store.base import Ban, Store, StoredMessage
from .envelope import SignedMessage
from .frames import (
    MAX_FRAME,
    FrameError,
    b64,
    encode_frame,
    field_str,
    has_unsafe_text,
    message_fields,
    parse_signed_message,
    valid_nick,
    valid_room,
)
from .limits import SAY_WORK, TokenBucket, frame_cost, work_cost
from .presence import DEFAULT_PRESENCE_BURST, DEFAULT_PRESENCE_RATE, PresenceLimiter

DEFAULT_ROOM = "#general"
MAX_CLOCK_SKEW_MS = 10 * 60 * 1000
MAX_TOPIC_BYTES = 300
MAX_AWAY_BYTES = 200
MAX_ROOMS_PER_USER = 20
FINGERPRINT_PATTERN = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
DURATION_PATTERN = re.compile(r"(\d+)([smhd])")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
REPLAY_REJECTION = "message rejected: replayed or out-of-order counter"
MAX_REMEMBERED_COMMITTED = 10_000
HOLD_LIMIT = 60.0
# A connection's frame budget is what its key may do (commands and pings by their work, messages
# by SAY_WORK) plus this headroom for hello, pongs and lines sent again after a reconnect: a client
# that paces itself by the welcome's budgets never reaches it.
CONNECTION_HEADROOM_RATE = 10.0
CONNECTION_HEADROOM_BURST = 100
# Frames refused in a row by the connection's budget before it is closed: one told to slow down
# that does not is not answered error by error.
MAX_REFUSED_FRAMES = 50
# How often the keys' flood and work buckets that are full again are forgotten: a full bucket is
# what a key that comes back would start with, and keys cost nothing to make.
BUCKET_SWEEP_INTERVAL = 10.0
# A nick the server gives a key that cannot have the one it asked for: FALLBACK_PREFIX and the
# first FALLBACK_TAG letters and digits of its fingerprint, or more of them (up to MAX_NICK), or
# those and a random suffix (FALLBACK_RANDOM_TRIES attempts): one that no other key owns or holds.
FALLBACK_PREFIX = "user-"
FALLBACK_TAG = 6
MAX_NICK = 24
FALLBACK_SUFFIX_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
FALLBACK_SUFFIX = 8
FALLBACK_RANDOM_TRIES = 16
# How many fallbacks one session claims again after the cluster's log refused one (another
# server's key took it meanwhile) before it is turned away.
MAX_FALLBACK_CLAIMS = 4
NO_FALLBACK = "no free nick for your key; connect again"
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

Outgoing = tuple[int, dict[str, Any]]
Event = dict[str, Any]
Publish = Callable[[Event], list[Outgoing]]


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
    frames: TokenBucket = field(default_factory=lambda: TokenBucket(0.0, 0))
    refused_frames: int = 0

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


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    summary: str
    handler: Callable[[ChatServer, Session, str, float], list[Outgoing]]
    operator_only: bool = False


def error_frame(text: str) -> dict[str, Any]:
    return {"type": "error", "text": text}


def notice_frame(text: str) -> dict[str, Any]:
    return {"type": "notice", "text": text}


def bye_frame(reason: str) -> dict[str, Any]:
    return {"type": "bye", "reason": reason}


def sent_frame(target: str, counter: int) -> dict[str, Any]:
    """The acknowledgement of a message: stored and relayed (committed to the cluster's log)."""
    return {"type": "sent", "target": target, "counter": counter}


# Room for what is added to a fitted frame: its "type", and the "... and N more" line.
FIT_MARGIN = 256


def fit_list(frame: dict[str, Any], key: str, items: list[Any], newest_last: bool = False) -> int:
    """Set ``frame[key]`` to as many ``items`` as keep the frame within one application message
    (MAX_FRAME, which the channel enforces): the first ones, or the last with ``newest_last``.
    Lists that grow with what users stored (history, rooms, members) would otherwise make a reply
    no connection can carry. Returns how many were left out."""
    budget = MAX_FRAME - FIT_MARGIN - len(encode_frame({**frame, key: []}))
    kept: list[Any] = []
    for item in reversed(items) if newest_last else items:
        budget -= len(encode_frame(item)) + 1  # the item and its comma
        if budget < 0:
            break
        kept.append(item)
    frame[key] = kept[::-1] if newest_last else kept
    return len(items) - len(kept)


def info_frame(title: str, lines: list[str]) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "info", "title": title}
    left_out = fit_list(frame, "lines", lines)
    if left_out:
        frame["lines"].append(f"… and {left_out} more")
    return frame


def parse_duration(text: str) -> float | None:
    """'90s', '10m', '2h', '7d' -> seconds; None if ``text`` is not a duration."""
    match = DURATION_PATTERN.fullmatch(text)
    if match is None:
        return None
    return int(match.group(1)) * DURATION_UNITS[match.group(2)]


def describe_duration(seconds: float) -> str:
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            rest = seconds % size
            return f"{seconds // size}{unit}" + (describe_duration(rest) if rest else "")
    return f"{seconds}s"


class ChatServer:
    """Everyone connected to this server process, and the rooms they share (with the sessions of
    the other servers of a cluster)."""

    def __init__(
        self,
        settings: ChatSettings,
        store: Store,
        node: str = "local",
        publish: Publish | None = None,
        *,
        network: str,
    ) -> None:
        self.settings = settings
        self.store = store
        # The fingerprint of the server's key, shared by every server of a cluster: the network
        # every chat line must be signed for.
        self.network = network
        self.node = node
        self.publish: Publish = publish if publish is not None else self.apply
        self.sessions: dict[int, Session] = {}
        self.remote: dict[tuple[str, int], RemoteSession] = {}
        self.topics: dict[str, str] = store.topics()
        self.runtime_operators: set[str] = set()
        self.mutes: dict[str, float | None] = {}
        self.buckets: dict[str, TokenBucket] = {}
        self.work_buckets: dict[str, TokenBucket] = {}
        # (sender, counter) -> (target, signature) of the messages committed lately, oldest
        # first: the same message sent again after a lost connection is acknowledged, not
        # refused as a replay.
        self.recently_committed: dict[tuple[str, int], tuple[str, str]] = {}
        # (sender, counter) of the messages published and not yet applied or refused: a copy
        # sent again meanwhile (a client tired of waiting) waits for the first one's outcome.
        self.awaiting: set[tuple[str, int]] = set()
        # (sender, counter) -> (signature, refusal) of the messages refused lately for good (not
        # by flood control): a copy sent again gets the same answer, whatever changed since.
        self.recently_refused: dict[tuple[str, int], tuple[str, dict[str, Any]]] = {}
        # Set while a cluster's broker cannot reach its log: nothing said can be delivered.
        self.degraded = False
        self.presence = PresenceLimiter(settings.presence_rate, settings.presence_burst)
        # The latest time passed in: events applied from a cluster's log carry none.
        self.now = 0.0
        self.swept_at = 0.0

    # ----- lifecycle -----

    def connect(
        self, session_id: int, identity: PeerIdentity, address: str, now: float
    ) -> list[Outgoing]:
        """A handshake completed. Refuses banned and (in allowlist mode) unlisted keys."""
        self.now = max(self.now, now)
        session = Session(session_id, identity, address, now, now)
        session.frames = self.settings.connection_budget()
        self.sessions[session_id] = session
        fingerprint = identity.fingerprint
        ban = self.store.active_ban(fingerprint, now)
        if ban is not None:
            until = "for good" if ban.until is None else f"for {describe_duration(ban.until - now)}"
            return self._bye(session_id, f"you are banned {until}: {ban.reason}")
        allowlist = self.settings.allowlist
        if (
            allowlist is not None
            and fingerprint not in allowlist
            and not self.is_operator(fingerprint)
        ):
            return self._bye(
                session_id, f"this server admits listed keys only; yours is {fingerprint}"
            )
        return []

    def disconnect(self, session_id: int, reason: str) -> list[Outgoing]:
        session = self.sessions.pop(session_id, None)
        if session is None or not session.said_hello:
            return []
        return self.publish(
            {
                "type": "offline",
                "node": self.node,
                "sid": session_id,
                **session.describe(),
                "rooms": [*session.rooms, *session.joining],
                "reason": reason,
            }
        )

    def tick(self, now: float) -> list[Outgoing]:
        """Time passed: the join and leave notices that waited for their rooms' budgets. The glue
        calls it often while ``presence_waiting``, and now and then anyway: rooms gone quiet and
        keys whose budgets are whole again are forgotten then."""
        self.now = max(self.now, now)
        if self.now - self.swept_at >= BUCKET_SWEEP_INTERVAL:
            self.swept_at = self.now
            for buckets in (self.buckets, self.work_buckets):
                for fingerprint in [f for f, b in buckets.items() if b.is_full(self.now)]:
                    del buckets[fingerprint]
        out: list[Outgoing] = []
        for announcement in self.presence.due(self.now):
            room, fingerprint = announcement.room, announcement.fingerprint
            frame = announcement.frame
            if frame["type"] == "join":
                # As the key is now: a nick or away change since was told to fewer people.
                present = [m for m in self._cluster_members(room) if m.fingerprint == fingerprint]
                if not present:
                    continue
                frame = {**frame, **present[0].describe()}
            out += self._to_bystanders(room, fingerprint, frame)
        return out

    @property
    def presence_waiting(self) -> bool:
        return self.presence.waiting > 0

    def receive(self, session_id: int, frame: dict[str, Any], now: float) -> list[Outgoing]:
        session = self.sessions.get(session_id)
        if session is None or session.dismissed:
            return []
        self.now = max(self.now, now)
        refusal = self._over_budget(session, frame, now)
        if refusal is not None:
            return refusal
        kind = frame["type"]
        if kind == "pong":
            return []
        try:
            if kind == "ping":
                if session.said_hello:
                    self._charge(session, work_cost("ping"), now)
                return [(session_id, {"type": "pong"})]
            if kind == "hello":
                return self._on_hello(session, frame, now)
            if not session.said_hello:
                raise FrameError("say hello first")
            if session.claiming:
                # Acted on once its nick is settled (_apply_online), in the order it came.
                if len(session.held) >= MAX_HELD:
                    raise FrameError("too much sent before your nick was settled; send it again")
                session.held.append((frame, now))
                return []
            session.last_active = now
            if kind == "say":
                return self._on_say(session, frame, now)
            if kind == "command":
                name = field_str(frame, "name", 32).lower()
                args = field_str(frame, "args", 8192) if "args" in frame else ""
                self._charge(session, work_cost(name), now)
                return self.run_command(session, name, args.strip(), now)
            raise FrameError(f"unknown frame type {kind!r}")
        except TooFast as error:
            return [(session_id, {**error_frame(str(error)), "retry_after": round(error.wait, 3)})]
        except FrameError as error:
            return [(session_id, error_frame(str(error)))]

    def refuse_frame(self, session_id: int, reason: str, now: float) -> list[Outgoing]:
        """A frame that could not be decoded: it costs its connection like any other."""
        session = self.sessions.get(session_id)
        if session is None or session.dismissed:
            return []
        refusal = self._over_budget(session, {}, now)
        return refusal if refusal is not None else [(session_id, error_frame(reason))]

    def _over_budget(
        self, session: Session, frame: dict[str, Any], now: float
    ) -> list[Outgoing] | None:
        """Charge ``frame`` to its connection's budget: None if it may go on, else the answer
        (a wait, or the end of a connection that kept sending while told to wait)."""
        wait = session.frames.take(now, frame_cost(frame))
        if wait == 0:
            session.refused_frames = 0
            return None
        session.refused_frames += 1
        if session.refused_frames > MAX_REFUSED_FRAMES:
            return self._bye(session.session_id, "too many frames: you were told to slow down")
        refusal = {**error_frame("slow down: this connection sends too much"), "retry_after": wait}
        counter = frame.get("counter")
        if frame.get("type") == "say" and isinstance(counter, int):
            refusal["counter"] = counter  # the sender's client sends that line again later
        return [(session.session_id, refusal)]

    def _charge(self, session: Session, cost: int, now: float) -> None:
        """Take ``cost`` from the key's work budget (shared by its sessions), or refuse."""
        bucket = self.work_buckets.setdefault(
            session.fingerprint, TokenBucket(self.settings.work_rate, self.settings.work_burst)
        )
        wait = bucket.take(now, cost)
        if wait > 0:
            raise TooFast(wait)

    # ----- lookups -----

    def is_operator(self, fingerprint: str) -> bool:
        return fingerprint in self.settings.operators or fingerprint in self.runtime_operators

    def _members(self, room: str) -> list[Session]:
        """This server's sessions in ``room``: the ones it delivers to."""
        return [s for s in self.sessions.values() if room in s.rooms]

    def _everyone(self) -> list[Member]:
        """Every session of the cluster that said hello: this server's, then the others'."""
        local: list[Member] = [s for s in self.sessions.values() if s.said_hello]
        return local + list(self.remote.values())

    def _cluster_members(self, room: str) -> list[Member]:
        return [m for m in self._everyone() if room in m.rooms]

    def _to_room(
        self, room: str, frame: dict[str, Any], exclude: int | None = None
    ) -> list[Outgoing]:
        return [(s.session_id, frame) for s in self._members(room) if s.session_id != exclude]

    def _announce(self, room: str, fingerprint: str, frame: dict[str, Any]) -> list[Outgoing]:
        """A join or leave of ``fingerprint``'s key, told to the room's other members now or
        once the room's presence budget allows (``tick``)."""
        if not self.presence.announce(room, fingerprint, frame, self.now):
            return []
        return self._to_bystanders(room, fingerprint, frame)

    def _to_bystanders(self, room: str, fingerprint: str, frame: dict[str, Any]) -> list[Outgoing]:
        return [(s.session_id, frame) for s in self._members(room) if s.fingerprint != fingerprint]

    def _sessions_of(self, fingerprint: str) -> list[Session]:
        return [s for s in self.sessions.values() if s.said_hello and s.fingerprint == fingerprint]

    def _online_of(self, fingerprint: str) -> list[Member]:
        """The sessions of ``fingerprint`` anywhere in the cluster."""
        return [m for m in self._everyone() if m.fingerprint == fingerprint]

    def _online_by_nick(self, nick: str) -> list[Member]:
        folded = nick.casefold()
        return [m for m in self._everyone() if m.nick.casefold() == folded]

    def _resolve(self, who: str) -> str | None:
        """A nick (online or registered) or a fingerprint -> fingerprint."""
        if FINGERPRINT_PATTERN.fullmatch(who):
            return who
        online = self._online_by_nick(who)
        if online:
            return online[0].fingerprint
        return self.store.nick_owner(who)

    def _nick_in_use_by_other(self, nick: str, fingerprint: str) -> bool:
        owner = self.store.nick_owner(nick)
        if owner is not None and owner != fingerprint:
            return True
        return any(m.fingerprint != fingerprint for m in self._online_by_nick(nick))

    def _fallback_nick(self, session: Session) -> str | None:
        """A nick for a key that cannot have the one it asked for, which no other key owns or
        holds and the cluster's log did not refuse to this session: the nick the key registered
        before, else ``user-`` and the first 6 letters and digits of its fingerprint, else more
        of them, else those 6 and a random suffix. None only if every attempt was taken."""
        fingerprint = session.fingerprint
        tag = "".join(c for c in fingerprint[7:] if c.isalnum()).lower()
        registered = self.store.nick_of(fingerprint)
        longest = MAX_NICK - len(FALLBACK_PREFIX)
        candidates = itertools.chain(
            [registered] if registered else [],
            (FALLBACK_PREFIX + tag[:length] for length in range(FALLBACK_TAG, longest + 1)),
            (
                f"{FALLBACK_PREFIX}{tag[:FALLBACK_TAG]}-"
                + "".join(secrets.choice(FALLBACK_SUFFIX_CHARS) for _ in range(FALLBACK_SUFFIX))
                for _ in range(FALLBACK_RANDOM_TRIES)
            ),
        )
        for nick in candidates:
            if (
                valid_nick(nick)
                and nick.casefold() not in session.refused
                and not self._nick_in_use_by_other(nick, fingerprint)
            ):
                return nick
        return None

    def _bye(self, session_id: int, reason: str) -> list[Outgoing]:
        if session_id in self.sessions:
            self.sessions[session_id].dismissed = True
        return [(session_id, bye_frame(reason))]

    # ----- hello, rooms -----

    def _on_hello(self, session: Session, frame: dict[str, Any], now: float) -> list[Outgoing]:
        if session.said_hello:
            raise FrameError("already said hello")
        wanted = frame.get("nick")
        wanted = wanted if isinstance(wanted, str) else ""
        notice = ""
        already_online = self._online_of(session.fingerprint)
        if already_online:
            # All sessions of a key share its nick; /nick changes it for all of them.
            session.nick = already_online[0].nick
            if wanted and wanted != session.nick:
                notice = f"{wanted!r} not taken: your key is online already as {session.nick}"
        elif (
            wanted
            and valid_nick(wanted)
            and not self._nick_in_use_by_other(wanted, session.fingerprint)
            and not self._new_nick_while_muted(session, wanted, now)
        ):
            session.nick = wanted
            session.nick_asked = True
        else:
            if wanted and not valid_nick(wanted):
                notice = f"{wanted!r} is not a valid nick"
            elif wanted and self._nick_in_use_by_other(wanted, session.fingerprint):
                notice = f"{wanted!r} belongs to another key"
            elif wanted:
                notice = f"{wanted!r} not taken: you are muted"
            fallback = self._fallback_nick(session)
            if fallback is None:
                return self._bye(session.session_id, NO_FALLBACK)
            session.nick = fallback
            if notice:
                notice += f"; you are {session.nick}"
        session.said_hello = True
        out: list[Outgoing] = [
            (
                session.session_id,
                {
                    "type": "welcome",
                    "server": self.settings.server_name,
                    "nick": session.nick,
                    "fingerprint": session.fingerprint,
                    "operator": self.is_operator(session.fingerprint),
                    "rate": self.settings.rate_per_second,
                    "burst": self.settings.burst,
                    "work_rate": self.settings.work_rate,
                    "work_burst": self.settings.work_burst,
                },
            )
        ]
        if notice:
            out.append((session.session_id, notice_frame(notice)))
        if self.degraded:
            out.append((session.session_id, {**notice_frame(DEGRADED_NOTICE), "degraded": True}))
        if self.settings.motd:
            out.append((session.session_id, {"type": "motd", "text": self.settings.motd}))
        return out + self._claim(session)

    def _new_nick_while_muted(self, session: Session, wanted: str, now: float) -> bool:
        """A muted key reconnecting under another nick would show it to everyone: /nick is
        refused to it, and so is a new nick in hello."""
        registered = self.store.nick_of(session.fingerprint) or ""
        muted = self._muted_until(session.fingerprint, now) is not None
        return muted and wanted.casefold() != registered.casefold()

    def _claim(self, session: Session) -> list[Outgoing]:
        """Every nick a session holds is owned by its key: its 'online' claims it, checked by the
        store (a cluster's log, atomically). The session joins #general once that is applied."""
        session.claiming = True
        return self.publish(
            {
                "type": "online",
                "node": self.node,
                "sid": session.session_id,
                **session.describe(),
                "connected_at": session.connected_at,
                "claim": True,
            }
        )

    def _claim_again(self, session: Session, refused: str, reason: str) -> list[Outgoing]:
        """The cluster's log refused the nick a session claimed on hello: another server's key
        took it meanwhile. A nick the server chose is replaced (bounded); an asked one is not."""
        old = session.nick
        session.refused.append(refused.casefold())
        if session.nick_asked or len(session.refused) > MAX_FALLBACK_CLAIMS:
            return self._bye(session.session_id, reason)
        shared = [
            m.nick
            for m in self._online_of(session.fingerprint)
            if m is not session and m.nick.casefold() not in session.refused
        ]
        new = shared[0] if shared else self._fallback_nick(session)
        if new is None:
            return self._bye(session.session_id, reason)
        session.nick = new
        out: list[Outgoing] = []
        if new != old:
            renamed = {"type": "nick", "old": old, "new": new, "fingerprint": session.fingerprint}
            out.append((session.session_id, renamed))
        text = f"{refused!r} was just taken by another key on another server; you are {new}"
        out.append((session.session_id, notice_frame(text)))
        return out + self._claim(session)

    def _join(self, session: Session, room: str) -> list[Outgoing]:
        if room in session.rooms:
            return [(session.session_id, {"type": "joined", **self._room_state(room)})]
        if room in session.joining:
            return []  # joined comes when the join already on its way takes effect
        if len(session.rooms) + len(session.joining) >= MAX_ROOMS_PER_USER:
            raise FrameError(f"you are in {MAX_ROOMS_PER_USER} rooms already; /part one first")
        session.joining.append(room)
        event = {"type": "join", "node": self.node, "sid": session.session_id, "room": room}
        return self.publish({**event, **session.describe()})

    def _joined(self, session_id: int, room: str) -> list[Outgoing]:
        """What a session is told when its join took effect: the room, then its history."""
        out: list[Outgoing] = [(session_id, {"type": "joined", **self._room_state(room)})]
        return out + self._history(session_id, room)

    def _history(self, session_id: int, room: str) -> list[Outgoing]:
        if self.settings.history_limit <= 0:
            return []
        history = self.store.recent_messages(room, self.settings.history_limit)
        if not history:
            return []
        frame: dict[str, Any] = {"type": "history", "room": room}
        fit_list(frame, "messages", [self._stored_frame(m) for m in history], True)
        return [(session_id, frame)]

    def _key_in_room(self, fingerprint: str, room: str, exclude: tuple[str, int]) -> bool:
        """Whether a session of ``fingerprint`` other than ``exclude`` (node, session id) is in
        ``room``: presence is per key, so a second device joining or leaving is not news."""
        return any(
            member.fingerprint == fingerprint and self._address(member) != exclude
            for member in self._cluster_members(room)
        )

    def _address(self, member: Member) -> tuple[str, int]:
        node = member.node if isinstance(member, RemoteSession) else self.node
        return node, member.session_id

    def _room_state(self, room: str) -> dict[str, Any]:
        """A room's topic and members, one entry per key, cut to fit one frame."""
        members = {m.fingerprint: m.describe() for m in self._cluster_members(room)}
        state: dict[str, Any] = {"room": room, "topic": self.topics.get(room, "")}
        fit_list(state, "members", list(members.values()))
        return state

    def _stored_frame(self, message: StoredMessage) -> dict[str, Any]:
        """A stored line as relayed: the store keeps only lines this network accepted."""
        return {
            "type": "message",
            "from": message.nick,
            "key": b64(message.key_der),
            "network": self.network,
            "target": message.room,
            "sender": message.sender,
            "counter": message.counter,
            "ts": message.timestamp_ms,
            "body": message.body,
            "sig": b64(message.signature),
        }

    # ----- messages -----

    def _on_say(self, session: Session, frame: dict[str, Any], now: float) -> list[Outgoing]:
        message = parse_signed_message(frame)
        if self._committed(session, message):
            # Sent again after a lost connection: it was delivered then, and is acknowledged
            # again rather than refused, so that "sent" is the only proof of delivery.
            return [(session.session_id, sent_frame(message.target, message.counter))]
        key = (message.sender, message.counter)
        if key in self.awaiting:
            return []  # the first copy's outcome is on its way
        refused = self.recently_refused.get(key)
        if refused is not None and refused[0] == b64(message.signature):
            return [(session.session_id, refused[1])]
        try:
            if self.degraded:
                raise FrameError(DEGRADED_REJECTION)
            self._hold_order(session, message, now)
            self.check_message(session, message, now)
            relayed = {
                "type": "message",
                "from": session.nick,
                "key": b64(session.identity.spki_der),
                **message_fields(message),
            }
            origin = {"node": self.node, "sid": session.session_id}
            kind = "message"
            if message.target.startswith("@"):
                if not self._online_of(message.target[1:]):
                    raise FrameError("message not delivered: that user is not online")
                kind = "private"
        except FrameError as error:
            refusal = {**error_frame(str(error)), "counter": message.counter}
            if isinstance(error, Throttled):
                refusal["retry_after"] = round(error.wait, 3)
                if session.held_counter is None:
                    session.held_counter, session.held_since = message.counter, now
            else:
                self._remember_refused(message.sender, message.counter, message.signature, refusal)
                if message.counter == session.held_counter:
                    session.held_counter = None
            return [(session.session_id, refusal)]
        if message.counter == session.held_counter:
            session.held_counter = None
        self.awaiting.add((message.sender, message.counter))
        return self.publish({"type": kind, **origin, "message": relayed})

    def _committed(self, session: Session, message: SignedMessage) -> bool:
        """``message`` is one of the session's key's that this network committed already."""
        if not fingerprints_equal(message.sender, session.fingerprint):
            return False
        key = (message.sender, message.counter)
        if key in self.recently_committed:
            committed = self.recently_committed[key] == (message.target, b64(message.signature))
        elif message.target.startswith("@") or message.counter > self.store.last_counter(
            message.sender
        ):
            return False
        else:
            history = self.store.recent_messages(message.target, self.settings.history_limit)
            signed = (message.sender, message.counter, message.signature)
            committed = any((m.sender, m.counter, m.signature) == signed for m in history)
        # The same signature over other fields is not the same message.
        return committed and message.verify(session.identity)

    def _hold_order(self, session: Session, message: SignedMessage, now: float) -> None:
        """After flood control refused a session's message, its later ones are refused the same
        way until that one comes again: a line that was in flight behind it must not be stored
        ahead of it. The hold lapses after HOLD_LIMIT (a client that gave the line up)."""
        held = session.held_counter
        if held is None or message.counter == held:
            return
        if now - session.held_since > HOLD_LIMIT:
            session.held_counter = None
            return
        raise Throttled(self._bucket(session.fingerprint).wait(now))

    def _bucket(self, fingerprint: str) -> TokenBucket:
        return self.buckets.setdefault(
            fingerprint, TokenBucket(self.settings.rate_per_second, self.settings.burst)
        )

    def _remember_refused(
        self, sender: str, counter: int, signature: bytes, refusal: dict[str, Any]
    ) -> None:
        self.recently_refused[(sender, counter)] = (b64(signature), refusal)
        if len(self.recently_refused) > MAX_REMEMBERED_COMMITTED:
            del self.recently_refused[next(iter(self.recently_refused))]

    def _remember_committed(self, relayed: dict[str, Any]) -> None:
        key = (relayed["sender"], relayed["counter"])
        self.recently_committed[key] = (relayed["target"], relayed["sig"])
        if len(self.recently_committed) > MAX_REMEMBERED_COMMITTED:
            del self.recently_committed[next(iter(self.recently_committed))]

    def check_message(self, session: Session, message: SignedMessage, now: float) -> None:
        """Refuse, with the reason, any message that is not exactly what its sender signed here."""
        if not fingerprints_equal(message.sender, session.fingerprint):
            raise FrameError("message rejected: it names another sender")
        if message.network != self.network:
            raise FrameError("message rejected: signed for another network")
        if message.target.startswith("@"):
            if not FINGERPRINT_PATTERN.fullmatch(message.target[1:]):
                raise FrameError("message rejected: a private message names a fingerprint")
        elif message.target not in session.rooms and message.target not in session.joining:
            # (A line sent while its room's join is on its way follows the join in the log.)
            raise FrameError(f"message rejected: you are not in {message.target}")
        if not message.body.strip():
            raise FrameError("message rejected: empty message")
        if len(message.body.encode("utf-8")) > self.settings.max_body_bytes:
            raise FrameError(f"message rejected: longer than {self.settings.max_body_bytes} bytes")
        if has_unsafe_text(message.body):
            raise FrameError("message rejected: control characters are not allowed")
        muted_until = self._muted_until(session.fingerprint, now)
        if muted_until is not None and not message.target.startswith("@"):
            how_long = (
                ""
                if muted_until == float("inf")
                else f" for {describe_duration(muted_until - now)}"
            )
            raise FrameError(f"message rejected: you are muted{how_long}")
        if not message.verify(session.identity):
            raise FrameError("message rejected: bad signature")
        if message.counter <= self.store.last_counter(message.sender):
            raise FrameError(REPLAY_REJECTION)
        if abs(message.timestamp_ms - int(now * 1000)) > MAX_CLOCK_SKEW_MS:
            raise FrameError("message rejected: timestamp too far from the server's clock")
        wait = self._bucket(session.fingerprint).take(now)
        if wait > 0:
            raise Throttled(wait)

    def _refuse_if_muted(self, session: Session, now: float) -> None:
        """A muted key is silent to others: no topic, nick or away text from it either."""
        if self._muted_until(session.fingerprint, now) is not None:
            raise FrameError("you are muted")

    def _muted_until(self, fingerprint: str, now: float) -> float | None:
        if fingerprint not in self.mutes:
            return None
        until = self.mutes[fingerprint]
        if until is None:
            return float("inf")
        if until <= now:
            del self.mutes[fingerprint]
            return None
        return until

    # ----- commands -----

    def run_command(self, session: Session, name: str, args: str, now: float) -> list[Outgoing]:
        command = COMMANDS.get(name)
        if command is None:
            raise FrameError(f"unknown command /{name}; try /help")
        if command.operator_only and not self.is_operator(session.fingerprint):
            raise FrameError(f"/{name} is for operators")
        return command.handler(self, session, args, now)

    def _cmd_help(self, session: Session, args: str, now: float) -> list[Outgoing]:
        operator = self.is_operator(session.fingerprint)
        lines = [
            f"{c.usage:<28} {c.summary}"
            for c in COMMANDS.values()
            if operator or not c.operator_only
        ]
        return [(session.session_id, info_frame("Server commands", lines))]

    def _cmd_nick(self, session: Session, args: str, now: float) -> list[Outgoing]:
        wanted = args
        if not valid_nick(wanted):
            raise FrameError(
                f"{wanted!r} is not a valid nick (1-24 of letters, digits, _-[]{{}}|^`)"
            )
        if self._nick_in_use_by_other(wanted, session.fingerprint):
            raise FrameError(f"{wanted!r} belongs to another key")
        self._refuse_if_muted(session, now)
        return self.publish(
            {
                "type": "nick",
                "node": self.node,
                "sid": session.session_id,
                "fingerprint": session.fingerprint,
                "old": session.nick,
                "new": wanted,
            }
        )

    def _cmd_join(self, session: Session, args: str, now: float) -> list[Outgoing]:
        room = args if args.startswith("#") else f"#{args}"
        if not valid_room(room):
            raise FrameError(
                f"{args!r} is not a valid room name (#, then 1-32 letters, digits, _-)"
            )
        return self._join(session, room)

    def _cmd_part(self, session: Session, args: str, now: float) -> list[Outgoing]:
        room = args.split(" ", 1)[0] if args else ""
        if not room:
            raise FrameError("usage: /part #room")
        if room in session.joining:
            session.joining.remove(room)
        elif room in session.rooms:
            session.rooms.remove(room)
        else:
            raise FrameError(f"you are not in {room}")
        event = {"type": "part", "node": self.node, "sid": session.session_id, "room": room}
        return self.publish({**event, **session.describe(), "reason": "part"})

    def _cmd_rooms(self, session: Session, args: str, now: float) -> list[Outgoing]:
        keys_in: dict[str, set[str]] = {}
        for other in self._everyone():
            for room in other.rooms:
                keys_in.setdefault(room, set()).add(other.fingerprint)
        counts = {room: len(keys) for room, keys in keys_in.items()}
        lines = [
            f"{room} ({count} {'member' if count == 1 else 'members'})"
            + (f": {self.topics[room]}" if self.topics.get(room) else "")
            for room, count in sorted(counts.items())
        ]
        return [(session.session_id, info_frame("Rooms", lines))]

    def _cmd_names(self, session: Session, args: str, now: float) -> list[Outgoing]:
        room = args or (session.rooms[0] if session.rooms else DEFAULT_ROOM)
        members = self._cluster_members(room)
        if not members:
            raise FrameError(f"nobody is in {room}")
        lines = [
            f"{'@' if self.is_operator(m.fingerprint) else ''}{m.nick} {m.fingerprint}"
            + (f" (away: {m.away})" if m.away else "")
            for m in sorted(members, key=lambda m: m.nick.casefold())
        ]
        return [(session.session_id, info_frame(f"Members of {room}", lines))]

    def _cmd_whois(self, session: Session, args: str, now: float) -> list[Outgoing]:
        if not args:
            raise FrameError("usage: /whois NICK")
        fingerprint = self._resolve(args)
        online = self._online_of(fingerprint) if fingerprint is not None else []
        if fingerprint is None or (not online and self.store.nick_of(fingerprint) is None):
            return [(session.session_id, {"type": "whois", "query": args, "found": False})]
        reply: dict[str, Any] = {
            "type": "whois",
            "query": args,
            "found": True,
            "fingerprint": fingerprint,
        }
        if online:
            first = min(online, key=lambda s: s.connected_at)
            reply |= {
                "nick": first.nick,
                "online": True,
                "connected_since": first.connected_at,
                "idle": now - max(s.last_active for s in online),
                "away": first.away,
                "operator": self.is_operator(fingerprint),
            }
            fit_list(reply, "rooms", sorted({room for s in online for room in s.rooms}))
        else:
            reply |= {"nick": self.store.nick_of(fingerprint) or args, "online": False}
        return [(session.session_id, reply)]

    def _cmd_topic(self, session: Session, args: str, now: float) -> list[Outgoing]:
        room, _, topic = args.partition(" ")
        if not room.startswith("#"):
            raise FrameError("usage: /topic #room [new topic]")
        if not topic:
            current = self.topics.get(room, "")
            text = f"Topic of {room}: {current}" if current else f"{room} has no topic"
            return [(session.session_id, notice_frame(text))]
        if room not in session.rooms and room not in session.joining:
            raise FrameError(f"you are not in {room}")
        if len(topic.encode()) > MAX_TOPIC_BYTES or has_unsafe_text(topic):
            raise FrameError(f"a topic is at most {MAX_TOPIC_BYTES} bytes of plain text")
        self._refuse_if_muted(session, now)
        return self.publish({"type": "topic", "room": room, "topic": topic, "by": session.nick})

    def _cmd_away(self, session: Session, args: str, now: float) -> list[Outgoing]:
        text = args or "away"
        if len(text.encode()) > MAX_AWAY_BYTES or has_unsafe_text(text):
            raise FrameError(f"an away message is at most {MAX_AWAY_BYTES} bytes of plain text")
        if args:
            # Its text reaches everyone sharing a room with the key; a bare /away (the fixed
            # text "away") and /back carry nothing the user wrote.
            self._refuse_if_muted(session, now)
        return self._set_away(session, text)

    def _cmd_back(self, session: Session, args: str, now: float) -> list[Outgoing]:
        return self._set_away(session, "")

    def _set_away(self, session: Session, text: str) -> list[Outgoing]:
        origin = {"node": self.node, "sid": session.session_id}
        return self.publish({"type": "away", **origin, **session.describe(), "away": text})

    # ----- moderation -----

    def _target_of(self, args: str) -> tuple[str, str, str]:
        """'NICK|FINGERPRINT [rest]' -> (fingerprint, shown name, rest)."""
        who, _, rest = args.partition(" ")
        if not who:
            raise FrameError("name a nick or a fingerprint")
        fingerprint = self._resolve(who)
        if fingerprint is None:
            raise FrameError(f"no such nick: {who}")
        return fingerprint, who, rest.strip()

    def _cmd_op(self, session: Session, args: str, now: float) -> list[Outgoing]:
        fingerprint, who, _ = self._target_of(args)
        text = f"{session.nick} made you an operator"
        event = {"type": "op", "fingerprint": fingerprint, "text": text}
        return self._moderate(session, event, f"{who} is now an operator")

    def _refuse_configured_operator(self, fingerprint: str, who: str) -> None:
        """The server's configured operators cannot be deop'ed, kicked or muted (by anyone)."""
        if fingerprint in self.settings.operators:
            raise FrameError(f"{who} is an operator in the server's configuration")

    def _cmd_deop(self, session: Session, args: str, now: float) -> list[Outgoing]:
        fingerprint, who, _ = self._target_of(args)
        self._refuse_configured_operator(fingerprint, who)
        event = {"type": "deop", "fingerprint": fingerprint}
        return self._moderate(session, event, f"{who} is no longer an operator")

    def _cmd_kick(self, session: Session, args: str, now: float) -> list[Outgoing]:
        fingerprint, who, reason = self._target_of(args)
        self._refuse_configured_operator(fingerprint, who)
        if not self._online_of(fingerprint):
            raise FrameError(f"{who} is not online")
        reason = reason or "no reason given"
        text = f"kicked by {session.nick}: {reason}"
        event = {"type": "kick", "fingerprint": fingerprint, "text": text}
        return self._moderate(session, event, f"kicked {who}: {reason}")

    def _moderate(self, session: Session, event: Event, done: str) -> list[Outgoing]:
        """Publish an operator's ``event``; the operator hears ``done`` once it took effect, so
        that the other servers apply it before the operator can act on it."""
        origin = {"node": self.node, "sid": session.session_id, "confirm": done}
        return self.publish({**event, **origin})

    def _split_duration(self, rest: str) -> tuple[float | None, str]:
        first, _, remainder = rest.partition(" ")
        duration = parse_duration(first)
        if duration is None:
            return None, rest
        return duration, remainder.strip()

    def _cmd_ban(self, session: Session, args: str, now: float) -> list[Outgoing]:
        fingerprint, who, rest = self._target_of(args)
        if self.is_operator(fingerprint):
            raise FrameError(f"{who} is an operator; /deop first")
        duration, reason = self._split_duration(rest)
        reason = reason or "no reason given"
        until = None if duration is None else now + duration
        how_long = "for good" if duration is None else f"for {describe_duration(duration)}"
        event = {
            "type": "ban",
            "fingerprint": fingerprint,
            "until": until,
            "reason": reason,
            "by": session.fingerprint,
            "text": f"banned {how_long} by {session.nick}: {reason}",
        }
        return self._moderate(session, event, f"banned {who} ({fingerprint}) {how_long}")

    def _cmd_unban(self, session: Session, args: str, now: float) -> list[Outgoing]:
        fingerprint, who, _ = self._target_of(args)
        if self.store.active_ban(fingerprint, now) is None:
            raise FrameError(f"{who} is not banned")
        event = {"type": "unban", "fingerprint": fingerprint}
        return self._moderate(session, event, f"unbanned {who} ({fingerprint})")

    def _cmd_mute(self, session: Session, args: str, now: float) -> list[Outgoing]:
        fingerprint, who, rest = self._target_of(args)
        self._refuse_configured_operator(fingerprint, who)
        duration, _ = self._split_duration(rest)
        how_long = "" if duration is None else f" for {describe_duration(duration)}"
        event = {
            "type": "mute",
            "fingerprint": fingerprint,
            "until": None if duration is None else now + duration,
            "text": f"you were muted{how_long} by {session.nick}",
        }
        return self._moderate(session, event, f"muted {who}{how_long}")

    def _cmd_unmute(self, session: Session, args: str, now: float) -> list[Outgoing]:
        fingerprint, who, _ = self._target_of(args)
        if self._muted_until(fingerprint, now) is None:
            raise FrameError(f"{who} is not muted")
        text = f"you were unmuted by {session.nick}"
        event = {"type": "unmute", "fingerprint": fingerprint, "text": text}
        return self._moderate(session, event, f"unmuted {who}")

    # ----- events: applied in the cluster log's order, on every server, for its sessions -----

    def apply(self, event: Event) -> list[Outgoing]:
        """Apply one committed event; returns the frames for this server's sessions."""
        self._settled(event)
        handler = EVENT_HANDLERS.get(str(event.get("type")))
        out = handler(self, event) if handler is not None else []
        sender = self._sender_of(event)
        if "confirm" in event and sender in self.sessions:
            out.append((sender, notice_frame(str(event["confirm"]))))
        return out

    def rejected(self, event: Event, reason: str) -> list[Outgoing]:
        """The broker refused ``event`` (the log knew better: a nick taken or a counter used
        meanwhile on another server, or the log was unreachable): tell the session it came from."""
        self._settled(event)
        session_id = event.get("sid")
        if event.get("node") != self.node or session_id not in self.sessions:
            return []
        assert isinstance(session_id, int)
        if event["type"] in ("message", "private"):
            message = event["message"]
            refusal = {**error_frame(reason), "counter": message["counter"]}
            signature = base64.b64decode(message["sig"])
            self._remember_refused(message["sender"], message["counter"], signature, refusal)
            return [(session_id, refusal)]
        if event["type"] == "online":
            session = self.sessions[session_id]
            if session.claiming:
                return self._claim_again(session, str(event["nick"]), reason)
            return self._bye(session_id, reason)
        return [(session_id, error_frame(reason))]

    def _settled(self, event: Event) -> None:
        if event.get("type") in ("message", "private") and event.get("node") == self.node:
            message = event["message"]
            self.awaiting.discard((message["sender"], message["counter"]))

    def snapshot(self) -> Event:
        """Who is on this server, for a server that joins the cluster (or rejoins its log)."""
        return {
            "type": "snapshot",
            "node": self.node,
            "sessions": [
                {
                    "sid": s.session_id,
                    **s.describe(),
                    "rooms": list(s.rooms),
                    "connected_at": s.connected_at,
                    "last_active": s.last_active,
                }
                for s in self.sessions.values()
                if s.said_hello
            ],
            "mutes": dict(self.mutes),
            "operators": sorted(self.runtime_operators),
        }

    def node_lost(self, node: str) -> list[Outgoing]:
        """Another server stopped answering: its sessions are gone."""
        return self._replace_node(node, [], "server lost")

    def resynchronised(self) -> list[Outgoing]:
        """The cluster's log lost entries this server had not applied (Redis lost them, or
        trimmed them while this server was cut off): every session is sent its rooms' history
        again, of which its client shows the lines it missed."""
        out: list[Outgoing] = []
        for session in self.sessions.values():
            if session.said_hello:
                out.append((session.session_id, notice_frame(RESYNCHRONISED_NOTICE)))
                for room in session.rooms:
                    out += self._history(session.session_id, room)
        return out

    def set_degraded(self, degraded: bool) -> list[Outgoing]:
        """The cluster's log became unreachable (or reachable again): tell every session."""
        if degraded == self.degraded:
            return []
        self.degraded = degraded
        text = DEGRADED_NOTICE if degraded else RESTORED_NOTICE
        frame = {**notice_frame(text), "degraded": degraded}
        return [(s.session_id, frame) for s in self.sessions.values() if s.said_hello]

    def _sender_of(self, event: Event) -> int | None:
        """The session id of this server's session that caused ``event``, if any."""
        session_id = event.get("sid")
        if event.get("node") == self.node and isinstance(session_id, int):
            return session_id
        return None

    def _remote_of(self, event: Event) -> RemoteSession | None:
        """The other server's session named by ``event`` (made if its 'online' was missed)."""
        node, session_id = str(event["node"]), int(event["sid"])
        if node == self.node:
            return None
        remote = self.remote.get((node, session_id))
        if remote is None:
            remote = RemoteSession(
                node, session_id, event["fingerprint"], event["nick"], 0.0, 0.0, [], event["away"]
            )
            self.remote[(node, session_id)] = remote
        return remote

    def _apply_online(self, event: Event) -> list[Outgoing]:
        fingerprint, nick = event["fingerprint"], event["nick"]
        address = (str(event["node"]), int(event["sid"]))
        out: list[Outgoing] = []
        if event.get("claim"):
            self.store.register_nick(nick, fingerprint)
            # A key holds one nick at a time: if its other sessions hold another (a /nick or
            # another session's claim raced with this one), the log's order decides: this one.
            stale = [
                m.nick
                for m in self._online_of(fingerprint)
                if self._address(m) != address and m.nick != nick
            ]
            if stale:
                renamed = {"fingerprint": fingerprint, "old": stale[0], "new": nick}
                own = address[1] if address[0] == self.node else None
                out = [item for item in self._apply_nick(renamed) if item[0] != own]
        remote = self._remote_of(event)
        if remote is not None:
            # A snapshot may have named the nick this session claimed before a refusal.
            remote.nick = nick
            remote.connected_at = remote.last_active = float(event["connected_at"])
            return out
        session = self.sessions.get(address[1])
        if session is None or not session.claiming:
            return out
        # Its nick is its key's now: it joins #general, then what it sent meanwhile is acted on.
        session.nick = nick
        session.claiming = False
        out += self._join(session, DEFAULT_ROOM)
        held, session.held = session.held, []
        for frame, now in held:
            out += self.receive(session.session_id, frame, now)
        return out

    def _apply_offline(self, event: Event) -> list[Outgoing]:
        node, session_id = str(event["node"]), int(event["sid"])
        self.remote.pop((node, session_id), None)
        return self._left(event, event["rooms"], (node, session_id))

    def _left(self, who: Event, rooms: list[str], address: tuple[str, int]) -> list[Outgoing]:
        """Tell each of ``rooms`` that ``who`` left, unless the key is still there elsewhere."""
        out: list[Outgoing] = []
        for room in rooms:
            if self._key_in_room(who["fingerprint"], room, address):
                continue
            leave = {
                "type": "leave",
                "room": room,
                "nick": who["nick"],
                "fingerprint": who["fingerprint"],
                "away": who["away"],
                "reason": who["reason"],
            }
            out += self._announce(room, who["fingerprint"], leave)
        return out

    def _apply_join(self, event: Event) -> list[Outgoing]:
        room = event["room"]
        remote = self._remote_of(event)
        if remote is not None and room not in remote.rooms:
            remote.rooms.append(room)
        # The joiner hears that it joined only now that every server can know it: a user it tells
        # to join too (on another server) finds it in the room.
        sender = self._sender_of(event)
        out: list[Outgoing] = []
        session = self.sessions.get(sender) if sender is not None else None
        if session is not None and room in session.joining:
            session.joining.remove(room)
            session.rooms.append(room)
            out = self._joined(session.session_id, room)
        address = (str(event["node"]), int(event["sid"]))
        if self._key_in_room(event["fingerprint"], room, address):
            return out
        join = {
            "type": "join",
            "room": room,
            "nick": event["nick"],
            "fingerprint": event["fingerprint"],
            "away": event["away"],
        }
        return out + self._announce(room, event["fingerprint"], join)

    def _apply_part(self, event: Event) -> list[Outgoing]:
        remote = self._remote_of(event)
        if remote is not None and event["room"] in remote.rooms:
            remote.rooms.remove(event["room"])
        sender = self._sender_of(event)
        out: list[Outgoing] = []
        if sender in self.sessions:
            out.append((sender, {"type": "parted", "room": event["room"]}))
        address = (str(event["node"]), int(event["sid"]))
        return out + self._left(event, [event["room"]], address)

    def _apply_message(self, event: Event) -> list[Outgoing]:
        relayed = event["message"]
        room = relayed["target"]
        self._remember_committed(relayed)
        self.store.append_message(
            StoredMessage(
                room,
                relayed["sender"],
                relayed["from"],
                base64.b64decode(relayed["key"]),
                relayed["counter"],
                relayed["ts"],
                relayed["body"],
                base64.b64decode(relayed["sig"]),
            )
        )
        remote = self._remote_sender(event)
        if remote is not None:
            remote.last_active = relayed["ts"] / 1000
        sender = self._sender_of(event)
        out = self._to_room(room, relayed, exclude=sender)
        if sender in self.sessions:
            out.append((sender, sent_frame(room, relayed["counter"])))
        return out

    def _remote_sender(self, event: Event) -> RemoteSession | None:
        if event["node"] == self.node:
            return None
        return self.remote.get((str(event["node"]), int(event["sid"])))

    def _apply_private(self, event: Event) -> list[Outgoing]:
        relayed = event["message"]
        recipient = relayed["target"][1:]
        self.store.set_last_counter(relayed["sender"], relayed["counter"])
        self._remember_committed(relayed)
        remote = self._remote_sender(event)
        if remote is not None:
            remote.last_active = relayed["ts"] / 1000
        out: list[Outgoing] = [(r.session_id, relayed) for r in self._sessions_of(recipient)]
        sender = self._sender_of(event)
        if sender in self.sessions:
            online = self._online_of(recipient)
            if online and online[0].away:
                out.append((sender, notice_frame(f"{online[0].nick} is away: {online[0].away}")))
            out.append((sender, sent_frame(relayed["target"], relayed["counter"])))
        return out

    def _apply_nick(self, event: Event) -> list[Outgoing]:
        fingerprint, new = event["fingerprint"], event["new"]
        self.store.register_nick(new, fingerprint)
        sessions = self._online_of(fingerprint)
        for each in sessions:
            each.nick = new
        frame = {"type": "nick", "old": event["old"], "new": new, "fingerprint": fingerprint}
        rooms = {room for each in sessions for room in each.rooms}
        told = {s.session_id for room in rooms for s in self._members(room)}
        told |= {s.session_id for s in self._sessions_of(fingerprint)}
        return [(target, frame) for target in sorted(told)]

    def _apply_away(self, event: Event) -> list[Outgoing]:
        """Mark every session of the key, and tell the people who share a room with it."""
        sessions = self._online_of(event["fingerprint"])
        for each in sessions:
            each.away = event["away"]
        sender = self._sender_of(event)
        out: list[Outgoing] = []
        if sender in self.sessions:
            text = f"You are marked away: {event['away']}" if event["away"] else "You are back"
            out.append((sender, notice_frame(text)))
        frame = {
            "type": "away",
            "nick": event["nick"],
            "fingerprint": event["fingerprint"],
            "away": event["away"],
        }
        rooms = {room for each in sessions for room in each.rooms}
        told = {s.session_id for room in rooms for s in self._members(room)}
        return out + [(target, frame) for target in sorted(told)]

    def _apply_topic(self, event: Event) -> list[Outgoing]:
        room = event["room"]
        self.topics[room] = event["topic"]
        self.store.set_topic(room, event["topic"])
        frame = {"type": "topic", "room": room, "topic": event["topic"], "by": event["by"]}
        return self._to_room(room, frame)

    def _apply_kick(self, event: Event) -> list[Outgoing]:
        out: list[Outgoing] = []
        for target in self._sessions_of(event["fingerprint"]):
            out += self._bye(target.session_id, event["text"])
        return out

    def _apply_ban(self, event: Event) -> list[Outgoing]:
        ban = Ban(event["fingerprint"], event["until"], event["reason"], event["by"])
        self.store.add_ban(ban)
        return self._apply_kick(event)

    def _apply_unban(self, event: Event) -> list[Outgoing]:
        self.store.remove_ban(event["fingerprint"])
        return []

    def _tell(self, fingerprint: str, text: str) -> list[Outgoing]:
        return [(s.session_id, notice_frame(text)) for s in self._sessions_of(fingerprint)]

    def _apply_mute(self, event: Event) -> list[Outgoing]:
        self.mutes[event["fingerprint"]] = event["until"]
        return self._tell(event["fingerprint"], event["text"])

    def _apply_unmute(self, event: Event) -> list[Outgoing]:
        self.mutes.pop(event["fingerprint"], None)
        return self._tell(event["fingerprint"], event["text"])

    def _apply_op(self, event: Event) -> list[Outgoing]:
        self.runtime_operators.add(event["fingerprint"])
        return self._tell(event["fingerprint"], event["text"])

    def _apply_deop(self, event: Event) -> list[Outgoing]:
        self.runtime_operators.discard(event["fingerprint"])
        return []

    def _apply_node_up(self, event: Event) -> list[Outgoing]:
        """A server (re)joined the log: tell it who is here; its own snapshot follows."""
        if event["node"] == self.node:
            return []
        return self.publish(self.snapshot())

    def _apply_snapshot(self, event: Event) -> list[Outgoing]:
        node = str(event["node"])
        if node == self.node:
            return []
        for fingerprint, until in event["mutes"].items():
            self.mutes.setdefault(fingerprint, until)
        self.runtime_operators.update(event["operators"])
        return self._replace_node(node, event["sessions"], "server lost")

    def _replace_node(self, node: str, sessions: list[Event], reason: str) -> list[Outgoing]:
        """Make ``sessions`` the whole of ``node``'s; the ones that vanished have left."""
        listed = {int(s["sid"]) for s in sessions}
        out: list[Outgoing] = []
        for (owner, session_id), remote in list(self.remote.items()):
            if owner == node and session_id not in listed:
                del self.remote[(owner, session_id)]
                who = {**remote.describe(), "reason": reason}
                out += self._left(who, remote.rooms, (owner, session_id))
        for item in sessions:
            self.remote[(node, int(item["sid"]))] = RemoteSession(
                node,
                int(item["sid"]),
                item["fingerprint"],
                item["nick"],
                float(item["connected_at"]),
                float(item["last_active"]),
                list(item["rooms"]),
                item["away"],
            )
        return out


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command("help", "/help", "list the server's commands", ChatServer._cmd_help),
        Command(
            "nick",
            "/nick NAME",
            "change your nick (the first key to take one owns it)",
            ChatServer._cmd_nick,
        ),
        Command("join", "/join #room", "join a room (created if new)", ChatServer._cmd_join),
        Command("part", "/part #room", "leave a room", ChatServer._cmd_part),
        Command(
            "rooms", "/rooms", "list rooms with member counts and topics", ChatServer._cmd_rooms
        ),
        Command("names", "/names [#room]", "list a room's members", ChatServer._cmd_names),
        Command(
            "whois",
            "/whois NICK",
            "fingerprint, online since, idle time, away, rooms",
            ChatServer._cmd_whois,
        ),
        Command(
            "topic", "/topic #room [TEXT]", "show or set a room's topic", ChatServer._cmd_topic
        ),
        Command("away", "/away [MESSAGE]", "mark yourself away", ChatServer._cmd_away),
        Command("back", "/back", "clear your away mark", ChatServer._cmd_back),
        Command(
            "op", "/op NICK|FP", "make someone an operator until restart", ChatServer._cmd_op, True
        ),
        Command("deop", "/deop NICK|FP", "take operator status back", ChatServer._cmd_deop, True),
        Command("kick", "/kick NICK [REASON]", "disconnect a user", ChatServer._cmd_kick, True),
        Command(
            "ban",
            "/ban NICK|FP [30m|2h|7d] [REASON]",
            "ban a key, for good or for a while",
            ChatServer._cmd_ban,
            True,
        ),
        Command("unban", "/unban NICK|FP", "lift a ban", ChatServer._cmd_unban, True),
        Command(
            "mute",
            "/mute NICK|FP [DURATION]",
            "stop a key from talking in rooms",
            ChatServer._cmd_mute,
            True,
        ),
        Command(
            "unmute", "/unmute NICK|FP", "let a muted key talk again", ChatServer._cmd_unmute, True
        ),
    )
}


EVENT_HANDLERS: dict[str, Callable[[ChatServer, Event], list[Outgoing]]] = {
    "online": ChatServer._apply_online,
    "offline": ChatServer._apply_offline,
    "join": ChatServer._apply_join,
    "part": ChatServer._apply_part,
    "message": ChatServer._apply_message,
    "private": ChatServer._apply_private,
    "nick": ChatServer._apply_nick,
    "away": ChatServer._apply_away,
    "topic": ChatServer._apply_topic,
    "kick": ChatServer._apply_kick,
    "ban": ChatServer._apply_ban,
    "unban": ChatServer._apply_unban,
    "mute": ChatServer._apply_mute,
    "unmute": ChatServer._apply_unmute,
    "op": ChatServer._apply_op,
    "deop": ChatServer._apply_deop,
    "node_up": ChatServer._apply_node_up,
    "snapshot": ChatServer._apply_snapshot,
}
