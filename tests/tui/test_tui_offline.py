"""The full-screen client's own behaviour, with the scene fed in place of a server: the paste
guard, input history, inline help, scrollback and the collapsible trace."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual import events
from textual.widgets import Collapsible, RichLog, Static

from tlschat.client.tui import ChatApp
from tlschat.client.tui_widgets import ChatInput
from tlschat.client.view import SERVER_BUFFER

from .pilot import SIZE, WIDE, modal, pane, status, widget_text
from .scene import BOB, NOW, answer_directory, message, play, scene_app


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def queued(app: object) -> list[str | None]:
    lines = app.user_input.lines  # type: ignore[attr-defined]
    out = []
    while not lines.empty():
        out.append(lines.get_nowait())
    return out


def test_scene_shows_marks_members_status_and_the_changed_key(tmp_path: Path) -> None:
    app = scene_app(tmp_path)
    bells: list[None] = []
    app.bell = lambda: bells.append(None)  # type: ignore[method-assign]

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            play(app)
            await pilot.pause()
            assert len(bells) == 2  # carol's mention and carol's private message
            text = pane(app)
            assert "✓ <bob> morning all" in text
            assert "KEY CHANGED" in text
            assert "─── Tuesday 14 November 2023 ───" in text  # history was yesterday
            members = widget_text(app, "#members")
            assert "z carol" in members and "bob" in members
            assert "connected" in status(app) and "12 ms" in status(app)
            assert app.buffers.get("@carol").label() == "@carol (1) @"

    asyncio.run(scenario())


def session(app: ChatApp, now: float) -> list[int]:
    """What the session does with the lines typed: hand them to the chat client and show what it
    returns. The counters of the messages it sends."""
    for text in queued(app):
        assert text is not None
        for line in app.chat.user_input(text, now):
            app.output.show(line, app.chat.room)
    return [frame["counter"] for frame in app.chat.take_outbox() if frame["type"] == "say"]


def answer(app: ChatApp, frame: dict[str, object], now: float) -> None:
    """The server's answer to a message, through the chat client, as the session shows it."""
    for line in app.chat.handle(frame, now):
        app.output.show(line, app.chat.room)


def rows_with(app: ChatApp, text: str) -> list[str]:
    return [row for row in pane(app).splitlines() if text in row]


def test_an_own_line_waits_then_shows_delivered_or_not_sent_in_place(tmp_path: Path) -> None:
    app = scene_app(tmp_path)
    bells: list[None] = []
    app.bell = lambda: bells.append(None)  # type: ignore[method-assign]

    async def scenario() -> None:
        async with app.run_test(size=WIDE) as pilot:
            play(app)
            await pilot.pause()
            rung = len(bells)
            await pilot.press(*"hello alice", "enter")
            [counter] = session(app, NOW + 30)
            await pilot.pause()
            # Not a ✓ before the server took it: the user's own line, waiting.
            assert rows_with(app, "hello alice") == ["22:13:50 ⋯ <alice> hello alice"]
            rows = len(pane(app).splitlines())
            answer(app, {"type": "sent", "target": "#general", "counter": counter}, NOW + 31)
            await pilot.pause()
            assert rows_with(app, "hello alice") == ["22:13:50 ✓ <alice> hello alice"]
            assert len(pane(app).splitlines()) == rows  # replaced, not added
            text = pane(app)
            app.write_buffer()
            assert pane(app) == text
            assert "─── Tuesday 14 November 2023 ───" in pane(app)  # day lines still there

            await pilot.press(*"still there?", "enter")
            [counter] = session(app, NOW + 40)
            refusal = {
                "type": "error",
                "text": "message rejected: you are muted",
                "counter": counter,
            }
            answer(app, refusal, NOW + 41)
            await pilot.pause()
            assert rows_with(app, "still there?") == [
                "22:14:00 ✗ NOT SENT: message rejected: you are muted <alice> still there?"
            ]
            assert "⋯" not in pane(app)
            [undelivered] = app.chat.undelivered
            assert undelivered.problem == "message rejected: you are muted"
            general = app.buffers.get("#general")
            # Own lines: never unread, never a mention (the first says "alice"), never a bell.
            assert general.unread == 0 and not general.mentioned and len(bells) == rung
            assert [line.delivery for line in general.lines if line.ref] == [
                "delivered",
                "refused",
            ]

    asyncio.run(scenario())


def test_an_update_keeps_the_read_marker_and_where_the_user_scrolled(tmp_path: Path) -> None:
    app = scene_app(tmp_path)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            play(app)
            await pilot.press(*"before I go", "enter")
            [counter] = session(app, NOW + 25)
            await pilot.press("ctrl+n")  # to @carol, then bob talks in #general
            answer(
                app, message(BOB, "bob", "#general", 9, NOW + 30, "while you were away"), NOW + 30
            )
            await pilot.press("ctrl+p")
            assert app.buffers.current == "#general"
            marker = "new since you last looked"
            text = pane(app)
            assert text.index("before I go") < text.index(marker)
            assert text.index(marker) < text.index("while you were away")
            for n in range(60):
                answer(app, {"type": "notice", "text": f"n{n}"}, NOW + 31)
            await pilot.pause()
            log = app.query_one("#messages", RichLog)
            await pilot.press("pageup", "pageup")
            await pilot.pause()
            scrolled = log.scroll_y
            assert scrolled < log.max_scroll_y

            answer(app, {"type": "sent", "target": "#general", "counter": counter}, NOW + 32)
            await pilot.pause()
            assert log.scroll_y == scrolled  # rewritten, not yanked to the end
            text = pane(app)
            app.write_buffer()  # the pane rewritten from the changed line is the whole one
            assert pane(app) == text
            assert text.count(marker) == 1
            assert text.index("✓ <alice> before I go") < text.index(marker)
            assert text.index(marker) < text.index("while you were away")
            assert "⋯" not in text

    asyncio.run(scenario())


def test_a_reply_lands_in_the_conversation_with_whom_it_answers(tmp_path: Path) -> None:
    app = scene_app(tmp_path)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            play(app)  # carol wrote "psst" privately
            await pilot.press(*"/reply not now", "enter")
            session(app, NOW + 30)  # carol's key is known: signed and sent at once
            await pilot.pause()
            assert app.buffers.current == "#general"
            carol = app.buffers.get("@carol")
            assert [line.text for line in carol.lines] == ["psst", "not now"]
            assert carol.lines[-1].room == "@carol" and carol.lines[-1].delivery == "pending"
            assert carol.label() == "@carol (1) @"  # carol's line only
            assert "not now" not in pane(app)
            assert app.buffers.names() == [SERVER_BUFFER, "#general", "@carol"]

            await pilot.press("ctrl+n")
            assert app.buffers.current == "@carol"
            assert rows_with(app, "not now") == ["22:13:50 🔒 ⋯ *alice* not now"]
            answer_directory(app, NOW + 30)  # carol's device: the line is encrypted and sent
            [frame] = app.chat.unacknowledged
            answer(
                app,
                {"type": "sent", "target": frame["target"], "counter": frame["counter"]},
                NOW + 31,
            )
            await pilot.pause()
            assert rows_with(app, "not now") == ["22:13:50 🔒 ✓ *alice* not now"]

            # /msg to someone not known yet: waiting for the key, then refused, in its own buffer.
            await pilot.press(*"/msg dave hi", "enter")
            session(app, NOW + 40)
            await pilot.pause()
            assert [line.text for line in app.buffers.get("@dave").lines] == ["hi"]
            answer(app, {"type": "whois", "query": "dave", "found": False}, NOW + 41)
            await pilot.pause()
            [line] = app.buffers.get("@dave").lines
            assert (line.delivery, line.problem) == ("refused", "no such nick: dave")

    asyncio.run(scenario())


def test_the_status_bar_names_the_server_connected_after_failover(tmp_path: Path) -> None:
    app = scene_app(tmp_path)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            app.output.status("connecting", "chat.example.org:8443")
            await pilot.pause()
            assert "chat.example.org:8443  ● connecting" in status(app)
            app.output.status("connecting", "backup.example.org:8443 (192.0.2.7)")
            app.output.status("connected", "SHA256:abcdefghijklmnop")
            await pilot.pause()
            assert status(app).startswith(" backup.example.org:8443 (192.0.2.7)  server abcdef")
            assert "chat.example.org" not in status(app)
            assert "via backup.example.org:8443 (192.0.2.7)" in widget_text(app, "#members")
            app.output.status("reconnecting", "in 1 s (attempt 1)")
            await pilot.pause()
            assert "backup.example.org:8443 (192.0.2.7)" in status(app)
            assert "reconnecting in 1 s (attempt 1)" in status(app)

    asyncio.run(scenario())


def test_a_paste_is_one_message_and_a_long_one_asks_first(tmp_path: Path) -> None:
    app = scene_app(tmp_path)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            play(app)
            field = app.query_one("#input", ChatInput)
            field.post_message(events.Paste("one\r\n\ntwo\n"))
            await pilot.pause()
            assert queued(app) == ["one\n\ntwo"]  # blank lines kept, line ends made \n

            field.post_message(events.Paste("a\nb\nc\nd\ne\nf"))
            await pilot.pause()
            shown = modal(app)
            assert shown is not None and "Send these 6 lines as one message" in shown.question
            await pilot.press("n")
            await pilot.pause()
            assert modal(app) is None and queued(app) == []

            field.post_message(events.Paste("a\nb\nc\nd"))
            await pilot.pause()
            await pilot.press("y")
            await pilot.pause()
            assert queued(app) == ["a\nb\nc\nd"]

    asyncio.run(scenario())


@pytest.mark.parametrize("new_line", ["shift+enter", "ctrl+j"])
def test_shift_enter_or_ctrl_j_adds_a_line_to_the_same_message(
    tmp_path: Path, new_line: str
) -> None:
    app = scene_app(tmp_path)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            play(app)
            field = app.query_one("#input", ChatInput)
            field.focus()
            await pilot.press(*"first", new_line, *"second")
            await pilot.pause()
            assert field.draft == ["first"] and field.value == "second"
            assert "Line 2 of one message" in str(app.query_one("#hint", Static).render())
            await pilot.press("enter")
            await pilot.pause()
            assert queued(app) == ["first\nsecond"] and field.draft == []

    asyncio.run(scenario())


def test_no_bell_when_turned_off_and_no_talking_in_a_room_left(tmp_path: Path) -> None:
    app = scene_app(tmp_path)
    app.settings.bell = False
    bells: list[None] = []
    app.bell = lambda: bells.append(None)  # type: ignore[method-assign]

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            play(app)
            await pilot.pause()
            assert bells == []
            for line in app.chat.handle({"type": "parted", "room": "#general"}, 0):
                app.output.show(line)
            await pilot.pause()
            # The room left leaves the room list; the private conversation stays.
            assert app.buffers.names() == [SERVER_BUFFER, "@carol"]
            assert app.buffers.current == SERVER_BUFFER
            assert "You left #general; /join a room to talk" in pane(app)
            await pilot.press(*"anyone?", "enter")
            assert queued(app) == []
            assert "this is the server buffer; Ctrl+N to a room" in pane(app)
            # A room not (yet) rejoined, whose buffer is still there: no talking in it either.
            app.buffers.get("#rust")
            app.switch_to("#rust")
            await pilot.press(*"anyone?", "enter")
            assert queued(app) == []
            assert "you are not in #rust; /join #rust" in pane(app)

    asyncio.run(scenario())


def test_history_inline_help_scrollback_and_trace(tmp_path: Path) -> None:
    app = scene_app(tmp_path)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            play(app)
            await pilot.press(*"first", "enter", *"second", "enter")
            assert queued(app) == ["first", "second"]
            field = app.query_one("#input", ChatInput)
            await pilot.press("up")
            assert field.value == "second"
            await pilot.press("up", "up")
            assert field.value == "first"
            await pilot.press("down", "down")
            assert field.value == ""

            await pilot.press(*"/kick")
            assert "/kick NICK [REASON] — disconnect a user" in widget_text(app, "#hint")
            await pilot.press("ctrl+u", *"/tr")
            assert "/trust" in widget_text(app, "#hint")
            await pilot.press("ctrl+u")

            for n in range(60):
                app.output.show(app.chat.handle({"type": "notice", "text": f"n{n}"}, 0)[0])
            await pilot.pause()
            log = app.query_one("#messages", RichLog)
            assert log.scroll_y == log.max_scroll_y
            await pilot.press("pageup")
            await pilot.pause()
            assert log.scroll_y < log.max_scroll_y
            # While scrolled back, new lines do not yank the view to the end.
            scrolled = log.scroll_y
            app.output.show(app.chat.handle({"type": "notice", "text": "later"}, 0)[0])
            await pilot.pause()
            assert log.scroll_y == scrolled
            await pilot.press("pagedown", "pagedown", "pagedown", "pagedown")
            await pilot.pause()
            assert log.scroll_y == log.max_scroll_y

            box = app.query_one("#trace-box", Collapsible)
            assert not box.collapsed
            await pilot.press("ctrl+t")
            assert box.collapsed

    asyncio.run(scenario())


def test_switching_back_shows_a_read_marker(tmp_path: Path) -> None:
    app = scene_app(tmp_path)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            play(app)
            await pilot.press("ctrl+n")  # to @carol
            assert app.buffers.current == "@carol"
            assert "✓ *carol* psst" in pane(app)
            for line in app.chat.handle(
                {"type": "notice", "text": "unrelated"}, 0
            ):  # goes to the current buffer
                app.output.show(line)
            from .scene import BOB, NOW, message

            for line in app.chat.handle(
                message(BOB, "bob", "#general", 9, NOW + 30, "while you were away"), NOW + 30
            ):
                app.output.show(line)
            await pilot.press("ctrl+p")
            assert app.buffers.current == "#general"
            text = pane(app)
            assert "new since you last looked" in text
            assert text.index("new since you last looked") < text.index("while you were away")

    asyncio.run(scenario())


def test_the_status_bar_says_degraded_while_the_cluster_store_is_down(tmp_path: Path) -> None:
    app = scene_app(tmp_path)
    degraded = {
        "type": "notice",
        "text": "chat degraded: the cluster's store is unreachable; messages are not being "
        "delivered",
        "degraded": True,
    }
    restored = {"type": "notice", "text": "chat restored", "degraded": False}

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            play(app)
            await pilot.pause()
            assert "degraded" not in status(app)
            for line in app.chat.handle(degraded, time.time()):
                app.output.show(line, app.chat.room)
            await pilot.pause()
            assert "degraded" in status(app) and "12 ms" in status(app)
            assert "*** chat degraded" in pane(app)
            for line in app.chat.handle(restored, time.time()):
                app.output.show(line, app.chat.room)
            await pilot.pause()
            assert "degraded" not in status(app)
            assert "chat restored" in pane(app)

    asyncio.run(scenario())
