"""The full-screen client's pure helpers: colours, routing, unread counts, completion, history."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tlschat.chat.client import Line
from tlschat.client.view import (
    NICK_COLOURS,
    SERVER_BUFFER,
    Buffer,
    Buffers,
    Completer,
    History,
    command_help,
    command_table,
    is_mention,
    nick_colour,
    own_line,
    pane_rows,
    render_line,
    short_fingerprint,
)

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
    assert "\x1b" not in text and "\n" not in text


def test_own_line_echoes_messages_actions_and_private_messages() -> None:
    line = own_line("hello", "alice", FP_A, "#general", NOW)
    assert line == Line("message", NOW, "hello", "alice", FP_A, "#general", True)
    assert own_line("//slash", "alice", FP_A, "#g", NOW) == Line(
        "message", NOW, "/slash", "alice", FP_A, "#g", True
    )
    action = own_line("/me waves", "alice", FP_A, "#g", NOW)
    assert action is not None and action.kind == "action" and action.text == "waves"
    private = own_line("/msg bob psst now", "alice", FP_A, "#g", NOW)
    assert private is not None and private.kind == "private" and private.room == "@bob"
    assert private.text == "psst now"
    assert own_line("hi", "alice", FP_A, "@bob", NOW) is not None
    assert own_line("/join #x", "alice", FP_A, "#g", NOW) is None
    assert own_line("/msg bob", "alice", FP_A, "#g", NOW) is None
    assert own_line("   ", "alice", FP_A, "#g", NOW) is None
    assert own_line("hi", "alice", FP_A, "", NOW) is None


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
