"""The full-screen client's own behaviour, with the scene fed in place of a server: the paste
guard, input history, inline help, scrollback and the collapsible trace."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual import events
from textual.widgets import Collapsible, RichLog

from tlschat.client.tui import ChatInput

from .pilot import SIZE, modal, pane, status, widget_text
from .scene import play, scene_app


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


def test_a_long_paste_asks_first_and_a_short_one_is_sent(tmp_path: Path) -> None:
    app = scene_app(tmp_path)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            play(app)
            field = app.query_one("#input", ChatInput)
            field.post_message(events.Paste("one\ntwo"))
            await pilot.pause()
            assert queued(app) == ["one", "two"]

            field.post_message(events.Paste("a\nb\nc\nd\ne\nf"))
            await pilot.pause()
            shown = modal(app)
            assert shown is not None and "Send these 6 lines" in shown.question
            await pilot.press("n")
            await pilot.pause()
            assert modal(app) is None and queued(app) == []

            field.post_message(events.Paste("a\nb\nc\nd"))
            await pilot.pause()
            await pilot.press("y")
            await pilot.pause()
            assert queued(app) == ["a", "b", "c", "d"]

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
            await pilot.press(*"anyone?", "enter")
            assert queued(app) == []
            assert "you are not in #general; /join #general" in pane(app)

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
