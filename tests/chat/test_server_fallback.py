"""ChatServer: the nick a key gets when it cannot have the one it asked for is owned by it too.

Issue 12, point 2: a fallback that is only ``user-`` + 6 characters of the public fingerprint,
never registered, can be taken first by another key (``/nick``), and then two keys show as one
nick. Every nick a session holds is registered to its key; a fallback never collides with a nick
another key owns or holds.
"""

from __future__ import annotations

import re
import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tlschat.chat.server.events import ChatServer
from tlschat.chat.server.hello import FALLBACK_PREFIX, MAX_NICK, NO_FALLBACK
from tlschat.protocol.identity import IdentityKey

from .helpers import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    NOW,
    command,
    error,
    fallback_nick,
    hello,
    make_server,
    notice,
    relayed,
    say,
    welcome,
)


def tag(key: IdentityKey, length: int) -> str:
    """``user-`` and the first ``length`` letters and digits of the key's fingerprint."""
    letters = "".join(c for c in key.fingerprint.removeprefix("SHA256:") if c.isalnum())
    return FALLBACK_PREFIX + letters[:length].lower()


def other_key(index: int) -> str:
    """A fingerprint of no key here: someone else who registered a nick."""
    return "SHA256:" + f"{index:043d}"


def assert_owned(server: ChatServer, nick: str, key: IdentityKey) -> None:
    assert server.store.nick_owner(nick) == key.fingerprint
    assert server.store.nick_of(key.fingerprint) == nick


def names(server: ChatServer, session_id: int) -> list[str]:
    lines: list[str] = command(server, session_id, "names")[0][1]["lines"]
    return lines


def test_fallback_is_registered_and_owned(
    server: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    hello(server, ALICE, ed_alice, "alice")
    hello(server, BOB, ed_bob, "alice")
    fallback = fallback_nick(ed_bob)
    assert server.sessions[BOB].nick == fallback
    assert_owned(server, fallback, ed_bob)
    # Owned, so refused to another key, online or not, by hello and by /nick.
    hello(server, CAROL, ed_carol, "carol")
    assert command(server, CAROL, "nick", fallback.upper()) == error(
        CAROL, f"{fallback.upper()!r} belongs to another key"
    )
    server.disconnect(BOB, "quit")
    assert command(server, CAROL, "nick", fallback) == error(
        CAROL, f"{fallback!r} belongs to another key"
    )


def test_squatted_fallback_leads_to_another_owned_fallback(
    server: ChatServer,
    ed_alice: IdentityKey,
    ed_bob: IdentityKey,
    ed_carol: IdentityKey,
    ed_dave: IdentityKey,
) -> None:
    """The attack: X squats alice's nick, Y takes alice's predictable fallback first."""
    victim, squatter, taker = ed_alice, ed_bob, ed_carol
    hello(server, BOB, squatter, "alice")
    hello(server, CAROL, taker, "carol")
    command(server, CAROL, "nick", tag(victim, 6))
    assert server.sessions[CAROL].nick == tag(victim, 6)
    hello(server, DAVE, ed_dave, "dave")

    out = hello(server, ALICE, victim, "alice")
    got = tag(victim, 7)
    assert server.sessions[ALICE].nick == got
    assert out[:2] == [
        (ALICE, welcome(got, victim)),
        notice(ALICE, f"'alice' belongs to another key; you are {got}"),
    ]
    assert_owned(server, got, victim)
    assert server.store.nick_owner(tag(victim, 6)) == taker.fingerprint
    assert sorted(names(server, DAVE)) == sorted(
        [
            f"alice {squatter.fingerprint}",
            f"{tag(victim, 6)} {taker.fingerprint}",
            f"{got} {victim.fingerprint}",
            f"dave {ed_dave.fingerprint}",
        ]
    )
    # What the victim says reaches the others under its own nick, the one its key owns.
    frame = say(victim, counter=1)
    assert (DAVE, relayed(frame, got, victim)) in server.receive(ALICE, frame, NOW)


def test_fallback_is_owned_across_reconnects(
    server: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey, ed_carol: IdentityKey
) -> None:
    hello(server, BOB, ed_bob, "alice")
    hello(server, CAROL, ed_carol, tag(ed_alice, 6))
    hello(server, ALICE, ed_alice, "alice")
    got = tag(ed_alice, 7)
    assert server.sessions[ALICE].nick == got
    server.disconnect(ALICE, "quit")
    # Offline, the fallback is still the key's: nobody else gets it, as a fallback or by /nick.
    assert command(server, CAROL, "nick", got) == error(CAROL, f"{got!r} belongs to another key")
    server.disconnect(CAROL, "quit")
    # Even once the shorter one is free again, the key gets back the nick it owns.
    out = hello(server, 10, ed_alice, "alice")
    assert server.sessions[10].nick == got
    assert out[1] == notice(10, f"'alice' belongs to another key; you are {got}")
    assert_owned(server, got, ed_alice)
    server.disconnect(10, "quit")
    out = hello(server, 11, ed_alice, "")
    assert out[0] == (11, welcome(got, ed_alice))


def test_registered_nick_is_preferred_to_a_fallback(
    server: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    hello(server, ALICE, ed_alice, "wonder")
    server.disconnect(ALICE, "quit")
    hello(server, BOB, ed_bob, "alice")
    out = hello(server, 10, ed_alice, "alice")
    assert out[1] == notice(10, "'alice' belongs to another key; you are wonder")
    assert_owned(server, "wonder", ed_alice)


def test_fallback_when_the_short_and_every_longer_tag_are_taken(
    server: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    longest = MAX_NICK - len(FALLBACK_PREFIX)
    tags = [tag(ed_alice, length) for length in range(6, longest + 1)]
    assert len(tags) == 14 and len(tags[-1]) == MAX_NICK
    for index, nick in enumerate(tags):
        assert server.store.register_nick(nick, other_key(index))
    hello(server, BOB, ed_bob, "alice")
    out = hello(server, ALICE, ed_alice, "alice")
    got = server.sessions[ALICE].nick
    assert re.fullmatch(rf"{re.escape(tags[0])}-[a-z0-9]{{8}}", got)
    assert out[1] == notice(ALICE, f"'alice' belongs to another key; you are {got}")
    assert_owned(server, got, ed_alice)
    # It is the key's from now on: the same one after a reconnect.
    server.disconnect(ALICE, "quit")
    assert hello(server, 10, ed_alice, "alice")[0] == (10, welcome(got, ed_alice))


def test_fallback_held_online_by_another_key_is_skipped(
    server: ChatServer, ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    # Held by an online session of another key, even if the store does not say so (a cluster's
    # replica may know the session before the claim): still not given out.
    hello(server, BOB, ed_bob, "bob")
    server.sessions[BOB].nick = tag(ed_alice, 6)
    hello(server, ALICE, ed_alice, "")
    assert server.sessions[ALICE].nick == tag(ed_alice, 7)


def test_no_free_fallback_at_all_turns_the_session_away(
    server: ChatServer,
    ed_alice: IdentityKey,
    ed_bob: IdentityKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bounded: every candidate taken (here the random suffixes are all 'a') ends the session
    with a clear refusal rather than a nick another key owns."""
    monkeypatch.setattr(secrets, "choice", lambda letters: "a")
    longest = MAX_NICK - len(FALLBACK_PREFIX)
    taken = [tag(ed_alice, length) for length in range(6, longest + 1)]
    taken.append(f"{tag(ed_alice, 6)}-aaaaaaaa")
    for index, nick in enumerate(taken):
        server.store.register_nick(nick, other_key(index))
    hello(server, BOB, ed_bob, "alice")
    out = hello(server, ALICE, ed_alice, "alice")
    assert out == [(ALICE, {"type": "bye", "reason": NO_FALLBACK})]
    assert server.store.nick_of(ed_alice.fingerprint) is None
    assert not server.sessions[ALICE].said_hello
    assert [line.split()[0] for line in names(server, BOB)] == ["alice"]


# --- no two keys ever share a nick -----------------------------------------------------------

KEYS = 4
# Nicks to ask for: plain ones, case variants, and each key's fallbacks (short and longer).
PLAIN = ["alice", "ALICE", "bob", "", "not valid!"]
Step = tuple[str, int, int]  # (what, key or session index, index into the nick pool)

steps = st.lists(
    st.tuples(
        st.sampled_from(["hello", "nick", "quit"]),
        st.integers(0, 2 * KEYS - 1),
        st.integers(0, len(PLAIN) + 2 * KEYS - 1),
    ),
    max_size=25,
)


def assert_nicks_owned_and_unshared(server: ChatServer) -> None:
    holders: dict[str, set[str]] = {}
    nicks_of: dict[str, set[str]] = {}
    for session in server.sessions.values():
        if session.said_hello and not session.dismissed:
            holders.setdefault(session.nick.casefold(), set()).add(session.fingerprint)
            nicks_of.setdefault(session.fingerprint, set()).add(session.nick)
            assert server.store.nick_owner(session.nick) == session.fingerprint, session
    assert all(len(keys) == 1 for keys in holders.values()), holders
    assert all(len(nicks) == 1 for nicks in nicks_of.values()), nicks_of


@settings(max_examples=60, deadline=None)
@given(steps)
def test_no_two_keys_ever_hold_one_nick(
    ed_alice: IdentityKey,
    ed_bob: IdentityKey,
    ed_carol: IdentityKey,
    ed_dave: IdentityKey,
    script: list[Step],
) -> None:
    keys = [ed_alice, ed_bob, ed_carol, ed_dave]
    pool = PLAIN + [tag(k, 6) for k in keys] + [tag(k, 7) for k in keys]
    server = make_server()
    next_id = 1
    for what, who, which in script:
        online = sorted(s for s, session in server.sessions.items() if session.said_hello)
        if what == "hello":
            hello(server, next_id, keys[who % KEYS], pool[which])
            next_id += 1
        elif what == "nick" and online:
            command(server, online[who % len(online)], "nick", pool[which])
        elif what == "quit" and online:
            server.disconnect(online[who % len(online)], "quit")
        assert_nicks_owned_and_unshared(server)
