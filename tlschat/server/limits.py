"""Connection admission: address blocks, handshake buckets per block, the open-file limit, and
the periodic per-block summary of refused and failed connections (one line per block, not one
per connection)."""

from __future__ import annotations

import collections
import dataclasses
import functools
import ipaddress
import logging

from ..chat.limits import TokenBucket
from .config import ServerSettings

log = logging.getLogger("tlschat.server")

# File descriptors kept free beside the connections: the listening sockets, the database and its
# journal, logs, Redis, the event loop's own, and what the interpreter and its libraries open.
NOFILE_RESERVE = 64
# How often the summaries are logged and idle blocks forgotten.
LIMIT_LOG_INTERVAL = 10.0
# Bounds on what is kept per block: past them the least recently used bucket is dropped (that
# block starts again with a full burst), and further blocks are summed up as one line.
MAX_TRACKED_BLOCKS = 65536
MAX_SUMMARY_BLOCKS = 1000
OTHER_BLOCKS = "other blocks"

# What a summary counts, besides refusals (whose reasons are counted as they are).
FAILED_HANDSHAKE = "failed handshake"
NO_HELLO = "no hello"
# A connection whose peer hung up while it waited for its handshake's turn (handshake_queue.py).
LEFT_WAITING = "left while waiting"


def failed_handshake(reason: str) -> str:
    """What a summary counts for a handshake that ended with ``reason`` (e.g. an alert)."""
    return f"{FAILED_HANDSHAKE} ({reason})"


# ipaddress takes about 40 us to answer for one address: the answers for the addresses seen
# most recently are kept (a reconnecting client comes from the address it left).
CACHED_BLOCKS = 4096


@functools.lru_cache(maxsize=CACHED_BLOCKS)
def address_block(address: str, prefix_v4: int, prefix_v6: int) -> str:
    """The network an address belongs to, e.g. ``127.0.0.0/24`` or ``2001:db8::/64``.

    An IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, a dual-stack listener's view of an IPv4
    peer) is in its IPv4 block. Anything that is not an IP address is its own block.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = prefix_v4 if isinstance(ip, ipaddress.IPv4Address) else prefix_v6
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


class HandshakeBuckets:
    """A token bucket of new handshakes per address block, bounded in number."""

    def __init__(self, rate: float, burst: int, max_blocks: int = MAX_TRACKED_BLOCKS) -> None:
        self.rate = rate
        self.burst = burst
        self.max_blocks = max_blocks
        self.buckets: dict[str, TokenBucket] = {}

    def admit(self, block: str, now: float) -> bool:
        """Take a token of ``block``'s bucket; False when there is none."""
        bucket = self.buckets.pop(block, None)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst)
            while len(self.buckets) >= self.max_blocks:
                del self.buckets[next(iter(self.buckets))]  # the least recently used
        self.buckets[block] = bucket  # the most recently used last
        return bucket.take(now) == 0.0

    def resize(self, rate: float, burst: int) -> None:
        """New settings (a reloaded configuration), for new blocks and the blocks seen."""
        self.rate, self.burst = rate, burst
        for bucket in self.buckets.values():
            bucket.resize(rate, burst)

    def evict_idle(self, now: float) -> None:
        """Forget the blocks whose bucket has filled up again: they are as if never seen."""
        for block, bucket in list(self.buckets.items()):
            if bucket.is_full(now):
                del self.buckets[block]


class LimitLog:
    """Counts refused and failed connections per block; ``flush`` logs one line per block."""

    def __init__(self, max_blocks: int = MAX_SUMMARY_BLOCKS) -> None:
        self.max_blocks = max_blocks
        self.counts: dict[str, collections.Counter[str]] = {}
        self.since: float | None = None

    def count(self, block: str, what: str, now: float) -> None:
        if self.since is None:
            self.since = now
        counts = self.counts.get(block)
        if counts is None:
            if len(self.counts) >= self.max_blocks:
                block = OTHER_BLOCKS
            counts = self.counts.setdefault(block, collections.Counter())
        counts[what] += 1

    def lines(self, now: float) -> list[str]:
        """The summary lines of what was counted since the last call, and forget it."""
        if not self.counts or self.since is None:
            return []
        seconds = max(1, round(now - self.since))
        lines = [
            f"[LIMIT] {block}: {describe(counts)} in the last {seconds} s"
            for block, counts in self.counts.items()
        ]
        self.counts, self.since = {}, None
        return lines

    def flush(self, now: float) -> None:
        for line in self.lines(now):
            log.info("%s", line)


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def describe(counts: collections.Counter[str]) -> str:
    parts = []
    for what, count in counts.items():
        if what.startswith(FAILED_HANDSHAKE):
            reason = what.removeprefix(FAILED_HANDSHAKE)
            parts.append(_plural(count, "failed handshake", "failed handshakes") + reason)
        elif what == NO_HELLO:
            parts.append(_plural(count, "session", "sessions") + " closed without hello")
        elif what == LEFT_WAITING:
            parts.append(
                _plural(count, "connection", "connections") + " closed while waiting to handshake"
            )
        else:
            parts.append(_plural(count, "connection", "connections") + f" refused ({what})")
    return ", ".join(parts)


def fit_max_connections(configured: int, soft_limit: int) -> int:
    """The most connections that fit under an open-file limit, ``NOFILE_RESERVE`` kept free."""
    return max(1, min(configured, soft_limit - NOFILE_RESERVE))


def fit_to_open_file_limit(settings: ServerSettings) -> ServerSettings:
    """``settings`` with max_connections under the open-file limit (raised first, if it may
    be), and a warning when that lowered it."""
    soft, _ = open_file_limit()
    configured = settings.max_connections
    fitted = fit_max_connections(configured, soft)
    if fitted == configured:
        return settings
    log.warning(
        "[LIMIT] max_connections lowered from %d to %d: the open-file limit is %d and "
        "%d files are kept for the listening socket, the database, logs and the broker",
        configured,
        fitted,
        soft,
        NOFILE_RESERVE,
    )
    return dataclasses.replace(settings, max_connections=fitted)


def open_file_limit() -> tuple[int, int]:
    """The soft open-file limit, raised to the hard limit if it may be; (soft, hard).

    An unlimited value is returned as a very large number.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError) as error:
            log.debug("[LIMIT] could not raise the open-file limit to %s: %s", hard, error)
        else:
            log.info("[LIMIT] Open-file limit raised from %d to %s", soft, _show(hard))
            soft = hard
    infinity = resource.RLIM_INFINITY
    return (
        1 << 62 if soft == infinity else soft,
        1 << 62 if hard == infinity else hard,
    )


def _show(limit: int) -> str:
    import resource

    return "unlimited" if limit == resource.RLIM_INFINITY else str(limit)
