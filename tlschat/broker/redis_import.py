"""Carrying a one-server ``chat.db``'s room history into a cluster's Redis.

A cluster keeps each room's history in the stream ``tlschat:history:ROOM`` (one entry per line,
its field ``m`` the relayed message as JSON text, capped at ``HISTORY_CAP``), the rooms with
history in the set ``tlschat:rooms``, and each sender's last counter in the hash
``tlschat:counters`` (see ``redis_commit``). The lines are signed by their senders, so they are
copied as they are: nothing is signed anew. A line is the same line when its sender and counter
are (a sender's counters only ever grow), so a line the cluster has is never added twice, and
running the import again adds nothing. Lines are merged with what the room's stream holds by
their signed time, each side in its own order, and the stream is written anew in that order
inside one transaction that fails if a server commits to that room meanwhile (then it is tried
again). Senders' counters are raised to their newest imported line's, never lowered, so a copy
of an imported line is refused as a replay.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.exceptions import WatchError

from ..chat.server.stored import dumps, relayed_frame
from ..store.base import StoredMessage
from .redis_commit import HISTORY_CAP, PREFIX

# Transactions tried per room while servers keep committing to it.
ATTEMPTS = 20

# A sender's counter raised to ARGV[2] unless it is there already. Counters are compared as the
# commit script compares them, as decimal strings (by length, then digit by digit), which stays
# exact past Lua's 2^53.
RAISE_COUNTER = """
local last, new = redis.call('HGET', KEYS[1], ARGV[1]), ARGV[2]
if last and (#last > #new or (#last == #new and last >= new)) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], new)
return 1
"""


class ImportFailed(Exception):
    """Why the history was not carried over: one line."""


@dataclass(frozen=True)
class RoomPlan:
    """A room's history as it is to be: ``texts`` oldest first (the stream's field ``m``), of
    which ``added`` lines come from the database."""

    texts: list[str]
    added: int


@dataclass(frozen=True)
class _Line:
    timestamp_ms: int
    text: str
    imported: bool


def history_key(room: str) -> str:
    return f"{PREFIX}history:{room}"


def _held(text: str) -> tuple[str, int, int]:
    """A stream entry's sender, counter and signed time (the ``message`` frame's own fields,
    docs/PROTOCOL.md); ValueError if it has none."""
    try:
        line = json.loads(text)
        return str(line["sender"]), int(line["counter"]), int(line["ts"])
    except (KeyError, TypeError) as error:
        raise ValueError(f"a history entry that is not a line: {text[:80]!r}") from error


def plan_room(existing: list[str], lines: list[StoredMessage], network: str) -> RoomPlan:
    """The room's stream (``existing``, oldest first) with the database's ``lines`` (oldest
    first) it lacks, merged by signed time and cut to the newest ``HISTORY_CAP``."""
    held = [_held(text) for text in existing]
    have = {(sender, counter) for sender, counter, _ in held}
    old = [_Line(ts, text, False) for (_, _, ts), text in zip(held, existing, strict=True)]
    new = [
        _Line(m.timestamp_ms, dumps(relayed_frame(m, network)), True)
        for m in lines
        if (m.sender, m.counter) not in have
    ]
    merged: list[_Line] = []
    i = j = 0
    while i < len(old) or j < len(new):
        if j < len(new) and (i == len(old) or new[j].timestamp_ms <= old[i].timestamp_ms):
            merged.append(new[j])
            j += 1
        else:
            merged.append(old[i])
            i += 1
    kept = merged[-HISTORY_CAP:]
    return RoomPlan([line.text for line in kept], sum(line.imported for line in kept))


def _stream_texts(connection: Any, room: str) -> list[str]:
    return [str(fields["m"]) for _, fields in connection.xrange(history_key(room))]


def missing_lines(connection: Any, history: dict[str, list[StoredMessage]]) -> dict[str, int]:
    """How many lines of each room of ``history`` the cluster lacks (rooms lacking none are
    left out). ``connection``: a ``redis.Redis`` with ``decode_responses=True``."""
    missing: dict[str, int] = {}
    for room, lines in history.items():
        added = plan_room(_stream_texts(connection, room), lines, "").added
        if added:
            missing[room] = added
    return missing


def import_history(
    connection: Any, history: dict[str, list[StoredMessage]], network: str
) -> dict[str, int]:
    """Add to the cluster the lines of ``history`` it lacks; how many, per room that gained
    any. ``network``: the servers' key fingerprint, as the lines carry it when relayed."""
    added: dict[str, int] = {}
    for room, lines in history.items():
        count = _import_room(connection, room, lines, network)
        if count:
            added[room] = count
    return added


def _newest_counters(lines: Iterable[StoredMessage]) -> dict[str, int]:
    newest: dict[str, int] = {}
    for message in lines:
        newest[message.sender] = max(newest.get(message.sender, -1), message.counter)
    return newest


def _import_room(connection: Any, room: str, lines: list[StoredMessage], network: str) -> int:
    key = history_key(room)
    for _ in range(ATTEMPTS):
        with connection.pipeline() as pipe:
            try:
                pipe.watch(key)
                plan = plan_room(_stream_texts(pipe, room), lines, network)
                if not plan.added:
                    return 0
                pipe.multi()
                pipe.delete(key)
                for text in plan.texts:
                    pipe.xadd(key, {"m": text})
                pipe.sadd(f"{PREFIX}rooms", room)
                for sender, counter in _newest_counters(lines).items():
                    pipe.eval(RAISE_COUNTER, 1, f"{PREFIX}counters", sender, str(counter))
                pipe.execute()
                return plan.added
            except WatchError:
                continue
    raise ImportFailed(
        f"the servers kept writing to {room}'s history: stop them, or try again when it is quieter"
    )


def counted(count: int, one: str, many: str) -> str:
    """``count`` with its noun: "1 line", "3 lines"."""
    return f"{count} {one if count == 1 else many}"


def shown_url(url: str) -> str:
    """``url`` as it may be printed: a password in it is replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
