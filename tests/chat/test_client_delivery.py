"""ChatClient across a cluster: acknowledgements, re-sending after a reconnect, no duplicates.

Pure: the server's frames are written out by hand, as the cluster's servers send them.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tlschat.chat import client as client_module
from tlschat.chat.client import MAX_UNACKNOWLEDGED, ChatClient, Line
from tlschat.chat.envelope import SignedMessage
from tlschat.chat.frames import MAX_FRAME, encode_frame, say_frame
from tlschat.protocol.identity import IdentityKey

from .helpers import NOW, NOW_MS

REPLAYED = "message rejected: replayed or out-of-order counter"
DEGRADED_ERROR = "message not sent: chat degraded (the cluster's store is unreachable)"
DEGRADED = "chat degraded: the cluster's store is unreachable; messages are not being delivered"


def _welcome(client: ChatClient, *rooms: str) -> None:
    """The server welcomes ``client`` (into #general), then answers the joins it asked for."""
    client.handle({"type": "welcome", "server": "cluster", "nick": client.wanted_nick}, NOW)
    client.handle({"type": "joined", "room": "#general", "members": []}, NOW)
    for room in rooms:
        client.handle({"type": "joined", "room": room, "members": []}, NOW)


@pytest.fixture
def alice(ed_alice: IdentityKey) -> ChatClient:
    client = ChatClient(ed_alice, "alice")
    _welcome(client)
    return client


def _typed(client: ChatClient, *texts: str) -> list[dict[str, Any]]:
    """The user types each text; the 'say' frames that go out."""
    for index, text in enumerate(texts):
        assert client.user_input(text, NOW + index) == []
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
    client.handle({"type": "welcome", "server": "cluster", "nick": client.wanted_nick}, NOW)
    client.handle({"type": "joined", "room": "#general", "members": []}, NOW)
    return client.take_outbox()


def _message(
    key: IdentityKey, counter: int, body: str, room: str = "#general", nick: str = "carol"
) -> dict[str, Any]:
    fields = say_frame(SignedMessage.create(key, room, counter, NOW_MS + counter, body))
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


def test_a_sent_message_is_kept_until_acknowledged(alice: ChatClient) -> None:
    first, second = _typed(alice, "one", "two")
    assert alice.unacknowledged == [first, second]
    assert alice.handle(_sent(second), NOW) == []  # the acknowledgement shows nothing
    assert alice.unacknowledged == [first]
    assert alice.handle(_sent(first), NOW) == []
    assert alice.unacknowledged == []
    assert alice.take_outbox() == []


def test_private_messages_and_actions_wait_for_acknowledgement_too(
    alice: ChatClient, ed_bob: IdentityKey
) -> None:
    alice.directory["bob"] = ed_bob.fingerprint
    alice.user_input("/me waves", NOW)
    alice.user_input("/msg bob psst", NOW)
    action, private = alice.take_outbox()
    assert (action["body"], private["target"]) == ("/me waves", "@" + ed_bob.fingerprint)
    assert alice.unacknowledged == [action, private]


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


def test_unacknowledged_messages_are_bounded_the_oldest_given_up(alice: ChatClient) -> None:
    frames = _typed(alice, *(f"m{n}" for n in range(MAX_UNACKNOWLEDGED + 2)))
    assert alice.unacknowledged == frames[2:]


def test_a_message_too_big_to_send_is_refused_and_not_kept(alice: ChatClient) -> None:
    with pytest.raises(ValueError, match=f"exceeds {MAX_FRAME}"):
        alice.user_input("x" * MAX_FRAME, NOW)
    assert (alice.outbox, alice.unacknowledged) == ([], [])


# --- re-sending after a reconnect ------------------------------------------------------------


def test_reconnect_resends_exactly_the_unacknowledged_byte_identical(alice: ChatClient) -> None:
    first, second, third = _typed(alice, "one", "two", "three")
    alice.handle(_sent(second), NOW)
    resent = _reconnected(alice)
    assert [encode_frame(frame) for frame in resent] == [encode_frame(first), encode_frame(third)]
    # Still kept until acknowledged: another loss would re-send them again.
    assert _reconnected(alice) == resent


def test_resending_waits_until_every_room_is_rejoined(ed_alice: IdentityKey) -> None:
    alice = ChatClient(ed_alice, "alice")
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
    alice = ChatClient(ed_alice, "alice")
    _welcome(alice)
    alice.handle({"type": "joined", "room": "#banned", "members": []}, NOW)
    [frame] = _typed(alice, "still there?")
    alice.prepare_reconnect()
    alice.handle({"type": "welcome", "server": "cluster", "nick": "alice"}, NOW)
    assert alice.take_outbox() == [{"type": "command", "name": "join", "args": "#banned"}]
    error = {"type": "error", "text": "you are banned from #banned"}
    assert alice.handle(error, NOW) == [Line("error", NOW, "you are banned from #banned")]
    assert alice.take_outbox() == [frame]


def test_messages_typed_while_reconnecting_go_after_the_unacknowledged(
    alice: ChatClient,
) -> None:
    [old] = _typed(alice, "before the loss")
    alice.prepare_reconnect()
    # The user types before the new session is welcomed: sent first, its higher counter would
    # make the server refuse the older one as a replay.
    alice.user_input("after the loss", NOW + 10)
    assert alice.outbox == []
    alice.handle({"type": "welcome", "server": "cluster", "nick": "alice"}, NOW)
    resent, new = alice.take_outbox()
    assert (resent, new["body"]) == (old, "after the loss")
    assert resent["counter"] < new["counter"]
    # Once re-sent, new messages go straight out again.
    assert [frame["body"] for frame in _typed(alice, "live")] == ["live"]


def test_replay_error_for_a_resent_message_drops_it_silently(alice: ChatClient) -> None:
    first, second = _typed(alice, "one", "two")
    _reconnected(alice)
    # The first had been delivered before the connection was lost; the second had not.
    assert alice.handle(_error(REPLAYED, first["counter"]), NOW) == []
    alice.handle(_sent(second), NOW)
    assert alice.unacknowledged == []
    assert _reconnected(alice) == []


def test_replay_error_for_a_first_sending_is_shown(alice: ChatClient) -> None:
    [frame] = _typed(alice, "once")
    assert alice.handle(_error(REPLAYED, frame["counter"]), NOW) == [Line("error", NOW, REPLAYED)]
    assert alice.unacknowledged == []


def test_replay_error_for_a_message_first_sent_while_reconnecting_is_shown(
    alice: ChatClient,
) -> None:
    alice.prepare_reconnect()
    alice.user_input("typed during the outage", NOW)
    [frame] = _reconnected(alice)
    assert alice.handle(_error(REPLAYED, frame["counter"]), NOW) == [Line("error", NOW, REPLAYED)]


def test_other_errors_for_a_resent_message_are_shown_and_it_is_not_resent(
    alice: ChatClient,
) -> None:
    [frame] = _typed(alice, "into the void")
    _reconnected(alice)
    assert alice.handle(_error(DEGRADED_ERROR, frame["counter"]), NOW) == [
        Line("error", NOW, DEGRADED_ERROR)
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


def test_live_duplicates_are_still_flagged_by_the_counter(
    alice: ChatClient, ed_carol: IdentityKey
) -> None:
    message = _message(ed_carol, 1, "once")
    assert alice.handle(message, NOW)[0].verified is True
    assert alice.handle(message, NOW)[0].verified is False


def test_the_memory_of_shown_messages_is_bounded(
    alice: ChatClient, ed_carol: IdentityKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "MAX_REMEMBERED_SHOWN", 2)
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
