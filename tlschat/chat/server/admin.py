"""Administration at run time: the allowlist in force, operators' /allow, /disallow and /release
(kept in the store; committed as events in a cluster) and /reload, whose file the glue reads (a
file is not the chat's business) and whose new live settings :meth:`reconfigure` applies.

The allowlist in force, while ``allowlist_only`` is on: the configured ``allowlist``, plus the
keys an operator /allow'ed, minus the keys an operator /disallow'ed; a key's stored decision (the
latest of its /allow and /disallow) outranks the file, and operators are always admitted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..frames import FrameError
from .cluster_events import Allow, Release
from .encrypted import ServerEncrypted
from .model import FINGERPRINT_PATTERN, ChatSettings, Outgoing, Session
from .replies import error_frame, info_frames, notice_frame, to_session


def not_listed(fingerprint: str) -> str:
    """The ``bye`` of a key the allowlist in force does not admit."""
    return f"this server admits listed keys only; yours is {fingerprint}"


@dataclass(frozen=True)
class ReloadOutcome:
    """What reloading the configuration file did. ``refused`` says why the file was not taken
    (the old settings stay in force); else ``changes`` has one line per setting that changed.
    ``out`` is what the new settings sent to sessions (disconnections, operators told)."""

    source: str
    refused: str = ""
    changes: tuple[str, ...] = ()
    out: tuple[Outgoing, ...] = ()


# The glue's reload of its configuration file; its argument says who asked, for the log.
Reloader = Callable[[str], ReloadOutcome]


class ServerAdmin(ServerEncrypted):
    """/reload, /allow, /disallow, /release, and the allowlist in force."""

    # Set by the glue that has a configuration file to read; None: /reload is refused.
    reloader: Reloader | None = None

    def admits(self, fingerprint: str) -> bool:
        """Whether the allowlist in force (see the module's text) admits the key; every key is
        admitted while there is none."""
        configured = self.settings.allowlist
        if configured is None or self.is_operator(fingerprint):
            return True
        decision = self.store.allowed(fingerprint)
        return fingerprint in configured if decision is None else decision

    def reconfigure(self, settings: ChatSettings) -> list[Outgoing]:
        """New live settings from a reloaded configuration file: the keys' flood buckets and the
        connections' budgets take the new sizes, operators added or removed are told, and the
        sessions of keys the allowlist in force no longer admits get a ``bye``."""
        old, self.settings = self.settings, settings
        for bucket in self.buckets.values():
            bucket.resize(settings.rate_per_second, settings.burst)
        budget = settings.connection_budget()
        out: list[Outgoing] = []
        for session in self.sessions.values():
            session.frames.resize(budget.rate, budget.burst)
        for fingerprint in sorted(settings.operators ^ old.operators):
            if fingerprint not in self.runtime_operators:
                added = fingerprint in settings.operators
                text = "you are an operator now" if added else "you are no longer an operator"
                out += self._notice_key(fingerprint, f"{text} (the server's configuration)")
        for session in list(self.sessions.values()):
            if not session.dismissed and not self.admits(session.fingerprint):
                out += self._bye(session.session_id, not_listed(session.fingerprint))
        return out

    def _notice_key(self, fingerprint: str, text: str) -> list[Outgoing]:
        return [(s.session_id, notice_frame(text)) for s in self._sessions_of(fingerprint)]

    # ----- commands -----

    def _cmd_reload(self, session: Session, args: str, now: float) -> list[Outgoing]:
        if self.reloader is None:
            raise FrameError("this server has no configuration file to reload")
        outcome = self.reloader(f"/reload by {session.nick} ({session.fingerprint})")
        if outcome.refused:
            text = f"{outcome.source} refused: {outcome.refused}; the old configuration stays"
            return [*outcome.out, (session.session_id, error_frame(f"{text} in force"))]
        changes = list(outcome.changes or ["no changes"])
        reply = info_frames(f"Reloaded {outcome.source}", changes)
        return [*outcome.out, *to_session(session.session_id, reply)]

    def _key_named(self, args: str) -> tuple[str, str]:
        """'NICK|FP' -> (fingerprint, how to name it in answers)."""
        who = args.split(" ", 1)[0] if args else ""
        if not who:
            raise FrameError("name a nick or a fingerprint")
        fingerprint = self._resolve(who)
        if fingerprint is None:
            raise FrameError(f"no such nick: {who}")
        return fingerprint, fingerprint if who == fingerprint else f"{who} ({fingerprint})"

    def _on_allowlist(self, fingerprint: str) -> bool | None:
        """Whether the key is on the allowlist: its stored decision, else the configured list;
        None while neither says (no decision, and no allowlist in force)."""
        decision = self.store.allowed(fingerprint)
        if decision is not None or self.settings.allowlist is None:
            return decision
        return fingerprint in self.settings.allowlist

    def _not_in_force(self) -> str:
        """What to add to a confirmation while the allowlist is off: the decision waits."""
        if self.settings.allowlist is not None:
            return ""
        return "; no allowlist is in force on this server (allowlist_only is off): kept for then"

    def _cmd_allow(self, session: Session, args: str, now: float) -> list[Outgoing]:
        fingerprint, named = self._key_named(args)
        if self._on_allowlist(fingerprint):
            raise FrameError(f"{named} is on the allowlist already")
        done = f"allowed {named}{self._not_in_force()}"
        return self.publish(
            Allow(**self._confirmed(session, done), fingerprint=fingerprint, allowed=True)
        )

    def _cmd_disallow(self, session: Session, args: str, now: float) -> list[Outgoing]:
        fingerprint, named = self._key_named(args)
        if fingerprint in self.settings.operators:
            raise FrameError(
                f"{named} is an operator in the server's configuration "
                "(operators are admitted whatever the allowlist)"
            )
        if self.is_operator(fingerprint):
            raise FrameError(
                f"{named} is an operator (operators are admitted whatever the allowlist); "
                "/deop first"
            )
        if self._on_allowlist(fingerprint) is False:
            raise FrameError(f"{named} is not on the allowlist")
        done = f"disallowed {named}"
        if self.settings.allowlist is not None and self._online_of(fingerprint):
            done += "; its sessions are disconnected"
        return self.publish(
            Allow(
                **self._confirmed(session, done + self._not_in_force()),
                fingerprint=fingerprint,
                allowed=False,
                text=f"removed from this server's allowlist by {session.nick}",
            )
        )

    def _cmd_release(self, session: Session, args: str, now: float) -> list[Outgoing]:
        wanted = args.split(" ", 1)[0] if args else ""
        if not wanted:
            raise FrameError("name a nick")
        owner = None if FINGERPRINT_PATTERN.fullmatch(wanted) else self.store.nick_owner(wanted)
        nick = self.store.nick_of(owner) if owner is not None else None
        if owner is None or nick is None:
            raise FrameError(f"no such nick: {wanted}")
        done = f"released {nick} from {owner}"
        if not self._online_of(owner):
            return self.publish(
                Release(**self._confirmed(session, done), nick=nick, fingerprint=owner)
            )
        # Its sessions cannot keep a nick their key no longer owns: they get the fallback a hello
        # would give them, chosen here and claimed with the release, atomically.
        fallback = self._fallback_for(owner, [nick.casefold()])
        if fallback is None:
            raise FrameError(f"no free nick for the sessions of {owner}; try again")
        return self.publish(
            Release(
                **self._confirmed(session, f"{done}; its sessions are now {fallback}"),
                nick=nick,
                fingerprint=owner,
                fallback=fallback,
                text=f"your nick {nick} was released by an operator",
            )
        )

    # ----- events (in the cluster's log order) -----

    def _apply_allow(self, event: Allow) -> list[Outgoing]:
        fingerprint = event.fingerprint
        self.store.set_allowed(fingerprint, event.allowed)
        if self.admits(fingerprint):
            return []
        out: list[Outgoing] = []
        for session in list(self.sessions.values()):
            if session.fingerprint == fingerprint and not session.dismissed:
                out += self._bye(session.session_id, event.text or not_listed(fingerprint))
        return out

    def _apply_release(self, event: Release) -> list[Outgoing]:
        nick, fingerprint = event.nick, event.fingerprint
        self.store.release_nick(nick)
        fallback = event.fallback
        if fallback is None:
            return []
        self.store.register_nick(fallback, fingerprint)
        text = f"{event.text}; you are {fallback}"
        return self._renamed(fingerprint, nick, fallback) + self._notice_key(fingerprint, text)

    def _renamed(self, fingerprint: str, old: str, new: str) -> list[Outgoing]:
        """Every session of the key is ``new`` now: the ``nick`` frame goes to the members of
        their rooms and to the key's own sessions."""
        sessions = self._online_of(fingerprint)
        for each in sessions:
            each.nick = new
        frame = {"type": "nick", "old": old, "new": new, "fingerprint": fingerprint}
        rooms = {room for each in sessions for room in each.rooms}
        told = {s.session_id for room in rooms for s in self._members(room)}
        told |= {s.session_id for s in self._sessions_of(fingerprint)}
        return [(target, frame) for target in sorted(told)]
