"""Issue 13: text from the network is shown literally in every widget of the full-screen client.

Nicks may hold ``[`` and ``]``, topics and away texts may hold anything printable: none of it may
be read as Textual/Rich markup (``[b]alice`` shown as a bold ``alice``) in the message pane, its
title, the room list, the members pane, the status bar or a modal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import OptionList, RichLog

from tlschat.chat.seen import SeenLedger
from tlschat.client.tui import ChatApp
from tlschat.client.tui_widgets import ConfirmScreen

from .pilot import SIZE, pane, status, widget_text
from .scene import ALICE, BOB, MALLORY, NOW, SERVER, member, message, scene_app

ME, BYSTANDER, STRANGER = "[b]alice", "[u]bob", "[b]eve"
TOPIC = "[red]hi[/red]"


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def markup_frames() -> list[tuple[float, dict[str, Any]]]:
    """A welcome to ``[b]alice`` on a server named ``[i]net``, a room whose topic is markup, a
    member ``[u]bob`` away with a markup text, and a private message from ``[b]eve``."""
    members = [member(ME, ALICE), member(BYSTANDER, BOB, "[blink]zz")]
    return [
        (NOW, {"type": "welcome", "server": "[i]net", "nick": ME, "operator": False}),
        (NOW, {"type": "joined", "room": "#x", "topic": TOPIC, "members": members}),
        (NOW + 1, {"type": "topic", "room": "#x", "topic": TOPIC, "by": BYSTANDER}),
        (NOW + 2, message(BOB, BYSTANDER, "#x", 1, NOW + 2, "[b]not bold[/b]")),
        (NOW + 3, message(MALLORY, STRANGER, "@" + ALICE.fingerprint, 2, NOW + 3, "[i]psst")),
    ]


def play_markup(app: ChatApp) -> None:
    app.output.status("connecting", "[b]chat.example.org:8443")
    app.output.status("connected", SERVER.fingerprint)
    app.chat.use_network(SERVER.fingerprint, SeenLedger())
    for now, frame in markup_frames():
        for line in app.chat.handle(frame, now):
            app.output.show(line, app.chat.room)


def screen(app: ChatApp) -> str:
    """The whole screen as text, as the terminal would show it (borders and titles included)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def room_list(app: ChatApp) -> list[str]:
    rooms = app.query_one("#rooms", OptionList)
    return [str(rooms.get_option_at_index(n).prompt) for n in range(rooms.option_count)]


def test_nicks_rooms_topics_and_server_names_are_shown_literally(tmp_path: Path) -> None:
    app = scene_app(tmp_path)
    app.bell = lambda: None  # type: ignore[method-assign]

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            play_markup(app)
            await pilot.pause()
            assert app.buffers.current == "#x"
            assert app.chat.nick == ME

            # The message pane, and its title.
            text = pane(app)
            assert f"<{BYSTANDER}> [b]not bold[/b]" in text
            assert f"{BYSTANDER} set the topic of #x: {TOPIC}" in text
            assert app.query_one("#messages", RichLog).border_title == "#x"
            # The room list: the room, and the conversation named after [b]eve.
            assert room_list(app) == ["tlschat", "#x", f"@{STRANGER} (1) @"]
            # The members pane.
            members = widget_text(app, "#members")
            assert f"  {ME}" in members and f"z {BYSTANDER}" in members
            # The status bar: the server as named when connecting, and the user's nick.
            assert status(app).startswith(" [b]chat.example.org:8443  server ")
            assert status(app).endswith(f"you: {ME}")
            shown = screen(app)
            assert f"@{STRANGER} (1) @" in shown and f"z {BYSTANDER}" in shown
            assert f"you: {ME}" in shown and TOPIC in shown

            # The private conversation: its title, its pane, and the members pane.
            app.switch_to(f"@{STRANGER}")
            await pilot.pause()
            title = app.query_one("#messages", RichLog)._border_title
            assert title is not None and title.plain == f"@{STRANGER}"
            assert f"*{STRANGER}* [i]psst" in pane(app)
            assert widget_text(app, "#members").startswith(STRANGER)
            shown = screen(app)
            assert f"╭─ @{STRANGER} ─" in shown  # the pane's title, in its border
            assert f"*{STRANGER}* [i]psst" in shown

            # The server buffer: the server as named when connecting.
            app.switch_to("tlschat")
            await pilot.pause()
            assert "via [b]chat.example.org:8443" in widget_text(app, "#members")
            assert "│ [b]chat.example.org:8443 " in screen(app)  # wrapped after "via"

    asyncio.run(scenario())


def test_a_modal_shows_its_texts_literally(tmp_path: Path) -> None:
    app = scene_app(tmp_path)
    fingerprint = "SHA256:[b]not[/b]-a-real-one"

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            app.push_screen(
                ConfirmScreen(f"server key {fingerprint}", "[i]Trust[/i] it?", "Yes (y)", "No (n)")
            )
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            shown = screen(app)
            assert fingerprint in shown and "[i]Trust[/i] it?" in shown

    asyncio.run(scenario())
