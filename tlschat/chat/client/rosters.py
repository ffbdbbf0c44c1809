"""Who is in each room: the member list of ``joined`` and ``members``, kept current by ``join``,
``leave`` and ``presence`` batches; large rooms' lazy lists and the watch the full-screen client
keeps on the one whose members it shows (docs/PROTOCOL.md, "Presence budget" and "Large rooms").
Pure.

A large room's ``joined`` carries how many members it has and none of them (``lazy``). Its list
here is the one fetched (``members``, ``watch``), plus the keys seen speaking (the server sends
their ``join`` before their first line), minus the leaves heard; its count is the one the server
gave, less the leaves heard and, while the room is watched (every join and leave comes then),
plus the arrivals. A join of a key already listed changes nothing and shows nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...protocol.identity import IdentityKey, fingerprints_equal
from ..delivery import Outgoing
from ..frames import FrameError, field_str
from ..lines import Line, PresenceChange
from .base import Member
from .commands import error, notice, server_command
from .crypto import ClientCrypto
from .searching import ClientSearching

# A batch of more changes than this is shown as one summary line.
MAX_SHOWN_CHANGES = 3
MAX_MEMBER_COUNT = 10**9
MAX_AWAY_CHARS = 256
MAX_REASON_BYTES = 1024


@dataclass(frozen=True)
class Shown:
    """A change as it is shown: its line, and whether it names another key than its nick had."""

    line: Line
    change: PresenceChange
    warning: bool


class ClientRosters(ClientSearching):
    """Member lists, presence, and the commands this client sends by itself for them."""

    def __init__(
        self, identity: IdentityKey, nick: str = "", crypto: ClientCrypto | None = None
    ) -> None:
        super().__init__(identity, nick, crypto)
        # The rooms whose 'joined' was lazy (large rooms), and their member counts.
        self.lazy_rooms: set[str] = set()
        self.member_counts: dict[str, int] = {}
        # The rooms this session watches (it asked; the server answers with their members).
        self.watching: set[str] = set()
        # Rooms whose member list this client asked for itself: the answer only fills the list.
        self._fetching: set[str] = set()
        # Rooms this client stopped watching, whose answer (notice or error) it shows nobody.
        self._unwatching: set[str] = set()
        # The commands this client queued by itself: a lost connection takes them away (a new
        # session starts from its own rejoin).
        self._asked: list[Outgoing] = []

    def prepare_reconnect(self) -> None:
        super().prepare_reconnect()
        self.lazy_rooms.clear()
        self.member_counts.clear()
        self.watching.clear()
        self._fetching.clear()
        self._unwatching.clear()
        for item in self._asked:
            if item in self.queue.waiting:
                self.queue.waiting.remove(item)
        self._asked.clear()

    def member_count(self, room: str) -> int:
        """How many keys are in ``room``, as far as this client knows."""
        listed = len(self.members.get(room, {}))
        return max(self.member_counts.get(room, listed), listed)

    # --- the commands this client sends by itself -------------------------------------------

    def watch_only(self, room: str, now: float) -> list[Line]:
        """Watch ``room`` if it is a large room (its members shown: the full-screen client's
        member pane), and no other room; '' watches none. Nothing goes out when that is so
        already."""
        lines: list[Line] = []
        for other in sorted(self.watching - {room}):
            self.watching.discard(other)
            if other in self.rooms:
                self._unwatching.add(other)
                lines += self._ask(server_command("unwatch", other), f"/unwatch {other}", now)
        if room in self.lazy_rooms and room not in self.watching:
            self.watching.add(room)
            self._fetching.add(room)
            self._unwatching.discard(room)
            lines += self._ask(server_command("watch", room), f"/watch {room}", now)
        return lines

    def _ask(self, frame: dict[str, Any], text: str, now: float) -> list[Line]:
        """Queue a command this client sends by itself, paced with the user's."""
        self._asked = [item for item in self._asked if item in self.queue.waiting]
        item = Outgoing(self.queue.next_ref(), text, command=frame)
        if not self.queue.add(item):
            return error(f"not sent ({text}): too many lines waiting to be sent", now)
        self._asked.append(item)
        return self.tick(now)

    def _quiet_answer(self, text: str) -> bool:
        """Whether ``text`` (a notice or an error) answers an 'unwatch' this client sent by
        itself: nobody asked to see it."""
        for room in self._unwatching:
            if text in (
                f"no longer watching who comes and goes in {room}",
                f"you do not watch {room}",
            ):
                self._unwatching.discard(room)
                return True
        return False

    # --- member lists -----------------------------------------------------------------------

    def _on_joined(self, frame: dict[str, Any], now: float) -> list[Line]:
        room = field_str(frame, "room", 64)
        # The user talks in the room joined, unless a reconnect's rejoin brings it back (or the
        # server's join of #general comes while the rejoin is under way): then the room stays
        # the one they talked in. A /join they typed moves it whatever.
        asked = self.joins.answered(room)
        if asked or not (room in self.rejoining or self._awaiting_rejoin):
            self.room = room
        if room not in self.rooms:
            self.rooms.append(room)
        self.rejoining.discard(room)
        self._awaiting_rejoin.discard(room)
        present = self._member_list(frame)
        # A rejoin's list replaces the one before, whole.
        self.members[room] = present
        lazy = frame.get("lazy") is True
        count = _count(frame.get("member_count"), len(present))
        if lazy:
            self.lazy_rooms.add(room)
            self.member_counts[room] = max(count, len(present))
        else:
            self.lazy_rooms.discard(room)
            self.member_counts.pop(room, None)
        if frame.get("encrypted") is True:
            self._room_is_encrypted(room)
        others = [member.nick for member in present.values() if member.nick != self.nick]
        if lazy:
            company = f", a large room of {count} members (/names lists them)"
        else:
            company = f" with {', '.join(others)}" if others else " (nobody else is here)"
        lines = [
            Line("joined", now, f"You are {self.nick} in {room}{company}", self.nick, room=room)
        ]
        topic = frame.get("topic")
        if isinstance(topic, str) and topic:
            lines.append(Line("topic", now, f"Topic of {room}: {topic}", room=room))
        return lines + self._rejoined(now)

    def _on_members(self, frame: dict[str, Any], now: float) -> list[Line]:
        """A room's whole member list: the answer to 'members' or 'watch'."""
        room = field_str(frame, "room", 64)
        if room not in self.rooms:
            return error(f"dropped a member list of {room}, a room you are not in", now)
        present = self._member_list(frame)
        count = _count(frame.get("member_count"), len(present))
        self.members[room] = present
        if room in self.lazy_rooms:
            self.member_counts[room] = max(count, len(present))
        if room in self._fetching:
            self._fetching.discard(room)
            return []
        return notice(f"{room} has {self.member_count(room)} members; /names lists them", now)

    def _on_parted(self, frame: dict[str, Any], now: float) -> list[Line]:
        room = field_str(frame, "room", 64)
        if room in self.rooms:
            self.rooms.remove(room)
        self.rejoining.discard(room)
        self.members.pop(room, None)
        self.lazy_rooms.discard(room)
        self.member_counts.pop(room, None)
        self.watching.discard(room)  # the server watches a room only while the session is in it
        self._fetching.discard(room)
        if self.room == room:
            self.room = self.rooms[-1] if self.rooms else ""
        now_in = f"; now talking in {self.room}" if self.room else "; /join a room to talk"
        return notice(f"You left {room}{now_in}", now)

    def _member_list(self, frame: dict[str, Any]) -> dict[str, Member]:
        """The members a frame lists, by casefolded nick; entries that are not members are
        skipped."""
        members = frame.get("members")
        present: dict[str, Member] = {}
        for entry in members if isinstance(members, list) else []:
            member = _member(entry)
            if member is not None:
                present[member.nick.casefold()] = member
                self._learn(member.nick, member.fingerprint)
                self._key_changed(member.nick, member.fingerprint)
        return present

    # --- presence ---------------------------------------------------------------------------

    def _on_presence(self, frame: dict[str, Any], now: float) -> list[Line]:
        """One 'join' or 'leave'."""
        change, away = _change(frame)
        room = field_str(frame, "room", 64)
        shown = self._apply_change(room, change, away, now)
        return [] if shown is None else [shown.line]

    def _on_presence_batch(self, frame: dict[str, Any], now: float) -> list[Line]:
        """The joins and leaves of a room that waited for its presence budget, oldest first:
        each applied; a few shown one by one, more as one summary line."""
        room = field_str(frame, "room", 64)
        entries = frame.get("changes")
        if not isinstance(entries, list):
            raise FrameError("'changes' must be a list")
        if room not in self.rooms:
            return error(
                f"dropped {len(entries)} joins and leaves of {room}, a room you are not in", now
            )
        shown: list[Shown] = []
        malformed = 0
        for entry in entries:
            try:
                if not isinstance(entry, dict):
                    raise FrameError("a change must be an object")
                change, away = _change(entry)
            except FrameError:
                malformed += 1
                continue
            if fingerprints_equal(change.fingerprint, self.identity.fingerprint):
                continue  # this key's own sessions are never told of it
            applied = self._apply_change(room, change, away, now)
            if applied is not None:
                shown.append(applied)
        if len(shown) <= MAX_SHOWN_CHANGES:
            lines = [each.line for each in shown]
        else:
            # The changes that name another key than their nick had stay loud, one by one.
            lines = [_summary(room, shown, now)] + [each.line for each in shown if each.warning]
        if malformed:
            lines += error(f"ignored {malformed} malformed joins or leaves of {room}", now)
        return lines

    def _apply_change(
        self, room: str, change: PresenceChange, away: str, now: float
    ) -> Shown | None:
        """Apply one join or leave to ``room``'s list and count; how it is shown, or None when
        it changes nothing (a join of a key listed already)."""
        present = self.members.get(room)
        folded = change.nick.casefold()
        nick, fingerprint = change.nick, change.fingerprint
        warning = False
        if change.kind == "join":
            known = present.get(folded) if present is not None else None
            if known is not None and fingerprints_equal(known.fingerprint, fingerprint):
                return None
            if present is not None:
                present[folded] = Member(nick, fingerprint, away)
            self._learn(nick, fingerprint)
            warning = self._key_changed(nick, fingerprint)
            suffix = (
                f" [WARNING: not the key {nick} had before; now {fingerprint}]" if warning else ""
            )
            text = f"{nick} joined {room}{suffix}"
            listed = False
        else:
            listed = present is not None and present.pop(folded, None) is not None
            self._member_gone(room, fingerprint)
            text = f"{nick} left {room}" + (f" ({change.reason})" if change.reason else "")
        self._recount(room, change.kind, listed)
        return Shown(Line(change.kind, now, text, nick, fingerprint, room), change, warning)

    def _recount(self, room: str, kind: str, listed: bool) -> None:
        """A large room's count after a join or leave (a small room's is its list's length)."""
        if room not in self.lazy_rooms:
            return
        count = self.member_counts.get(room, 0)
        if kind == "leave":
            count -= 1
        elif room in self.watching and not listed:
            count += 1  # a watcher hears every arrival; others only the delayed joins of speakers
        self.member_counts[room] = max(count, len(self.members.get(room, {})))


def _member(entry: object) -> Member | None:
    if not isinstance(entry, dict):
        return None
    nick, fingerprint, away = entry.get("nick"), entry.get("fingerprint"), entry.get("away", "")
    if not (isinstance(nick, str) and isinstance(fingerprint, str) and isinstance(away, str)):
        return None
    if not (0 < _size(nick) <= 64 and 0 < _size(fingerprint) <= 64):
        return None
    return Member(nick, fingerprint, away[:MAX_AWAY_CHARS])


def _size(text: str) -> int:
    """UTF-8 bytes of ``text``; -1 for a lone surrogate, which no field may hold."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return -1


def _change(frame: dict[str, Any]) -> tuple[PresenceChange, str]:
    """A 'join' or 'leave' (a frame, or an entry of a 'presence' batch) and its away text."""
    kind = frame.get("type")
    if kind not in ("join", "leave"):
        raise FrameError("a change must be a 'join' or a 'leave'")
    nick, fingerprint = field_str(frame, "nick", 64), field_str(frame, "fingerprint", 64)
    away = frame.get("away")
    reason = frame.get("reason") if kind == "leave" else None
    reason = field_str(frame, "reason", MAX_REASON_BYTES) if isinstance(reason, str) else ""
    return PresenceChange(str(kind), nick, fingerprint, reason), (
        away[:MAX_AWAY_CHARS] if isinstance(away, str) else ""
    )


def _count(value: object, default: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_MEMBER_COUNT:
        return value
    return default


def _summary(room: str, shown: list[Shown], now: float) -> Line:
    """One line for a batch of many joins and leaves: '27 joined and 4 left #general'."""
    joined = sum(1 for each in shown if each.change.kind == "join")
    left = len(shown) - joined
    parts = ([f"{joined} joined"] if joined else []) + ([f"{left} left"] if left else [])
    changes = tuple(each.change for each in shown)
    return Line("presence", now, f"{' and '.join(parts)} {room}", room=room, changes=changes)
