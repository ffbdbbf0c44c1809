"""`tlschat invite`: an invitation made on the server's host, without an operator's client.

One server alone keeps its chat state in ``DATA_DIR/chat.db``: the invitation is written there,
also while the server runs (SQLite in WAL mode lets another process write; the server reads
invitations from the database on every hello that brings one). A cluster keeps it in Redis: with
``--broker`` the invitation is committed to the cluster's log by the servers' own commit script,
so every server's replica has it at once. The invitation string is printed alone on stdout (for
``$(tlschat invite …)``); what it is and how long it lasts go to stderr. The secret is written
nowhere else.
"""

from __future__ import annotations

import argparse
import getpass
import shlex
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .chat.invitation import (
    DEFAULT_LIFETIME,
    MAKE_ATTEMPTS,
    MAX_LIFETIME,
    Invitation,
    InvitationError,
    format_address,
    invitation_id,
    new_secret,
    parse_address,
    secret_digest,
)
from .chat.server.durations import describe_duration, parse_duration
from .local_files import SERVER_KEY_FIX, existing_key
from .store.invitations import StoredInvitation

DEFAULT_HOST = "127.0.0.1"


DEFAULT_PORT = 8443


# Keeps an invitation where the servers find it: where it is kept, or "" if its id is taken.
Keeper = Callable[[StoredInvitation], str]


class InviteError(Exception):
    """Why no invitation was made: one line that says what to do."""


@dataclass(frozen=True)
class Made:
    invitation: Invitation
    id: str
    lifetime: float
    where: str


def add_invite_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    invite = commands.add_parser(
        "invite",
        help="make a one-time invitation for a new user (on the server's host)",
        description="Prints an invitation that lets one new key join once: "
        "tlschat client --invite INVITATION. Run it where the server's data directory is.",
    )
    invite.add_argument(
        "--data-dir", type=Path, default=Path("data"), help="the server's data directory (data)"
    )
    invite.add_argument("--expires", default="7d", help="how long it lasts: 90m, 12h, 7d (7d)")
    invite.add_argument(
        "--host", default=DEFAULT_HOST, help=f"the server's name as users reach it ({DEFAULT_HOST})"
    )
    invite.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"the server's port ({DEFAULT_PORT})"
    )
    invite.add_argument(
        "--broker",
        metavar="URL",
        help="a cluster's Redis (as the servers' --broker): the invitation is made there",
    )


def run_invite(args: argparse.Namespace) -> int:
    try:
        made = make_invitation(args, time.time())
    except InviteError as error:
        print(f"[!] {error}", file=sys.stderr)
        return 2
    print(
        f"Invitation {made.id} ({made.where}): one new key may join with it, once, within "
        f"{describe_duration(made.lifetime)}. Give it to one person; they run "
        "tlschat client --invite INVITATION",
        file=sys.stderr,
    )
    print(made.invitation)
    return 0


def make_invitation(args: argparse.Namespace, now: float) -> Made:
    """Make and store the invitation ``args`` ask for at ``now``."""
    lifetime = parse_duration(args.expires)
    if lifetime is None or not 0 < lifetime <= MAX_LIFETIME:
        raise InviteError(
            f"--expires {args.expires!r}: a duration such as 90m, 12h or 7d, at most "
            f"{describe_duration(MAX_LIFETIME)} (default {describe_duration(DEFAULT_LIFETIME)})"
        )
    try:
        host, port = parse_address(format_address(args.host, args.port))
    except InvitationError as error:
        raise InviteError(f"--host and --port: {error}") from None
    from .server.keys import KEY_FILE

    missing = (
        f"No server key in {args.data_dir}: give the server's --data-dir, or start the server "
        f"first (tlschat server --data-dir {shlex.quote(str(args.data_dir))})"
    )
    fingerprint = existing_key(args.data_dir / KEY_FILE, missing, SERVER_KEY_FIX).fingerprint
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = ""
    made_by = f"tlschat invite ({user})" if user else "tlschat invite"
    keep = _keep_in_redis(args.broker) if args.broker else _keep_in_database(args.data_dir)
    for _ in range(MAKE_ATTEMPTS):
        secret = new_secret()
        digest = secret_digest(secret)
        stored = StoredInvitation(invitation_id(digest), digest, made_by, now, now + lifetime)
        where = keep(stored)
        if where:
            return Made(Invitation(host, port, fingerprint, secret), stored.id, lifetime, where)
    raise InviteError("no free invitation id; try again")


def _keep_in_database(data_dir: Path) -> Keeper:
    from .server.app import DATABASE_FILE, open_database

    path = data_dir / DATABASE_FILE
    if not path.exists():
        raise InviteError(
            f"No {DATABASE_FILE} in {data_dir}: a server keeps one there once it has started. "
            "The servers of a cluster keep their chat in Redis: give --broker redis://… (as "
            "theirs), or make the invitation with /invitation in a client"
        )

    def keep(invitation: StoredInvitation) -> str:
        store = open_database(path)
        try:
            return f"kept in {path}" if store.add_invitation(invitation) else ""
        except sqlite3.Error as error:  # e.g. the server held it locked past SQLite's timeout
            raise InviteError(f"Cannot write the invitation into {path}: {error}") from None
        finally:
            store.close()

    return keep


def _keep_in_redis(url: str) -> Keeper:
    import redis
    from redis.exceptions import RedisError

    from .broker.redis_commit import COMMIT_SCRIPT, commit_arguments, rejection_reason
    from .chat.server.cluster_events import InvitationMade

    def keep(invitation: StoredInvitation) -> str:
        event = InvitationMade(
            node="tlschat-invite",
            id=invitation.id,
            digest=invitation.digest,
            made_by=invitation.made_by,
            made_at=invitation.made_at,
            expires_at=invitation.expires_at,
        )
        try:
            with redis.Redis.from_url(url, decode_responses=True) as connection:
                ok, detail = connection.register_script(COMMIT_SCRIPT)(args=commit_arguments(event))
        except (RedisError, OSError, ValueError) as error:
            raise InviteError(f"Cannot use the cluster's Redis at {url}: {error}") from None
        if int(ok):
            return f"committed to the cluster at {url}"
        if detail == "exists":
            return ""
        raise InviteError(rejection_reason(event, str(detail)))

    return keep
