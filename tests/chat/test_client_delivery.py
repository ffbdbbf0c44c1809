"""ChatClient's delivery: pending until acknowledged, refused with a reason, paced, queued while
disconnected, re-sent after a reconnect, and no duplicates on screen.

Pure: the server's frames are written out by hand, as the cluster's servers send them.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tlschat.chat import verify as verify_module
from tlschat.chat.client.crypto import ClientCrypto
from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.delivery import ACK_TIMEOUT, MAX_IN_FLIGHT, MAX_WAITING
from tlschat.chat.envelope import MAX_BODY_BYTES, SignedMessage
from tlschat.chat.frames import encode_frame, say_frame
from tlschat.chat.lines import Line
from tlschat.chat.seen import SeenLedger
from tlschat.protocol.identity import IdentityKey

from .helpers import NETWORK, NOW, NOW_MS, client_on

REPLAYED = "message rejected: replayed or out-of-order counter"
DEGRADED_ERROR = "message not sent: chat degraded (the cluster's store is unreachable)"
DEGRADED = "chat degraded: the cluster's store is unreachable; messages are not being delivered"


def _welcome(client: ChatClient, *rooms: str, burst: int = 1000) -> None:
    """The server welcomes ``client`` (into #general), then answers the joins it asked for.

    The burst is large unless a test is about pacing."""
    welcome = {"type": "welcome", "server": "cluster", "nick": client.wanted_nick}
    client.handle({**welcome, "rate": 2.0, "burst": burst}, NOW)
    client.handle({"type": "joined", "room": "#general", "members": []}, NOW)
    for room in rooms:
        client.handle({"type": "joined", "room": room, "members": []}, NOW)


@pytest.fixture
def alice(ed_alice: IdentityKey) -> ChatClient:
    client = client_on(ed_alice, "alice")
    _welcome(client)
    return client


def _typed(client: ChatClient, *texts: str) -> list[dict[str, Any]]:
    """The user types each text (each shown at once as pending); the 'say' frames that go out."""
    for index, text in enumerate(texts):
        [line] = client.user_input(text, NOW + index)
        assert (line.text, line.delivery) == (text, "pending")
    frames = client.take_outbox()
    assert [frame["type"] for frame in frames] == ["say"] * len(texts)
    return frames


def _sent(frame: dict[str, Any]) -> dict[str, Any]:
    return {"type": "sent", "target": frame["target"], "counter": frame["counter"]}


def _error(text: str, counter: int) -> dict[str, Any]:
    return {"type": "error", "text": text, "counter": counter}


def _reconnected(client: ChatClient) -> list[dict[str, Any]]:
    """The connection was lost; a new session is welcomed and rejoins: what goes out."""
    client.prepare_reconnect()
    welcome = {"type": "welcome", "server": "cluster", "nick": client.wanted_nick}
    client.handle({**welcome, "rate": 2.0, "burst": 1000}, NOW)
    client.handle({"type": "joined", "room": "#general", "members": []}, NOW)
    return client.take_outbox()


def _outcomes(lines: list[Line]) -> list[tuple[str, str, str]]:
    """(text, delivery, problem) of the lines that report a delivery."""
    return [(line.text, line.delivery, line.problem) for line in lines if line.delivery]


def _message(
    key: IdentityKey, counter: int, body: str, room: str = "#general", nick: str = "carol"
) -> dict[str, Any]:
    fields = say_frame(SignedMessage.create(key, NETWORK, room, counter, NOW_MS + counter, body))
    del fields["type"]
    return {
        "type": "message",
        "from": nick,
        "key": base64.b64encode(key.spki_der).decode(),
        **fields,
    }


def _history(*messages: dict[str, Any], room: str = "#general") -> dict[str, Any]:
    return {"type": "history", "room": room, "messages": list(messages)}


# --- acknowledgements ------------------------------------------------------------------------


def test_a_sent_message_is_pending_until_acknowledged_then_delivered(alice: ChatClient) -> None:
    first, second = _typed(alice, "one", "two")
    assert alice.unacknowledged == [first, second]
    assert alice.outstanding == 2
    assert _outcomes(alice.handle(_sent(second), NOW)) == [("two", "delivered", "")]
    assert alice.unacknowledged == [first]
    assert _outcomes(alice.handle(_sent(first), NOW)) == [("one", "delivered", "")]
    assert (alice.unacknowledged, alice.outstanding, alice.undelivered) == ([], 0, [])
    assert alice.take_outbox() == []


def test_the_delivered_line_replaces_the_pending_one(alice: ChatClient) -> None:
    [pending] = alice.user_input("hello", NOW)
    [frame] = alice.take_outbox()
    [delivered] = alice.handle(_sent(frame), NOW + 1)
    assert delivered.ref == pending.ref != 0
    assert delivered == Line(
        "message",
        NOW,
        "hello",
        "alice",
        alice.identity.fingerprint,
        "#general",
        ref=pending.ref,
        delivery="delivered",
        id=f"{alice.identity.fingerprint}:{frame['counter']}",
    )
    assert pending.render("#general").endswith("sending… <alice> hello")
    assert delivered.render("#general").endswith("] sent <alice> hello")
    assert delivered.to_json()["delivery"] == "delivered"


def test_private_messages_and_actions_wait_for_acknowledgement_too(
    ed_alice: IdentityKey, ed_bob: IdentityKey
) -> None:
    alice = ChatClient(ed_alice, "alice", crypto=ClientCrypto(ed_alice, bytes(32), {}))
    alice.use_network(NETWORK, SeenLedger())
    _welcome(alice)
    alice.directory["bob"] = ed_bob.fingerprint
    alice.user_input("/me waves", NOW)
    [pending] = alice.user_input("/msg bob psst", NOW)
    assert (pending.delivery, pending.encrypted) == ("pending", True)
    # The private message waits for the devices it is encrypted for; nothing passes it.
    action, query = alice.take_outbox()
    assert action["body"] == "/me waves"
    assert query == {
        "type": "keys_query",
        "fingerprints": [ed_bob.fingerprint, ed_alice.fingerprint],
    }
    assert alice.unacknowledged == [action] and alice.outstanding == 2


def test_an_acknowledgement_of_an_unknown_counter_changes_nothing(alice: ChatClient) -> None:
    [frame] = _typed(alice, "kept")
    assert alice.handle({"type": "sent", "target": "#general", "counter": 12345}, NOW) == []
    assert alice.unacknowledged == [frame]


def test_a_malformed_acknowledgement_is_reported(alice: ChatClient) -> None:
    [frame] = _typed(alice, "kept")
    assert alice.handle({"type": "sent", "target": "#general", "counter": "1"}, NOW) == [
        Line(
            "error",
            NOW,
            "malformed 'sent' frame from server: 'counter' must be an integer in "
            "[0, 18446744073709551615]",
        )
    ]
    assert alice.unacknowledged == [frame]


def test_in_flight_messages_are_bounded_the_rest_wait_their_turn(alice: ChatClient) -> None:
    for n in range(MAX_IN_FLIGHT + 3):
        alice.user_input(f"m{n}", NOW)
    frames = alice.take_outbox()
    assert len(frames) == MAX_IN_FLIGHT
    assert alice.outstanding == MAX_IN_FLIGHT + 3
    alice.handle(_sent(frames[0]), NOW)
    [next_one] = alice.take_outbox()
    assert next_one["body"] == f"m{MAX_IN_FLIGHT}"


def test_a_full_queue_refuses_the_new_line_at_once(ed_alice: IdentityKey) -> None:
    alice = client_on(ed_alice, "alice")  # never welcomed: everything waits
    for n in range(MAX_WAITING):
        [line] = alice.user_input(f"m{n}", NOW)
        assert line.delivery == "pending"
    [refused] = alice.user_input("one too many", NOW)
    assert (refused.delivery, refused.problem) == ("refused", "too many lines waiting to be sent")
    assert alice.undelivered == [refused]
    assert alice.outstanding == MAX_WAITING


def test_a_message_longer_than_any_server_takes_is_refused_at_once(alice: ChatClient) -> None:
    [refused] = alice.user_input("x" * (MAX_BODY_BYTES + 1), NOW)
    assert (refused.delivery, refused.problem) == ("refused", "longer than 4096 bytes (4097)")
    assert (alice.outbox, alice.unacknowledged, alice.outstanding) == ([], [], 0)
    assert alice.undelivered == [refused]
    # Exactly the limit goes out.
    [pending] = alice.user_input("y" * MAX_BODY_BYTES, NOW)
    assert pending.delivery == "pending" and len(alice.take_outbox()) == 1


def test_giving_up_refuses_every_line_without_an_outcome(ed_alice: IdentityKey) -> None:
    alice = client_on(ed_alice, "alice")
    _welcome(alice)
    [frame] = _typed(alice, "in flight")
    alice.prepare_reconnect()
    alice.user_input("queued", NOW)
    lines = alice.give_up("the client quit before the server answered", NOW)
    assert _outcomes(lines) == [
        ("in flight", "refused", "the client quit before the server answered"),
        ("queued", "refused", "the client quit before the server answered"),
    ]
    assert alice.outstanding == 0
    assert [line.text for line in alice.undelivered] == ["in flight", "queued"]
    assert frame["body"] == "in flight"


# --- pacing ----------------------------------------------------------------------------------


def test_a_burst_is_paced_to_the_servers_rate_and_arrives_whole(ed_alice: IdentityKey) -> None:
    alice = client_on(ed_alice, "alice")
    _welcome(alice, burst=10)  # rate 2 per second
    for n in range(30):
        alice.user_input(f"line {n}", NOW)
    burst = alice.take_outbox()
    for frame in burst:
        alice.handle(_sent(frame), NOW)
    sent = [frame["body"] for frame in burst]
    assert sent == [f"line {n}" for n in range(9)]  # a little inside the burst of 10
    assert alice.wake_at is not None and alice.wake_at > NOW
    now = NOW
    while alice.outstanding and now < NOW + 60:
        assert alice.wake_at is not None
        now = alice.wake_at
        alice.tick(now)
        for frame in alice.take_outbox():
            sent.append(frame["body"])
            alice.handle(_sent(frame), now)
    assert sent == [f"line {n}" for n in range(30)]
    # 21 after the burst at 0.9 x 2 per second: about 11.7 s, never faster than the server's 2/s.
    assert 10.5 < now - NOW < 13


def test_commands_keep_their_place_behind_paced_messages(ed_alice: IdentityKey) -> None:
    alice = client_on(ed_alice, "alice")
    _welcome(alice, burst=2)
    alice.user_input("one", NOW)
    alice.user_input("two", NOW)
    alice.user_input("/part #general", NOW)
    [frame] = alice.take_outbox()
    assert frame["body"] == "one"
    assert alice.wake_at is not None
    alice.tick(alice.wake_at)
    second, part = alice.take_outbox()
    assert (second["body"], part) == (
        "two",
        {"type": "command", "name": "part", "args": "#general"},
    )


def test_flood_control_refusal_is_retried_after_the_wait_not_shown(alice: ChatClient) -> None:
    first, second = _typed(alice, "one", "two")
    refusal = {**_error("flood control: message not sent", first["counter"]), "retry_after": 1.5}
    assert alice.handle(refusal, NOW) == []  # still pending: no outcome yet
    assert alice.take_outbox() == []
    # Nothing goes out while the line behind it is in flight: the server holds that one back
    # too (its refusal comes next), so that the two are stored in the order typed.
    alice.tick(NOW + 1.5)
    assert alice.take_outbox() == []
    held = {**_error("flood control: message not sent", second["counter"]), "retry_after": 1.4}
    assert alice.handle(held, NOW + 0.1) == []
    assert alice.wake_at == NOW + 1.5
    alice.tick(NOW + 1.5)
    # Unchanged and in order: the refused counter was never recorded, the later one neither.
    assert alice.take_outbox() == [first, second]
    assert _outcomes(alice.handle(_sent(first), NOW + 3)) == [("one", "delivered", "")]
    assert _outcomes(alice.handle(_sent(second), NOW + 3)) == [("two", "delivered", "")]


def test_a_throttled_line_overtaken_by_another_device_is_signed_anew(alice: ChatClient) -> None:
    [frame] = _typed(alice, "one")
    alice.handle({**_error("flood control", frame["counter"]), "retry_after": 0.5}, NOW)
    alice.tick(NOW + 1)
    assert alice.take_outbox() == [frame]
    # Meanwhile another device of alice's key had a higher counter stored.
    alice.handle(_error(REPLAYED, frame["counter"]), NOW + 1)
    alice.tick(NOW + 2)
    [again] = alice.take_outbox()
    assert again["body"] == "one" and again["counter"] > frame["counter"]
    assert _outcomes(alice.handle(_sent(again), NOW + 2)) == [("one", "delivered", "")]


def test_commands_are_paced_to_the_servers_work_budget(ed_alice: IdentityKey) -> None:
    alice = client_on(ed_alice, "alice")
    welcome = {"type": "welcome", "server": "s", "nick": "alice", "rate": 2.0, "burst": 10}
    alice.handle({**welcome, "work_rate": 10.0, "work_burst": 30}, NOW)
    alice.handle({"type": "joined", "room": "#general", "members": []}, NOW)
    for n in range(5):
        alice.user_input(f"/join #r{n}", NOW)
    # A join costs 10 units; 0.9 of the burst of 30 holds two of them at once.
    assert [frame["args"] for frame in alice.take_outbox()] == ["#r0", "#r1"]
    assert alice.wake_at is not None
    now = NOW
    sent: list[str] = []
    while alice.outstanding and now < NOW + 10:
        assert alice.wake_at is not None
        now = alice.wake_at
        alice.tick(now)
        sent += [frame["args"] for frame in alice.take_outbox()]
    assert sent == ["#r2", "#r3", "#r4"]
    # 27 units at once, 20 taken; the 23 more of three joins come at 0.9 x 10 per second.
    assert 2.5 < now - NOW < 3.5


# --- re-sending after a reconnect ------------------------------------------------------------


def test_reconnect_resends_exactly_the_unacknowledged_byte_identical(alice: ChatClient) -> None:
    first, second, third = _typed(alice, "one", "two", "three")
    alice.handle(_sent(second), NOW)
    resent = _reconnected(alice)
    assert [encode_frame(frame) for frame in resent] == [encode_frame(first), encode_frame(third)]
    # Still kept until acknowledged: another loss would re-send them again.
    assert _reconnected(alice) == resent


def test_a_message_without_an_answer_for_long_is_sent_again_unchanged(alice: ChatClient) -> None:
    """Its first copy may have died in a server's failing link to its cluster: after
    ACK_TIMEOUT it goes again, byte for byte, and again after each further ACK_TIMEOUT."""
    first, second = _typed(alice, "one", "two")  # typed at NOW and NOW + 1
    alice.handle(_sent(second), NOW + 2)
    assert alice.wake_at == NOW + ACK_TIMEOUT
    assert alice.tick(NOW + ACK_TIMEOUT - 0.1) == [] and alice.take_outbox() == []
    alice.tick(NOW + ACK_TIMEOUT)
    assert [encode_frame(f) for f in alice.take_outbox()] == [encode_frame(first)]
    assert alice.wake_at == NOW + 2 * ACK_TIMEOUT
    # One outcome, whichever copy it answers.
    assert _outcomes(alice.handle(_sent(first), NOW + 21)) == [("one", "delivered", "")]
    assert _outcomes(alice.handle(_sent(first), NOW + 22)) == []
    alice.tick(NOW + 3 * ACK_TIMEOUT)
    assert alice.take_outbox() == [] and alice.wake_at is None


def test_resending_waits_until_every_room_is_rejoined(ed_alice: IdentityKey) -> None:
    alice = client_on(ed_alice, "alice")
    _welcome(alice)
    alice.user_input("/join #rust", NOW)
    alice.take_outbox()
    alice.handle({"type": "joined", "room": "#rust", "members": []}, NOW)
    [frame] = _typed(alice, "in rust")
    alice.prepare_reconnect()
    alice.handle({"type": "welcome", "server": "cluster", "nick": "alice"}, NOW)
    alice.handle({"type": "joined", "room": "#general", "members": []}, NOW)
    # Sent now, the message for #rust would be refused: the new session is not in #rust yet.
    assert alice.take_outbox() == [{"type": "command", "name": "join", "args": "#rust"}]
    alice.handle({"type": "joined", "room": "#rust", "members": []}, NOW)
    assert alice.take_outbox() == [frame]


def test_a_refused_rejoin_does_not_hold_the_messages_back(ed_alice: IdentityKey) -> None:
    alice = client_on(ed_alice, "alice")
    _welcome(alice)
    alice.handle({"type": "joined", "room": "#banned", "members": []}, NOW)
    [frame] = _typed(alice, "still there?")
    alice.prepare_reconnect()
    alice.handle({"type": "welcome", "server": "cluster", "nick": "alice"}, NOW)
    assert alice.take_outbox() == [{"type": "command", "name": "join", "args": "#banned"}]
    error = {"type": "error", "text": "you are banned from #banned"}
    assert alice.handle(error, NOW) == [Line("error", NOW, "you are banned from #banned")]
    assert alice.take_outbox() == [frame]


def test_lines_typed_while_disconnected_are_queued_and_go_after_the_unacknowledged(
    alice: ChatClient,
) -> None:
    [old] = _typed(alice, "before the loss")
    alice.prepare_reconnect()
    [pending] = alice.user_input("after the loss", NOW + 10)
    assert pending.delivery == "pending"
    alice.user_input("/topic still here", NOW + 10)
    assert alice.outbox == []
    alice.handle({"type": "welcome", "server": "cluster", "nick": "alice"}, NOW)
    resent, new, topic = alice.take_outbox()
    assert (resent, new["body"], topic["name"]) == (old, "after the loss", "topic")
    assert resent["counter"] < new["counter"]
    # Once re-sent, new messages go straight out again.
    assert [frame["body"] for frame in _typed(alice, "live")] == ["live"]


def test_a_resent_message_is_delivered_only_on_the_servers_sent(alice: ChatClient) -> None:
    first, second = _typed(alice, "one", "two")
    _reconnected(alice)
    # The server committed the first before the connection was lost: it acknowledges it again.
    assert _outcomes(alice.handle(_sent(first), NOW)) == [("one", "delivered", "")]
    # A replay error is no proof of delivery (a later line may have raised the counter).
    assert _outcomes(alice.handle(_error(REPLAYED, second["counter"]), NOW)) == [
        ("two", "refused", REPLAYED)
    ]
    assert alice.unacknowledged == []
    assert _reconnected(alice) == []


def test_replay_error_for_a_first_sending_refuses_it(alice: ChatClient) -> None:
    [frame] = _typed(alice, "once")
    assert _outcomes(alice.handle(_error(REPLAYED, frame["counter"]), NOW)) == [
        ("once", "refused", REPLAYED)
    ]
    assert alice.unacknowledged == []


def test_replay_error_for_a_message_first_sent_while_reconnecting_refuses_it(
    alice: ChatClient,
) -> None:
    alice.prepare_reconnect()
    alice.user_input("typed during the outage", NOW)
    [frame] = _reconnected(alice)
    assert _outcomes(alice.handle(_error(REPLAYED, frame["counter"]), NOW)) == [
        ("typed during the outage", "refused", REPLAYED)
    ]


def test_other_errors_for_a_resent_message_refuse_it_and_it_is_not_resent(
    alice: ChatClient,
) -> None:
    [frame] = _typed(alice, "into the void")
    _reconnected(alice)
    assert _outcomes(alice.handle(_error(DEGRADED_ERROR, frame["counter"]), NOW)) == [
        ("into the void", "refused", DEGRADED_ERROR)
    ]
    assert alice.unacknowledged == []
    assert _reconnected(alice) == []


def test_an_error_for_a_counter_not_ours_is_shown(alice: ChatClient) -> None:
    [frame] = _typed(alice, "kept")
    assert alice.handle(_error(REPLAYED, 7), NOW) == [Line("error", NOW, REPLAYED)]
    assert alice.unacknowledged == [frame]


@pytest.mark.parametrize("counter", ["7", True, None, -1])
def test_an_error_with_a_counter_that_is_no_integer_is_shown(
    alice: ChatClient, counter: object
) -> None:
    [frame] = _typed(alice, "kept")
    assert alice.handle(_error(REPLAYED, counter), NOW) == [  # type: ignore[arg-type]
        Line("error", NOW, REPLAYED)
    ]
    assert alice.unacknowledged == [frame]


# --- no duplicates on screen -----------------------------------------------------------------


def test_first_history_is_shown_whole(alice: ChatClient, ed_carol: IdentityKey) -> None:
    lines = alice.handle(_history(_message(ed_carol, 1, "a"), _message(ed_carol, 2, "b")), NOW)
    assert [line.text for line in lines] == ["Last 2 messages of #general:", "a", "b"]


def test_history_after_a_reconnect_shows_only_what_was_missed(
    alice: ChatClient, ed_carol: IdentityKey
) -> None:
    seen = [_message(ed_carol, 1, "seen in history"), _message(ed_carol, 2, "seen live")]
    alice.handle(_history(seen[0]), NOW)
    assert alice.handle(seen[1], NOW)[0].verified is True
    missed = [_message(ed_carol, 3, "said while"), _message(ed_carol, 4, "we were away")]
    _reconnected(alice)
    lines = alice.handle(_history(*seen, *missed), NOW)
    assert [(line.text, line.history, line.verified) for line in lines] == [
        ("2 missed messages of #general:", None, None),
        ("said while", True, True),
        ("we were away", True, True),
    ]
    # Nothing missed at all: nothing shown, not even a heading.
    assert alice.handle(_history(*seen, *missed), NOW) == []


def test_own_messages_are_not_shown_again_from_history(
    alice: ChatClient, ed_alice: IdentityKey, ed_carol: IdentityKey
) -> None:
    [frame] = _typed(alice, "mine")
    own = {
        **{k: v for k, v in frame.items() if k != "type"},
        "type": "message",
        "from": "alice",
        "key": base64.b64encode(ed_alice.spki_der).decode(),
    }
    lines = alice.handle(_history(own, _message(ed_carol, 1, "theirs")), NOW)
    assert [line.text for line in lines] == ["1 missed message of #general:", "theirs"]


def test_an_unverified_history_entry_does_not_hide_the_genuine_one(
    alice: ChatClient, ed_carol: IdentityKey
) -> None:
    genuine = _message(ed_carol, 5, "genuine")
    forged = {**genuine, "body": "forged"}
    [_, line] = alice.handle(_history(forged), NOW)
    assert (line.text, line.verified) == ("forged", False)
    [_, line] = alice.handle(_history(genuine), NOW)
    assert (line.text, line.verified) == ("genuine", True)


def test_ignored_senders_stay_hidden_in_a_partial_history(
    alice: ChatClient, ed_carol: IdentityKey, ed_dave: IdentityKey
) -> None:
    alice.handle(_message(ed_carol, 1, "seen"), NOW)
    alice.ignored.add(ed_dave.fingerprint)
    lines = alice.handle(
        _history(_message(ed_carol, 1, "seen"), _message(ed_dave, 1, "hidden", nick="dave")),
        NOW,
    )
    assert [line.text for line in lines] == ["1 missed message of #general:"]


def test_a_live_duplicate_is_not_shown_again_and_an_older_line_is_a_replay(
    alice: ChatClient, ed_carol: IdentityKey
) -> None:
    message = _message(ed_carol, 2, "once")
    assert alice.handle(message, NOW)[0].verified is True
    assert alice.handle(message, NOW) == []
    [line] = alice.handle(_message(ed_carol, 1, "older, never shown"), NOW)
    assert (line.verified, line.problem) == (False, "replayed: shown before")


def test_the_memory_of_shown_messages_is_bounded(
    alice: ChatClient, ed_carol: IdentityKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify_module, "MAX_REMEMBERED_SHOWN", 2)
    messages = [_message(ed_carol, counter, f"m{counter}") for counter in (1, 2, 3)]
    for message in messages:
        alice.handle(message, NOW)
    # The oldest was forgotten: a history replay shows it again, the other two not.
    lines = alice.handle(_history(*messages), NOW)
    assert [line.text for line in lines] == ["1 missed message of #general:", "m1"]


# --- degraded --------------------------------------------------------------------------------


def test_degraded_and_restored_notices(alice: ChatClient) -> None:
    assert alice.degraded is False
    notice = {"type": "notice", "text": DEGRADED, "degraded": True}
    assert alice.handle(notice, NOW) == [Line("notice", NOW, DEGRADED)]
    assert alice.degraded is True
    # A notice without the flag leaves the state alone.
    alice.handle({"type": "notice", "text": "hello"}, NOW)
    assert alice.degraded is True
    restored = {"type": "notice", "text": "chat restored", "degraded": False}
    assert alice.handle(restored, NOW) == [Line("notice", NOW, "chat restored")]
    assert alice.degraded is False


def test_a_new_session_is_not_degraded_until_it_says_so(alice: ChatClient) -> None:
    alice.handle({"type": "notice", "text": DEGRADED, "degraded": True}, NOW)
    alice.prepare_reconnect()
    assert alice.degraded is False


def test_a_command_too_big_for_one_message_is_refused_at_once(alice: ChatClient) -> None:
    [refused] = alice.user_input("/topic " + "x" * 70_000, NOW)
    assert refused.kind == "error" and refused.ref != 0
    assert "more than one message carries" in refused.text
    assert alice.undelivered == [refused]
    assert (alice.outbox, alice.outstanding) == ([], 0)


def test_a_late_answer_sends_every_message_in_flight_again_in_order(alice: ChatClient) -> None:
    """A copy of the oldest must not arrive behind a later line the server held back for it:
    the later ones go again too, after it."""
    first, second, third = _typed(alice, "one", "two", "three")  # at NOW, NOW + 1, NOW + 2
    alice.handle(_sent(second), NOW + 3)
    alice.tick(NOW + ACK_TIMEOUT)
    assert [encode_frame(f) for f in alice.take_outbox()] == [
        encode_frame(first),
        encode_frame(third),
    ]


def test_a_late_answer_behind_flood_control_still_waits_for_its_turn(alice: ChatClient) -> None:
    """The line flood control refused goes first, after its wait; the late one after it."""
    first, second = _typed(alice, "one", "two")  # sent at NOW and NOW + 1
    refusal = {**_error("flood control: wait", first["counter"]), "retry_after": 60.0}
    alice.handle(refusal, NOW + 1)
    assert alice.wake_at == NOW + 1 + ACK_TIMEOUT  # second's answer is due by then
    assert alice.tick(NOW + 1 + ACK_TIMEOUT) == [] and alice.take_outbox() == []
    assert alice.wake_at is not None and alice.wake_at >= NOW + 61  # flood control's wait
    alice.tick(NOW + 61)
    assert [encode_frame(f) for f in alice.take_outbox()] == [
        encode_frame(first),
        encode_frame(second),
    ]


def test_a_late_answer_for_a_line_waiting_to_go_again_is_its_outcome(alice: ChatClient) -> None:
    first, second = _typed(alice, "one", "two")  # sent at NOW and NOW + 1
    refusal = {**_error("flood control: wait", second["counter"]), "retry_after": 60.0}
    alice.handle(refusal, NOW + 2)
    alice.tick(NOW + ACK_TIMEOUT)  # "one" back in the queue, behind flood control's wait
    assert alice.take_outbox() == []
    assert _outcomes(alice.handle(_sent(first), NOW + 30)) == [("one", "delivered", "")]
    alice.tick(NOW + 62)
    assert [encode_frame(f) for f in alice.take_outbox()] == [encode_frame(second)]
