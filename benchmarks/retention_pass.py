"""What a retention pass costs the event loop: ``python -m benchmarks.retention_pass``.

Two cases, each on a fresh SQLite store in a temporary directory, with the server's default
bounds (10,000 lines a room, 30 days, 1 GiB), search indexing as the server does it, and no
checkpoint thread (so a pass that checkpoints copies all of the log itself):

- **a large history**: ``--rooms`` rooms of 10,000 indexed lines each, then passes that each
  follow five new lines in one room, so each deletes five: the milliseconds of each pass;
- **a flood**: one room taking ``--flood-rate`` lines a second, a pass every 2 s as the server
  runs it, each deleting what came in since the last: milliseconds per pass and microseconds per
  line of appending (with its commits), indexing and retention.

Wall-clock milliseconds, on the thread that would be the event loop's.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from tlschat.server.config import (
    DEFAULT_HISTORY_KEEP_PER_ROOM,
    DEFAULT_HISTORY_MAX_AGE,
    DEFAULT_HISTORY_MAX_BYTES,
)
from tlschat.server.retention import RETENTION_INTERVAL
from tlschat.store import Retention, SQLiteStore, StoredMessage

RETENTION = Retention(
    keep_per_room=DEFAULT_HISTORY_KEEP_PER_ROOM,
    max_age=DEFAULT_HISTORY_MAX_AGE,
    max_bytes=DEFAULT_HISTORY_MAX_BYTES,
)
NOW = time.time()
BATCH = 100  # lines a commit: a pass of the event loop under load


class Writer:
    """Lines for a store, numbered, with a body of the usual few words."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.counter = 0

    def append(self, room: str, count: int) -> None:
        for _ in range(count):
            self.counter += 1
            self.store.append_message(
                StoredMessage(
                    room=room,
                    sender=f"SHA256:{self.counter % 10:043d}",
                    nick="bench",
                    key_der=bytes(44),
                    counter=self.counter,
                    timestamp_ms=int(NOW * 1000),
                    body=f"line {self.counter} of the benchmark, about as long as people type",
                    signature=bytes(64),
                )
            )
            if self.counter % BATCH == 0:
                self.store.commit()
        self.store.commit()

    def index(self) -> None:
        while self.store.index_for_search():
            pass


def large_history(rooms: int, passes: int) -> list[float]:
    with tempfile.TemporaryDirectory() as directory:
        store = SQLiteStore(Path(directory) / "chat.db")
        writer = Writer(store)
        for room in range(rooms):
            writer.append(f"#room{room}", DEFAULT_HISTORY_KEEP_PER_ROOM)
            writer.index()
        store.enforce_retention(RETENTION, NOW)
        spent = []
        for _ in range(passes):
            writer.append("#room0", 5)
            writer.index()
            started = time.perf_counter()
            store.enforce_retention(RETENTION, NOW)
            spent.append(time.perf_counter() - started)
        store.close()
    return spent


def flood(rate: int, passes: int) -> tuple[list[float], float, float, float]:
    with tempfile.TemporaryDirectory() as directory:
        store = SQLiteStore(Path(directory) / "chat.db")
        writer = Writer(store)
        writer.append("#flood", DEFAULT_HISTORY_KEEP_PER_ROOM)
        writer.index()
        store.enforce_retention(RETENTION, NOW)
        per_pass = int(rate * RETENTION_INTERVAL)
        appending = indexing = 0.0
        spent = []
        for _ in range(passes):
            for _ in range(int(RETENTION_INTERVAL)):  # the index timer runs every second
                started = time.perf_counter()
                writer.append("#flood", per_pass // int(RETENTION_INTERVAL))
                appending += time.perf_counter() - started
                started = time.perf_counter()
                writer.index()
                indexing += time.perf_counter() - started
            started = time.perf_counter()
            store.enforce_retention(RETENTION, NOW)
            spent.append(time.perf_counter() - started)
        store.close()
    lines = per_pass * passes
    return spent, appending / lines, indexing / lines, sum(spent) / lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=40, help="rooms of 10,000 lines")
    parser.add_argument("--flood-rate", type=int, default=6500, help="lines a second")
    parser.add_argument("--passes", type=int, default=6)
    args = parser.parse_args()
    spent = large_history(args.rooms, args.passes)
    print(
        f"{args.rooms * DEFAULT_HISTORY_KEEP_PER_ROOM:,} lines stored, a pass deleting 5: "
        f"median {statistics.median(spent) * 1000:.1f} ms, most {max(spent) * 1000:.1f} ms"
    )
    spent, appending, indexing, retention = flood(args.flood_rate, args.passes)
    print(
        f"a flood of {args.flood_rate:,} lines/s: a pass every {RETENTION_INTERVAL:g} s takes "
        f"median {statistics.median(spent) * 1000:.1f} ms, most {max(spent) * 1000:.1f} ms; "
        f"per line: appending {appending * 1e6:.1f} us, indexing {indexing * 1e6:.1f} us, "
        f"retention {retention * 1e6:.1f} us"
    )


if __name__ == "__main__":
    main()
