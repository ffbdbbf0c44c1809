"""The Redis broker: a cluster of servers sharing rooms, presence, nicks and history.

Every event is committed by one Lua script (``redis_commit``) that checks what must be unique
across the cluster (a nick's owner, a sender's message counter), writes the durable state (nicks,
counters, bans, topics, each room's history stream with a length cap, the end-to-end layer's
directory and inboxes) and appends the event to one log stream, all atomically. Every server
follows that log and applies each event for its own sessions, so every member of a room sees its
messages in the log's order. Each server keeps a replica of the durable
state in memory (:class:`~tlschat.store.memory.MemoryStore`), loaded when it (re)connects.

A server announces itself with ``node_up``; the others answer with a snapshot of their sessions.
Liveness is a key per server with a short expiry, refreshed every second: when a server's key
expires, the others drop its sessions. When Redis is unreachable the server says so to its
clients (chat degraded), refuses messages rather than losing them, retries with backoff, and
resynchronises when Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
from dataclasses import replace
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..chat.e2e_frames import MAX_DEVICES_PER_KEY, MAX_SERVER_ONE_TIME_KEYS
from ..chat.server.cluster_events import (
    ClusterEvent,
    Join,
    NodeUp,
    Offline,
    Online,
    Part,
    Snapshot,
)
from ..chat.server.event_codec import EventError, event_from_json
from ..chat.server.events import ChatServer
from ..chat.server.inbox import INBOX_BOUNDS
from ..chat.server.line_events import RelayedLine
from ..chat.server.model import DEGRADED_REJECTION, Outgoing
from ..chat.server.room_book import RoomBook
from ..chat.server.stored import stored_message
from ..chat.server.typed_json import from_json
from ..store.base import Ban, StoredDevice
from ..store.memory import MemoryStore
from .base import Deliver
from .redis_commit import COMMIT_SCRIPT, PREFIX, commit_arguments, rejection_reason
from .redis_invitations import load_invitations
from .redis_rooms import load_rooms

__all__ = ["PREFIX", "RedisBroker"]

log = logging.getLogger("tlschat.cluster")

HEARTBEAT_SECONDS = 1.0
NODE_TTL_MS = 4_000
READ_BLOCK_MS = 1_000
READ_BATCH = 1_000
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 5.0
STOP_GRACE = 2.0
# A Redis that answers nothing for this long (stopped, or cut off by a partition that drops
# packets) counts as unreachable: the chat is degraded and the connection made anew, rather than
# every commit waiting on it without end. Longer than READ_BLOCK_MS.
REDIS_TIMEOUT = 5.0
# Presence is re-sent as a snapshot when a server (re)joins the log, so presence events that
# cannot be committed while Redis is away take effect on this server alone rather than failing.
PRESENCE = (Online, Offline, Join, Part, Snapshot, NodeUp)


# Lines of each room a server's replica keeps (Redis keeps HISTORY_CAP).
REPLICA_HISTORY = 1000


class RedisBroker:
    def __init__(self, url: str, history_limit: int) -> None:
        self.url = url
        self.node = secrets.token_hex(6)
        # What each room's replica keeps: scrollback ('history #room BEFORE') reaches that far.
        self.history_kept = max(history_limit, REPLICA_HISTORY) if history_limit > 0 else 0
        self.connected = False
        # redis-py types its replies as unions of every possible reply; they are checked here by
        # use (decode_responses=True: strings), so the client is typed loosely.
        self._redis: Any = None
        self._chat: ChatServer | None = None
        self._deliver: Deliver | None = None
        self._queue: list[ClusterEvent] = []
        self._queued = asyncio.Event()
        # Events handed to Redis whose fate is not known yet, by their ``eid``: a connection that
        # fails mid-commit may or may not have committed them. The log decides once it is back:
        # those in it were committed, the others are committed again.
        self._in_flight: dict[str, ClusterEvent] = {}
        self._serial = itertools.count(1)
        # The newest log entry applied here: after a lost connection, the log is followed from
        # it, so that what was committed meanwhile still reaches this server's users.
        self._last_id = ""
        self._runner: asyncio.Task[None] | None = None
        self._stopping = False
        self.joined = asyncio.Event()

    def describe(self) -> str:
        return f"Redis at {self.url}, node {self.node}"

    # ----- the chat's side -----

    def publish(self, event: ClusterEvent) -> list[Outgoing]:
        assert self._chat is not None, "publish before start"
        if not self.connected:
            if isinstance(event, PRESENCE):
                # This server's own sessions still see each other; the others learn it from
                # this server's snapshot once Redis is back.
                return self._chat.apply(event)
            return self._chat.rejected(event, DEGRADED_REJECTION)
        self._queue.append(event)
        self._queued.set()
        return []

    # ----- lifecycle -----

    async def start(self, chat: ChatServer, deliver: Deliver) -> None:
        """Connect (retrying in the background if Redis is not there yet)."""
        self._chat = chat
        self._deliver = deliver
        chat.degraded = True  # until the first connection: nothing can be delivered before
        self._runner = asyncio.create_task(self._run())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.joined.wait(), timeout=5.0)

    async def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(), timeout=STOP_GRACE)
        if self._runner is not None:
            self._runner.cancel()
            _, pending = await asyncio.wait([self._runner], timeout=STOP_GRACE)
            if pending and self._redis is not None:
                # A blocking read of the log may not end on cancellation (seen with redis-py's
                # asyncio XREAD): the connections under it are closed, so that it fails.
                log.warning("[CLUSTER] Following the log did not stop; closing its connections")
                await self._redis.connection_pool.disconnect()
                await asyncio.wait([self._runner], timeout=STOP_GRACE)
        if self._redis is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._redis.delete(f"{PREFIX}node:{self.node}")
            await self._redis.aclose()

    async def drain(self) -> None:
        """Until everything published is refused, or committed and applied here (an event
        committed stays in flight until the log brings it back): the acknowledgements of a server
        that stops are sent before it closes."""
        while self.connected and (self._queue or self._in_flight):
            await asyncio.sleep(0.01)

    # ----- the connection -----

    async def _run(self) -> None:
        delay = BACKOFF_FIRST
        ever_joined = False
        while not self._stopping:
            try:
                await self._join()
            except (RedisError, OSError) as error:
                log.warning("[CLUSTER] Redis unreachable (%s); retrying in %.1f s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            if ever_joined:
                log.info("[CLUSTER] Redis reachable again; resynchronised")
            else:
                log.info("[CLUSTER] Joined the cluster at %s as node %s", self.url, self.node)
            ever_joined = True
            delay = BACKOFF_FIRST
            self._send(self._chat_or_fail().set_degraded(False))
            self.joined.set()
            try:
                await self._serve()
            except (RedisError, OSError) as error:
                if self._stopping:
                    return
                self.connected = False
                self._send(self._chat_or_fail().set_degraded(True))
                log.warning("[CLUSTER] Redis unreachable (%s); retrying in %.1f s", error, delay)
                self._reject_queued()
                await asyncio.sleep(delay)

    def _chat_or_fail(self) -> ChatServer:
        assert self._chat is not None
        return self._chat

    def _send(self, out: list[Outgoing]) -> None:
        if out and self._deliver is not None:
            self._deliver(out)

    def _reject_queued(self) -> None:
        chat = self._chat_or_fail()
        queued, self._queue = self._queue, []
        for event in queued:
            if isinstance(event, PRESENCE):
                self._send(chat.apply(event))
            else:
                self._send(chat.rejected(event, DEGRADED_REJECTION))

    async def _join(self) -> None:
        """Connect, find where to follow the log from, announce this server.

        The first time, and whenever the log no longer holds the newest entry applied here
        (trimmed, or Redis lost it), the durable state is loaded afresh and the log followed from
        its end; this server's users are then sent the history they may have missed. Otherwise
        the log is followed from where it was left, and the entries committed meanwhile are
        applied as they come.
        """
        if self._redis is not None:
            await self._redis.aclose()
        self._redis = aioredis.from_url(
            self.url,
            decode_responses=True,
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
        )
        connection = self._redis
        await connection.ping()
        chat = self._chat_or_fail()
        if not self._last_id or not await self._log_holds(connection, self._last_id):
            newest = await connection.xrevrange(f"{PREFIX}log", count=1)
            resumed_after_gap = bool(self._last_id)
            self._last_id = newest[0][0] if newest else "0-0"
            store = await self._load_state(connection)
            chat.store = store
            chat.topics = store.topics()
            chat.encrypted_rooms = store.encrypted_rooms()
            chat.room_book = RoomBook(store.room_states())
            if resumed_after_gap:
                log.warning("[CLUSTER] The log lost entries this server had not applied")
                self._send(chat.resynchronised())
        await self._beat(connection)
        self.connected = True

    @staticmethod
    async def _log_holds(connection: Any, entry_id: str) -> bool:
        if entry_id == "0-0":  # the log was empty then: whatever it holds now is new
            return True
        return bool(await connection.xrange(f"{PREFIX}log", entry_id, entry_id))

    async def _load_state(self, connection: Any) -> MemoryStore:
        store = MemoryStore(self.history_kept)
        owners = await connection.hgetall(f"{PREFIX}nick_owner")
        nicks = await connection.hgetall(f"{PREFIX}nick")
        for fingerprint, nick in nicks.items():
            if owners.get(nick.casefold()) == fingerprint:
                store.register_nick(nick, fingerprint)
        for fingerprint, counter in (await connection.hgetall(f"{PREFIX}counters")).items():
            store.set_last_counter(fingerprint, int(counter))
        for fingerprint, text in (await connection.hgetall(f"{PREFIX}bans")).items():
            ban = json.loads(text)
            store.add_ban(Ban(fingerprint, ban["until"], ban["reason"], ban["by"]))
        for room, topic in (await connection.hgetall(f"{PREFIX}topics")).items():
            store.set_topic(room, topic)
        if self.history_kept > 0:
            for room in await connection.smembers(f"{PREFIX}rooms"):
                entries = await connection.xrevrange(
                    f"{PREFIX}history:{room}", count=self.history_kept
                )
                for entry_id, fields in reversed(entries):
                    line = _history_line(room, entry_id, fields)
                    if line is not None:
                        store.add_history(stored_message(line))
        for room in await connection.smembers(f"{PREFIX}encrypted_rooms"):
            store.set_encrypted(room)
        await load_rooms(connection, PREFIX, store)
        for fingerprint, allowed in (await connection.hgetall(f"{PREFIX}allowlist")).items():
            store.set_allowed(fingerprint, allowed == "1")
        await load_invitations(connection, PREFIX, store)
        for fingerprint in await connection.smembers(f"{PREFIX}device_owners"):
            await self._load_devices(connection, store, fingerprint)
        return store

    @staticmethod
    async def _load_devices(connection: Any, store: MemoryStore, fingerprint: str) -> None:
        """A key's devices, with their one-time keys (oldest first), fallback keys and inboxes."""
        devices = await connection.hgetall(f"{PREFIX}devices:{fingerprint}")
        seen = await connection.hgetall(f"{PREFIX}device_seen:{fingerprint}")
        for device, keys_json in devices.items():
            last_seen = float(seen.get(device, 0.0))
            store.put_device(
                StoredDevice(fingerprint, device, keys_json, last_seen), MAX_DEVICES_PER_KEY
            )
            key = f"{fingerprint} {device}"
            order = await connection.lrange(f"{PREFIX}otk_order:{key}", 0, -1)
            held = await connection.hgetall(f"{PREFIX}otk:{key}")
            fallback_json = await connection.hget(f"{PREFIX}fallback_keys", key)
            fallback = (
                (str(json.loads(fallback_json)["id"]), fallback_json) if fallback_json else None
            )
            one_time = [(key_id, held[key_id]) for key_id in order if key_id in held]
            store.add_one_time_keys(
                fingerprint, device, one_time, fallback, MAX_SERVER_ONE_TIME_KEYS
            )
            for member in await connection.zrange(f"{PREFIX}inbox:{key}", 0, -1):
                item_id, created_ms, payload = member.split(" ", 2)
                store.append_inbox(
                    fingerprint,
                    device,
                    payload,
                    int(created_ms) / 1000,
                    INBOX_BOUNDS,
                    int(item_id),
                )

    async def _beat(self, connection: Any) -> None:
        await connection.set(f"{PREFIX}node:{self.node}", "1", px=NODE_TTL_MS)

    async def _serve(self) -> None:
        """Catch up with the log, then follow it, commit what is queued and keep the heartbeat;
        any Redis error ends it."""
        await self._catch_up()
        tasks = [
            asyncio.create_task(self._follow()),
            asyncio.create_task(self._commit()),
            asyncio.create_task(self._keep_alive()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _catch_up(self) -> None:
        """Apply what the log gained since this server last followed it. Then this server's
        presence is committed first (the others answer node_up with theirs), then what was in
        flight when the connection failed and is not in the log, so was not committed, then
        what came since."""
        while await self._read(block=None):
            pass
        uncommitted = list(self._in_flight.values())
        self._in_flight.clear()
        presence = [NodeUp(node=self.node), self._chat_or_fail().snapshot()]
        self._queue[:0] = [*presence, *uncommitted]
        self._queued.set()

    async def _follow(self) -> None:
        while True:
            await self._read(block=READ_BLOCK_MS)

    async def _read(self, block: int | None) -> int:
        """Apply the next entries of the log; how many there were."""
        assert self._redis is not None
        chat = self._chat_or_fail()
        batches = await self._redis.xread(
            {f"{PREFIX}log": self._last_id}, count=READ_BATCH, block=block
        )
        applied = 0
        for _, entries in batches:
            for entry_id, fields in entries:
                self._last_id = entry_id
                try:
                    event = event_from_json(fields.get("e", ""))
                except EventError as error:
                    # Redis holds what a server of the cluster wrote (docs/SECURITY.md): an entry
                    # that is not an event is a fault to report, not a reason to stop following.
                    log.warning("[CLUSTER] Log entry %s skipped: %s", entry_id, error)
                    continue
                if event.eid is not None:
                    self._in_flight.pop(event.eid, None)
                self._send(chat.apply(event))
                applied += 1
        return applied

    async def _commit(self) -> None:
        assert self._redis is not None
        connection = self._redis
        chat = self._chat_or_fail()
        script = connection.register_script(COMMIT_SCRIPT)
        while True:
            await self._queued.wait()
            self._queued.clear()
            queued, self._queue = self._queue, []
            if not queued:
                continue
            batch = [self._with_eid(event) for event in queued]
            self._in_flight.update(batch)
            pipeline = connection.pipeline(transaction=False)
            for _, event in batch:
                await script(args=commit_arguments(event), client=pipeline)
            # Failing or cancelled from here on, the batch stays in flight for _catch_up.
            results = await pipeline.execute()
            for (eid, event), (ok, detail) in zip(batch, results, strict=True):
                if int(ok):
                    continue  # in flight until the log brings it back (_read)
                self._in_flight.pop(eid, None)
                self._send(chat.rejected(event, rejection_reason(event, str(detail))))

    def _with_eid(self, event: ClusterEvent) -> tuple[str, ClusterEvent]:
        """The event's id, and the event with it (a copy committed again keeps its first)."""
        if event.eid is not None:
            return event.eid, event
        eid = f"{self.node}:{next(self._serial)}"
        return eid, replace(event, eid=eid)

    async def _keep_alive(self) -> None:
        assert self._redis is not None
        connection = self._redis
        chat = self._chat_or_fail()
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            await self._beat(connection)
            nodes = sorted({node for node, _ in chat.remote})
            if not nodes:
                continue
            alive = await connection.mget([f"{PREFIX}node:{node}" for node in nodes])
            for node, beat in zip(nodes, alive, strict=True):
                if beat is None:
                    log.info("[CLUSTER] Node %s stopped answering; its sessions have left", node)
                    self._send(chat.node_lost(node))


def _history_line(room: str, entry_id: str, fields: dict[str, str]) -> RelayedLine | None:
    """A line of a room's history stream, or None (logged) for an entry that is not one."""
    try:
        return from_json(RelayedLine, json.loads(fields.get("m", "")), "line")
    except (ValueError, RecursionError) as error:  # not JSON, or not a line (MalformedValue)
        log.warning("[CLUSTER] History entry %s of %s skipped: %s", entry_id, room, error)
        return None
