"""Driving the full-screen client in-process (Textual's pilot) against real server processes.

Every wait polls with a deadline; blocking waits on other processes run in a thread so that the
app's event loop keeps running meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import RichLog, Static

from tlschat.chat.client.receiving import ChatClient
from tlschat.client.home_files import open_device
from tlschat.client.settings import ClientSettings
from tlschat.client.tui import ChatApp
from tlschat.client.tui_widgets import ConfirmScreen
from tlschat.protocol.identity import IdentityKey

from ..e2e.harness import HOST, WAIT

SIZE = (120, 36)
# Wide enough for a refused line and its reason on one row of the message pane.
WIDE = (160, 36)


def tui_app(home: Path, port: int, nick: str, pin: str | None = None) -> ChatApp:
    """The full-screen client of ``home`` (whose identity exists), not yet running."""
    identity, _ = IdentityKey.load_or_create(home / "identity.pem", "ed25519")
    settings = ClientSettings(home=home, host=HOST, port=port, nick=nick, pin=pin, bell=False)
    return ChatApp(
        settings, identity, ChatClient(identity, nick, crypto=open_device(home, identity))
    )


async def until(pilot: Pilot[Any], condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            app = pilot.app
            raise AssertionError(
                f"timed out waiting for {what}\n--- pane:\n{pane(app)}\n--- status: {status(app)}"
            )
        await pilot.pause(0.05)


async def in_thread(function: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(function, *args)


def pane(app: Any) -> str:
    """The message pane as text, as rendered."""
    return "\n".join(strip.text for strip in app.query_one("#messages", RichLog).lines)


def trace(app: Any) -> str:
    """The handshake trace as text."""
    return "\n".join(strip.text for strip in app.query_one("#trace", RichLog).lines)


def status(app: Any) -> str:
    return str(app.query_one("#status", Static).render())


def widget_text(app: Any, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def modal(app: Any) -> ConfirmScreen | None:
    screen = app.screen
    return screen if isinstance(screen, ConfirmScreen) else None


async def type_line(pilot: Pilot[Any], text: str) -> None:
    """Type ``text`` key by key and press Enter."""
    await pilot.press(*text, "enter")


async def joined(pilot: Pilot[Any], app: ChatApp) -> None:
    await until(pilot, lambda: "#general" in app.chat.rooms, "the welcome into #general")
