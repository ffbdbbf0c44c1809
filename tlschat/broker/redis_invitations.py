"""Invitations in Redis: what the commit script checks and writes for each invitation event, and
how a server's replica loads them.

Each invitation kept is in the set ``invitations`` and has the hash ``invitation:ID`` with the
fields ``digest``, ``made_by``, ``made_at`` and ``expires_at``, and once it ended ``used_by`` and
``used_at``, or ``revoked_at`` (times as Python writes floats). The script is where a use is
decided for the whole cluster: an invitation is used once, on whichever server comes first in the
log, and a use or revocation of one that is not open any more is refused with why.
"""

from __future__ import annotations

from typing import Any

from ..chat.server.cluster_events import InvitationMade, InvitationRevoke, InvitationUse
from ..chat.server.invitations import NOT_VALID, REFUSALS
from ..store.invitations import KEPT_AFTER_END, StoredInvitation
from ..store.memory import MemoryStore

# Prepended to the commit script: called with the key prefix and the event's kind, it returns
# nothing once done, or why the event is refused. ARGV from 6: the invitation's id, then
#   invitation:        digest, made_by, made_at, expires_at, forget ended before
#   invitation_use:    fingerprint, at (also puts the key on the allowlist)
#   invitation_revoke: at
INVITATION_SCRIPT = """
local function invitation_commit(p, kind)
  local key = p .. 'invitation:' .. ARGV[6]
  if kind == 'invitation' then
    if redis.call('EXISTS', key) == 1 then return 'exists' end
    for _, other in ipairs(redis.call('SMEMBERS', p .. 'invitations')) do
      local ended = redis.call('HMGET', p .. 'invitation:' .. other,
        'used_at', 'revoked_at', 'expires_at')
      local at = tonumber(ended[1] or ended[2] or ended[3])
      if at == nil or at < tonumber(ARGV[11]) then
        redis.call('DEL', p .. 'invitation:' .. other)
        redis.call('SREM', p .. 'invitations', other)
      end
    end
    redis.call('HSET', key, 'digest', ARGV[7], 'made_by', ARGV[8], 'made_at', ARGV[9],
      'expires_at', ARGV[10])
    redis.call('SADD', p .. 'invitations', ARGV[6])
    return nil
  end
  local state = redis.call('HMGET', key, 'expires_at', 'used_at', 'revoked_at')
  if not state[1] then return 'unknown' end
  if state[2] then return 'used' end
  if state[3] then return 'revoked' end
  local at = kind == 'invitation_use' and ARGV[8] or ARGV[7]
  if tonumber(at) >= tonumber(state[1]) then return 'expired' end
  if kind == 'invitation_use' then
    redis.call('HSET', key, 'used_by', ARGV[7], 'used_at', at)
    redis.call('HSET', p .. 'allowlist', ARGV[7], '1')
  else
    redis.call('HSET', key, 'revoked_at', at)
  end
  return nil
end
"""


Invitation = InvitationMade | InvitationUse | InvitationRevoke


def invitation_arguments(event: Invitation) -> list[str]:
    """The commit script's arguments for an invitation event (see INVITATION_SCRIPT)."""
    if isinstance(event, InvitationMade):
        return [
            event.id,
            event.digest,
            event.made_by,
            repr(event.made_at),
            repr(event.expires_at),
            repr(event.made_at - KEPT_AFTER_END),
        ]
    if isinstance(event, InvitationUse):
        return [event.id, event.fingerprint, repr(event.at)]
    return [event.id, repr(event.at)]


def invitation_refusal(event: Invitation, verdict: str) -> str:
    """Why the script refused an invitation event: a used one is told as it is told on one
    server; an operator's revocation names the invitation."""
    if verdict == "exists":
        return f"an invitation {event.id} exists already; try again"
    if isinstance(event, InvitationUse):
        return next((text for state, text in REFUSALS.items() if state == verdict), NOT_VALID)
    done = {"used": "was used already", "revoked": "was revoked already"}
    if verdict == "unknown":
        return f"no such invitation: {event.id}"
    return f"invitation {event.id} {done.get(verdict, 'has expired')}"


async def load_invitations(connection: Any, prefix: str, store: MemoryStore) -> None:
    """Every invitation kept into a replica (oldest first: a replica forgets nothing on load)."""
    loaded: list[StoredInvitation] = []
    for invitation_id in await connection.smembers(f"{prefix}invitations"):
        fields = await connection.hgetall(f"{prefix}invitation:{invitation_id}")
        if "digest" not in fields:
            continue
        loaded.append(
            StoredInvitation(
                invitation_id,
                fields["digest"],
                fields["made_by"],
                float(fields["made_at"]),
                float(fields["expires_at"]),
                fields.get("used_by"),
                float(fields["used_at"]) if "used_at" in fields else None,
                float(fields["revoked_at"]) if "revoked_at" in fields else None,
            )
        )
    for invitation in sorted(loaded, key=lambda i: i.made_at):
        store.add_invitation(invitation)
