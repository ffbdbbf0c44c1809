"""What a ✓ promises: the sender's key signed exactly this line, for this network, for where it
is shown, and (live) it is new. Verifier.check directly, and through ChatClient.handle."""

from __future__ import annotations

from typing import Any

import pytest

from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.envelope import SignedMessage
from tlschat.chat.frames import b64, say_frame
from tlschat.chat.lines import Line
from tlschat.chat.seen import MAX_SKEW_MS, SeenEntry, SeenLedger
from tlschat.chat.verify import (
    ANOTHER_NETWORK,
    ANOTHER_ROOM,
    BAD_KEY,
    BAD_SIGNATURE,
    FROM_THE_FUTURE,
    NOT_FOR_YOU,
    REPLAYED,
    Verdict,
    Verifier,
)
from tlschat.protocol.identity import IdentityKey

from .helpers import NETWORK, NOW, NOW_MS, OTHER_NETWORK, client_on

SKEW_S = MAX_SKEW_MS / 1000


def _signed(
    key: IdentityKey,
    counter: int = 1,
    ts: int = NOW_MS,
    body: str = "hi",
    target: str = "#general",
    network: str = NETWORK,
) -> SignedMessage:
    return SignedMessage.create(key, network, target, counter, ts, body)


def _frame(message: SignedMessage, key: IdentityKey, nick: str = "carol") -> dict[str, Any]:
    """The 'message' frame a server relays for ``message`` (signed by ``key``)."""
    fields = say_frame(message)
    del fields["type"]
    return {"type": "message", "from": nick, "key": b64(key.spki_der), **fields}


def _history(room: str, *frames: dict[str, Any]) -> dict[str, Any]:
    return {"type": "history", "room": room, "messages": list(frames)}


def _joined(client: ChatClient, *rooms: str) -> ChatClient:
    for room in rooms:
        client.handle({"type": "joined", "room": room, "members": []}, NOW)
    return client


@pytest.fixture
def alice(ed_alice: IdentityKey) -> ChatClient:
    return _joined(client_on(ed_alice, "alice"), "#general")


@pytest.fixture
def verifier(ed_alice: IdentityKey) -> Verifier:
    verifier = Verifier(ed_alice.fingerprint)
    verifier.use_network(NETWORK, SeenLedger())
    return verifier


def _check(
    verifier: Verifier,
    message: SignedMessage,
    key: IdentityKey,
    history_room: str = "",
    now: float = NOW,
    rooms: tuple[str, ...] = ("#general",),
) -> Verdict:
    return verifier.check(message, key.spki_der, list(rooms), history_room, now)


def _shown(lines: list[Line]) -> list[tuple[str, bool | None, str, bool | None]]:
    """(text, verified, problem, history) of the message lines among ``lines``."""
    return [(line.text, line.verified, line.problem, line.history) for line in lines if line.nick]


# --- Verifier.check --------------------------------------------------------------------------


def test_a_genuine_line_is_verified_live_and_in_history(
    verifier: Verifier, ed_carol: IdentityKey
) -> None:
    assert _check(verifier, _signed(ed_carol, 1), ed_carol) == Verdict(True)
    assert _check(verifier, _signed(ed_carol, 2), ed_carol, "#general") == Verdict(True)


def test_the_first_problem_found_is_the_one_named(
    verifier: Verifier, ed_carol: IdentityKey, ed_dave: IdentityKey
) -> None:
    cases = [
        (_signed(ed_carol, network=OTHER_NETWORK, target="#rust"), ed_dave, ANOTHER_NETWORK),
        (_signed(ed_carol, target="#rust"), ed_dave, ANOTHER_ROOM),
        (_signed(ed_carol, target="@" + ed_dave.fingerprint), ed_dave, NOT_FOR_YOU),
        (_signed(ed_carol), ed_dave, BAD_SIGNATURE),
        (_signed(ed_carol, ts=NOW_MS + MAX_SKEW_MS + 1), ed_carol, FROM_THE_FUTURE),
    ]
    for message, key, problem in cases:
        assert _check(verifier, message, key) == Verdict(False, problem)
    assert verifier.ledger.entries() == []  # nothing unverified is remembered


def test_an_unusable_key_is_unverified(verifier: Verifier, ed_carol: IdentityKey) -> None:
    verdict = verifier.check(_signed(ed_carol), b"not a key", ["#general"], "", NOW)
    assert verdict == Verdict(False, BAD_KEY)


def test_a_private_line_for_our_key_is_verified_for_another_key_not(
    verifier: Verifier, ed_alice: IdentityKey, ed_carol: IdentityKey, ed_dave: IdentityKey
) -> None:
    mine = _signed(ed_carol, 1, target="@" + ed_alice.fingerprint)
    assert _check(verifier, mine, ed_carol, rooms=()) == Verdict(True)
    theirs = _signed(ed_carol, 2, target="@" + ed_dave.fingerprint)
    assert _check(verifier, theirs, ed_carol) == Verdict(False, NOT_FOR_YOU)


def test_the_future_is_allowed_up_to_the_skew(verifier: Verifier, ed_carol: IdentityKey) -> None:
    assert _check(verifier, _signed(ed_carol, 1, NOW_MS + MAX_SKEW_MS), ed_carol) == Verdict(True)
    too_far = _signed(ed_carol, 2, NOW_MS + MAX_SKEW_MS + 1)
    assert _check(verifier, too_far, ed_carol) == Verdict(False, FROM_THE_FUTURE)
    assert _check(verifier, too_far, ed_carol, "#general") == Verdict(False, FROM_THE_FUTURE)


def test_a_live_line_older_than_the_skew_is_late(verifier: Verifier, ed_carol: IdentityKey) -> None:
    assert _check(verifier, _signed(ed_carol, 1, NOW_MS - MAX_SKEW_MS), ed_carol) == Verdict(True)
    old = _signed(ed_carol, 2, NOW_MS - MAX_SKEW_MS - 1)
    assert _check(verifier, old, ed_carol) == Verdict(True, late=True)
    # History is never 'late': it is history already.
    older = _signed(ed_carol, 3, NOW_MS - 10 * MAX_SKEW_MS)
    assert _check(verifier, older, ed_carol, "#general") == Verdict(True)


def test_duplicates_and_replays_in_one_session(verifier: Verifier, ed_carol: IdentityKey) -> None:
    second = _signed(ed_carol, 2)
    assert _check(verifier, second, ed_carol) == Verdict(True)
    assert _check(verifier, second, ed_carol) == Verdict(True, duplicate=True)
    assert _check(verifier, second, ed_carol, "#general") == Verdict(True, duplicate=True)
    first = _signed(ed_carol, 1)
    assert _check(verifier, first, ed_carol) == Verdict(False, REPLAYED)
    # As history, an older line is no replay: history is older by nature.
    assert _check(verifier, first, ed_carol, "#general") == Verdict(True)


# --- through ChatClient.handle ---------------------------------------------------------------


def test_a_line_signed_for_another_network_is_unverified_live_and_in_history(
    alice: ChatClient, ed_carol: IdentityKey
) -> None:
    elsewhere = _frame(_signed(ed_carol, 1, body="from elsewhere", network=OTHER_NETWORK), ed_carol)
    [line] = alice.handle(elsewhere, NOW)
    assert (line.text, line.verified, line.problem) == ("from elsewhere", False, ANOTHER_NETWORK)
    assert "✗ UNVERIFIED (signed for another network)" in line.render("#general")
    _, line = alice.handle(_history("#general", elsewhere), NOW)
    assert (line.verified, line.problem, line.history) == (False, ANOTHER_NETWORK, True)
    # Not remembered as shown: the same counter signed for this network is verified.
    [line] = alice.handle(_frame(_signed(ed_carol, 1, body="here"), ed_carol), NOW)
    assert (line.text, line.verified) == ("here", True)


def test_a_room_line_for_a_room_not_joined_is_unverified(
    alice: ChatClient, ed_carol: IdentityKey
) -> None:
    [line] = alice.handle(_frame(_signed(ed_carol, 1, target="#rust"), ed_carol), NOW)
    assert (line.room, line.verified, line.problem) == ("#rust", False, ANOTHER_ROOM)


def test_history_of_one_room_holding_a_line_of_another_is_unverified(
    alice: ChatClient, ed_carol: IdentityKey
) -> None:
    _joined(alice, "#rust")  # in both rooms: only where it is shown decides
    moved = _frame(_signed(ed_carol, 1, body="said in #rust", target="#rust"), ed_carol)
    lines = alice.handle(_history("#general", moved), NOW)
    assert _shown(lines) == [("said in #rust", False, ANOTHER_ROOM, True)]
    lines = alice.handle(_history("#rust", moved), NOW)
    assert _shown(lines) == [("said in #rust", True, "", True)]


def test_a_private_line_for_another_key_is_unverified(
    alice: ChatClient, ed_carol: IdentityKey, ed_dave: IdentityKey
) -> None:
    for_dave = _frame(_signed(ed_carol, 1, target="@" + ed_dave.fingerprint), ed_carol)
    [line] = alice.handle(for_dave, NOW)
    assert (line.kind, line.verified, line.problem) == ("private", False, NOT_FOR_YOU)
    assert alice.last_private is None  # no /reply to an unverified line
    for_alice = _frame(_signed(ed_carol, 2, target="@" + alice.identity.fingerprint), ed_carol)
    [line] = alice.handle(for_alice, NOW)
    assert (line.kind, line.verified, line.problem) == ("private", True, "")
    assert alice.last_private == ("carol", ed_carol.fingerprint)


def test_a_bad_signature_is_unverified(alice: ChatClient, ed_carol: IdentityKey) -> None:
    forged = {**_frame(_signed(ed_carol, 1, body="genuine"), ed_carol), "body": "forged"}
    [line] = alice.handle(forged, NOW)
    assert (line.text, line.verified, line.problem) == ("forged", False, BAD_SIGNATURE)
    unusable = {**_frame(_signed(ed_carol, 2), ed_carol), "key": b64(b"not a key")}
    [line] = alice.handle(unusable, NOW)
    assert (line.verified, line.problem) == (False, BAD_KEY)


def test_a_line_dated_beyond_the_skew_in_the_future_is_unverified(
    alice: ChatClient, ed_carol: IdentityKey
) -> None:
    future = _frame(_signed(ed_carol, 1, NOW_MS + MAX_SKEW_MS + 1, "tomorrow"), ed_carol)
    [line] = alice.handle(future, NOW)
    assert (line.verified, line.problem) == (False, FROM_THE_FUTURE)
    _, line = alice.handle(_history("#general", future), NOW)
    assert (line.verified, line.problem, line.history) == (False, FROM_THE_FUTURE, True)
    # Once the clock has caught up it is fine: the refusal remembered nothing.
    [line] = alice.handle(future, NOW + 1)
    assert (line.verified, line.problem, line.history) == (True, "", None)


def test_a_live_line_signed_longer_ago_than_the_skew_is_shown_as_history(
    alice: ChatClient, ed_carol: IdentityKey
) -> None:
    signed_at = NOW_MS - 2 * 3600 * 1000
    [line] = alice.handle(_frame(_signed(ed_carol, 1, signed_at, "old news"), ed_carol), NOW)
    assert (line.text, line.verified, line.problem) == ("old news", True, "")
    assert (line.history, line.timestamp) == (True, signed_at / 1000)
    assert line.note == "signed 2 h ago; not new"
    assert line.render("#general").endswith("✓ <carol> old news (signed 2 h ago; not new)")
    # Exactly at the skew it is still live.
    [line] = alice.handle(_frame(_signed(ed_carol, 2, NOW_MS - MAX_SKEW_MS), ed_carol), NOW)
    assert (line.verified, line.history, line.note) == (True, None, "")


def test_an_exact_duplicate_in_a_session_is_not_shown_again(
    alice: ChatClient, ed_carol: IdentityKey
) -> None:
    frame = _frame(_signed(ed_carol, 5, body="once"), ed_carol)
    assert _shown(alice.handle(frame, NOW)) == [("once", True, "", None)]
    assert alice.handle(frame, NOW) == []
    assert alice.handle(frame, NOW + 100) == []
    assert alice.handle(_history("#general", frame), NOW) == []


def test_a_line_older_than_one_shown_from_that_sender_is_a_replay(
    alice: ChatClient, ed_carol: IdentityKey, ed_dave: IdentityKey
) -> None:
    alice.handle(_frame(_signed(ed_carol, 5, body="newer"), ed_carol), NOW)
    older = _frame(_signed(ed_carol, 4, body="older"), ed_carol)
    [line] = alice.handle(older, NOW)
    assert (line.text, line.verified, line.problem) == ("older", False, REPLAYED)
    assert "✗ UNVERIFIED (replayed: shown before)" in line.render("#general")
    # Another sender's counters are their own.
    [line] = alice.handle(_frame(_signed(ed_dave, 4), ed_dave, "dave"), NOW)
    assert line.verified is True


def _restarted(client: ChatClient, journal: list[SeenEntry], now: float) -> ChatClient:
    """The same user's client after a restart: the ledger comes back from the journal."""
    restarted = ChatClient(client.identity, "alice")
    restarted.use_network(NETWORK, SeenLedger.restore(journal, int(now * 1000)))
    return _joined(restarted, "#general")


def test_after_a_restart_a_line_shown_before_is_a_replay_live_and_history_as_history(
    alice: ChatClient, ed_carol: IdentityKey
) -> None:
    frame = _frame(_signed(ed_carol, 5, body="shown before the restart"), ed_carol)
    alice.handle(frame, NOW)
    journal = alice.verifier.ledger.take_journal()
    assert journal == [SeenEntry(ed_carol.fingerprint, 5, NOW_MS)]
    restarted = _restarted(alice, journal, NOW + 60)
    [line] = restarted.handle(frame, NOW + 60)
    assert (line.verified, line.problem) == (False, REPLAYED)
    [line] = restarted.handle(_frame(_signed(ed_carol, 4), ed_carol), NOW + 60)
    assert (line.verified, line.problem) == (False, REPLAYED)
    # The same line in the room's history is what it is: history, verified.
    lines = restarted.handle(_history("#general", frame), NOW + 60)
    assert _shown(lines) == [("shown before the restart", True, "", True)]
    # What carol says next is new.
    [line] = restarted.handle(_frame(_signed(ed_carol, 6), ed_carol), NOW + 60)
    assert (line.verified, line.history) == (True, None)


def test_after_a_restart_our_own_line_is_a_replay_live(alice: ChatClient) -> None:
    own = alice.compose("mine", NOW)
    journal = alice.verifier.ledger.take_journal()
    restarted = _restarted(alice, journal, NOW + 1)
    relayed = {**own, "type": "message", "from": "alice", "key": b64(alice.identity.spki_der)}
    [line] = restarted.handle(relayed, NOW + 1)
    assert (line.verified, line.problem) == (False, REPLAYED)
    _, line = restarted.handle(_history("#general", relayed), NOW + 1)
    assert (line.text, line.verified, line.history) == ("mine", True, True)


def test_after_a_restart_past_the_skew_a_replay_is_shown_as_old_not_new(
    alice: ChatClient, ed_carol: IdentityKey
) -> None:
    frame = _frame(_signed(ed_carol, 5, body="long ago"), ed_carol)
    alice.handle(frame, NOW)
    later = NOW + 2 * SKEW_S
    restarted = _restarted(alice, alice.verifier.ledger.take_journal(), later)
    assert len(restarted.verifier.ledger) == 0  # pruned: carol was quiet for longer than the skew
    [line] = restarted.handle(frame, later)
    assert (line.verified, line.history, line.note) == (True, True, "signed 20 min ago; not new")


def test_use_network_switches_to_that_networks_ledger(
    alice: ChatClient, ed_carol: IdentityKey
) -> None:
    here = _frame(_signed(ed_carol, 5, body="here"), ed_carol)
    there = _frame(_signed(ed_carol, 5, body="there", network=OTHER_NETWORK), ed_carol)
    alice.handle(here, NOW)
    first_ledger = alice.verifier.ledger
    other_ledger = SeenLedger()
    alice.use_network(OTHER_NETWORK, other_ledger)
    assert (alice.network, alice.verifier.ledger) == (OTHER_NETWORK, other_ledger)
    [line] = alice.handle(here, NOW)
    assert (line.verified, line.problem) == (False, ANOTHER_NETWORK)
    # The same sender and counter on another network: nothing was shown there.
    [line] = alice.handle(there, NOW)
    assert (line.text, line.verified, line.problem) == ("there", True, "")
    assert other_ledger.was_shown(ed_carol.fingerprint, 5)
    # Back on the first network with its ledger: what was shown there is a replay live.
    alice.use_network(NETWORK, first_ledger)
    [line] = alice.handle(here, NOW)
    assert (line.verified, line.problem) == (False, REPLAYED)
    # The messages we sign are for the network we are on.
    assert alice.compose("out", NOW)["network"] == NETWORK


def test_use_network_with_the_same_network_keeps_the_session(
    alice: ChatClient, ed_carol: IdentityKey
) -> None:
    frame = _frame(_signed(ed_carol, 5), ed_carol)
    alice.handle(frame, NOW)
    ledger = alice.verifier.ledger
    alice.use_network(NETWORK, SeenLedger())  # a reconnect to the same network
    assert alice.verifier.ledger is ledger
    assert alice.handle(frame, NOW) == []  # still a duplicate, not a replay
