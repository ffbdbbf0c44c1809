"""Onboarding without fingerprints (docs/PROTOCOL.md, section 22, "Invitations"): operators'
/invitation, /invitations and /revoke, and the hello of a key the allowlist does not admit that
brings an invitation.

A key the allowlist in force does not admit is turned away in answer to its hello, unless the
hello brings an invitation that is open. The hash of the secret is compared in constant time
with the one kept under its id, and an open invitation is used by an 'invitation_use' event (in a
cluster the commit script uses it up, so that a second use on any server is refused), which also
puts the key on the allowlist as /allow does: it needs no invitation again. A key admitted
otherwise (listed, allowed, an operator, or no allowlist in force) does not use the invitation it
brings. The secret itself is never stored, logged or put in an event: only the operator who made
the invitation is sent it, once.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from ...store.base import Store
from ...store.invitations import State, StoredInvitation
from ..frames import FrameError
from ..invitation import (
    DEFAULT_LIFETIME,
    ID_PATTERN,
    MAKE_ATTEMPTS,
    MAX_LIFETIME,
    InvitationError,
    format_address,
    invitation_id,
    new_secret,
    parse_address,
    secret_digest,
    valid_secret,
)
from .admin import ServerAdmin, not_listed
from .cluster_events import (
    ClusterEvent,
    HandlerTable,
    InvitationMade,
    InvitationRevoke,
    InvitationUse,
    handler,
)
from .durations import describe_duration, parse_duration
from .model import DEGRADED_REJECTION, ChatSettings, Outgoing, Publish, Session
from .replies import error_frame, info_frames, notice_frame, to_session

# Open invitations at once: a hello that brings one is checked against one, by its id, but the
# list operators read stays short enough to read.
MAX_OPEN_INVITATIONS = 1000


NOT_VALID = "this invitation is not valid here"


REFUSALS: dict[State, str] = {
    "used": "this invitation was used already",
    "revoked": "this invitation was revoked",
    "expired": "this invitation has expired",
}


UNREACHABLE_STORE = "the cluster's store is unreachable"


ADMITTED = (
    "your invitation admitted your key: it is on this server's allowlist now, "
    "and needs no invitation again"
)


NO_ALLOWLIST = (
    "no allowlist is in force on this server (allowlist_only is off): every key is admitted, "
    "and the invitation only spares the new user checking the server's fingerprint"
)


USAGE = "usage: /invitation [DURATION] [HOST:PORT]"


@dataclass(frozen=True)
class MadeInvitation:
    """An invitation on its way to the store: the secret goes to its maker once it is kept."""

    session_id: int
    secret: str
    lifetime: float
    address: str | None


class ServerInvitations(ServerAdmin):
    """/invitation, /invitations, /revoke, and the hello that brings an invitation."""

    def __init__(
        self,
        settings: ChatSettings,
        store: Store,
        node: str,
        publish: Publish,
        *,
        network: str,
    ) -> None:
        super().__init__(settings, store, node, publish, network=network)
        # By invitation id, until its 'invitation' event is applied or refused.
        self.made_invitations: dict[str, MadeInvitation] = {}

    def _unlisted(self, session: Session) -> list[Outgoing]:
        """A key the allowlist in force does not admit, right after its handshake: its hello
        may bring an invitation; without one it is turned away then."""
        session.invited_only = True
        return []

    def _on_hello(self, session: Session, frame: dict[str, Any], now: float) -> list[Outgoing]:
        if not session.invited_only:
            return super()._on_hello(session, frame, now)
        if session.invitation_hello is not None:
            raise FrameError("already said hello")
        if self.admits(session.fingerprint):  # allowed since its handshake
            session.invited_only = False
            return super()._on_hello(session, frame, now)
        if "invitation" not in frame:
            return self._bye(session.session_id, not_listed(session.fingerprint))
        found = self._open_invitation(frame["invitation"], now)
        if isinstance(found, str):
            return self._bye(session.session_id, found)
        session.invitation_hello = (frame, now)
        return self.publish(
            InvitationUse(
                **self._origin(session), id=found.id, fingerprint=session.fingerprint, at=now
            )
        )

    def _open_invitation(self, secret: object, now: float) -> StoredInvitation | str:
        """The open invitation ``secret`` belongs to, or why there is none to use."""
        if not valid_secret(secret):
            return NOT_VALID
        digest = secret_digest(secret)
        found = self.store.invitation(invitation_id(digest))
        if found is None or not hmac.compare_digest(found.digest.encode(), digest.encode()):
            return NOT_VALID
        state = found.state(now)
        return found if state == "open" else REFUSALS[state]

    # ----- commands -----

    def _cmd_invitation(self, session: Session, args: str, now: float) -> list[Outgoing]:
        lifetime, address = self._invitation_args(args)
        if self.store.open_invitations(now) >= MAX_OPEN_INVITATIONS:
            raise FrameError(
                f"{MAX_OPEN_INVITATIONS} invitations are open already; /revoke some first"
            )
        for _ in range(MAKE_ATTEMPTS):
            secret = new_secret()
            digest = secret_digest(secret)
            if self.store.invitation(invitation_id(digest)) is None:
                break
        else:
            raise FrameError("no free invitation id; try again")
        made_id = invitation_id(digest)
        self.made_invitations[made_id] = MadeInvitation(
            session.session_id, secret, lifetime, address
        )
        return self.publish(
            InvitationMade(
                **self._origin(session),
                id=made_id,
                digest=digest,
                made_by=f"{session.nick} ({session.fingerprint})",
                made_at=now,
                expires_at=now + lifetime,
            )
        )

    @staticmethod
    def _invitation_args(args: str) -> tuple[float, str | None]:
        """'[DURATION] [HOST:PORT]' -> (seconds, 'HOST:PORT' or None)."""
        words = args.split()
        if len(words) > 2:
            raise FrameError(USAGE)
        lifetime: float | None = None
        address: str | None = None
        for word in words:
            duration = parse_duration(word)
            if duration is not None and lifetime is None:
                lifetime = duration
                continue
            if address is not None or duration is not None:
                raise FrameError(USAGE)
            try:
                address = format_address(*parse_address(word))
            except InvitationError as error:
                raise FrameError(f"{USAGE}: {error}") from None
        lifetime = DEFAULT_LIFETIME if lifetime is None else lifetime
        if not 0 < lifetime <= MAX_LIFETIME:
            limit = describe_duration(MAX_LIFETIME)
            raise FrameError(f"an invitation lasts from 1s to {limit}")
        return lifetime, address

    def _cmd_invitations(self, session: Session, args: str, now: float) -> list[Outgoing]:
        lines = [self._describe_invitation(i, now) for i in self.store.invitations()]
        return to_session(session.session_id, info_frames("Invitations", lines or ["none"]))

    def _describe_invitation(self, invitation: StoredInvitation, now: float) -> str:
        def ago(then: float) -> str:
            return f"{describe_duration(max(0.0, now - then))} ago"

        if invitation.used_at is not None:
            user = invitation.used_by or "?"
            nick = self.store.nick_of(user)
            status = f"used {ago(invitation.used_at)} by {f'{nick} ({user})' if nick else user}"
        elif invitation.revoked_at is not None:
            status = f"revoked {ago(invitation.revoked_at)}"
        elif now >= invitation.expires_at:
            status = f"expired {ago(invitation.expires_at)}"
        else:
            status = f"open, expires in {describe_duration(invitation.expires_at - now)}"
        return f"{invitation.id} made {ago(invitation.made_at)} by {invitation.made_by}: {status}"

    def _cmd_revoke(self, session: Session, args: str, now: float) -> list[Outgoing]:
        wanted = args.split(" ", 1)[0] if args else ""
        if not ID_PATTERN.fullmatch(wanted):
            raise FrameError("usage: /revoke ID (the id /invitations lists)")
        found = self.store.invitation(wanted)
        if found is None:
            raise FrameError(f"no such invitation: {wanted}")
        state = found.state(now)
        if state != "open":
            done = {"used": "was used already", "revoked": "was revoked already"}
            raise FrameError(f"invitation {wanted} {done.get(state, 'has expired')}")
        revoked = self._confirmed(session, f"revoked invitation {wanted}")
        return self.publish(InvitationRevoke(**revoked, id=wanted, at=now))

    # ----- events (in the cluster's log order) -----

    def _apply_invitation(self, event: InvitationMade) -> list[Outgoing]:
        made_id = event.id
        self.store.add_invitation(
            StoredInvitation(made_id, event.digest, event.made_by, event.made_at, event.expires_at)
        )
        made = self.made_invitations.pop(made_id, None) if event.node == self.node else None
        if made is None or made.session_id not in self.sessions:
            return []
        frame: dict[str, Any] = {
            "type": "invitation",
            "id": made_id,
            "secret": made.secret,
            "valid_for": int(made.lifetime),
        }
        if made.address is not None:
            frame["address"] = made.address
        out: list[Outgoing] = [(made.session_id, frame)]
        if self.settings.allowlist is None:
            out.append((made.session_id, notice_frame(NO_ALLOWLIST)))
        return out

    def _apply_invitation_use(self, event: InvitationUse) -> list[Outgoing]:
        fingerprint = event.fingerprint
        self.store.use_invitation(event.id, fingerprint, event.at)
        self.store.set_allowed(fingerprint, True)
        text = f"invitation {event.id} was used by {fingerprint}, now on the allowlist"
        out: list[Outgoing] = [
            (s.session_id, notice_frame(text))
            for s in self.sessions.values()
            if s.said_hello and self.is_operator(s.fingerprint)
        ]
        session = self._sender_of_event(event)
        if session is None or session.dismissed or session.invitation_hello is None:
            return out
        frame, hello_at = session.invitation_hello
        session.invitation_hello = None
        session.invited_only = False
        hello = super()._on_hello(session, frame, hello_at)
        # Right after its welcome: why this key is in.
        return out + hello[:1] + [(session.session_id, notice_frame(ADMITTED))] + hello[1:]

    def _apply_invitation_revoke(self, event: InvitationRevoke) -> list[Outgoing]:
        self.store.revoke_invitation(event.id, event.at)
        return []

    def _invitation_rejected(self, event: ClusterEvent, reason: str) -> list[Outgoing]:
        """The cluster's log refused an invitation event of this server (used or revoked on
        another server meanwhile, or the log was unreachable)."""
        if isinstance(event, InvitationMade):
            self.made_invitations.pop(event.id, None)
        session = self._sender_of_event(event)
        if session is None:
            return []
        unreachable = reason == DEGRADED_REJECTION
        if not isinstance(event, InvitationUse):
            text = f"not done: {UNREACHABLE_STORE}" if unreachable else reason
            return [(session.session_id, error_frame(text))]
        session.invitation_hello = None
        text = (
            f"{UNREACHABLE_STORE}; try the invitation again in a while" if unreachable else reason
        )
        return self._bye(session.session_id, text)


INVITATION_EVENTS: HandlerTable[ServerInvitations, list[Outgoing]] = dict(
    (
        handler(InvitationMade, ServerInvitations._apply_invitation),
        handler(InvitationUse, ServerInvitations._apply_invitation_use),
        handler(InvitationRevoke, ServerInvitations._apply_invitation_revoke),
    )
)
