"""The Redis broker's commit script: what it checks and writes, atomically, for each event.

It checks what must be unique across the cluster (a nick's owner, also for a nick an operator
releases, a sender's message counter, a room encrypted once), writes the durable state (nicks,
counters, bans, topics, operators' allowlist decisions, each room's history stream with a length
cap, the end-to-end layer's directory and inboxes) and appends the event to the cluster's log.
What every server's replica must decide alike is decided here and added to the event (see the
comment on COMMIT_SCRIPT).
"""

from __future__ import annotations

import json
from typing import Any

from ..chat.e2e_frames import MAX_DEVICES_PER_KEY, MAX_SERVER_ONE_TIME_KEYS
from ..chat.server.cluster_events import (
    Allow,
    Ban,
    ClusterEvent,
    Encrypt,
    InvitationMade,
    InvitationRevoke,
    InvitationUse,
    Nick,
    Online,
    Part,
    Release,
    RoomKeyEvent,
    RoomMode,
    RoomOwner,
    Topic,
    Unban,
)
from ..chat.server.event_codec import event_json
from ..chat.server.inbox import INBOX_BOUNDS
from ..chat.server.line_events import (
    DeviceAck,
    DeviceKeys,
    DeviceRemove,
    E2EPrivate,
    KeysClaim,
    KeysUpload,
    Message,
    ToDevice,
)
from ..chat.server.model import REPLAY_REJECTION
from .redis_invitations import INVITATION_SCRIPT, invitation_arguments, invitation_refusal
from .redis_rooms import room_arguments

PREFIX = "tlschat:"
LOG_CAP = 100_000
HISTORY_CAP = 10_000

# ARGV: prefix, event JSON, kind, log cap, history cap, then the kind's own arguments.
#
# The end-to-end layer's durable state, per key FP and device DEV (KEY = "FP DEV": fingerprints
# and device ids hold no space): the hashes devices:FP (DEV -> device_keys JSON) and
# device_seen:FP (DEV -> when a session of it last said hello), the set device_owners (the FPs
# with a device), the hash otk:KEY (key id -> one_time_key JSON) and the list otk_order:KEY (key
# ids, oldest first), the hash fallback_keys (KEY -> JSON), the sorted set inbox:KEY (score: the
# item's id; member: "ID CREATED_MS PAYLOAD"), the hashes inbox_ids (KEY -> the last id given)
# and inbox_bytes (KEY -> the payload bytes held), and the set encrypted_rooms. What a replica
# must do the same on every server (the device a ninth replaces, the one-time key a claim takes,
# the ids of inbox items) is decided here and added to the event as a field of its JSON text.
# Rooms' roles and rules (owners, operators, invite-only, admitted keys, room bans and mutes) are
# the hashes room:ROOM and the set rooms_state (redis_rooms): the 'room' kind applies the writes
# that ``room_writes`` derives from a room event (and from a 'part', which ends an admission).
# Invitations (redis_invitations) are checked and written by a function defined before it.
COMMIT_SCRIPT = (
    INVITATION_SCRIPT
    + """
local p, event, kind = ARGV[1], ARGV[2], ARGV[3]
local function before_or_same(a, b)
  if #a ~= #b then return #a < #b end
  return a <= b
end
local function with_field(name, json)
  event = string.sub(event, 1, -2) .. ',"' .. name .. '":' .. json .. '}'
end
local function has_device(fp, dev)
  return redis.call('HEXISTS', p .. 'devices:' .. fp, dev) == 1
end
local function payload_size(member)
  return #member - #string.match(member, '^%d+ %d+ ')
end
local function remove_device(fp, dev)
  local key = fp .. ' ' .. dev
  redis.call('HDEL', p .. 'devices:' .. fp, dev)
  redis.call('HDEL', p .. 'device_seen:' .. fp, dev)
  if redis.call('HLEN', p .. 'devices:' .. fp) == 0 then
    redis.call('SREM', p .. 'device_owners', fp)
  end
  redis.call('DEL', p .. 'otk:' .. key, p .. 'otk_order:' .. key, p .. 'inbox:' .. key)
  redis.call('HDEL', p .. 'fallback_keys', key)
  redis.call('HDEL', p .. 'inbox_bytes', key)
end
-- ARGV from i: max items, max bytes, max age (ms), created (ms), n, then n (fp, dev, payload).
local function append_inbox(i)
  local max_items, max_bytes = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  local max_age, created = tonumber(ARGV[i + 2]), ARGV[i + 3]
  local ids = {}
  for j = 1, tonumber(ARGV[i + 4]) do
    local at = i + 2 + 3 * j
    local fp, dev, payload = ARGV[at], ARGV[at + 1], ARGV[at + 2]
    local id = 0
    -- (A payload larger than a whole inbox is not stored, rather than emptying it.)
    if has_device(fp, dev) and #payload <= max_bytes then
      local key = fp .. ' ' .. dev
      local inbox = p .. 'inbox:' .. key
      id = redis.call('HINCRBY', p .. 'inbox_ids', key, 1)
      redis.call('ZADD', inbox, id, id .. ' ' .. created .. ' ' .. payload)
      local bytes = redis.call('HINCRBY', p .. 'inbox_bytes', key, #payload)
      while true do
        local oldest = redis.call('ZRANGE', inbox, 0, 0)[1]
        if not oldest then break end
        local born = tonumber(string.match(oldest, '^%d+ (%d+) '))
        if redis.call('ZCARD', inbox) <= max_items and bytes <= max_bytes
            and born >= tonumber(created) - max_age then break end
        redis.call('ZREMRANGEBYRANK', inbox, 0, 0)
        bytes = redis.call('HINCRBY', p .. 'inbox_bytes', key, -payload_size(oldest))
      end
    end
    ids[j] = id
  end
  with_field('ids', '[' .. table.concat(ids, ',') .. ']')
end
if kind == 'message' or kind == 'e2e_private' then
  local sender, counter = ARGV[6], ARGV[7]
  local last = redis.call('HGET', p .. 'counters', sender)
  if last and before_or_same(counter, last) then return {0, 'replayed'} end
  redis.call('HSET', p .. 'counters', sender, counter)
  if kind == 'message' then
    redis.call('XADD', p .. 'history:' .. ARGV[8], 'MAXLEN', '~', ARGV[5], '*', 'm', ARGV[9])
    redis.call('SADD', p .. 'rooms', ARGV[8])
  else
    append_inbox(8)
  end
elseif kind == 'claim' then
  local fingerprint, nick, folded = ARGV[6], ARGV[7], ARGV[8]
  local owner = redis.call('HGET', p .. 'nick_owner', folded)
  if owner and owner ~= fingerprint then return {0, 'taken'} end
  local old = redis.call('HGET', p .. 'nick_folded', fingerprint)
  if old then redis.call('HDEL', p .. 'nick_owner', old) end
  redis.call('HSET', p .. 'nick_owner', folded, fingerprint)
  redis.call('HSET', p .. 'nick_folded', fingerprint, folded)
  redis.call('HSET', p .. 'nick', fingerprint, nick)
elseif kind == 'ban' then
  redis.call('HSET', p .. 'bans', ARGV[6], ARGV[7])
elseif kind == 'unban' then
  redis.call('HDEL', p .. 'bans', ARGV[6])
elseif kind == 'topic' then
  redis.call('HSET', p .. 'topics', ARGV[6], ARGV[7])
elseif kind == 'device' then
  local fp, dev, seen, max_devices = ARGV[6], ARGV[7], ARGV[9], tonumber(ARGV[10])
  redis.call('HSET', p .. 'devices:' .. fp, dev, ARGV[8])
  redis.call('HSET', p .. 'device_seen:' .. fp, dev, seen)
  redis.call('SADD', p .. 'device_owners', fp)
  if redis.call('HLEN', p .. 'devices:' .. fp) > max_devices then
    local all = redis.call('HGETALL', p .. 'device_seen:' .. fp)
    local victim, oldest = nil, nil
    for j = 1, #all, 2 do
      local other, when = all[j], tonumber(all[j + 1])
      if other ~= dev and (victim == nil or when < oldest or (when == oldest and other < victim))
      then victim, oldest = other, when end
    end
    remove_device(fp, victim)
    with_field('evicted', '"' .. victim .. '"')
  end
elseif kind == 'keys_upload' then
  local fp, dev, max_keys, fallback = ARGV[6], ARGV[7], tonumber(ARGV[8]), ARGV[9]
  if has_device(fp, dev) then
    local key = fp .. ' ' .. dev
    for j = 1, tonumber(ARGV[10]) do
      local id, text = ARGV[9 + 2 * j], ARGV[10 + 2 * j]
      if redis.call('HLEN', p .. 'otk:' .. key) < max_keys
          and redis.call('HSETNX', p .. 'otk:' .. key, id, text) == 1 then
        redis.call('RPUSH', p .. 'otk_order:' .. key, id)
      end
    end
    if fallback ~= '' then redis.call('HSET', p .. 'fallback_keys', key, fallback) end
  end
elseif kind == 'keys_claim' then
  local chosen = {}
  for j = 1, tonumber(ARGV[6]) do
    local fp, dev = ARGV[5 + 2 * j], ARGV[6 + 2 * j]
    local key = fp .. ' ' .. dev
    local text = 'null'
    if has_device(fp, dev) then
      local id = redis.call('LPOP', p .. 'otk_order:' .. key)
      if id then
        text = redis.call('HGET', p .. 'otk:' .. key, id)
        redis.call('HDEL', p .. 'otk:' .. key, id)
      else
        text = redis.call('HGET', p .. 'fallback_keys', key) or 'null'
      end
    end
    chosen[j] = text
  end
  with_field('keys', '[' .. table.concat(chosen, ',') .. ']')
elseif kind == 'device_remove' then
  remove_device(ARGV[6], ARGV[7])
elseif kind == 'device_ack' then
  local key = ARGV[6] .. ' ' .. ARGV[7]
  local inbox = p .. 'inbox:' .. key
  local gone = redis.call('ZRANGEBYSCORE', inbox, '-inf', ARGV[8])
  if #gone > 0 then
    local freed = 0
    for _, member in ipairs(gone) do freed = freed + payload_size(member) end
    redis.call('ZREMRANGEBYSCORE', inbox, '-inf', ARGV[8])
    redis.call('HINCRBY', p .. 'inbox_bytes', key, -freed)
  end
elseif kind == 'to_device' then
  append_inbox(6)
elseif kind == 'encrypt' then
  if redis.call('SADD', p .. 'encrypted_rooms', ARGV[6]) == 0 then return {0, 'encrypted'} end
elseif kind == 'room' then
  -- ARGV: the room, n, then n (op, field, value) writes to its hash (redis_rooms).
  local room = ARGV[6]
  local hash = p .. 'room:' .. room
  for j = 1, tonumber(ARGV[7]) do
    local op, name, value = ARGV[5 + 3 * j], ARGV[6 + 3 * j], ARGV[7 + 3 * j]
    if op == 'set' or op == 'setnx' then
      redis.call(op == 'set' and 'HSET' or 'HSETNX', hash, name, value)
      redis.call('SADD', p .. 'rooms_state', room)
    elseif op == 'del' then
      redis.call('HDEL', hash, name)
    elseif op == 'encrypt' then
      redis.call('SADD', p .. 'encrypted_rooms', room)
    end
  end
elseif string.sub(kind, 1, 10) == 'invitation' then
  local refused = invitation_commit(p, kind)
  if refused then return {0, refused} end
elseif kind == 'allow' then
  redis.call('HSET', p .. 'allowlist', ARGV[6], ARGV[7])
elseif kind == 'release' then
  -- ARGV: the owner, the nick (casefolded), then its sessions' fallback nick and casefolded
  -- (both empty when none of them is online), which the owner claims in the same step.
  local fp, folded, fallback, fallback_folded = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
  if redis.call('HGET', p .. 'nick_owner', folded) ~= fp then return {0, 'released'} end
  local holder = redis.call('HGET', p .. 'nick_owner', fallback_folded)
  if fallback ~= '' and holder and holder ~= fp then return {0, 'fallback'} end
  redis.call('HDEL', p .. 'nick_owner', folded)
  redis.call('HDEL', p .. 'nick_folded', fp)
  redis.call('HDEL', p .. 'nick', fp)
  if fallback ~= '' then
    redis.call('HSET', p .. 'nick_owner', fallback_folded, fp)
    redis.call('HSET', p .. 'nick_folded', fp, fallback_folded)
    redis.call('HSET', p .. 'nick', fp, fallback)
  end
end
local id = redis.call('XADD', p .. 'log', 'MAXLEN', '~', ARGV[4], '*', 'e', event)
return {1, id}
"""
)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _inbox_arguments(event: ToDevice | E2EPrivate) -> list[str]:
    """What the script needs to store an event's inbox items (``append_inbox``)."""
    bounds = [
        str(INBOX_BOUNDS.max_items),
        str(INBOX_BOUNDS.max_bytes),
        str(int(INBOX_BOUNDS.max_age * 1000)),
        str(event.ts),
        str(len(event.items)),
    ]
    return bounds + [
        part for item in event.items for part in (item.fingerprint, item.device, item.payload)
    ]


def _claim(fingerprint: str, nick: str) -> tuple[str, list[str]]:
    return "claim", [fingerprint, nick, nick.casefold()]


def _kind_arguments(event: ClusterEvent) -> tuple[str, list[str]]:
    """The script's kind for ``event`` and its own arguments (see COMMIT_SCRIPT)."""
    match event:
        case Message(message=line):
            return event.kind, [line.sender, str(line.counter), line.target, _dumps(line.frame())]
        case E2EPrivate(message=line):
            return event.kind, [line.sender, str(line.counter), *_inbox_arguments(event)]
        case Nick():
            return _claim(event.fingerprint, event.new)
        case Online(claim=True):
            return _claim(event.fingerprint, event.nick)
        case Ban():
            ban = {"until": event.until, "reason": event.reason, "by": event.by}
            return event.kind, [event.fingerprint, _dumps(ban)]
        case Unban():
            return event.kind, [event.fingerprint]
        case Topic():
            return event.kind, [event.room, event.topic]
        case DeviceKeys():
            device = [event.fingerprint, event.device, event.keys, repr(event.seen)]
            return event.kind, [*device, str(MAX_DEVICES_PER_KEY)]
        case KeysUpload():
            keys = [part for pair in event.keys for part in pair]
            extra = [event.fingerprint, event.device, str(MAX_SERVER_ONE_TIME_KEYS)]
            fallback = event.fallback[1] if event.fallback is not None else ""
            return event.kind, [*extra, fallback, str(len(event.keys)), *keys]
        case KeysClaim():
            devices = [part for pair in event.devices for part in pair]
            return event.kind, [str(len(event.devices)), *devices]
        case DeviceRemove():
            return event.kind, [event.fingerprint, event.device]
        case DeviceAck():
            return event.kind, [event.fingerprint, event.device, str(event.upto)]
        case ToDevice():
            return event.kind, _inbox_arguments(event)
        case Encrypt():
            return event.kind, [event.room]
        case RoomOwner() | RoomMode() | RoomKeyEvent() | Part():
            return "room", room_arguments(event)
        case InvitationMade() | InvitationUse() | InvitationRevoke():
            return event.kind, invitation_arguments(event)
        case Allow():
            return event.kind, [event.fingerprint, "1" if event.allowed else "0"]
        case Release():
            fallback = event.fallback or ""
            folded = [event.nick.casefold(), fallback, fallback.casefold()]
            return event.kind, [event.fingerprint, *folded]
    return event.kind, []


def commit_arguments(event: ClusterEvent) -> list[str]:
    """The script's ARGV for ``event``: what it must check and store besides the log entry."""
    kind, extra = _kind_arguments(event)
    return [PREFIX, event_json(event), kind, str(LOG_CAP), str(HISTORY_CAP), *extra]


def rejection_reason(event: ClusterEvent, verdict: str) -> str:
    if isinstance(event, InvitationMade | InvitationUse | InvitationRevoke):
        return invitation_refusal(event, verdict)
    if verdict == "replayed":
        return REPLAY_REJECTION
    if verdict == "taken" and isinstance(event, Online):
        return f"{event.nick!r} was just taken by another key on another server; connect again"
    if verdict == "taken" and isinstance(event, Nick):
        return f"{event.new!r} belongs to another key"
    if verdict == "encrypted" and isinstance(event, Encrypt):
        return f"{event.room} is already encrypted"
    if verdict == "released" and isinstance(event, Release):
        return f"{event.nick} is no longer {event.fingerprint}'s: nothing was released"
    if verdict == "fallback" and isinstance(event, Release):
        return f"{event.fallback} was just taken by another key; /release {event.nick} again"
    return f"not done: {verdict}"
