"""Snapshot tests of the main screens (pytest-textual-snapshot; update with --snapshot-update).

The scene is deterministic: fixed Ed25519 keys (deterministic signatures), fixed times, TZ=UTC.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from tlschat.client.tui import ChatApp
from tlschat.client.tui_widgets import ConfirmScreen

from .scene import NOW, SERVER, play, scene_app

SIZE = (120, 32)
NARROW = (80, 24)
Compare = Callable[..., bool]


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def played(pilot: Pilot[Any]) -> None:
    play(pilot.app)  # type: ignore[arg-type]
    await pilot.pause()


def test_main_screen(snap_compare: Compare, tmp_path: Path) -> None:
    assert snap_compare(scene_app(tmp_path), terminal_size=SIZE, run_before=played)


def test_main_screen_on_a_narrow_terminal(snap_compare: Compare, tmp_path: Path) -> None:
    """At 80x24 the members pane is folded away: the messages keep most of the width."""
    assert snap_compare(scene_app(tmp_path), terminal_size=NARROW, run_before=played)


def test_private_conversation_with_trace_collapsed(snap_compare: Compare, tmp_path: Path) -> None:
    assert snap_compare(
        scene_app(tmp_path), terminal_size=SIZE, run_before=played, press=["ctrl+n", "ctrl+t"]
    )


async def own_lines(pilot: Pilot[Any]) -> None:
    """After the scene, alice says three things: one delivered, one refused (she is muted), one
    still waiting for the server; and she answers carol's private message."""
    app = pilot.app
    assert isinstance(app, ChatApp)
    play(app)
    chat = app.chat

    def say(text: str, now: float) -> int:
        """Type ``text``; the counter of the line it sends (0 while it waits: a private line
        waits for its recipient's devices, and the lines typed after it wait behind it)."""
        for line in chat.user_input(text, now):
            app.output.show(line, chat.room)
        frames = [frame for frame in chat.take_outbox() if frame["type"] == "say"]
        return int(frames[0]["counter"]) if frames else 0

    def answer(frame: dict[str, Any], now: float) -> None:
        for line in chat.handle(frame, now):
            app.output.show(line, chat.room)

    delivered = say("morning bob", NOW + 30)
    answer({"type": "sent", "target": "#general", "counter": delivered}, NOW + 31)
    refused = say("bob, that is not you", NOW + 32)
    muted = "message rejected: you are muted"
    answer({"type": "error", "text": muted, "counter": refused}, NOW + 33)
    say("/reply later, carol", NOW + 34)
    say("anyone else?", NOW + 35)
    await pilot.pause()


def test_own_lines_waiting_delivered_and_not_sent(snap_compare: Compare, tmp_path: Path) -> None:
    assert snap_compare(
        scene_app(tmp_path), terminal_size=SIZE, run_before=own_lines, press=["ctrl+t"]
    )


def test_trust_on_first_use_question(snap_compare: Compare, tmp_path: Path) -> None:
    async def ask(pilot: Pilot[Any]) -> None:
        message = f"New server chat.example.org:8443 with key fingerprint {SERVER.fingerprint}"
        pilot.app.push_screen(
            ConfirmScreen(
                message,
                "Trust this server and remember its key? [y/N]",
                "Trust (y)",
                "Refuse (n)",
            )
        )
        await pilot.pause()

    assert snap_compare(scene_app(tmp_path), terminal_size=SIZE, run_before=ask)
