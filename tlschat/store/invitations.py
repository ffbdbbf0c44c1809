"""Invitations as the store keeps them (docs/PROTOCOL.md, section 22, "Invitations"): one-time,
expiring, and known by the hash of their secret, never the secret itself.

An invitation is *open* until it is used (by one key, once), revoked by an operator, or expires.
One that ended is still listed for ``KEPT_AFTER_END`` seconds (so that a second use is told "used
already" rather than "not valid"); making a new invitation forgets the ones that ended longer
before it was made, on every store alike (a cluster's replicas and Redis decide the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

KEPT_AFTER_END = 30 * 86400.0


State = Literal["open", "used", "revoked", "expired"]


@dataclass(frozen=True)
class StoredInvitation:
    """``digest``: the hex SHA-256 of the secret. ``made_by``: who made it, as operators are
    shown it ("alice (SHA256:…)", or "tlschat invite (USER)"). Times are seconds since the epoch."""

    id: str
    digest: str
    made_by: str
    made_at: float
    expires_at: float
    used_by: str | None = None
    used_at: float | None = None
    revoked_at: float | None = None

    def state(self, now: float) -> State:
        if self.used_at is not None:
            return "used"
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if now >= self.expires_at else "open"

    @property
    def ended_at(self) -> float:
        """When it stopped being open (or will: its expiry)."""
        if self.used_at is not None:
            return self.used_at
        return self.revoked_at if self.revoked_at is not None else self.expires_at


def forgotten_before(made_at: float) -> float:
    """The invitations that ended before this are forgotten when one is made at ``made_at``."""
    return made_at - KEPT_AFTER_END
