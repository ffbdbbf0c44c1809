"""Invitations in a cluster server's replica, with the SQLite store's semantics: Redis holds them
durably (the broker's commit script decides every use and revocation) and every replica applies
the same events in the log's order."""

from __future__ import annotations

import dataclasses

from .invitations import StoredInvitation, forgotten_before


class MemoryInvitations:
    def __init__(self) -> None:
        self._invitations: dict[str, StoredInvitation] = {}

    def add_invitation(self, invitation: StoredInvitation) -> bool:
        if invitation.id in self._invitations:
            return False
        cutoff = forgotten_before(invitation.made_at)
        for old in [i.id for i in self._invitations.values() if i.ended_at < cutoff]:
            del self._invitations[old]
        self._invitations[invitation.id] = invitation
        return True

    def invitation(self, invitation_id: str) -> StoredInvitation | None:
        return self._invitations.get(invitation_id)

    def invitations(self) -> list[StoredInvitation]:
        return sorted(self._invitations.values(), key=lambda i: (i.made_at, i.id), reverse=True)

    def open_invitations(self, now: float) -> int:
        return sum(1 for i in self._invitations.values() if i.state(now) == "open")

    def use_invitation(self, invitation_id: str, fingerprint: str, at: float) -> None:
        found = self._invitations.get(invitation_id)
        if found is not None and found.used_at is None and found.revoked_at is None:
            self._invitations[invitation_id] = dataclasses.replace(
                found, used_by=fingerprint, used_at=at
            )

    def revoke_invitation(self, invitation_id: str, at: float) -> None:
        found = self._invitations.get(invitation_id)
        if found is not None and found.used_at is None and found.revoked_at is None:
            self._invitations[invitation_id] = dataclasses.replace(found, revoked_at=at)
