"""End to end: several tlschat servers sharing one Redis (``--broker``), real ``--plain``
clients spread over them. Users on different servers chat exactly as on one server; a server's
death or Redis's restart neither loses nor duplicates a message (issue 8).

Server i is ``cluster.servers[i]``. As in tests/e2e, every wait is for a line a process prints,
and absence is checked only after a barrier that the same client received later.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

from tlschat.broker.redis import PREFIX

from ..e2e.harness import CLOCK, Client, Harness
from ..e2e.test_chat_features_e2e import (
    barrier,
    error,
    history_lines,
    mute_then_unmute,
    notice,
    quit_cleanly,
    refused,
    said,
    whispered,
)
from .harness import Cluster, StartCluster, cluster_client

DEGRADED = "chat degraded: the cluster's store is unreachable; messages are not being delivered"
NOT_SENT_DEGRADED = "message not sent: chat degraded (the cluster's store is unreachable)"
FALLBACK_NICK = re.compile(r"^user-[a-z0-9]{6}$")
MEMBER = re.compile(rf"^{CLOCK} \*\*\*   (\S+) (SHA256:\S+)$")


def one_user_per_server(
    harness: Harness, cluster: Cluster, homes: dict[str, Path] | None = None
) -> tuple[Client, Client, Client]:
    """alice on server 0, bob on server 1, carol on server 2 (with ``homes`` where given), once
    alice and bob have seen carol join."""
    homes = homes or {}
    alice, bob, carol = (
        harness.joined_client(nick, port, home=homes.get(nick))
        for nick, port in zip(("alice", "bob", "carol"), cluster.ports, strict=False)
    )
    for member in (alice, bob):
        member.wait_for_line(notice("carol joined #general"))
    return alice, bob, carol


def count_lines(client: Client, text: str) -> int:
    """How many of ``client``'s stdout lines contain ``text``."""
    return sum(text in line for line in client.snapshot())


def room_messages(client: Client, nicks: tuple[str, ...]) -> list[str]:
    """The texts of the room messages ``client`` has shown from ``nicks``, in order."""
    shown = []
    for line in client.snapshot():
        found = re.match(rf"^{CLOCK} ✓ <(\S+)> (.*)$", line)
        if found is not None and found.group(1) in nicks:
            shown.append(found.group(2))
    return shown


# ----- one cluster, one identity -----


def test_every_server_joins_the_cluster_with_one_identity(
    harness: Harness, cluster: Cluster
) -> None:
    fingerprint = harness.fingerprint(cluster.data_dir)
    assert [server.fingerprint for server in cluster.servers] == [fingerprint] * 3
    assert len(set(cluster.node_ids)) == 3, cluster.node_ids
    assert len(set(cluster.ports)) == 3, cluster.ports
    # The first server made the key; the others loaded it.
    assert cluster.servers[0].find("[KEY] Created server key"), cluster.servers[0].describe()
    for server in cluster.servers[1:]:
        assert server.find("[KEY] Loaded server key"), server.describe()


# ----- chatting across servers -----


def test_room_messages_presence_rooms_names_and_topics_span_servers(
    harness: Harness, cluster: Cluster
) -> None:
    homes = {nick: harness.home(nick) for nick in ("alice", "bob", "carol")}
    fingerprints = {nick: harness.key_fingerprint(home) for nick, home in homes.items()}
    alice = harness.joined_client("alice", cluster.ports[0], home=homes["alice"])
    bob = harness.joined_client("bob", cluster.ports[1], home=homes["bob"])
    alice.wait_for_line(notice("bob joined #general"))
    carol = harness.joined_client("carol", cluster.ports[2], home=homes["carol"])
    welcome = carol.wait_for_line("You are carol in #general with ")
    assert welcome.endswith(("with alice, bob", "with bob, alice")), carol.describe()
    for member in (alice, bob):
        member.wait_for_line(notice("carol joined #general"))

    # A room message from server 0 reaches servers 1 and 2, signed and verified end to end.
    alice.send("hello from server zero 1a1a")
    for listener in (bob, carol):
        listener.wait_for_line(said("alice", "hello from server zero 1a1a"))
    carol.send("and back from server two 2b2b")
    for listener in (alice, bob):
        listener.wait_for_line(said("carol", "and back from server two 2b2b"))

    # /names on server 2 lists the members connected through every server.
    start = carol.mark()
    carol.send("/names #general")
    carol.wait_for_line(notice("Members of #general:"), start=start)
    members = carol.wait_for_lines(MEMBER, 3, start=start)
    listed = {found.group(1): found.group(2) for found in map(MEMBER.match, members) if found}
    assert listed == fingerprints, carol.describe()

    alice.send("/topic #general cluster-wide topic")
    for member in (alice, bob, carol):
        member.wait_for_line(notice("alice set the topic of #general: cluster-wide topic"))

    # A second room with members on servers 0 and 1; server 2's carol is not in it.
    alice.send("/join #rust")
    alice.wait_for_line(notice("You are alice in #rust (nobody else is here)"))
    bob.send("/join #rust")
    bob.wait_for_line(notice("You are bob in #rust with alice"))
    alice.wait_for_line(notice("bob joined #rust"))
    alice.send("borrow checker tips 3c3c")
    bob.wait_for_line(said("alice", "borrow checker tips 3c3c"))
    bob.send("/topic #rust Rust talk")
    for member in (alice, bob):
        member.wait_for_line(notice("bob set the topic of #rust: Rust talk"))

    start = carol.mark()
    carol.send("/rooms")
    carol.wait_for_line(notice("Rooms:"), start=start)
    carol.wait_for_line(notice("  #general (3 members): cluster-wide topic"), start=start)
    carol.wait_for_line(notice("  #rust (2 members): Rust talk"), start=start)
    for private_to_rust in ("borrow checker", "set the topic of #rust", "joined #rust"):
        assert carol.find(private_to_rust) is None, carol.describe()

    # Leaving through one server is seen through the others (lines of a room other than the
    # current one name it: hence substrings).
    bob.send("/part #rust")
    alice.wait_for_line("*** bob left #rust")
    quit_cleanly(carol)
    for member in (alice, bob):
        member.wait_for_line("carol left #general (quit)")
    quit_cleanly(alice, bob)


def test_private_messages_whois_and_away_span_servers(harness: Harness, cluster: Cluster) -> None:
    bob_home = harness.home("bob")
    bob_fp = harness.key_fingerprint(bob_home)
    alice, bob, carol = one_user_per_server(harness, cluster, {"bob": bob_home})

    alice.send("/msg bob just between us 4d4d")
    bob.wait_for_line(whispered("alice", "just between us 4d4d"))
    bob.send("/reply got it 5e5e")
    alice.wait_for_line(whispered("bob", "got it 5e5e"))
    carol.send("/msg alice from the third server 6f6f")
    alice.wait_for_line(whispered("carol", "from the third server 6f6f"))

    bob.send("/away at lunch")
    bob.wait_for_line(notice("You are marked away: at lunch"))
    # Carol's server learns of it from the cluster's log, after bob's server: a line bob says
    # next comes after it in the log, so once carol sees that line, her server knows.
    bob.send("back soon 9c9c")
    carol.wait_for_line(said("bob", "back soon 9c9c"))
    start = carol.mark()
    carol.send("/whois bob")
    carol.wait_for_line(notice(f"bob is {bob_fp}"), start=start)
    carol.wait_for_line(notice("  rooms: #general"), start=start)
    carol.wait_for_line(notice("  away: at lunch"), start=start)
    start = carol.mark()
    carol.send("/msg bob lunch where 7a7a")
    bob.wait_for_line(whispered("carol", "lunch where 7a7a"))
    carol.wait_for_line(notice("bob is away: at lunch"), start=start)

    # The barrier: a room message after the private ones; nobody else saw those.
    alice.send("public again 8b8b")
    for listener in (bob, carol):
        listener.wait_for_line(said("alice", "public again 8b8b"))
    for secret in ("between us", "got it"):
        assert carol.find(secret) is None, carol.describe()
    assert bob.find("third server") is None, bob.describe()
    assert alice.find("lunch where") is None, alice.describe()
    quit_cleanly(alice, bob, carol)


def test_a_nick_belongs_to_its_key_across_the_cluster(harness: Harness, cluster: Cluster) -> None:
    alice_home = harness.home("alice")
    alice = harness.joined_client("alice", cluster.ports[0], home=alice_home)
    assert alice.nick == "alice"

    # Online through server 0: another key asking for it through server 1 gets a fallback.
    mallory = harness.client("alice", cluster.ports[1], home=harness.home("mallory"))
    nick = mallory.wait_joined()
    assert FALLBACK_NICK.match(nick), mallory.describe()
    mallory.wait_for_line(notice(f"'alice' belongs to another key; you are {nick}"))
    quit_cleanly(alice)

    # Offline, registered through server 0: still refused through server 2, also by /nick.
    trudy = harness.client("alice", cluster.ports[2], home=harness.home("trudy"))
    assert FALLBACK_NICK.match(trudy.wait_joined()), trudy.describe()
    start = trudy.mark()
    trudy.send("/nick ALICE")
    trudy.wait_for_line(error("'ALICE' belongs to another key"), start=start)

    # The owner gets it through any server; a nick taken through server 2 is refused on 1.
    alice = harness.joined_client("alice", cluster.ports[1], home=alice_home)
    assert alice.nick == "alice" and alice.find("belongs to another key") is None
    trudy.send("/nick trudy")
    trudy.wait_for_line(notice("You are now known as trudy"))
    start = mallory.mark()
    mallory.send("/nick trudy")
    mallory.wait_for_line(error("'trudy' belongs to another key"), start=start)
    quit_cleanly(alice, mallory, trudy)


def test_a_fallback_taken_meanwhile_through_another_server_is_claimed_again(
    harness: Harness, make_cluster: StartCluster
) -> None:
    """Issue 12, point 2: the fallback a server offers is claimed in Redis like any nick; when
    another key took it first (a claim in Redis that this server's replica has not applied yet),
    the server offers the next one instead of letting two keys share it."""
    cluster = make_cluster(2)
    squatter = harness.joined_client("alice", cluster.ports[0], home=harness.home("x"))
    home = harness.home("alice")
    fingerprint = harness.key_fingerprint(home)
    letters = "".join(c for c in fingerprint.removeprefix("SHA256:") if c.isalnum()).lower()
    short, longer = f"user-{letters[:6]}", f"user-{letters[:7]}"
    # What the commit script writes for another key's claim of the short one, straight into
    # Redis: the servers load it only when they (re)join, so server 1 still thinks it is free.
    other = "SHA256:" + "0" * 43
    with cluster.redis.client() as db:
        db.hset(f"{PREFIX}nick_owner", short, other)
        db.hset(f"{PREFIX}nick_folded", other, short)
        db.hset(f"{PREFIX}nick", other, short)

    alice = harness.client("alice", cluster.ports[1], home=home)
    assert alice.wait_joined() == longer, alice.describe()
    alice.wait_for_line(notice(f"You are now known as {longer}"))
    alice.wait_for_line(
        notice(f"'{short}' was just taken by another key on another server; you are {longer}")
    )
    squatter.wait_for_line(notice(f"{longer} joined #general"))
    alice.send("the real alice 8b8b")
    squatter.wait_for_line(said(longer, "the real alice 8b8b"))
    barrier(squatter)
    # The squatter never saw her under the nick the other key owns, nor a key-changed warning.
    assert squatter.find(re.compile(rf"{re.escape(short)}(?![a-z0-9])")) is None
    assert squatter.find("WARNING") is None, squatter.describe()
    with cluster.redis.client() as db:
        assert db.hget(f"{PREFIX}nick_owner", longer) == fingerprint.encode()
        assert db.hget(f"{PREFIX}nick_owner", short) == other.encode()
    quit_cleanly(squatter, alice)


def test_actions_nick_changes_away_and_back_are_seen_across_servers(
    harness: Harness, cluster: Cluster
) -> None:
    alice, bob, carol = one_user_per_server(harness, cluster)

    alice.send("/me waves from server zero")
    for listener in (bob, carol):
        listener.wait_for_line(re.compile(rf"^{CLOCK} ✓ \* alice waves from server zero$"))

    bob.send("/nick robert")
    bob.wait_for_line(notice("You are now known as robert"))
    for listener in (alice, carol):
        listener.wait_for_line(notice("bob is now known as robert"))
    start = carol.mark()
    carol.send("/names")
    carol.wait_for_line(notice("Members of #general:"), start=start)
    carol.wait_for_line(re.compile(rf"^{CLOCK} \*\*\*   robert SHA256:\S+$"), start=start)

    alice.send("/away brb")
    alice.wait_for_line(notice("You are marked away: brb"))
    alice.send("/back")
    alice.wait_for_line(notice("You are back"))
    start = carol.mark()
    carol.send("/whois alice")
    carol.wait_for_line(notice("  rooms: #general"), start=start)
    barrier(carol)
    assert carol.find("away: brb", start=start) is None, carol.describe()
    robert = bob
    robert.send("signed by robert 1f1f")
    for listener in (alice, carol):
        listener.wait_for_line(said("robert", "signed by robert 1f1f"))
    quit_cleanly(alice, robert, carol)


# ----- operators act across servers -----


def test_operator_on_one_server_kicks_bans_and_mutes_users_on_others(
    harness: Harness, make_cluster: StartCluster
) -> None:
    alice_home, bob_home = harness.home("alice"), harness.home("bob")
    alice_fp, bob_fp = harness.key_fingerprint(alice_home), harness.key_fingerprint(bob_home)
    cluster = make_cluster(3, extra=("--operator", alice_fp))
    homes = {"alice": alice_home, "bob": bob_home}
    alice, bob, carol = one_user_per_server(harness, cluster, homes)
    assert alice.find(notice("Welcome to tlschat, alice (operator)")), alice.describe()

    alice.send("/kick bob too loud")
    refused(bob, "kicked by alice: too loud")
    alice.wait_for_line(notice("kicked bob: too loud"))
    carol.wait_for_line(notice("bob left #general (kicked by alice: too loud)"))

    # A ban made through server 0 holds on every server.
    bob = harness.joined_client("bob", cluster.ports[1], home=bob_home)
    alice.wait_for_line(notice("bob joined #general"))
    alice.send("/ban bob 1h spam")
    refused(bob, "banned for 1h by alice: spam")
    alice.wait_for_line(notice(f"banned bob ({bob_fp}) for 1h"))
    for port in (cluster.ports[1], cluster.ports[2]):
        again = harness.client("bob", port, home=bob_home)
        refused(again, "you are banned for ", ": spam")
    alice.send("/unban bob")
    alice.wait_for_line(notice(f"unbanned bob ({bob_fp})"))
    bob = harness.joined_client("bob", cluster.ports[2], home=bob_home)
    alice.wait_for_line(notice("bob joined #general"))

    mute_then_unmute(alice, carol, bob)

    # An operator made through server 0 is one on server 2 too, until /deop through server 1.
    alice.send("/op carol")
    alice.wait_for_line(notice("carol is now an operator"))
    carol.wait_for_line(notice("alice made you an operator"))
    carol.send("/mute bob 10m")
    carol.wait_for_line(notice("muted bob for 10m"))
    bob.wait_for_line(notice("you were muted for 10m by carol"))
    carol.send("/unmute bob")
    carol.wait_for_line(notice("unmuted bob"))
    alice.send("/deop carol")
    alice.wait_for_line(notice("carol is no longer an operator"))
    start = carol.mark()
    carol.send("/mute bob")
    carol.wait_for_line(error("/mute is for operators"), start=start)
    quit_cleanly(alice, bob, carol, undelivered=(carol,))


# ----- history and order -----


def test_history_written_through_one_server_is_replayed_through_another_in_one_order(
    harness: Harness, cluster: Cluster
) -> None:
    alice = harness.joined_client("alice", cluster.ports[0])
    bob = harness.joined_client("bob", cluster.ports[1])
    carol = harness.joined_client("carol", cluster.ports[2])
    erin = harness.joined_client("erin", cluster.ports[0])
    for member in (alice, bob, carol):
        member.wait_for_line(notice("erin joined #general"))

    # Two senders on two servers at once: each listener sees all ten, in the same order.
    alice_texts = [f"alice says {n} {n}a{n}a" for n in range(5)]
    bob_texts = [f"bob says {n} {n}b{n}b" for n in range(5)]
    alice.send("\n".join(alice_texts))
    bob.send("\n".join(bob_texts))
    for listener in (carol, erin):
        for nick, texts in (("alice", alice_texts), ("bob", bob_texts)):
            for text in texts:
                listener.wait_for_line(said(nick, text))
    order = room_messages(carol, ("alice", "bob"))
    assert sorted(order) == sorted(alice_texts + bob_texts), carol.describe()
    assert room_messages(erin, ("alice", "bob")) == order, (carol.describe(), erin.describe())
    # Each sender's own messages keep the order they were sent in.
    assert [text for text in order if text in alice_texts] == alice_texts
    assert [text for text in order if text in bob_texts] == bob_texts

    # A newcomer on server 2 gets that history, in that order; so does one on server 1.
    for index, nick in ((2, "dave"), (1, "frank")):
        newcomer = harness.joined_client(nick, cluster.ports[index])
        history_lines(newcomer, "#general", order)
        quit_cleanly(newcomer)
    quit_cleanly(alice, bob, carol, erin)


# ----- faults -----


def test_client_fails_over_to_the_next_server_and_sees_each_message_once(
    harness: Harness, cluster: Cluster
) -> None:
    server1, server2 = cluster.servers[1], cluster.servers[2]
    alice = harness.joined_client("alice", cluster.ports[0])
    bob = harness.joined_client("bob", cluster.ports[2])
    carol_home = harness.home("carol")
    carol_fp = harness.key_fingerprint(carol_home)
    carol = cluster_client(harness, "carol", cluster.hosts(1, 2), home=carol_home)
    carol.wait_joined()
    server1.wait_for_line(f"identity {carol_fp}")
    for member in (alice, bob):
        member.wait_for_line(notice("carol joined #general"))

    alice.send("before the fault 1a1a")
    for listener in (bob, carol):
        listener.wait_for_line(said("alice", "before the fault 1a1a"))
    carol.send("carol before the fault 2b2b")  # delivered; its acknowledgement may be lost
    for listener in (alice, bob):
        listener.wait_for_line(said("carol", "carol before the fault 2b2b"))

    # Server 1 freezes, so that carol's next message sits unread in its socket, then dies. The
    # local /help after it shows that the client has written the message to the connection.
    out, err = carol.mark(), carol.mark("stderr")
    server1.signal(signal.SIGSTOP)
    carol.send("in flight when server 1 died 3c3c")
    carol.send("/help")
    carol.wait_for_line(notice("Client commands:"), start=out)
    server1.signal(signal.SIGKILL)
    server1.wait_exit()
    # Cut (FIN) or reset (RST, with the message unread): either way one line, then a retry.
    carol.wait_for_line("; reconnecting ", stream="stderr", start=err)  # "in 0.6 s…" or "now…"

    missed = [f"while carol was away {n} {n}d{n}d" for n in range(3)]
    for text in missed:
        alice.send(text)
    for text in missed:
        bob.wait_for_line(said("alice", text))

    # The next address: server 2, whose key is the cluster's, already known under its name.
    carol.wait_for_line("You are carol in #general", start=out, timeout=20.0)
    server2.wait_for_line(f"identity {carol_fp}")
    trace = "\n".join(carol.snapshot("stderr")[err:])
    assert f"Server key {server2.fingerprint} matches known_hosts" in trace, trace
    assert "CHANGED" not in trace and "New server" not in trace, trace

    # What carol missed is shown (history replay), the unacknowledged message is re-sent.
    for text in missed:
        carol.wait_for_line(said("alice", text), start=out)
    for listener in (alice, bob):
        listener.wait_for_line(said("carol", "in flight when server 1 died 3c3c"))
    # The barrier: anything carol's client re-sends comes before this on its connection.
    carol.send("carol after the failover 4e4e")
    for listener in (alice, bob):
        listener.wait_for_line(said("carol", "carol after the failover 4e4e"))
    alice.send("alice after the failover 5f5f")
    for listener in (bob, carol):
        listener.wait_for_line(said("alice", "alice after the failover 5f5f"))

    alice_texts = ["before the fault 1a1a", *missed, "alice after the failover 5f5f"]
    carol_texts = [
        "carol before the fault 2b2b",
        "in flight when server 1 died 3c3c",
        "carol after the failover 4e4e",
    ]
    for text in alice_texts:
        assert count_lines(carol, text) == 1, (text, carol.describe())
        assert count_lines(bob, text) == 1, (text, bob.describe())
    for text in carol_texts:
        assert count_lines(alice, text) == 1, (text, alice.describe())
        assert count_lines(bob, text) == 1, (text, bob.describe())
    # Re-sending what had been delivered before the fault was refused as a replay, silently.
    assert carol.find(" !!! ", start=out) is None, carol.describe()
    quit_cleanly(alice, bob, carol)


def test_redis_restart_degrades_chat_then_restores_it_without_losing_data(
    harness: Harness, make_cluster: StartCluster
) -> None:
    cluster = make_cluster(2)
    alice = harness.joined_client("alice", cluster.ports[0])
    bob = harness.joined_client("bob", cluster.ports[1])
    alice.wait_for_line(notice("bob joined #general"))
    alice.send("before the outage 1a1a")
    bob.wait_for_line(said("alice", "before the outage 1a1a"))

    marks = [server.mark() for server in cluster.servers]
    out = {client.nick: client.mark() for client in (alice, bob)}
    assert cluster.redis.stop() == 0, cluster.redis.describe()
    for server, start in zip(cluster.servers, marks, strict=True):
        server.wait_for_line(
            re.compile(r"^\[CLUSTER\] Redis unreachable \(.+\); retrying in [\d.]+ s$"),
            start=start,
        )
    for client in (alice, bob):
        client.wait_for_line(notice(DEGRADED), start=out[client.nick])

    # Refused out loud, not dropped in silence; and never delivered later either.
    start = alice.mark()
    alice.send("sent while degraded 2b2b")
    alice.wait_for_line(error(NOT_SENT_DEGRADED), start=start)

    cluster.redis.restart()
    for server, start in zip(cluster.servers, marks, strict=True):
        server.wait_for_line("[CLUSTER] Redis reachable again; resynchronised", start=start)
        assert server.running, server.describe()
    for client in (alice, bob):
        client.wait_for_line(notice("chat restored"), start=out[client.nick])
        assert client.running, client.describe()

    alice.send("after the outage 3c3c")
    bob.wait_for_line(said("alice", "after the outage 3c3c"))
    bob.send("bob after the outage 4d4d")
    alice.wait_for_line(said("bob", "bob after the outage 4d4d"))
    barrier(bob)
    assert bob.find("sent while degraded") is None, bob.describe()

    # What was stored before the outage survived it (Redis's append-only file).
    carol = harness.joined_client("carol", cluster.ports[1])
    history_lines(
        carol,
        "#general",
        ["before the outage 1a1a", "after the outage 3c3c", "bob after the outage 4d4d"],
    )
    quit_cleanly(alice, bob, carol, undelivered=(alice,))
