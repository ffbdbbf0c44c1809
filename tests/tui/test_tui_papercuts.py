"""Issue 15's papercuts in the full-screen client: the message of the day in the room the user
lands in, /help with every command once (/trust included), a known server key under another name
taken without a question, and side panes that fold away on a narrow terminal."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widget import Widget

from tlschat.chat.client.receiving import ChatClient
from tlschat.client.home_files import open_device
from tlschat.client.settings import ClientSettings
from tlschat.client.tui import ChatApp
from tlschat.client.tui_panes import MEMBERS_MIN_WIDTH, ROOMS_MIN_WIDTH, side_panes
from tlschat.client.view import command_table
from tlschat.protocol.identity import IdentityKey

from ..e2e.harness import HOST, Harness
from .pilot import SIZE, joined, modal, pane, tui_app, type_line, until
from .scene import play, scene_app


def test_the_motd_is_in_the_room_the_user_lands_in(harness: Harness) -> None:
    server = harness.server(extra=("--motd", "Be kind.\nNo spam."))
    app = tui_app(harness.home("alice"), server.port, "alice", pin=server.fingerprint)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await joined(pilot, app)
            await until(pilot, lambda: app.buffers.current == "#general", "#general shown")
            await until(pilot, lambda: "No spam." in pane(app), "the motd in #general")
            texts = [line.text for line in app.buffers.get("#general").lines]
            assert texts.index("Be kind.") < texts.index("No spam.") < len(texts)
            assert "Be kind." not in [line.text for line in app.buffers.get("tlschat").lines]
            await pilot.press("ctrl+q")
            await until(pilot, lambda: app.return_code is not None, "a clean exit")

    asyncio.run(scenario())


def test_help_lists_every_command_once_with_trust(harness: Harness) -> None:
    """An operator sees every command of the hints' table once, with the same syntax."""
    home = harness.home("olga")
    operator = IdentityKey.load(home / "identity.pem").fingerprint
    server = harness.server(extra=("--operator", operator))
    app = tui_app(home, server.port, "olga", pin=server.fingerprint)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await joined(pilot, app)
            await type_line(pilot, "/help")
            await type_line(pilot, "/rooms")  # answered in order: after all of /help
            lines = app.buffers.get("#general").lines
            await until(pilot, lambda: any(ln.text == "Rooms:" for ln in lines), "/rooms")
            rows = [ln.text.strip() for ln in lines if ln.text.startswith("  /")]
            listed = [row.split()[0] for row in rows]
            assert len(listed) == len(set(listed)), listed
            table = command_table()
            assert sorted(listed) == sorted(f"/{name}" for name in table)
            for row in rows:  # the syntax /help shows is the one the hints show
                usage, summary = table[row.split()[0][1:]]
                assert row.startswith(usage) and row.endswith(summary), row
            assert "/trust" in listed
            await pilot.press("ctrl+q")
            await until(pilot, lambda: app.return_code is not None, "a clean exit")

    asyncio.run(scenario())


def named_app(home: Path, host: str, port: int) -> ChatApp:
    identity = IdentityKey.load(home / "identity.pem")
    settings = ClientSettings(home=home, host=host, port=port, nick="alice", bell=False)
    chat = ChatClient(identity, "alice", crypto=open_device(home, identity))
    return ChatApp(settings, identity, chat)


def test_a_known_key_under_another_name_is_taken_without_a_question(harness: Harness) -> None:
    server = harness.server()
    home = harness.home("alice")
    first, second = named_app(home, HOST, server.port), named_app(home, "localhost", server.port)

    async def scenario() -> None:
        async with first.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: modal(first) is not None, "the trust question")
            await pilot.press("y")
            await joined(pilot, first)
            await pilot.press("ctrl+q")
            await until(pilot, lambda: first.return_code is not None, "a clean exit")
        async with second.run_test(size=SIZE) as pilot:
            await joined(pilot, second)
            assert modal(second) is None
            said = f"is known as {HOST}:{server.port}; remembering localhost:{server.port} too"
            texts = [line.text for name in second.buffers.names() for line in
                     second.buffers.get(name).lines]  # fmt: skip
            assert any(said in text for text in texts), texts
            await pilot.press("ctrl+q")
            await until(pilot, lambda: second.return_code is not None, "a clean exit")

    asyncio.run(scenario())
    assert (home / "known_hosts").read_text().splitlines() == [
        f"{HOST}:{server.port} {server.fingerprint}",
        f"localhost:{server.port} {server.fingerprint}",
    ]


# ----- side panes on a narrow terminal -----


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def shown(app: ChatApp, selector: str) -> bool:
    return bool(app.query_one(selector, Widget).display)


def test_side_panes_fold_on_a_narrow_terminal_and_the_keys_still_work(tmp_path: Path) -> None:
    app = scene_app(tmp_path)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            play(app)
            await pilot.pause()
            messages = app.query_one("#messages", Widget)
            assert (shown(app, "#rooms"), shown(app, "#members")) == (True, False)
            assert messages.outer_size.width > 80 * 2 // 3  # it was 24 columns of 80
            await pilot.resize_terminal(120, 32)  # wide enough again: the members come back
            await pilot.pause()
            assert (shown(app, "#rooms"), shown(app, "#members")) == (True, True)
            await pilot.resize_terminal(80, 24)
            await pilot.pause()
            assert (shown(app, "#rooms"), shown(app, "#members")) == (True, False)
            await pilot.press("f3")  # the members, shown at the user's word
            assert shown(app, "#members")
            assert messages.outer_size.width < 40
            await pilot.press("f2", "f3")  # both away: the messages get it all
            assert (shown(app, "#rooms"), shown(app, "#members")) == (False, False)
            assert messages.outer_size.width == 80
            await pilot.resize_terminal(120, 32)  # the user's choice outlives a resize
            await pilot.pause()
            assert (shown(app, "#rooms"), shown(app, "#members")) == (False, False)
            await pilot.press("f2", "f3")
            assert (shown(app, "#rooms"), shown(app, "#members")) == (True, True)

    asyncio.run(scenario())


def test_a_wide_terminal_shows_both_panes_and_a_narrower_one_folds_them() -> None:
    assert side_panes(120, {}) == {"rooms": True, "members": True}
    assert side_panes(MEMBERS_MIN_WIDTH - 1, {}) == {"rooms": True, "members": False}
    assert side_panes(ROOMS_MIN_WIDTH - 1, {}) == {"rooms": False, "members": False}
    assert side_panes(ROOMS_MIN_WIDTH - 1, {"members": True}) == {"rooms": False, "members": True}
    assert side_panes(200, {"rooms": False}) == {"rooms": False, "members": True}
