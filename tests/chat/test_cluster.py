"""Several ChatServers sharing one ordered log, as a Redis cluster does, without a network.

``Log`` stands in for the broker: each server publishes into it, and ``pump`` applies every
committed event, in order, on every server (the origin included), as the Redis broker's
followers do. Session ids are per server, so the same id on two servers is two sessions.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tlschat.chat.server.cluster_events import ClusterEvent, Nick, NodeUp, Online
from tlschat.chat.server.events import ChatServer
from tlschat.chat.server.line_events import Message
from tlschat.chat.server.model import (
    DEGRADED_NOTICE,
    PLAIN_PRIVATE_REJECTION,
    REPLAY_REJECTION,
    ChatSettings,
    Outgoing,
)
from tlschat.chat.server.replies import sent_frame
from tlschat.e2e.device import Device
from tlschat.protocol.identity import IdentityKey
from tlschat.store.memory import MemoryStore

from .helpers import NETWORK, NOW, command, connect, relayed, relayed_line, say, via_log
from .server_e2e_helpers import device_keys, olm, private_say

A1, A2, B1 = 1, 2, 1  # session ids: two on server a, one on server b


class Log:
    """A total order of events; ``claims`` stands for the commit script's nick check."""

    def __init__(self, nodes: list[str], **settings: Any) -> None:
        self.pending: list[tuple[str, ClusterEvent]] = []
        self.nick_owners: dict[str, str] = {}
        self.servers = {
            node: ChatServer(
                ChatSettings(server_name="cluster", **settings),
                MemoryStore(50),
                node,
                self._publisher(node),
                network=NETWORK,
            )
            for node in nodes
        }
        self.delivered: dict[str, list[Outgoing]] = {node: [] for node in nodes}

    def _publisher(self, node: str) -> Any:
        def publish(event: ClusterEvent) -> list[Outgoing]:
            self.pending.append((node, via_log(event)))
            return []

        return publish

    def pump(self) -> dict[str, list[Outgoing]]:
        """Commit everything published so far (and what applying it publishes), in order."""
        out: dict[str, list[Outgoing]] = {node: [] for node in self.servers}
        while self.pending:
            origin, event = self.pending.pop(0)
            claim = _claim_of(event)
            if claim is not None:
                claimed, fingerprint = claim
                owner = self.nick_owners.get(claimed.casefold())
                if owner is not None and owner != fingerprint:
                    out[origin] += self.servers[origin].rejected(event, "taken")
                    continue
                self.nick_owners[claimed.casefold()] = fingerprint
            for node, server in self.servers.items():
                out[node] += server.apply(event)
        return out


def _claim_of(event: ClusterEvent) -> tuple[str, str] | None:
    """The nick ``event`` claims, and for which key, if it claims one."""
    if isinstance(event, Nick):
        return event.new, event.fingerprint
    if isinstance(event, Online) and event.claim:
        return event.nick, event.fingerprint
    return None


def hello(log: Log, node: str, session_id: int, key: IdentityKey, nick: str) -> None:
    server = log.servers[node]
    assert connect(server, session_id, key) == []
    server.receive(session_id, {"type": "hello", "nick": nick}, NOW)


def hello_device(log: Log, node: str, session_id: int, key: IdentityKey, nick: str) -> Device:
    """A session with a new device, its hello committed."""
    device = Device.create()
    server = log.servers[node]
    assert connect(server, session_id, key) == []
    frame = {"type": "hello", "nick": nick, "device_keys": device_keys(key, device)}
    server.receive(session_id, frame, NOW)
    log.pump()
    return device


def frames_to(out: list[Outgoing], session_id: int) -> list[dict[str, Any]]:
    return [frame for sid, frame in out if sid == session_id]


@pytest.fixture
def log(ed_alice: IdentityKey, ed_bob: IdentityKey) -> Log:
    log = Log(["a", "b"])
    hello(log, "a", A1, ed_alice, "alice")
    hello(log, "b", B1, ed_bob, "bob")
    log.pump()
    return log


def test_join_and_room_message_cross_servers(
    ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    log = Log(["a", "b"])
    hello(log, "a", A1, ed_alice, "alice")
    log.pump()
    hello(log, "b", B1, ed_bob, "bob")
    out = log.pump()
    assert out["a"] == [
        (
            A1,
            {
                "type": "join",
                "room": "#general",
                "nick": "bob",
                "fingerprint": ed_bob.fingerprint,
                "away": "",
            },
        )
    ]
    # bob hears that he joined once the log has it, so every server knows it by then.
    assert [frame["type"] for frame in frames_to(out["b"], B1)] == ["joined"]
    assert {m["nick"] for m in out["b"][0][1]["members"]} == {"alice", "bob"}
    frame = say(ed_bob, counter=7, body="across")
    assert log.servers["b"].receive(B1, frame, NOW) == []  # nothing until the log commits it
    out = log.pump()
    assert out["a"] == [(A1, relayed(frame, "bob", ed_bob))]
    assert out["b"] == [(B1, sent_frame("#general", 7))]
    # Every server keeps the history, in the log's order.
    for server in log.servers.values():
        assert [m.body for m in server.store.recent_messages("#general", 10)] == ["across"]
    # A third user joining on a: the room's members include bob on b, and the history.
    hello(log, "a", A2, ed_carol, "carol")
    joined, history = frames_to(log.pump()["a"], A2)
    assert {m["nick"] for m in joined["members"]} == {"alice", "bob", "carol"}
    assert [m["body"] for m in history["messages"]] == ["across"]


def test_replay_caught_by_the_log_is_an_error_with_the_counter(
    log: Log, ed_bob: IdentityKey
) -> None:
    frame = say(ed_bob, counter=3)
    log.servers["b"].receive(B1, frame, NOW)
    log.pump()
    # The same message again before b's replica knew: the log's check refuses it.
    event = Message(node="b", sid=B1, message=relayed_line(frame, "bob", ed_bob))
    assert log.servers["b"].rejected(event, REPLAY_REJECTION) == [
        (B1, {"type": "error", "text": REPLAY_REJECTION, "counter": 3})
    ]
    # And b's replica now knows it was committed: sent again, it is acknowledged.
    assert log.servers["b"].receive(B1, frame, NOW) == [
        (B1, {"type": "sent", "target": "#general", "counter": 3})
    ]


def test_private_message_to_a_key_on_another_server(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    log = Log(["a", "b"])
    hello_device(log, "a", A1, ed_alice, "alice")
    laptop = hello_device(log, "b", B1, ed_bob, "bob")
    keys = [olm(ed_bob.fingerprint, laptop.device_id)]
    frame = private_say(ed_alice, 1, ed_bob.fingerprint, keys)
    assert log.servers["a"].receive(A1, frame, NOW) == []
    out = log.pump()
    [page] = frames_to(out["b"], B1)
    assert [item["message"]["olm_private"] for item in page["messages"]] == [
        {"ct": frame["olm_private"]["ct"]}
    ]
    assert out["a"] == [(A1, sent_frame(f"@{ed_bob.fingerprint}", 1))]


def test_a_plain_private_message_is_refused_without_reaching_the_log(
    log: Log, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    frame = say(ed_alice, counter=1, body="psst", target=f"@{ed_bob.fingerprint}")
    refusal = {"type": "error", "text": PLAIN_PRIVATE_REJECTION, "counter": 1}
    assert log.servers["a"].receive(A1, frame, NOW) == [(A1, refusal)]
    assert log.pending == []
    assert log.pump() == {"a": [], "b": []}


def test_names_rooms_and_whois_show_the_whole_cluster(
    log: Log, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    a = log.servers["a"]
    names = command(a, A1, "names")
    assert names[0][1]["lines"] == [
        f"alice {ed_alice.fingerprint}",
        f"bob {ed_bob.fingerprint}",
    ]
    assert command(a, A1, "rooms")[0][1]["lines"] == ["#general (2 members)"]
    whois = command(a, A1, "whois", "bob")[0][1]
    assert whois["found"] and whois["online"]
    assert whois["fingerprint"] == ed_bob.fingerprint
    assert whois["rooms"] == ["#general"]


def test_nick_is_owned_across_the_cluster(
    log: Log, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    # bob's replica on b already knows alice's nick: refused without asking the log.
    assert command(log.servers["b"], B1, "nick", "alice") == [
        (B1, {"type": "error", "text": "'alice' belongs to another key"})
    ]
    # Two servers claiming one new nick at once: the log's order decides.
    assert command(log.servers["a"], A1, "nick", "zed") == []
    assert command(log.servers["b"], B1, "nick", "zed") == []
    out = log.pump()
    change = {"type": "nick", "old": "alice", "new": "zed", "fingerprint": ed_alice.fingerprint}
    assert out["a"] == [(A1, change)]
    assert out["b"] == [(B1, change), (B1, {"type": "error", "text": "taken"})]
    for server in log.servers.values():
        assert server.store.nick_owner("zed") == ed_alice.fingerprint


def test_moderation_acts_on_another_server(ed_alice: IdentityKey, ed_bob: IdentityKey) -> None:
    log = Log(["a", "b"], operators=frozenset({ed_alice.fingerprint}))
    hello(log, "a", A1, ed_alice, "alice")
    hello(log, "b", B1, ed_bob, "bob")
    log.pump()
    a, b = log.servers["a"], log.servers["b"]
    command(a, A1, "mute", "bob 10m")
    out = log.pump()
    assert out["b"] == [(B1, {"type": "notice", "text": "you were muted for 10m by alice"})]
    assert b.receive(B1, say(ed_bob, counter=1), NOW)[0][1]["text"].startswith(
        "message rejected: you are muted"
    )
    command(a, A1, "unmute", "bob")
    log.pump()
    assert b.receive(B1, say(ed_bob, counter=2), NOW) == []
    assert log.pump()["b"] == [(B1, sent_frame("#general", 2))]
    command(a, A1, "ban", "bob 1h spam")
    out = log.pump()
    assert out["b"] == [(B1, {"type": "bye", "reason": "banned for 1h by alice: spam"})]
    assert b.store.active_ban(ed_bob.fingerprint, NOW) is not None
    assert connect(b, 9, ed_bob)[0][1]["type"] == "bye"  # b refuses him too


def test_a_mute_from_another_server_silences_nick_and_away(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    log = Log(["a", "b"], operators=frozenset({ed_alice.fingerprint}))
    hello(log, "a", A1, ed_alice, "alice")
    hello(log, "b", B1, ed_bob, "bob")
    log.pump()
    a, b = log.servers["a"], log.servers["b"]
    command(a, A1, "mute", "bob")
    log.pump()
    refused = [(B1, {"type": "error", "text": "you are muted"})]
    assert command(b, B1, "nick", "bobby") == refused
    assert command(b, B1, "away", "see my nick") == refused
    # Refused before publishing: nothing reaches the log, nor the other server's sessions.
    assert log.pending == []
    assert log.pump() == {"a": [], "b": []}
    assert [m.nick for m in a.remote.values()] == ["bob"]
    # A runtime operator on server b cannot mute or kick a configured one.
    command(a, A1, "unmute", "bob")
    command(a, A1, "op", "bob")
    log.pump()
    for name in ("mute", "kick"):
        assert command(b, B1, name, "alice") == [
            (B1, {"type": "error", "text": "alice is an operator in the server's configuration"})
        ]
    assert log.pending == [] and a.mutes == {} and b.mutes == {}


def test_kick_reaches_the_other_server(ed_alice: IdentityKey, ed_bob: IdentityKey) -> None:
    log = Log(["a", "b"], operators=frozenset({ed_alice.fingerprint}))
    hello(log, "a", A1, ed_alice, "alice")
    hello(log, "b", B1, ed_bob, "bob")
    log.pump()
    assert command(log.servers["a"], A1, "kick", "bob flooding") == []
    out = log.pump()
    assert out["b"] == [(B1, {"type": "bye", "reason": "kicked by alice: flooding"})]
    # The operator hears it is done once the log has it: every server acts on it by then.
    assert out["a"] == [(A1, {"type": "notice", "text": "kicked bob: flooding"})]


def test_disconnect_and_lost_server_leave_the_room(
    log: Log, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    leave = {
        "type": "leave",
        "room": "#general",
        "nick": "bob",
        "fingerprint": ed_bob.fingerprint,
        "away": "",
    }
    log.servers["b"].disconnect(B1, "quit")
    assert log.pump()["a"] == [(A1, {**leave, "reason": "quit"})]
    hello(log, "b", B1, ed_bob, "bob")
    log.pump()
    assert log.servers["a"].node_lost("b") == [(A1, {**leave, "reason": "server lost"})]
    assert log.servers["a"].remote == {}


def test_a_joining_server_learns_presence_from_snapshots(
    log: Log, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    late = ChatServer(ChatSettings(), MemoryStore(50), "c", log._publisher("c"), network=NETWORK)
    log.servers["c"] = late
    log.pending.append(("c", NodeUp(node="c")))
    log.pump()
    assert {(node, m.nick) for (node, _), m in late.remote.items()} == {
        ("a", "alice"),
        ("b", "bob"),
    }
    assert late.remote[("a", A1)].rooms == ["#general"]


def test_degraded_refuses_messages_and_tells_newcomers(
    log: Log, ed_alice: IdentityKey, ed_carol: IdentityKey
) -> None:
    a = log.servers["a"]
    notice = {"type": "notice", "text": DEGRADED_NOTICE, "degraded": True}
    assert a.set_degraded(True) == [(A1, notice)]
    refused = a.receive(A1, say(ed_alice, counter=5), NOW)
    assert refused == [
        (
            A1,
            {
                "type": "error",
                "text": "message not sent: chat degraded (the cluster's store is unreachable)",
                "counter": 5,
            },
        )
    ]
    assert connect(a, A2, ed_carol) == []
    welcome = a.receive(A2, {"type": "hello", "nick": "carol"}, NOW)
    assert (A2, notice) in welcome
    assert a.set_degraded(False) == [
        (A1, {"type": "notice", "text": "chat restored", "degraded": False}),
        (A2, {"type": "notice", "text": "chat restored", "degraded": False}),
    ]


# --- fallback nicks are owned across the cluster (issue 12) ----------------------------------


def tag(key: IdentityKey, length: int) -> str:
    """``user-`` and the first ``length`` letters and digits of the key's fingerprint."""
    letters = "".join(c for c in key.fingerprint.removeprefix("SHA256:") if c.isalnum())
    return "user-" + letters[:length].lower()


def nicks_shown_for(out: dict[str, list[Outgoing]], key: IdentityKey) -> set[str]:
    """Every nick any session was shown for ``key``: in presence, members, nick changes and
    messages."""
    shown: set[str] = set()
    for frames in out.values():
        for _, frame in frames:
            items = [frame, *frame.get("members", [])]
            for item in items:
                if item.get("fingerprint") == key.fingerprint or item.get("sender") == (
                    key.fingerprint
                ):
                    shown |= {item[k] for k in ("nick", "new", "from") if k in item}
    return shown


def test_a_fallback_taken_meanwhile_on_another_server_is_claimed_again(
    ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    victim, squatter, taker = ed_alice, ed_bob, ed_carol
    log = Log(["a", "b"])
    hello(log, "a", A1, squatter, "alice")
    hello(log, "b", B1, taker, "carol")
    log.pump()
    a = log.servers["a"]
    short, longer = tag(victim, 6), tag(victim, 7)
    # The taker claims the victim's predictable fallback through b; a has not heard of it when
    # the victim arrives through a, so a offers it, and the log refuses a's claim.
    assert command(log.servers["b"], B1, "nick", short) == []
    assert connect(a, A2, victim) == []
    welcomed = a.receive(A2, {"type": "hello", "nick": "alice"}, NOW)
    assert [frame["type"] for _, frame in welcomed] == ["welcome", "notice"]
    assert welcomed[0][1]["nick"] == short
    # What the client sends before its nick is settled (a rejoin, a re-sent message) waits.
    message = say(victim, counter=1, body="still me")
    assert a.receive(A2, message, NOW) == []
    assert command(a, A2, "join", "#rust") == []
    out = log.pump()
    mine = frames_to(out["a"], A2)
    assert mine[:2] == [
        {"type": "nick", "old": short, "new": longer, "fingerprint": victim.fingerprint},
        {
            "type": "notice",
            "text": f"'{short}' was just taken by another key on another server; you are {longer}",
        },
    ]
    assert [frame["type"] for frame in mine[2:]] == ["joined", "sent", "joined"]
    assert {m["nick"] for m in mine[2]["members"]} == {"alice", short, longer}
    # The others only ever saw the victim under the nick its key owns, its message included.
    assert nicks_shown_for(out, victim) == {longer}
    assert (A1, relayed(message, longer, victim)) in out["a"]
    assert (B1, relayed(message, longer, victim)) in out["b"]
    assert log.nick_owners[short] == taker.fingerprint
    assert log.nick_owners[longer] == victim.fingerprint
    for server in log.servers.values():
        assert server.store.nick_owner(short) == taker.fingerprint
        assert server.store.nick_owner(longer) == victim.fingerprint
    assert a.sessions[A2].nick == longer and not a.sessions[A2].claiming


def test_an_asked_nick_taken_meanwhile_still_turns_the_session_away(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    log = Log(["a", "b"])
    hello(log, "a", A1, ed_alice, "zed")
    hello(log, "b", B1, ed_bob, "zed")
    out = log.pump()
    assert frames_to(out["b"], B1) == [{"type": "bye", "reason": "taken"}]
    # It never joined: nobody was shown bob's key as zed.
    assert nicks_shown_for(out, ed_bob) == set()
    assert log.nick_owners["zed"] == ed_alice.fingerprint


Action = tuple[str, int, int, int]  # (what, server, key or session index, index into nicks)


def settle(log: Log) -> None:
    """Pump until quiet, closing the sessions sent a bye, as the servers' glue does."""
    log.pump()
    while dismissed := [
        (server, sid)
        for server in log.servers.values()
        for sid, session in server.sessions.items()
        if session.dismissed
    ]:
        for server, sid in dismissed:
            server.disconnect(sid, "bye")
        log.pump()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            # Pumps are rarer than the rest: claims race when several wait for the log.
            st.sampled_from(["hello", "hello", "nick", "nick", "quit", "pump"]),
            st.integers(0, 1),
            st.integers(0, 7),
            st.integers(0, 9),
        ),
        max_size=30,
    )
)
def test_no_two_keys_ever_hold_one_nick_across_the_cluster(
    ed_alice: IdentityKey,
    ed_bob: IdentityKey,
    ed_carol: IdentityKey,
    script: list[Action],
) -> None:
    keys = [ed_alice, ed_bob, ed_carol]
    # Asked-for nicks, and each key's predictable fallbacks (for the others to squat).
    nicks = ["alice", "ALICE", "bob", ""] + [tag(k, n) for k in keys for n in (6, 7)]
    log = Log(["a", "b"])
    nodes = ["a", "b"]
    next_id = 1
    for what, where, who, which in script:
        server = log.servers[nodes[where]]
        online = sorted(s for s, session in server.sessions.items() if session.said_hello)
        if what == "hello":
            hello(log, nodes[where], next_id, keys[who % len(keys)], nicks[which])
            next_id += 1
        elif what == "nick" and online:
            command(server, online[who % len(online)], "nick", nicks[which])
        elif what == "quit" and online:
            server.disconnect(online[who % len(online)], "quit")
        elif what == "pump":
            settle(log)
    settle(log)
    holders: dict[str, set[str]] = {}
    nicks_of: dict[str, set[str]] = {}
    for node, server in log.servers.items():
        for sid, session in server.sessions.items():
            assert session.said_hello and not session.claiming and not session.held
            holders.setdefault(session.nick.casefold(), set()).add(session.fingerprint)
            nicks_of.setdefault(session.fingerprint, set()).add(session.nick)
            assert log.nick_owners[session.nick.casefold()] == session.fingerprint
            # Every server knows it under that nick, and owned by its key.
            for other in log.servers.values():
                assert other.store.nick_owner(session.nick) == session.fingerprint
                if other is not server:
                    assert other.remote[(node, sid)].nick == session.nick
    assert all(len(keys) == 1 for keys in holders.values()), holders
    assert all(len(names) == 1 for names in nicks_of.values()), nicks_of


def test_a_line_committed_while_a_join_is_on_its_way_comes_once_as_history(
    log: Log, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    """On a failover, a rejoining session's join is published after lines already in the log:
    those lines reach it in the history its join brings, never live before its joined."""
    b = log.servers["b"]
    first = say(ed_bob, counter=1, body="before the join")
    assert b.receive(B1, first, NOW)[-1:] == []  # on its way to the log
    a = log.servers["a"]
    assert connect(a, A2, ed_alice) == []
    welcome = a.receive(A2, {"type": "hello", "nick": "alice"}, NOW)
    # Committed after A2's claim but before the join its claim publishes.
    second = say(ed_bob, counter=2, body="still before the join")
    b.receive(B1, second, NOW)
    mine = frames_to(welcome + log.pump()["a"], A2)
    assert [frame["type"] for frame in mine] == ["welcome", "joined", "history"]
    assert [m["body"] for m in mine[-1]["messages"]] == ["before the join", "still before the join"]
    third = say(ed_bob, counter=3, body="after the join")
    b.receive(B1, third, NOW)
    mine = frames_to(log.pump()["a"], A2)
    assert [frame["body"] for frame in mine if frame["type"] == "message"] == ["after the join"]


def test_a_line_sent_while_its_rooms_join_is_on_its_way_follows_the_join(
    log: Log, ed_alice: IdentityKey
) -> None:
    a = log.servers["a"]
    assert command(a, A1, "join", "#rust") == []
    message = say(ed_alice, counter=1, body="first words", target="#rust")
    assert a.receive(A1, message, NOW) == []
    mine = frames_to(log.pump()["a"], A1)
    assert [frame["type"] for frame in mine] == ["joined", "sent"]
    assert a.sessions[A1].rooms == ["#general", "#rust"] and a.sessions[A1].joining == []


def test_a_copy_sent_while_the_first_is_on_its_way_waits_for_its_outcome(
    log: Log, ed_alice: IdentityKey
) -> None:
    a = log.servers["a"]
    message = say(ed_alice, counter=1, body="once")
    assert a.receive(A1, message, NOW) == []
    assert a.receive(A1, message, NOW + 20) == []  # a client tired of waiting sent it again
    out = log.pump()
    assert frames_to(out["a"], A1) == [sent_frame("#general", 1)]
    assert [frame["body"] for frame in frames_to(out["b"], B1)] == ["once"]
    # Once it took effect, a copy is acknowledged again.
    assert a.receive(A1, message, NOW + 40) == [(A1, sent_frame("#general", 1))]


def test_a_copy_of_a_refused_message_is_refused_the_same_way(
    ed_alice: IdentityKey, ed_carol: IdentityKey
) -> None:
    log = Log(["a", "b"])
    hello_device(log, "a", A1, ed_alice, "alice")
    a = log.servers["a"]
    hello(log, "b", 7, ed_carol, "carol")
    log.pump()
    private = private_say(ed_alice, 1, ed_carol.fingerprint, [])
    [(_, refusal)] = a.receive(A1, private, NOW)
    assert refusal["text"] == "message not delivered: carol has no device that can read it"
    hello_device(log, "b", 8, ed_carol, "carol")
    # carol has a device now, but the line was refused: its copy is too, so it has one outcome.
    assert a.receive(A1, private, NOW + 20) == [(A1, refusal)]
