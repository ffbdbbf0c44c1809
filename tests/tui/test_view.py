"""The full-screen client's pure helpers: colours, routing, unread counts, completion, history."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from rich.text import Text

from tlschat.chat.lines import Line
from tlschat.client.view import (
    DELIVERED_STYLE,
    NICK_COLOURS,
    SERVER_BUFFER,
    Buffer,
    Buffers,
    command_help,
    command_table,
    is_mention,
    nick_colour,
    pane_rows,
    render_line,
    short_fingerprint,
)
from tlschat.client.view_input import Completer, History

FP_A = "SHA256:AAAAbbbbCCCCddddEEEEffffGGGGhhhhIIIIjjjjKKK"
FP_B = "SHA256:zzzzyyyyxxxxwwwwvvvvuuuuttttssssrrrrqqqqppp"
NOW = 1_700_000_000.0


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def msg(nick: str, text: str, room: str = "#general", fp: str = FP_A, **kw: object) -> Line:
    return Line("message", NOW, text, nick, fp, room, True, **kw)  # type: ignore[arg-type]


def test_nick_colour_depends_on_the_key_only() -> None:
    assert nick_colour(FP_A) == nick_colour(FP_A)
    assert nick_colour(FP_A) in NICK_COLOURS
    assert nick_colour("") == "default"
    colours = {nick_colour(f"SHA256:key{n}") for n in range(200)}
    assert len(colours) == len(NICK_COLOURS)  # every colour is used


def test_short_fingerprint() -> None:
    assert short_fingerprint(FP_A) == "AAAAbbbb"
    assert short_fingerprint(FP_A, 4) == "AAAA"
    assert short_fingerprint("nocolon") == "nocolon"[:8]


def test_mentions_are_whole_words_from_others() -> None:
    assert is_mention(msg("bob", "hi alice!"), "alice")
    assert is_mention(msg("bob", "ALICE: look"), "alice")
    assert not is_mention(msg("bob", "malice aforethought"), "alice")
    assert not is_mention(msg("bob", "alice_2 is not you"), "alice")
    assert not is_mention(msg("alice", "I am alice"), "alice")
    assert not is_mention(Line("notice", NOW, "alice joined"), "alice")
    assert not is_mention(msg("bob", "hi alice"), "")


def test_render_marks_verified_unverified_and_a_changed_key_loudly() -> None:
    assert render_line(msg("bob", "hi")).plain == "22:13:20 ✓ <bob> hi"
    unverified = Line("message", NOW, "hi", "bob", FP_A, "#general", False)
    assert "✗ UNVERIFIED <bob> hi" in render_line(unverified).plain
    changed = render_line(msg("bob", "trust me", fp=FP_B, key_changed=True)).plain
    assert "⚠ KEY CHANGED: bob now signs with " + FP_B in changed
    assert render_line(Line("action", NOW, "waves", "bob", FP_A, "#g", True)).plain.endswith(
        "* bob waves"
    )
    assert render_line(Line("private", NOW, "psst", "bob", FP_A, "", True)).plain.endswith(
        "*bob* psst"
    )
    assert render_line(Line("error", NOW, "no")).plain == "22:13:20 !!! no"
    join = Line("join", NOW, "bob joined #g [WARNING: not the key bob had before; now X]")
    assert "⚠" in render_line(join).plain
    assert "(history)" in render_line(msg("bob", "old", history=True)).plain


def test_render_neutralizes_control_characters() -> None:
    text = render_line(msg("bo\x1bb", "a\nb\x1b[2J")).plain
    # A newline starts an indented continuation line; nothing else breaks or escapes.
    assert "\x1b" not in text and text.endswith("<bo\ufffdb> a\n    │ b\ufffd[2J")


def own(
    text: str, delivery: str = "pending", room: str = "#general", ref: int = 7, problem: str = ""
) -> Line:
    """A line the user sent, as the chat client reports it: unverified, with a ref and a state."""
    kind = "private" if room.startswith("@") else "message"
    return Line(
        kind, NOW, text, "alice", FP_B, room, None, ref=ref, delivery=delivery, problem=problem
    )


def styles_of(text: Text, fragment: str) -> set[str]:
    """The styles of the spans that cover ``fragment`` of the rendered line."""
    start = text.plain.index(fragment)
    end = start + len(fragment)
    return {str(span.style) for span in text.spans if span.start <= start and span.end >= end}


def test_own_lines_say_their_delivery_state_and_never_claim_a_check_mark_early() -> None:
    pending = render_line(own("hello"), "alice")
    assert pending.plain == "22:13:20 ⋯ <alice> hello"
    assert "✓" not in pending.plain and "UNVERIFIED" not in pending.plain
    assert styles_of(pending, "⋯") == {"dim"}

    delivered = render_line(own("hello", "delivered"), "alice")
    assert delivered.plain == "22:13:20 ✓ <alice> hello"
    assert styles_of(delivered, "✓") == {DELIVERED_STYLE}
    # Ours: the nick in its usual colour (the key's), not a received line's verified mark.
    assert f"bold {nick_colour(FP_B)}" in styles_of(delivered, "<alice>")
    assert DELIVERED_STYLE != "bold green"

    refused = render_line(own("hello", "refused", problem="message rejected: you are muted"))
    assert refused.plain == ("22:13:20 ✗ NOT SENT: message rejected: you are muted <alice> hello")
    assert styles_of(refused, "✗ NOT SENT: message rejected: you are muted") == {"bold red"}
    assert "\n" not in refused.plain  # on that same line

    private = render_line(own("psst", "refused", room="@bob", problem="no such nick: bob"))
    assert private.plain == "22:13:20 ✗ NOT SENT: no such nick: bob *alice* psst"
    # A reason from the server cannot break the line or inject escapes.
    hostile = render_line(own("x", "refused", problem="a\nb\x1b[2J")).plain
    assert "\n" not in hostile and "\x1b" not in hostile


def test_received_lines_show_why_they_are_unverified_and_notes_dimmed() -> None:
    replayed = Line(
        "message", NOW, "hi", "bob", FP_A, "#general", False, problem="replayed: shown before"
    )
    text = render_line(replayed)
    assert text.plain == "22:13:20 ✗ UNVERIFIED (replayed: shown before) <bob> hi"
    assert styles_of(text, "✗ UNVERIFIED") == {"bold white on red"}
    other = Line(
        "private", NOW, "psst", "bob", FP_A, "", False, problem="signed for another network"
    )
    assert "✗ UNVERIFIED (signed for another network) *bob* psst" in render_line(other).plain
    late = msg("bob", "old news", history=True, note="signed 3 h ago; not new")
    text = render_line(late)
    assert text.plain == "22:13:20 ✓ <bob> old news  (signed 3 h ago; not new)"
    assert styles_of(text, "(signed 3 h ago; not new)") == {"dim"}
    assert "(history)" not in text.plain  # the note says more


def test_a_later_state_of_an_own_line_replaces_it_where_it_was_filed() -> None:
    buffers = Buffers()
    buffers.switch("#general")
    buffers.add(msg("bob", "before"), "alice")
    name, ring = buffers.add(own("mine"), "alice")
    assert (name, ring) == ("#general", False)
    buffers.add(msg("bob", "after"), "alice")
    general = buffers.get("#general")
    assert buffers.replace(own("mine", "delivered")) == "#general"
    assert [(line.text, line.delivery) for line in general.lines] == [
        ("before", ""),
        ("mine", "delivered"),
        ("after", ""),
    ]
    # add() replaces too, and never rings or counts.
    buffers.switch("#rust")
    assert buffers.add(own("mine", "refused", problem="muted"), "alice") == ("#general", False)
    assert len(general.lines) == 3 and general.lines[1].problem == "muted"
    assert general.unread == 0 and not general.mentioned
    # A line without a ref, or with a ref never shown, replaces nothing.
    assert buffers.replace(msg("bob", "x")) is None
    assert buffers.replace(replace(own("other"), ref=99)) is None


def test_own_lines_are_never_unread_nor_mentions() -> None:
    buffers = Buffers()
    buffers.switch("#rust")
    # A nick change leaves a line with another nick: the delivery state still says it is ours.
    mine = replace(own("alice2 says alice", room="#general"), nick="alice2")
    assert not is_mention(mine, "alice")
    name, ring = buffers.add(mine, "alice")
    general = buffers.get("#general")
    assert (name, ring) == ("#general", False)
    assert general.unread == 0 and not general.mentioned and general.label() == "#general"
    # What the user wrote is read: no "new since you last looked" before it.
    assert general.read_upto == 1
    name, ring = buffers.add(own("to bob", room="@bob", ref=8), "alice")
    assert (name, ring) == ("@bob", False)
    assert buffers.get("@bob").label() == "@bob"


def test_own_private_lines_land_in_the_conversation_with_that_nick() -> None:
    buffers = Buffers()
    # bob writes to us (no room), then we /reply: the same conversation, whatever the case.
    name, ring = buffers.add(Line("private", NOW, "psst", "Bob", FP_A, "", True), "alice")
    assert name == "@Bob" and ring
    assert buffers.add(own("yes", room="@bob", ref=8), "alice") == ("@Bob", False)
    assert [line.text for line in buffers.get("@Bob").lines] == ["psst", "yes"]
    # A private /me from bob is part of the conversation too, not of the current buffer.
    action = Line("action", NOW, "waves", "bob", FP_A, "", True)
    assert buffers.add(action, "alice") == ("@Bob", True)
    assert buffers.names() == [SERVER_BUFFER, "@Bob"]


def test_the_outcome_of_a_line_whose_buffer_was_closed_shows_where_the_user_is() -> None:
    buffers = Buffers()
    buffers.switch("#rust")
    buffers.add(own("bye", room="#rust"), "alice")
    buffers.switch("#general")
    buffers.close("#rust")
    name, _ = buffers.add(own("bye", "refused", room="#rust", problem="not in #rust"), "alice")
    assert name == "#general" and "#rust" not in buffers.names()
    # Back in the room: the outcome of a line sent there before leaving goes there.
    buffers.add(own("later", room="#rust", ref=8), "alice")
    buffers.close("#rust")
    buffers.get("#rust")
    assert buffers.add(own("later", "delivered", room="#rust", ref=8), "alice") == (
        "#rust",
        False,
    )


def test_command_table_has_every_client_and_server_command_with_help() -> None:
    table = command_table()
    for name in ("join", "part", "msg", "reply", "me", "kick", "ban", "away", "trust", "help"):
        assert name in table
    assert command_help("/kick", table).startswith("/kick NICK")
    assert command_help("/ki", table) == "/kick"
    assert "/ban" in command_help("/b", table) and "/back" in command_help("/b", table)
    assert command_help("hello", table) == ""
    assert command_help("//x", table) == ""
    assert "no such command" in command_help("/zzz", table)


def test_lines_are_routed_to_rooms_private_conversations_and_the_current_buffer() -> None:
    buffers = Buffers()
    assert buffers.current == SERVER_BUFFER
    buffers.add(Line("notice", NOW, "Welcome"))
    assert len(buffers.get(SERVER_BUFFER).lines) == 1
    buffers.switch("#general")
    buffers.add(msg("bob", "hi"), "alice")
    assert buffers.get("#general").unread == 0  # it is the current one
    name, ring = buffers.add(msg("bob", "over here", room="#rust"), "alice")
    assert (name, ring) == ("#rust", False)
    assert buffers.get("#rust").label() == "#rust (1)"
    name, ring = buffers.add(msg("bob", "alice?", room="#rust"), "alice")
    assert ring and buffers.get("#rust").label() == "#rust (2) @"
    name, ring = buffers.add(Line("private", NOW, "psst", "Bob", FP_A, "", True), "alice")
    assert name == "@Bob" and ring
    # My own private message to "bob" goes to the same conversation, whatever the case.
    name, ring = buffers.add(Line("private", NOW, "yes", "alice", FP_B, "@bob", True), "alice")
    assert name == "@Bob" and not ring
    assert buffers.names() == [SERVER_BUFFER, "#general", "#rust", "@Bob"]
    buffers.add(Line("notice", NOW, "You are marked away"))
    assert buffers.get("#general").lines[-1].text == "You are marked away"
    switched = buffers.switch("#rust")
    assert switched.unread == 0 and not switched.mentioned
    assert buffers.step(1) == "@Bob" and buffers.step(-1) == "#general"
    assert buffers.step(2) == SERVER_BUFFER
    buffers.close("#rust")
    assert buffers.current == SERVER_BUFFER


def test_history_lines_do_not_ring() -> None:
    buffers = Buffers()
    _, ring = buffers.add(msg("bob", "alice, yesterday", history=True), "alice")
    assert not ring


def test_read_marker_and_day_changes() -> None:
    buffer = Buffer("#general")
    buffer.lines = [
        Line("message", NOW - 86_400, "yesterday", "bob", FP_A, "#general", True),
        Line("message", NOW, "today", "bob", FP_A, "#general", True),
        Line("message", NOW + 1, "unread", "bob", FP_A, "#general", True),
    ]
    rows = pane_rows(buffer, marker_at=2)
    assert [r if isinstance(r, str) else r.text for r in rows] == [
        "yesterday",
        f"day:{NOW}",
        "today",
        "marker",
        "unread",
    ]
    assert "marker" not in pane_rows(buffer, marker_at=None)
    assert "marker" not in pane_rows(buffer, marker_at=0)


def test_switching_keeps_the_read_marker_where_the_user_left_off() -> None:
    buffers = Buffers()
    buffers.switch("#general")
    buffers.add(msg("bob", "seen"), "alice")
    buffers.switch("#rust")
    buffers.add(msg("bob", "unseen"), "alice")
    general = buffers.switch("#general")
    assert general.read_upto == 1 and len(general.lines) == 2


def test_completion_of_nicks_commands_and_rooms_cycles_on_repeat() -> None:
    completer = Completer()
    nicks, commands, rooms = ["bob", "Bobby", "carol"], ["join", "part", "msg"], ["#rust"]
    assert completer.complete("bo", 2, nicks, commands, rooms) == ("bob: ", 5)
    assert completer.complete("bob: ", 5, nicks, commands, rooms) == ("Bobby: ", 7)
    assert completer.complete("Bobby: ", 7, nicks, commands, rooms) == ("bob: ", 5)
    completer.reset()
    assert completer.complete("hi ca", 5, nicks, commands, rooms) == ("hi carol ", 9)
    assert completer.complete("/jo", 3, nicks, commands, rooms) == ("/join ", 6)
    assert completer.complete("/join #ru", 9, nicks, commands, rooms) == ("/join #rust ", 12)
    assert completer.complete("hi zed", 6, nicks, commands, rooms) is None
    assert completer.complete("", 0, nicks, commands, rooms) is None
    # In the middle of a line, the rest is kept.
    assert completer.complete("ca is here", 2, nicks, commands, rooms) == ("carol: is here", 6)


def test_history_browses_like_a_shell() -> None:
    history = History(limit=3)
    assert history.previous("draft") == "draft"
    for text in ("one", "two", "two", "three", "four"):
        history.add(text)
    assert history.entries == ["two", "three", "four"]
    assert history.previous("draft") == "four"
    assert history.previous("four") == "three"
    assert history.previous("three") == "two"
    assert history.previous("two") == "two"
    assert history.next() == "three"
    assert history.next() == "four"
    assert history.next() == "draft"
