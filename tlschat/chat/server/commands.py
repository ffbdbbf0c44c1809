"""The server's commands: one table (COMMANDS) of small handlers, moderation included."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..frames import (
    HELP_TITLE,
    FrameError,
    has_unsafe_text,
    valid_nick,
    valid_room,
)
from ..runs import split_run
from .cluster_events import (
    Away,
    Ban,
    Deop,
    Encrypt,
    Kick,
    Mute,
    Nick,
    Op,
    Part,
    Topic,
    Unban,
    Unmute,
)
from .durations import describe_duration, parse_duration
from .invitations import ServerInvitations
from .model import DEFAULT_ROOM, MAX_AWAY_BYTES, MAX_TOPIC_BYTES, Outgoing, Session
from .replies import info_frames, notice_frame, to_session
from .room_book import ROOM_OPERATOR
from .room_lists import cmd_history, cmd_members, cmd_unwatch, cmd_watch
from .search import cmd_search


class ServerCommands(ServerInvitations):
    """A session's 'command' frames."""

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
            if c.listed and (operator or not c.operator_only)
        ]
        return to_session(session.session_id, info_frames(HELP_TITLE, lines))

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
            Nick(
                **self._origin(session),
                fingerprint=session.fingerprint,
                old=session.nick,
                new=wanted,
            )
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
            self._exit(session, room)
        else:
            raise FrameError(f"you are not in {room}")
        return self.publish(Part(**self._presence(session), room=room, reason="part"))

    def _cmd_rooms(self, session: Session, args: str, now: float) -> list[Outgoing]:
        keys_in: dict[str, set[str]] = {}
        for other in self._everyone():
            for room in other.rooms:
                keys_in.setdefault(room, set()).add(other.fingerprint)
        counts = {room: len(keys) for room, keys in keys_in.items()}
        lines = [
            f"{room} ({count} {'member' if count == 1 else 'members'}"
            + self._room_marks(room)
            + (", end-to-end encrypted)" if room in self.encrypted_rooms else ")")
            + (f": {self.topics[room]}" if self.topics.get(room) else "")
            for room, count in sorted(counts.items())
            if self._may_see_room(session.fingerprint, room)
        ]
        return to_session(session.session_id, info_frames("Rooms", lines))

    def _cmd_names(self, session: Session, args: str, now: float) -> list[Outgoing]:
        room = args or (session.rooms[0] if session.rooms else DEFAULT_ROOM)
        self._refuse_unseen_room(session.fingerprint, room, "who is in it")
        members = self._cluster_members(room)
        if not members:
            raise FrameError(f"nobody is in {room}")
        lines = [
            f"{'@' if self.is_operator(m.fingerprint) else ''}{m.nick} {m.fingerprint}"
            + self._role_mark(room, m.fingerprint)
            + (f" (away: {m.away})" if m.away else "")
            for m in sorted(members, key=lambda m: m.nick.casefold())
        ]
        return to_session(session.session_id, info_frames(f"Members of {room}", lines))

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
            rooms = sorted({room for s in online for room in s.rooms})
            seen = [room for room in rooms if self._may_see_room(session.fingerprint, room)]
            return to_session(session.session_id, split_run(reply, "rooms", seen, ("query",)))
        reply |= {"nick": self.store.nick_of(fingerprint) or args, "online": False}
        return [(session.session_id, reply)]

    def _cmd_topic(self, session: Session, args: str, now: float) -> list[Outgoing]:
        room, _, topic = args.partition(" ")
        if not room.startswith("#"):
            raise FrameError("usage: /topic #room [new topic]")
        if not topic:
            self._refuse_unseen_room(session.fingerprint, room, "its topic")
            current = self.topics.get(room, "")
            text = f"Topic of {room}: {current}" if current else f"{room} has no topic"
            return [(session.session_id, notice_frame(text))]
        if room not in session.rooms and room not in session.joining:
            raise FrameError(f"you are not in {room}")
        if len(topic.encode()) > MAX_TOPIC_BYTES or has_unsafe_text(topic):
            raise FrameError(f"a topic is at most {MAX_TOPIC_BYTES} bytes of plain text")
        self._refuse_if_muted(session, now)
        self._refuse_if_room_muted(session, room, now)
        return self.publish(Topic(room=room, topic=topic, by=session.nick))

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
        return self.publish(
            Away(
                **self._origin(session),
                nick=session.nick,
                fingerprint=session.fingerprint,
                away=text,
            )
        )

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
        done = f"{who} is now an operator"
        return self.publish(
            Op(**self._confirmed(session, done), fingerprint=fingerprint, text=text)
        )

    def _refuse_configured_operator(self, fingerprint: str, who: str) -> None:
        """The server's configured operators cannot be deop'ed, kicked or muted (by anyone)."""
        if fingerprint in self.settings.operators:
            raise FrameError(f"{who} is an operator in the server's configuration")

    def _cmd_deop(self, session: Session, args: str, now: float) -> list[Outgoing]:
        fingerprint, who, _ = self._target_of(args)
        self._refuse_configured_operator(fingerprint, who)
        done = f"{who} is no longer an operator"
        return self.publish(Deop(**self._confirmed(session, done), fingerprint=fingerprint))

    def _cmd_kick(self, session: Session, args: str, now: float) -> list[Outgoing]:
        fingerprint, who, reason = self._target_of(args)
        self._refuse_configured_operator(fingerprint, who)
        if not self._online_of(fingerprint):
            raise FrameError(f"{who} is not online")
        reason = reason or "no reason given"
        text = f"kicked by {session.nick}: {reason}"
        done = f"kicked {who}: {reason}"
        return self.publish(
            Kick(**self._confirmed(session, done), fingerprint=fingerprint, text=text)
        )

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
        event = Ban(
            **self._confirmed(session, f"banned {who} ({fingerprint}) {how_long}"),
            fingerprint=fingerprint,
            until=until,
            reason=reason,
            by=session.fingerprint,
            text=f"banned {how_long} by {session.nick}: {reason}",
        )
        return self.publish(event)

    def _cmd_unban(self, session: Session, args: str, now: float) -> list[Outgoing]:
        fingerprint, who, _ = self._target_of(args)
        if self.store.active_ban(fingerprint, now) is None:
            raise FrameError(f"{who} is not banned")
        done = f"unbanned {who} ({fingerprint})"
        return self.publish(Unban(**self._confirmed(session, done), fingerprint=fingerprint))

    def _cmd_mute(self, session: Session, args: str, now: float) -> list[Outgoing]:
        fingerprint, who, rest = self._target_of(args)
        self._refuse_configured_operator(fingerprint, who)
        duration, _ = self._split_duration(rest)
        how_long = "" if duration is None else f" for {describe_duration(duration)}"
        event = Mute(
            **self._confirmed(session, f"muted {who}{how_long}"),
            fingerprint=fingerprint,
            until=None if duration is None else now + duration,
            text=f"you were muted{how_long} by {session.nick}",
        )
        return self.publish(event)

    def _cmd_encrypt(self, session: Session, args: str, now: float) -> list[Outgoing]:
        room = args.split(" ", 1)[0] if args else ""
        if self._room_rank(room, session.fingerprint) < ROOM_OPERATOR:
            raise FrameError("/encrypt is for operators")
        if not valid_room(room):
            raise FrameError("usage: /encrypt #room")
        if room in self.encrypted_rooms:
            raise FrameError(f"{room} is already encrypted")
        done = f"{room} is end-to-end encrypted now, for good"
        return self.publish(Encrypt(**self._confirmed(session, done), room=room, by=session.nick))

    def _cmd_unmute(self, session: Session, args: str, now: float) -> list[Outgoing]:
        fingerprint, who, _ = self._target_of(args)
        if self._muted_until(fingerprint, now) is None:
            raise FrameError(f"{who} is not muted")
        text = f"you were unmuted by {session.nick}"
        done = f"unmuted {who}"
        return self.publish(
            Unmute(**self._confirmed(session, done), fingerprint=fingerprint, text=text)
        )


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    summary: str
    handler: Callable[[ServerCommands, Session, str, float], list[Outgoing]]
    operator_only: bool = False
    # In /help: the commands the client sends by itself (lists, scrollback) are not.
    listed: bool = True


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command("help", "/help", "list the server's commands", ServerCommands._cmd_help),
        Command(
            "nick",
            "/nick NAME",
            "change your nick (the first key to take one owns it)",
            ServerCommands._cmd_nick,
        ),
        Command("join", "/join #room", "join a room (created if new)", ServerCommands._cmd_join),
        Command("part", "/part #room", "leave a room", ServerCommands._cmd_part),
        Command(
            "rooms", "/rooms", "list rooms with member counts and topics", ServerCommands._cmd_rooms
        ),
        Command("names", "/names [#room]", "list a room's members", ServerCommands._cmd_names),
        Command("members", "/members #room", "", cmd_members, listed=False),
        Command("watch", "/watch #room", "", cmd_watch, listed=False),
        Command("unwatch", "/unwatch #room", "", cmd_unwatch, listed=False),
        Command("history", "/history #room ID", "", cmd_history, listed=False),
        Command(
            "search",
            "/search TEXT [#room]",
            "search the history of your rooms (plain lines)",
            cmd_search,
        ),
        Command(
            "whois",
            "/whois NICK",
            "fingerprint, online since, idle time, away, rooms",
            ServerCommands._cmd_whois,
        ),
        Command(
            "topic", "/topic #room [TEXT]", "show or set a room's topic", ServerCommands._cmd_topic
        ),
        Command("away", "/away [MESSAGE]", "mark yourself away", ServerCommands._cmd_away),
        Command("back", "/back", "clear your away mark", ServerCommands._cmd_back),
        # A room's owner and operators (and server operators, in any room): room_commands.
        Command(
            "private",
            "/private #room",
            "make a room invite-only (and end-to-end encrypted)",
            ServerCommands._cmd_private,
        ),
        Command(
            "public", "/public #room", "open an invite-only room to all", ServerCommands._cmd_public
        ),
        Command(
            "invite",
            "/invite NICK|FP #room",
            "let a key join an invite-only room",
            ServerCommands._cmd_invite,
        ),
        Command(
            "uninvite",
            "/uninvite NICK|FP #room",
            "take an invitation (or membership) back",
            ServerCommands._cmd_uninvite,
        ),
        Command(
            "roomop",
            "/roomop NICK|FP #room",
            "make a key an operator of your room (owners)",
            ServerCommands._cmd_roomop,
        ),
        Command(
            "deroomop",
            "/deroomop NICK|FP #room",
            "take a room operator's status back (owners)",
            ServerCommands._cmd_deroomop,
        ),
        Command(
            "rkick",
            "/rkick NICK|FP #room [REASON]",
            "remove a key from a room",
            ServerCommands._cmd_rkick,
        ),
        Command(
            "rban",
            "/rban NICK|FP #room [30m|2h|7d] [REASON]",
            "ban a key from a room",
            ServerCommands._cmd_rban,
        ),
        Command("runban", "/runban NICK|FP #room", "lift a room ban", ServerCommands._cmd_runban),
        Command(
            "rmute",
            "/rmute NICK|FP #room [DURATION]",
            "stop a key from talking in a room",
            ServerCommands._cmd_rmute,
        ),
        Command(
            "runmute",
            "/runmute NICK|FP #room",
            "let a key talk in a room again",
            ServerCommands._cmd_runmute,
        ),
        Command(
            "op",
            "/op NICK|FP",
            "make someone an operator until restart",
            ServerCommands._cmd_op,
            True,
        ),
        Command(
            "deop", "/deop NICK|FP", "take operator status back", ServerCommands._cmd_deop, True
        ),
        Command("kick", "/kick NICK [REASON]", "disconnect a user", ServerCommands._cmd_kick, True),
        Command(
            "ban",
            "/ban NICK|FP [30m|2h|7d] [REASON]",
            "ban a key, for good or for a while",
            ServerCommands._cmd_ban,
            True,
        ),
        Command("unban", "/unban NICK|FP", "lift a ban", ServerCommands._cmd_unban, True),
        Command(
            "mute",
            "/mute NICK|FP [DURATION]",
            "stop a key from talking in rooms",
            ServerCommands._cmd_mute,
            True,
        ),
        Command(
            "unmute",
            "/unmute NICK|FP",
            "let a muted key talk again",
            ServerCommands._cmd_unmute,
            True,
        ),
        Command(
            "encrypt",
            "/encrypt #room",
            "make a room end-to-end encrypted, for good",
            ServerCommands._cmd_encrypt,
        ),
        Command(
            "reload",
            "/reload",
            "reload the configuration file; says what changed",
            ServerCommands._cmd_reload,
            True,
        ),
        Command(
            "allow",
            "/allow NICK|FP",
            "add a key to the allowlist, kept over restarts",
            ServerCommands._cmd_allow,
            True,
        ),
        Command(
            "disallow",
            "/disallow NICK|FP",
            "take a key off the allowlist, kept over restarts",
            ServerCommands._cmd_disallow,
            True,
        ),
        Command(
            "release",
            "/release NICK",
            "free a nick from the key that owns it",
            ServerCommands._cmd_release,
            True,
        ),
        Command(
            "invitation",
            "/invitation [7d] [HOST:PORT]",
            "make a one-time invitation for a new key (its secret is shown once)",
            ServerCommands._cmd_invitation,
            True,
        ),
        Command(
            "invitations",
            "/invitations",
            "list invitations: made when, by whom, expiry, used or not",
            ServerCommands._cmd_invitations,
            True,
        ),
        Command(
            "revoke",
            "/revoke ID",
            "revoke an invitation nobody used yet",
            ServerCommands._cmd_revoke,
            True,
        ),
    )
}
