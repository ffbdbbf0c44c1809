"""Chat-layer probes: a hostile user with a valid channel (docs/PROTOCOL.md sections 21-22).

Here the victim's answer is not an alert: the server refuses the frame with an ``error`` frame to
the sender only and keeps the connection. So each probe asserts (1) the error frame the sender
gets, (2) that no alert was sent (the evil client's reads go through its connection, which would
raise on one), (3) that the socket stays open: a valid message sent afterwards on the same
connection is delivered, and the connection ends cleanly when the evil client says so, and (4)
that the refused message reached neither of the two clients connected since the module started,
checked after that later message (a barrier), and that a fresh client still chats with them.
"""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

from tlschat.chat.envelope import MAX_BODY_BYTES, SignedMessage
from tlschat.chat.frames import MAX_FRAME, b64, encode_frame, say_frame
from tlschat.chat.server.model import PLAIN_PRIVATE_REJECTION

from .conftest import Arena, said
from .evil import EvilClient, flip, new_identity, signed_say


def _chatter(arena: Arena, nick: str = "mallory") -> tuple[EvilClient, str]:
    evil = arena.evil()
    evil.handshake()
    nick = evil.join_chat(nick)["nick"]
    return evil, nick


def _refused(evil: EvilClient, frame: dict[str, Any], text: str) -> None:
    """(1) and (2): the sender gets an error frame saying ``text``, and no alert."""
    start = len(evil.frames)
    evil.send_frame(frame)
    error = evil.wait_frame(lambda f: f.get("type") in ("error", "message"), "an answer", start)
    assert error["type"] == "error", f"delivered back instead of refused: {error}"
    assert text in error["text"], error


def _never_delivered(
    arena: Arena, evil: EvilClient, nick: str, marker: str, seen: dict[str, int] | None = None
) -> None:
    """(3) and (4): a later message on the same connection arrives; the marked one never did
    (beyond ``seen``: how many times each bystander legitimately saw the marker)."""
    barrier = arena.unique("barrier")
    evil.say(barrier)
    for name, bystander in (("alice", arena.alice), ("bob", arena.bob)):
        bystander.wait_for_line(said(nick, barrier))
        shown = [line for line in bystander.snapshot() if marker in line]
        assert len(shown) == (seen or {}).get(name, 0), (name, shown)
    evil.close_cleanly()
    arena.expect_quit(evil)
    arena.check_service("a refused chat message")


def test_bad_signature_is_refused(arena: Arena) -> None:
    evil, nick = _chatter(arena)
    marker = arena.unique("forged body")
    frame = signed_say(evil.network, evil.identity, marker)
    frame["sig"] = b64(flip(base64.b64decode(frame["sig"]), 0))
    _refused(evil, frame, "message rejected: bad signature")
    _never_delivered(arena, evil, nick, marker)


def test_message_altered_after_signing_is_refused(arena: Arena) -> None:
    evil, nick = _chatter(arena)
    marker = arena.unique("altered")
    frame = signed_say(evil.network, evil.identity, marker + " (as signed)")
    frame["body"] = marker + " (as sent)"
    _refused(evil, frame, "message rejected: bad signature")
    _never_delivered(arena, evil, nick, marker)


def test_message_signed_by_another_key_is_refused(arena: Arena) -> None:
    """Our fingerprint as sender, but the signature of someone else's key."""
    evil, nick = _chatter(arena)
    marker = arena.unique("signed by someone else")
    frame = signed_say(evil.network, new_identity(), marker)
    frame["sender"] = evil.identity.fingerprint
    _refused(evil, frame, "message rejected: bad signature")
    _never_delivered(arena, evil, nick, marker)


def test_another_users_message_sent_as_ours_is_refused(arena: Arena) -> None:
    """alice's real, validly signed message, replayed through our session."""
    evil, nick = _chatter(arena)
    marker = arena.unique("alice really said this")
    start = len(evil.frames)
    arena.alice.send(marker)
    original = evil.wait_frame(
        lambda f: f.get("type") == "message" and f.get("body") == marker, "alice's message", start
    )
    frame = {
        "type": "say",
        **{k: original[k] for k in ("network", "target", "sender", "counter", "ts")},
    }
    frame.update(body=original["body"], sig=original["sig"])
    _refused(evil, frame, "message rejected: it names another sender")
    _never_delivered(arena, evil, nick, marker, seen={"alice": 1, "bob": 1})


def test_a_message_sent_again_is_acknowledged_and_never_delivered_twice(arena: Arena) -> None:
    evil, nick = _chatter(arena)
    marker = arena.unique("say it once")
    frame = evil.say(marker)
    for bystander in (arena.alice, arena.bob):
        bystander.wait_for_line(said(nick, marker))
    start = len(evil.frames)
    evil.send_frame(frame)
    answer = evil.wait_frame(lambda f: f.get("type") in ("sent", "error"), "an answer", start)
    assert answer == {"type": "sent", "target": "#general", "counter": frame["counter"]}, answer
    # Another message signed under the same counter is a replay.
    other = signed_say(evil.network, evil.identity, marker + " (other)", counter=frame["counter"])
    _refused(evil, other, "message rejected: replayed or out-of-order counter")
    _never_delivered(arena, evil, nick, marker, seen={"alice": 1, "bob": 1})


def test_older_counter_is_refused(arena: Arena) -> None:
    evil, nick = _chatter(arena)
    first = evil.say(arena.unique("counter n"))
    marker = arena.unique("counter n - 1")
    older = signed_say(evil.network, evil.identity, marker, counter=first["counter"] - 1)
    _refused(evil, older, "message rejected: replayed or out-of-order counter")
    _never_delivered(arena, evil, nick, marker)


def test_message_moved_to_another_room_is_refused(arena: Arena) -> None:
    """Signed for #elsewhere, sent to #general where everyone would read it."""
    evil, nick = _chatter(arena)
    marker = arena.unique("meant for elsewhere")
    frame = signed_say(evil.network, evil.identity, marker, "#elsewhere")
    frame["target"] = "#general"
    _refused(evil, frame, "message rejected: bad signature")
    _never_delivered(arena, evil, nick, marker)


def test_message_to_a_room_we_are_not_in_is_refused(arena: Arena) -> None:
    evil, nick = _chatter(arena)
    marker = arena.unique("not a member")
    _refused(
        evil, signed_say(evil.network, evil.identity, marker, "#secret"), "you are not in #secret"
    )
    _never_delivered(arena, evil, nick, marker)


def test_plain_private_message_is_refused(arena: Arena) -> None:
    """Private messages are end-to-end encrypted: a plain one is refused, signed honestly for
    bob's fingerprint or moved to alice's (a moved encrypted one fails the recipient's check of
    the sealed line's target)."""
    evil, nick = _chatter(arena)
    alice, bob = arena.fingerprints["alice"], arena.fingerprints["bob"]
    marker = arena.unique("for bob's eyes")
    frame = signed_say(evil.network, evil.identity, marker, f"@{bob}")
    _refused(evil, frame, PLAIN_PRIVATE_REJECTION)
    _refused(evil, {**frame, "target": f"@{alice}"}, PLAIN_PRIVATE_REJECTION)
    _never_delivered(arena, evil, nick, marker)


def test_oversized_body_is_refused_and_the_maximum_is_delivered(arena: Arena) -> None:
    evil, nick = _chatter(arena)
    marker = arena.unique("oversized")
    too_big = marker + "x" * (MAX_BODY_BYTES + 1 - len(marker))
    _refused(
        evil,
        signed_say(evil.network, evil.identity, too_big),
        f"longer than {MAX_BODY_BYTES} bytes",
    )
    # Multi-byte characters count in bytes: 4097 bytes of "é" is far fewer than 4097 characters.
    wide = marker + "é" * ((MAX_BODY_BYTES - len(marker)) // 2 + 1)
    assert len(wide.encode()) > MAX_BODY_BYTES >= len(wide)
    _refused(
        evil, signed_say(evil.network, evil.identity, wide), f"longer than {MAX_BODY_BYTES} bytes"
    )
    exact = arena.unique("exactly the maximum")
    exact += "y" * (MAX_BODY_BYTES - len(exact))
    evil.say(exact)
    for bystander in (arena.alice, arena.bob):
        bystander.wait_for_line(said(nick, exact))
    _never_delivered(arena, evil, nick, marker)


def test_oversized_fields_are_refused(arena: Arena) -> None:
    evil, nick = _chatter(arena)
    marker = arena.unique("fields")
    message = SignedMessage.create(evil.identity, evil.network, "#general", 10**15, 10**12, marker)
    frame = say_frame(dataclasses.replace(message, target="#" + "g" * 64))
    _refused(evil, frame, "'target' is longer than 64 bytes")
    frame = {**say_frame(message), "sig": "A" * 4096}
    _refused(evil, frame, "'sig' is longer than 2048 bytes")
    frame = {**say_frame(message), "counter": 1 << 64}
    _refused(evil, frame, "'counter' must be an integer")
    _never_delivered(arena, evil, nick, marker)


def test_oversized_chat_line_from_the_real_client_is_refused(arena: Arena) -> None:
    marker = arena.unique("alice pastes a novel")
    mark = arena.alice.mark()
    arena.alice.send(marker + " " + "z" * MAX_BODY_BYTES)
    arena.alice.wait_for_line(f"longer than {MAX_BODY_BYTES} bytes", start=mark)
    barrier = arena.unique("alice goes on")
    arena.alice.send(barrier)
    arena.bob.wait_for_line(said("alice", barrier))
    assert arena.bob.find(marker) is None
    arena.check_service("an oversized line")


def test_oversized_nick_in_hello_gets_a_fallback_nick(arena: Arena) -> None:
    for wanted in ("n" * 25, "N" * 60000, "bad nick\x1b[2J"):
        evil = arena.evil()
        evil.handshake()
        start = len(evil.frames)
        welcome = evil.join_chat(wanted)
        assert welcome["nick"].startswith("user-") and len(welcome["nick"]) <= 24, welcome
        notice = evil.wait_frame(lambda f: f.get("type") == "notice", "notice", start)
        assert "is not a valid nick" in notice["text"]
        joined = f"{welcome['nick']} joined #general"
        for bystander in (arena.alice, arena.bob):
            bystander.wait_for_line(joined)
            assert bystander.find(wanted[:25]) is None
        _never_delivered(arena, evil, welcome["nick"], wanted[:25])


def test_oversized_nick_from_the_real_client_is_refused(arena: Arena) -> None:
    mark = arena.alice.mark()
    arena.alice.send("/nick " + "A" * 25)
    arena.alice.wait_for_line("is not a valid nick", start=mark)
    barrier = arena.unique("still alice")
    arena.alice.send(barrier)
    arena.bob.wait_for_line(said("alice", barrier))  # not renamed
    arena.check_service("an oversized nick")


# ----- replies that grow with what hostile users stored -------------------------------------------


def test_history_full_of_maximal_messages_still_lets_newcomers_join(arena: Arena) -> None:
    """Messages of the maximal size are stored; the history replayed on join outgrows one frame
    (64 KiB): it comes whole as a run of frames, never cutting the newcomer off with
    internal_error."""
    server = arena.harness.server(
        name=arena.unique("history").replace(" #", "-"),
        extra=(
            "--rate",
            "1000",
            "--burst",
            "1000",
        ),
    )
    try:
        with EvilClient(server.port) as evil:
            evil.handshake()
            evil.join_chat("hoarder")
            bodies = [arena.unique("kept") + " " for _ in range(20)]
            bodies = [body + "h" * (MAX_BODY_BYTES - len(body)) for body in bodies]
            for body in bodies:
                evil.say(body)
            evil.say("the last one")
            mark = server.mark()
            newcomer = arena.harness.client("newcomer", server.port, home=arena.home("newcomer"))
            newcomer.wait_joined()
            # It got every message, in order, under one heading, and stays connected.
            newcomer.wait_for_line("the last one")
            shown = [line for line in newcomer.snapshot() if "kept #" in line]
            assert [line.split("> ", 1)[1] for line in shown] == bodies
            assert newcomer.find(f"Last {len(bodies) + 1} messages of #general") is not None
            text = arena.unique("newcomer speaks")
            newcomer.send(text)
            evil.wait_frame(lambda f: f.get("body") == text, "the newcomer's message")
            assert server.find("internal error", start=mark) is None, server.describe()
            evil.close_cleanly()
            newcomer.close_stdin()
            assert newcomer.wait_exit() == 0, newcomer.describe()
    finally:
        server.signal(15)
        server.wait_exit()
    arena.check_service("a history of maximal messages")


def test_rooms_listing_of_many_long_rooms_still_fits_one_frame(arena: Arena) -> None:
    """A dozen keys fill 19 rooms each with a 300-byte topic (each within its key's work
    budget): /rooms and /names must still answer, not cut the asker off with internal_error."""
    sessions = []
    try:
        for index in range(12):
            evil = arena.evil(identity=new_identity())
            sessions.append(evil)
            evil.handshake()
            evil.join_chat("roomhog")
            for room in range(19):
                name = f"#room-{index:02d}-{room:02d}-" + "r" * 20
                evil.send_frame({"type": "command", "name": "join", "args": name})
                evil.send_frame(
                    {"type": "command", "name": "topic", "args": f"{name} " + "t" * 300}
                )
            evil.send_frame({"type": "command", "name": "away", "args": "a" * 200})
            evil.wait_frame(
                lambda f: f.get("type") == "notice" and "marked away" in f.get("text", ""),
                "away",
            )
        asker = arena.evil()
        asker.handshake()
        asker.join_chat("asker")
        for command, title in (("rooms", "Rooms"), ("names", "Members of #general")):
            start = len(asker.frames)
            asker.send_frame({"type": "command", "name": command})
            info = asker.wait_frame(lambda f: f.get("type") in ("info", "error"), command, start)
            assert info.get("title") == title, info
            assert len(encode_frame(info)) <= MAX_FRAME
        asker.close_cleanly()
        arena.expect_quit(asker)
    finally:
        for evil in sessions:
            evil.close()
    arena.check_service("a flood of rooms")
