"""At a cluster server's start: a one-server ``chat.db`` left in its data directory, with history
the cluster lacks, is said in one line, with the command that carries it over.

A cluster keeps its history in Redis and never reads ``chat.db``: without this line, history
written while the server ran alone would silently be missing from the cluster.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import sqlite3
from pathlib import Path

from redis.exceptions import RedisError

log = logging.getLogger("tlschat.cluster")

# The check reads the database and each room's stream; a slow Redis does not hold up the start
# for longer than this (the broker says itself when Redis cannot be reached).
CHECK_TIMEOUT = 5.0


def _missing(database: Path, url: str) -> dict[str, int]:
    import redis

    from ..broker.redis_commit import HISTORY_CAP
    from ..broker.redis_import import missing_lines
    from ..store.sqlite_history import read_history

    history = read_history(database, HISTORY_CAP)
    if not history:
        return {}
    with redis.Redis.from_url(
        url, decode_responses=True, socket_timeout=CHECK_TIMEOUT, socket_connect_timeout=1.0
    ) as connection:
        return missing_lines(connection, history)


async def warn_of_standalone_history(database: Path, url: str) -> None:
    """Log one warning if ``database`` holds room lines the cluster at ``url`` lacks."""
    if not database.is_file():
        return
    from ..broker.redis_import import counted, shown_url

    try:
        missing = await asyncio.wait_for(
            asyncio.to_thread(_missing, database, url), CHECK_TIMEOUT * 2
        )
    except sqlite3.Error as error:
        log.warning(
            "[CLUSTER] %s cannot be read (%s): if it holds history, the cluster does not have it",
            database,
            error,
        )
        return
    except (RedisError, OSError, TimeoutError, ValueError) as error:
        log.debug("[CLUSTER] %s not compared with the cluster's history: %s", database, error)
        return
    if not missing:
        return
    log.warning(
        "[CLUSTER] %s holds %s (%s) that the cluster does not show; carry them over with: "
        "tlschat cluster-import --data-dir %s --broker %s (then restart the servers)",
        database,
        counted(sum(missing.values()), "history line", "history lines"),
        counted(len(missing), "room", "rooms"),
        shlex.quote(str(database.parent)),
        shlex.quote(shown_url(url)),
    )
