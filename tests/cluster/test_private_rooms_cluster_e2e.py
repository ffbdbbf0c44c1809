"""End to end: private rooms and room roles (issue 15) on a cluster of real server processes
sharing one Redis. alice (through server 0) creates #team, makes it invite-only and invites bob;
bob joins through server 1 and reads alice's encrypted lines; carol, through server 2, can neither
join it nor see anything of it; alice kicks bob from #team; and a server that joins the cluster
afterwards knows all of it, from Redis.
"""

from __future__ import annotations

import time
from pathlib import Path

from tlschat.protocol import IdentityKey

from ..e2e.harness import WAIT, Client, Harness
from ..e2e.test_chat_features_e2e import error, notice, quit_cleanly
from ..e2e.test_e2ee_e2e import joined, locked
from ..e2e.test_private_rooms_e2e import INVITE_ONLY, sees_nothing_of_team
from .harness import JOINED, POLL, Cluster, StartCluster
from .test_e2ee_cluster_e2e import one_time_keys


def cluster_join(harness: Harness, cluster: Cluster, nick: str, port: int, home: Path) -> Client:
    """A ``--plain`` client that has joined, once the cluster holds one-time keys for its device
    (a peer claiming before they are committed would get none)."""
    client = joined(harness, nick, port, home=home)
    fingerprint = IdentityKey.load(home / "identity.pem").fingerprint
    deadline = time.monotonic() + WAIT
    with cluster.redis.client() as db:
        while not (counts := one_time_keys(db, fingerprint)) or 0 in counts.values():
            assert time.monotonic() < deadline, f"no one-time keys of {nick}: {counts}"
            time.sleep(POLL)
    return client


def test_a_private_room_across_three_servers_and_a_fourth_that_joins_later(
    harness: Harness, make_cluster: StartCluster
) -> None:
    homes = {nick: harness.home(nick) for nick in ("alice", "bob", "carol")}
    cluster = make_cluster(3)
    alice, bob, carol = (
        cluster_join(harness, cluster, nick, port, homes[nick])
        for nick, port in zip(homes, cluster.ports, strict=True)
    )

    alice.send("/join #team")
    alice.wait_for_line("You are alice in #team (nobody else is here)")
    alice.send("/private #team")
    alice.wait_for_line(notice("#team is invite-only now, and end-to-end encrypted for good"))
    alice.send("/invite bob #team")
    bob.wait_for_line(notice("alice invited you to #team: /join #team"))
    bob.send("/join #team")
    bob.wait_for_line("You are bob in #team with alice")
    alice.wait_for_line(lambda line: "bob joined #team" in line)
    alice.send("across the cluster 3e8f")
    bob.wait_for_line(locked("alice", "across the cluster 3e8f"))
    sees_nothing_of_team(carol, "across the cluster 3e8f")

    start = bob.mark()
    alice.send("/rkick bob #team")
    bob.wait_for_line(notice("you were kicked from #team by alice: no reason given"), start=start)
    bob.send("/join #team")
    bob.wait_for_line(error(INVITE_ONLY), start=start)

    # A server that joins now loads #team's owner, rule and members from Redis.
    late = harness.server(
        data_dir=cluster.data_dir, name="server3", extra=("--broker", cluster.redis.url)
    )
    late.wait_for_line(JOINED)
    latecomer = joined(harness, "carol", late.port, home=homes["carol"])
    quit_cleanly(carol)
    sees_nothing_of_team(latecomer, "across the cluster 3e8f")
    alice.send("/names #team")
    alice.wait_for_line(
        lambda line: line.endswith(f"{harness.key_fingerprint(homes['alice'])} (owner)")
    )
    quit_cleanly(alice, bob, latecomer)
