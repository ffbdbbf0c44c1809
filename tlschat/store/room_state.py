"""A room's roles and rules as the store keeps them (docs/PROTOCOL.md, section 22, "Private rooms
and room roles"): its owner and operators, whether it is invite-only, the keys it lets in, and
its own bans and mutes. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .base import Ban

# What a key may be given in a room: 'operator' (moderates it) or 'admitted' (may join it while
# it is invite-only: invited, or a member since).
Grant = Literal["operator", "admitted"]


GRANTS: tuple[Grant, ...] = ("operator", "admitted")


@dataclass
class RoomState:
    room: str
    # The first key that joined it while it had none; never changes after.
    owner: str | None = None
    invite_only: bool = False
    operators: set[str] = field(default_factory=set)
    # The keys it lets in while invite-only: invited, or members since (their invitation used,
    # or in it when it became invite-only), until they part, are kicked or banned from it, or
    # their invitation is revoked.
    admitted: set[str] = field(default_factory=set)
    bans: dict[str, Ban] = field(default_factory=dict)
    # Fingerprint -> until when (seconds since the epoch; None: until unmuted).
    mutes: dict[str, float | None] = field(default_factory=dict)

    def copy(self) -> RoomState:
        return RoomState(
            self.room,
            self.owner,
            self.invite_only,
            set(self.operators),
            set(self.admitted),
            dict(self.bans),
            dict(self.mutes),
        )

    def granted(self, grant: Grant) -> set[str]:
        return self.operators if grant == "operator" else self.admitted

    def admits(self, fingerprint: str) -> bool:
        """Whether the key may join it while it is invite-only (bans aside)."""
        return fingerprint == self.owner or fingerprint in self.operators | self.admitted

    def active_ban(self, fingerprint: str, now: float) -> Ban | None:
        ban = self.bans.get(fingerprint)
        if ban is None or (ban.until is not None and ban.until <= now):
            return None
        return ban

    def muted_until(self, fingerprint: str, now: float) -> float | None:
        """Until when the key is muted in the room (infinity: until unmuted); None if it is not."""
        if fingerprint not in self.mutes:
            return None
        until = self.mutes[fingerprint]
        if until is None:
            return float("inf")
        return until if until > now else None

    def expired(self, now: float) -> tuple[list[str], list[str]]:
        """The keys whose room ban, and whose room mute, has run out by ``now``."""
        bans = [f for f, ban in self.bans.items() if ban.until is not None and ban.until <= now]
        mutes = [f for f, until in self.mutes.items() if until is not None and until <= now]
        return bans, mutes
