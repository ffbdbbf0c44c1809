"""ChatClient: composing signed messages, checking relayed ones, turning frames into Lines."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from tlschat.chat.client.receiving import ChatClient
from tlschat.chat.envelope import SignedMessage
from tlschat.chat.frames import decode_frame, encode_frame, parse_signed_message
from tlschat.chat.lines import Line
from tlschat.chat.server.events import ChatServer
from tlschat.protocol.identity import IdentityKey

from .helpers import NETWORK, NOW, NOW_MS, client_on, command, make_server, peer_of

ALICE, BOB = 1, 2


@pytest.fixture
def alice(rsa_alice: IdentityKey) -> ChatClient:
    return client_on(rsa_alice, "alice")


@pytest.fixture
def bob(ed_bob: IdentityKey) -> ChatClient:
    return client_on(ed_bob, "bob")


@pytest.fixture
def server(alice: ChatClient, bob: ChatClient) -> ChatServer:
    server = make_server()
    for session_id, client in ((ALICE, alice), (BOB, bob)):
        server.connect(session_id, peer_of(client.identity), "127.0.0.1:1", NOW)
        out = server.receive(session_id, client.hello_frame(), NOW)
        for target, frame in out:
            if target == session_id:
                client.handle(frame, NOW)
    return server


def relay(server: ChatServer, frame: dict[str, Any], now: float = NOW) -> dict[str, Any]:
    """Send alice's say frame through the server and return what bob receives.

    Alice gets the acknowledgement of her message, after the relayed copy, nothing else.
    """
    out = server.receive(ALICE, frame, now)
    ack = {"type": "sent", "target": frame["target"], "counter": frame["counter"]}
    assert [sid for sid, _ in out] == [BOB, ALICE], out
    assert out[1] == (ALICE, ack), out
    # Through the wire encoding, as the real glue does.
    return decode_frame(encode_frame(out[0][1]))


# --- compose ---------------------------------------------------------------------------------


def test_hello_frame(alice: ChatClient) -> None:
    assert alice.hello_frame() == {"type": "hello", "nick": "alice"}
    assert client_on(alice.identity).hello_frame() == {"type": "hello", "nick": ""}


def test_new_client_state(alice: ChatClient) -> None:
    assert (alice.nick, alice.rooms, alice.room) == ("", [], "#general")
    assert (alice.quit_requested, alice.dismissed, alice.take_outbox()) == (False, "", [])


def test_compose_builds_signed_say_frame(alice: ChatClient, rsa_alice: IdentityKey) -> None:
    frame = alice.compose("héllo ✓", NOW)
    assert frame["type"] == "say"
    assert frame["target"] == "#general"
    assert frame["sender"] == rsa_alice.fingerprint
    assert frame["counter"] == 1_700_000_000_000_000  # microseconds of `now`
    assert frame["ts"] == NOW_MS
    assert frame["body"] == "héllo ✓"
    assert parse_signed_message(frame).verify(peer_of(rsa_alice)) is True


def test_compose_counter_strictly_increases(alice: ChatClient) -> None:
    counters = [alice.compose("x", NOW)["counter"] for _ in range(5)]
    assert counters == [1_700_000_000_000_000 + i for i in range(5)]
    # A clock that goes backwards still never repeats a counter.
    earlier = alice.compose("x", NOW - 3600)["counter"]
    assert earlier == counters[-1] + 1
    # A clock that jumps forward moves the counter to its microseconds.
    later = alice.compose("x", NOW + 1)["counter"]
    assert later == 1_700_000_001_000_000


def test_compose_uses_current_room(alice: ChatClient) -> None:
    alice.room = "#elsewhere"
    assert alice.compose("x", NOW)["target"] == "#elsewhere"


def test_compose_to_an_explicit_target(alice: ChatClient, ed_bob: IdentityKey) -> None:
    frame = alice.compose("x", NOW, "@" + ed_bob.fingerprint)
    assert frame["target"] == "@" + ed_bob.fingerprint
    assert parse_signed_message(frame).verify(peer_of(alice.identity)) is True


def test_composed_frames_accepted_by_server(
    server: ChatServer, alice: ChatClient, rsa_alice: IdentityKey
) -> None:
    first = alice.compose("one", NOW)
    second = alice.compose("two", NOW)  # same `now`
    for frame in (first, second):
        received = relay(server, decode_frame(encode_frame(frame)))
        assert received["type"] == "message"
        assert received["body"] == frame["body"]
    assert server.store.last_counter(rsa_alice.fingerprint) == second["counter"]


def test_new_client_with_same_key_is_not_a_replay(
    server: ChatServer, alice: ChatClient, rsa_alice: IdentityKey
) -> None:
    # A restarted client (counter reset) still produces counters above the old ones.
    server.receive(ALICE, alice.compose("before restart", NOW), NOW)
    restarted = client_on(rsa_alice, "alice")
    assert relay(server, restarted.compose("after restart", NOW + 0.001))["type"] == "message"


# --- handling relayed messages ---------------------------------------------------------------


def test_relayed_message_is_verified(
    server: ChatServer, alice: ChatClient, bob: ChatClient, rsa_alice: IdentityKey
) -> None:
    relayed = relay(server, alice.compose("hi bob ✓", NOW))
    lines = bob.handle(relayed, NOW + 5)
    assert lines == [
        Line(
            kind="message",
            timestamp=NOW_MS / 1000,
            text="hi bob ✓",
            nick="alice",
            fingerprint=rsa_alice.fingerprint,
            room="#general",
            verified=True,
            key_changed=False,
            id=f"{rsa_alice.fingerprint}:{int(NOW * 1_000_000)}",
        )
    ]


def test_consecutive_messages_all_verified(
    server: ChatServer, alice: ChatClient, bob: ChatClient
) -> None:
    for body in ("one", "two", "three"):
        [line] = bob.handle(relay(server, alice.compose(body, NOW)), NOW)
        assert (line.text, line.verified) == (body, True)


def test_tampered_body_is_unverified(
    server: ChatServer, alice: ChatClient, bob: ChatClient
) -> None:
    relayed = relay(server, alice.compose("original", NOW))
    relayed["body"] = "forged by the server"
    [line] = bob.handle(relayed, NOW)
    assert line.kind == "message"
    assert line.text == "forged by the server"
    assert line.verified is False
    # The forgery did not consume the counter: the genuine message still verifies.
    relayed["body"] = "original"
    assert bob.handle(relayed, NOW)[0].verified is True


@pytest.mark.parametrize("field", ["target", "counter", "ts", "sender"])
def test_tampered_envelope_field_is_unverified(
    server: ChatServer, alice: ChatClient, bob: ChatClient, rsa_mallory: IdentityKey, field: str
) -> None:
    relayed = relay(server, alice.compose("hi", NOW))
    if field == "target":
        bob.rooms.append("#other")  # so that only the signature can refuse it
    relayed[field] = {
        "target": "#other",
        "counter": relayed["counter"] + 1,
        "ts": relayed["ts"] + 1,
        "sender": rsa_mallory.fingerprint,
    }[field]
    assert bob.handle(relayed, NOW)[0].verified is False


def test_wrong_key_is_unverified(
    server: ChatServer, alice: ChatClient, bob: ChatClient, rsa_mallory: IdentityKey
) -> None:
    relayed = relay(server, alice.compose("hi", NOW))
    relayed["key"] = base64.b64encode(rsa_mallory.spki_der).decode()
    [line] = bob.handle(relayed, NOW)
    assert (line.kind, line.text, line.verified) == ("message", "hi", False)


def test_unparseable_key_is_unverified(
    server: ChatServer, alice: ChatClient, bob: ChatClient
) -> None:
    relayed = relay(server, alice.compose("hi", NOW))
    relayed["key"] = base64.b64encode(b"not a key").decode()
    assert bob.handle(relayed, NOW)[0].verified is False


def test_server_forged_message_with_own_key_is_unverified(
    bob: ChatClient, rsa_alice: IdentityKey, rsa_mallory: IdentityKey
) -> None:
    bob.handle({"type": "joined", "room": "#general", "members": []}, NOW)
    # A message genuinely signed by mallory but claiming to be from alice's fingerprint.
    message = SignedMessage.create(rsa_mallory, NETWORK, "#general", 1, NOW_MS, "hi")
    frame = {
        "type": "message",
        "from": "alice",
        "key": base64.b64encode(rsa_mallory.spki_der).decode(),
        "network": NETWORK,
        "target": "#general",
        "sender": rsa_alice.fingerprint,
        "counter": 1,
        "ts": NOW_MS,
        "body": "hi",
        "sig": base64.b64encode(message.signature).decode(),
    }
    assert bob.handle(frame, NOW)[0].verified is False


def test_replayed_message_is_unverified(
    server: ChatServer, alice: ChatClient, bob: ChatClient
) -> None:
    relayed = relay(server, alice.compose("once", NOW))
    assert bob.handle(relayed, NOW)[0].verified is True
    # The same line again is a re-delivery: shown once only.
    assert bob.handle(relayed, NOW) == []
    # After a restart of bob's client (same ledger, as the glue keeps it), it is a replay.
    restarted = ChatClient(bob.identity, "bob")
    restarted.use_network(NETWORK, bob.verifier.ledger)
    restarted.handle({"type": "joined", "room": "#general", "members": []}, NOW)
    [line] = restarted.handle(relayed, NOW)
    assert (line.verified, line.problem) == (False, "replayed: shown before")


def test_older_counter_is_unverified(
    server: ChatServer, alice: ChatClient, bob: ChatClient
) -> None:
    first = relay(server, alice.compose("first", NOW))
    second = relay(server, alice.compose("second", NOW))
    assert bob.handle(second, NOW)[0].verified is True
    assert bob.handle(first, NOW)[0].verified is False


def test_malformed_message_frame_gives_error_line(
    server: ChatServer, alice: ChatClient, bob: ChatClient
) -> None:
    relayed = relay(server, alice.compose("hi", NOW))
    del relayed["sig"]
    assert bob.handle(relayed, NOW) == [
        Line("error", NOW, "malformed 'message' frame from server: 'sig' must be a string")
    ]
    relayed["sig"] = "AAAA"
    relayed["from"] = None
    assert bob.handle(relayed, NOW) == [
        Line("error", NOW, "malformed 'message' frame from server: 'from' must be a string")
    ]


# --- other frames ----------------------------------------------------------------------------


def test_welcome_from_real_server(server: ChatServer, alice: ChatClient, bob: ChatClient) -> None:
    assert alice.nick == "alice"
    assert bob.nick == "bob"
    assert alice.rooms == bob.rooms == ["#general"]


def test_join_line(bob: ChatClient) -> None:
    frame = {"type": "join", "room": "#general", "nick": "alice", "fingerprint": "SHA256:a"}
    assert bob.handle(frame, NOW) == [
        Line("join", NOW, "alice joined #general", "alice", "SHA256:a", "#general")
    ]
    assert bob.directory["alice"] == "SHA256:a"


def test_leave_line_with_and_without_reason(bob: ChatClient) -> None:
    frame = {
        "type": "leave",
        "room": "#general",
        "nick": "alice",
        "fingerprint": "SHA256:a",
        "reason": "connection lost",
    }
    assert bob.handle(frame, NOW) == [
        Line("leave", NOW, "alice left #general (connection lost)", "alice", "SHA256:a", "#general")
    ]
    del frame["reason"]
    assert bob.handle(frame, NOW)[0].text == "alice left #general"


def test_join_ignores_reason(bob: ChatClient) -> None:
    frame = {
        "type": "join",
        "room": "#general",
        "nick": "alice",
        "fingerprint": "SHA256:a",
        "reason": "ignored",
    }
    assert bob.handle(frame, NOW)[0].text == "alice joined #general"


def test_leave_from_real_server(server: ChatServer, bob: ChatClient) -> None:
    [(target, frame)] = server.disconnect(ALICE, "quit")
    assert target == BOB
    [line] = bob.handle(frame, NOW)
    assert (line.kind, line.text, line.nick) == ("leave", "alice left #general (quit)", "alice")


def test_nick_line_for_someone_else(server: ChatServer, bob: ChatClient) -> None:
    frame = {"type": "nick", "old": "alice", "new": "alicia", "fingerprint": "SHA256:a"}
    assert bob.handle(frame, NOW) == [
        Line("nick", NOW, "alice is now known as alicia", "alicia", "SHA256:a")
    ]
    assert bob.nick == "bob"
    assert bob.directory["alicia"] == "SHA256:a"


def test_nick_line_for_self_updates_nick(
    server: ChatServer, bob: ChatClient, ed_bob: IdentityKey
) -> None:
    out = command(server, BOB, "nick", "robert")
    frame = dict(out)[BOB]
    assert frame["fingerprint"] == ed_bob.fingerprint
    assert bob.handle(frame, NOW) == [Line("notice", NOW, "You are now known as robert")]
    assert bob.nick == "robert"


@pytest.mark.parametrize("kind", ["notice", "motd", "error"])
def test_text_frames(bob: ChatClient, kind: str) -> None:
    # The message of the day belongs to the room the user lands in: #general, after a welcome.
    room = "#general" if kind == "motd" else ""
    expected = [Line(kind, NOW, "some text", room=room)]
    assert bob.handle({"type": kind, "text": "some text"}, NOW) == expected


@pytest.mark.parametrize(
    ("frame", "text"),
    [
        ({"type": "join", "room": "#general"}, "'join' frame from server: 'nick' must be a string"),
        (
            {"type": "leave", "nick": "a", "room": "#general"},
            "'leave' frame from server: 'fingerprint' must be a string",
        ),
        ({"type": "nick", "old": "a"}, "'nick' frame from server: 'new' must be a string"),
        ({"type": "notice"}, "'notice' frame from server: 'text' must be a string"),
        ({"type": "welcome", "nick": 1}, "'welcome' frame from server: 'nick' must be a string"),
        (
            {"type": "welcome", "nick": "a"},
            "'welcome' frame from server: 'server' must be a string",
        ),
        ({"type": "joined"}, "'joined' frame from server: 'room' must be a string"),
        ({"type": "parted", "room": 5}, "'parted' frame from server: 'room' must be a string"),
        ({"type": "info", "lines": []}, "'info' frame from server: 'title' must be a string"),
        (
            {"type": "topic", "room": "#a", "topic": "t"},
            "'topic' frame from server: 'by' must be a string",
        ),
        ({"type": "whois", "found": False}, "'whois' frame from server: 'query' must be a string"),
        ({"type": "bye"}, "'bye' frame from server: 'reason' must be a string"),
        (
            {"type": "history", "room": "#a", "messages": {}},
            "'history' frame from server: 'messages' must be a list",
        ),
        (
            {"type": "history", "messages": []},
            "'history' frame from server: 'room' must be a string",
        ),
    ],
)
def test_malformed_frames_give_error_line(
    bob: ChatClient, frame: dict[str, Any], text: str
) -> None:
    assert bob.handle(frame, NOW) == [Line("error", NOW, "malformed " + text)]


def test_unknown_frame_gives_error_line(bob: ChatClient) -> None:
    assert bob.handle({"type": "dance"}, NOW) == [
        Line("error", NOW, "unknown frame type 'dance' from server")
    ]


# --- Line ------------------------------------------------------------------------------------


def _clock(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp))


def test_render_verified_message() -> None:
    line = Line("message", NOW, "hello there", "alice", "SHA256:a", "#general", True)
    assert line.render("#general") == f"[{_clock(NOW)}] ✓ <alice> hello there"


@pytest.mark.parametrize("verified", [False, None])
def test_render_unverified_message(verified: bool | None) -> None:
    line = Line("message", NOW, "hello there", "alice", "SHA256:a", "#general", verified)
    assert line.render("#general") == f"[{_clock(NOW)}] ✗ UNVERIFIED <alice> hello there"


def test_render_names_a_room_other_than_the_current_one() -> None:
    line = Line("message", NOW, "hi", "alice", "SHA256:a", "#rust", True)
    assert line.render("#general") == f"[{_clock(NOW)}] #rust ✓ <alice> hi"
    assert line.render("#rust") == f"[{_clock(NOW)}] ✓ <alice> hi"
    assert line.render() == f"[{_clock(NOW)}] #rust ✓ <alice> hi"
    topic = Line("topic", NOW, "bob set the topic of #rust: x", "bob", room="#rust")
    assert topic.render("#general") == f"[{_clock(NOW)}] #rust *** bob set the topic of #rust: x"


def test_render_action_and_private() -> None:
    action = Line("action", NOW, "waves", "alice", "SHA256:a", "#general", True)
    assert action.render("#general") == f"[{_clock(NOW)}] ✓ * alice waves"
    private = Line("private", NOW, "psst", "alice", "SHA256:a", "", True)
    assert private.render("#general") == f"[{_clock(NOW)}] ✓ *alice* psst"
    forged = Line("private", NOW, "psst", "alice", "SHA256:a", "", False)
    assert forged.render("#general") == f"[{_clock(NOW)}] ✗ UNVERIFIED *alice* psst"


def test_render_error_and_other_lines() -> None:
    assert Line("error", NOW, "oops").render() == f"[{_clock(NOW)}] !!! oops"
    assert Line("join", NOW, "alice joined #general").render() == (
        f"[{_clock(NOW)}] *** alice joined #general"
    )
    assert Line("notice", NOW, "hi").render() == f"[{_clock(NOW)}] *** hi"


def test_render_clock_matches_localtime() -> None:
    stamp = 1_234_567_890.75
    expected = time.localtime(stamp)
    rendered = Line("notice", stamp, "x").render()
    assert rendered == (
        f"[{expected.tm_hour:02d}:{expected.tm_min:02d}:{expected.tm_sec:02d}] *** x"
    )


def test_render_relayed_message(server: ChatServer, alice: ChatClient, bob: ChatClient) -> None:
    [line] = bob.handle(relay(server, alice.compose("hi", NOW)), NOW)
    assert line.render(bob.room) == f"[{_clock(NOW)}] ✓ <alice> hi"


def test_to_json_drops_empty_fields() -> None:
    assert Line("notice", NOW, "hi").to_json() == {
        "kind": "notice",
        "timestamp": NOW,
        "text": "hi",
    }


def test_to_json_keeps_false_and_full_fields() -> None:
    line = Line("message", NOW, "hi", "alice", "SHA256:a", "#general", False, False, True)
    assert line.to_json() == {
        "kind": "message",
        "timestamp": NOW,
        "text": "hi",
        "nick": "alice",
        "fingerprint": "SHA256:a",
        "room": "#general",
        "verified": False,
        "key_changed": False,
        "history": True,
    }
    assert Line("message", NOW, "hi", "alice", verified=True).to_json() == {
        "kind": "message",
        "timestamp": NOW,
        "text": "hi",
        "nick": "alice",
        "verified": True,
    }


# --- what a malicious server or sender cannot make the client show ---------------------------


def test_message_signed_for_another_room_is_unverified(
    server: ChatServer, alice: ChatClient, bob: ChatClient
) -> None:
    relayed = relay(server, alice.compose("meant for #general", NOW))
    bob.handle({"type": "joined", "room": "#secret", "members": []}, NOW)
    bob.handle({"type": "parted", "room": "#general"}, NOW)
    assert (bob.rooms, bob.room) == (["#secret"], "#secret")
    (line,) = bob.handle(relayed, NOW)
    assert line.verified is False
    assert line.room == "#general"


def test_nick_shown_with_another_key_is_flagged(
    server: ChatServer, alice: ChatClient, bob: ChatClient, rsa_alice: IdentityKey
) -> None:
    first = relay(server, alice.compose("hello", NOW))
    assert bob.handle(first, NOW)[0].key_changed is False
    impostor = client_on(IdentityKey.generate("ed25519"), "alice")
    frame = impostor.compose("it is me, alice", NOW)
    relayed = {
        "type": "message",
        "from": "alice",
        "key": base64.b64encode(impostor.identity.spki_der).decode(),
        **{k: v for k, v in frame.items() if k != "type"},
    }
    (line,) = bob.handle(relayed, NOW)
    assert line.verified is True
    assert line.key_changed is True
    assert f"[WARNING: alice now has key {impostor.identity.fingerprint}]" in line.render()


def test_nick_learned_from_joined_members_is_flagged_with_another_key(
    server: ChatServer, bob: ChatClient
) -> None:
    impostor = client_on(IdentityKey.generate("ed25519"), "alice")
    frame = impostor.compose("hi", NOW)
    relayed = {
        "type": "message",
        "from": "alice",
        "key": base64.b64encode(impostor.identity.spki_der).decode(),
        **{k: v for k, v in frame.items() if k != "type"},
    }
    # Bob learned alice's key from the member list of #general, before she said anything.
    assert bob.handle(relayed, NOW)[0].key_changed is True


def test_join_with_another_key_for_a_known_nick_is_flagged(bob: ChatClient) -> None:
    join = {"type": "join", "room": "#general", "nick": "carol", "fingerprint": "SHA256:one"}
    assert "WARNING" not in bob.handle(join, NOW)[0].text
    again = {**join, "fingerprint": "SHA256:two"}
    assert "WARNING: not the key carol had before; now SHA256:two" in bob.handle(again, NOW)[0].text


def test_render_neutralizes_line_breaks_and_escapes() -> None:
    line = Line("message", NOW, "hi\n[12:00:00] ✓ <bob> fake\x1b[2J", "al\rice", verified=True)
    rendered = line.render()
    assert "\n" not in rendered and "\r" not in rendered and "\x1b" not in rendered
    # One line per message: the newline is shown as ↵, the carriage return and escape neutralized.
    assert rendered.endswith("<al\ufffdice> hi ↵ [12:00:00] ✓ <bob> fake\ufffd[2J")


def test_render_neutralizes_the_room_name() -> None:
    line = Line("notice", NOW, "x", room="#a\x1b[2J")
    assert "\x1b" in line.room
    assert line.render("#general") == f"[{_clock(NOW)}] #a\ufffd[2J *** x"


def test_render_neutralizes_the_fingerprint_in_a_key_warning() -> None:
    line = Line("message", NOW, "hi", "alice", "SHA256:\x1b[2J", "", True, key_changed=True)
    rendered = line.render()
    assert "\x1b" not in rendered
    assert rendered.endswith("[WARNING: alice now has key SHA256:\ufffd[2J]")


def test_hostile_sender_field_cannot_reach_the_terminal(
    server: ChatServer, alice: ChatClient, bob: ChatClient
) -> None:
    first = relay(server, alice.compose("hello", NOW))
    bob.handle(first, NOW)
    forged = {**relay(server, alice.compose("again", NOW)), "sender": "\x1b]0;owned\x07"}
    (line,) = bob.handle(forged, NOW)
    assert (line.verified, line.key_changed) == (False, True)
    assert "\x1b" not in line.render() and "\x07" not in line.render()
