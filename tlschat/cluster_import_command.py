"""`tlschat cluster-import`: a one-server ``chat.db``'s room history carried into a cluster.

A server alone keeps its history in ``DATA_DIR/chat.db``; the servers of a cluster keep theirs in
Redis and never read ``chat.db`` (a cluster server whose data directory holds one with lines the
cluster lacks says so at start). This copies the newest lines of each room, as their senders
signed them, into the cluster's Redis (``broker/redis_import``): run again, it adds nothing.
Servers load history when they start, so those already running show it after a restart.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

from .local_files import SERVER_KEY_FIX, existing_key

# Redis answering nothing for this long is unreachable.
REDIS_TIMEOUT = 10.0
# Rooms named in the summary line; the others are counted.
ROOMS_SHOWN = 10


def add_cluster_import_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    command = commands.add_parser(
        "cluster-import",
        help="carry a one-server chat.db's history into a cluster's Redis",
        description="Copies the room history of DATA_DIR/chat.db (each room's newest 10000 "
        "lines, signed by their senders, in their order) into the cluster's Redis, and raises "
        "the senders' replay counters to match. Lines the cluster has are not added again. "
        "Run it before starting the cluster's servers, or restart them after: a server loads "
        "history when it starts. Nicks, topics, bans and rooms' settings are not carried over.",
    )
    command.add_argument(
        "--data-dir",
        type=Path,
        default=Path("data"),
        help="the one server's data directory, with chat.db and server_key.pem (data)",
    )
    command.add_argument(
        "--broker",
        metavar="URL",
        required=True,
        help="the cluster's Redis, as the servers' --broker: redis://127.0.0.1:6380/0",
    )


def _rooms(counts: dict[str, int]) -> str:
    shown = [f"{room} {count}" for room, count in list(counts.items())[:ROOMS_SHOWN]]
    if len(counts) > ROOMS_SHOWN:
        shown.append(f"and {len(counts) - ROOMS_SHOWN} more rooms")
    return ", ".join(shown)


def run_cluster_import(args: argparse.Namespace) -> int:
    import redis
    from redis.exceptions import RedisError

    from .broker.redis_commit import HISTORY_CAP
    from .broker.redis_import import ImportFailed, counted, import_history, shown_url
    from .server.app import DATABASE_FILE
    from .server.keys import KEY_FILE
    from .store.sqlite_history import read_history

    data_dir: Path = args.data_dir
    database = data_dir / DATABASE_FILE
    url = shown_url(args.broker)
    if not database.is_file():
        print(
            f"[!] No {DATABASE_FILE} in {data_dir}: nothing to carry over. Give the --data-dir "
            "the server ran alone with",
            file=sys.stderr,
        )
        return 1
    missing = (
        f"No server key in {data_dir}: the lines of {database} are signed for the network of "
        "the key beside it; give the --data-dir the server ran alone with"
    )
    network = existing_key(data_dir / KEY_FILE, missing, SERVER_KEY_FIX).fingerprint
    try:
        history = read_history(database, HISTORY_CAP)
    except sqlite3.Error as error:
        print(f"[!] Cannot read {database} ({error}): nothing was carried over", file=sys.stderr)
        return 1
    total = sum(len(lines) for lines in history.values())
    try:
        with redis.Redis.from_url(
            args.broker,
            decode_responses=True,
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
        ) as connection:
            added = import_history(connection, history, network)
    except (RedisError, OSError, ValueError) as error:
        print(f"[!] Cannot use the cluster's Redis at {url}: {error}", file=sys.stderr)
        return 1
    except ImportFailed as error:
        print(f"[!] Not all of {database} was carried over: {error}", file=sys.stderr)
        return 1
    if not added:
        print(
            f"The cluster at {url} has every history line of {database} already "
            f"({counted(total, 'line', 'lines')} in {counted(len(history), 'room', 'rooms')}): "
            "nothing to carry over"
        )
        return 0
    print(
        f"Carried {counted(sum(added.values()), 'history line', 'history lines')} of {database} "
        f"into the cluster at {url} "
        f"({_rooms(added)}); servers already running show them once restarted"
    )
    return 0
