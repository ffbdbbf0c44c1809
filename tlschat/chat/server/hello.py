"""A session's hello: its nick, claimed for its key (fallbacks included), its device, and its
rooms' joins."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from ..frames import (
    FrameError,
    valid_nick,
)
from .cluster_events import Join, Online
from .devices import ServerDevices
from .model import DEGRADED_NOTICE, MAX_ROOMS_PER_USER, Outgoing, Session
from .replies import notice_frame

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


class ServerHello(ServerDevices):
    """Hello, nick claims and joins."""

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
        return self._fallback_for(session.fingerprint, session.refused)

    def _fallback_for(self, fingerprint: str, refused: list[str]) -> str | None:
        """As ``_fallback_nick``, for ``fingerprint``, skipping the (casefolded) ``refused``."""
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
                and nick.casefold() not in refused
                and not self._nick_in_use_by_other(nick, fingerprint)
            ):
                return nick
        return None

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
                    "large_room": self.settings.large_room,
                },
            )
        ]
        if notice:
            out.append((session.session_id, notice_frame(notice)))
        if self.degraded:
            out.append((session.session_id, {**notice_frame(DEGRADED_NOTICE), "degraded": True}))
        if self.settings.motd:
            out.append((session.session_id, {"type": "motd", "text": self.settings.motd}))
        # Its device is in the directory before its key is in any room of this session's.
        out += self._hello_device(session, frame, now)
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
            Online(**self._presence(session), connected_at=session.connected_at, claim=True)
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
            return self._room_told(session.session_id, room)
        if room in session.joining:
            return []  # joined comes when the join already on its way takes effect
        if len(session.rooms) + len(session.joining) >= MAX_ROOMS_PER_USER:
            raise FrameError(f"you are in {MAX_ROOMS_PER_USER} rooms already; /part one first")
        session.joining.append(room)
        return self.publish(Join(**self._presence(session), room=room))
