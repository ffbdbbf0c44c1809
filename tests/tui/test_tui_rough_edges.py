"""Issue 20's rough edges in the full-screen client, driven by Textual's pilot against real server
processes: keys that arrive together (a laggy SSH session) act in the order typed; Ctrl+C clears
the input, then quits; the server down at start is retried like a lost connection, with one
line per outage updated in place and no jargon; a quit during a reconnect exits 0; refusing the
server's key ends with "Not trusted"; and /search results stay together where they were asked
for (issue 15)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.pilot import Pilot

from tlschat.chat.client.searching import FOUND
from tlschat.client.settings import EXIT_OK, EXIT_UNTRUSTED_SERVER
from tlschat.client.trust import NOT_TRUSTED
from tlschat.client.tui import ChatApp
from tlschat.client.tui_widgets import ChatInput

from ..e2e.harness import HOST, Harness, Server
from ..e2e.test_chat_features_e2e import said
from .pilot import SIZE, in_thread, joined, modal, pane, status, tui_app, type_line, until
from .scene import play, scene_app

JARGON = ("Errno", "close_notify", "truncated", "Connect call", "alert")
KEYS = {"\t": "tab", "\r": "enter", "\x7f": "backspace", "\x11": "ctrl+q", " ": "space"}


async def burst(pilot: Pilot[Any], keys: str) -> None:
    """``keys`` as one read from a slow link brings them: every key queued before the first is
    handled (pilot.press waits for the app to be idle after each key)."""
    app = pilot.app
    for char in keys:
        event = events.Key(KEYS.get(char, char), char)
        event.set_sender(app)
        app.post_message(event)
    await pilot.pause()


def field(app: ChatApp) -> ChatInput:
    return app.query_one("#input", ChatInput)


async def leave(pilot: Pilot[Any], app: ChatApp) -> None:
    await pilot.press("ctrl+q")
    await until(pilot, lambda: app.return_code is not None, "the exit")


# ----- point 7: keys that arrive together -----


def test_keys_that_arrive_together_act_in_the_order_typed(harness: Harness, server: Server) -> None:
    bob = harness.joined_client("bob", server.port)
    app = tui_app(harness.home("alice"), server.port, "alice", pin=server.fingerprint)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await joined(pilot, app)
            await until(pilot, lambda: "bob" in app.chat.members.get("#general", {}), "bob")
            # "b", Tab within a few ms: the Tab completes the "b" typed before it.
            await burst(pilot, "b\tping\r")
            await in_thread(bob.wait_for_line, said("alice", "bob: ping"))
            # Enter sends what was typed before it, and nothing typed after it.
            await burst(pilot, "one\rtwo\rab\x7fc\r")
            for text in ("one", "two", "ac"):
                await in_thread(bob.wait_for_line, said("alice", text))
            assert field(app).value == ""
            # A command completed and sent in one read.
            await burst(pilot, "/jo\t#rust\r")
            await until(pilot, lambda: app.chat.room == "#rust", "the join of #rust")
            await type_line(pilot, "/part #rust")
            await until(pilot, lambda: app.chat.room == "#general", "back in #general")
            # The last line, then Ctrl+Q, in one read: the line goes out before the quit.
            await burst(pilot, "bye\r\x11")
            await until(pilot, lambda: app.return_code is not None, "the exit")
        assert app.return_value == EXIT_OK
        bob.wait_for_line(said("alice", "bye"))
        assert bob.find("bping") is None

    asyncio.run(scenario())


# ----- point 5: Ctrl+C -----


def test_ctrl_c_clears_what_is_typed_then_quits(tmp_path: Path) -> None:
    app = scene_app(tmp_path)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            play(app)
            await pilot.press(*"half a line", "shift+enter", *"and more")
            assert field(app).draft == ["half a line"]
            await pilot.press("ctrl+c")
            assert (field(app).value, field(app).draft) == ("", [])
            assert app.return_code is None
            await pilot.press(*"typed again")  # cleared, not dead: the field still works
            assert field(app).value == "typed again"
            await pilot.press("ctrl+c")
            await pilot.press("ctrl+c")
            await until(pilot, lambda: app.return_code is not None, "the exit")
        assert app.return_value == EXIT_OK

    asyncio.run(scenario())


def test_help_says_what_ctrl_c_does(harness: Harness, server: Server) -> None:
    app = tui_app(harness.home("alice"), server.port, "alice", pin=server.fingerprint)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await joined(pilot, app)
            await type_line(pilot, "/help")
            lines = app.buffers.get("#general").lines
            await until(pilot, lambda: any("Ctrl+C" in ln.text for ln in lines), "the keys")
            texts = [line.text for line in lines]
            assert texts.index("Keys:") > texts.index("Client commands:")
            assert any("Ctrl+C" in text and "quit" in text for text in texts)
            await leave(pilot, app)

    asyncio.run(scenario())


# ----- points 4, 5 and 6: down at start, lost, reconnected, quit -----


def stopped_server(harness: Harness, data_dir: Path) -> tuple[int, str]:
    """A server's port and key, the server stopped: nothing listens there now."""
    server = harness.server(data_dir=data_dir, name="first-run")
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0, server.describe()
    return server.port, server.fingerprint


def shown(app: ChatApp) -> list[str]:
    """The text of every line of every buffer."""
    return [line.text for name in app.buffers.names() for line in app.buffers.get(name).lines]


def outage_lines(app: ChatApp) -> list[str]:
    return [text for text in shown(app) if "retrying" in text or "reconnecting" in text]


def showing(app: ChatApp, text: str) -> bool:
    return any(text in line for line in shown(app))


def test_a_server_down_at_start_is_retried_and_a_quit_while_reconnecting_exits_0(
    harness: Harness,
) -> None:
    data_dir = harness.root / "server-data"
    port, fingerprint = stopped_server(harness, data_dir)
    app = tui_app(harness.home("alice"), port, "alice", pin=fingerprint)
    app.jitter = lambda: 0.1  # waits of 0.1, 0.2, 0.4 s…: the same backoff, quicker
    started: list[Server] = []

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            unreachable = f"Can't reach {HOST}:{port} (nothing is listening there); retrying"
            await until(pilot, lambda: showing(app, unreachable), "the first failure, said")
            await until(pilot, lambda: showing(app, "(attempt 3)"), "a third attempt")
            # One line for the outage, its attempt count updated in place.
            assert len(outage_lines(app)) == 1, shown(app)
            assert outage_lines(app)[0].startswith(unreachable)
            assert "retrying" in status(app) and "(attempt" in status(app)

            started.append(await in_thread(lambda: harness.server(data_dir=data_dir, port=port)))
            await joined(pilot, app)
            await until(pilot, lambda: "connected" in status(app), "the connection")

            started[0].signal(signal.SIGKILL)
            await in_thread(started[0].wait_exit)
            lost = "The server closed the connection unexpectedly; reconnecting"
            await until(pilot, lambda: showing(app, lost), "the loss, said")
            await until(pilot, lambda: "reconnecting" in status(app), "the reconnecting state")
            await until(pilot, lambda: showing(app, "(attempt 2)"), "a second attempt")
            # The second outage has a line of its own, updated in place as well.
            assert len(outage_lines(app)) == 2, shown(app)
            assert not any(jargon in text for text in shown(app) for jargon in JARGON), shown(app)
            await leave(pilot, app)
        assert app.return_value == EXIT_OK

    asyncio.run(scenario())


# ----- point 5: refusing the server's key -----


@pytest.mark.parametrize("key", ["n", "ctrl+c", "ctrl+q"])
def test_refusing_the_servers_key_ends_with_not_trusted(
    harness: Harness, server: Server, key: str
) -> None:
    home = harness.home("alice")
    app = tui_app(home, server.port, "alice")

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: modal(app) is not None, "the trust question")
            await pilot.press(key)
            await until(pilot, lambda: app.return_code is not None, "the exit")
        assert app.return_value == EXIT_UNTRUSTED_SERVER
        assert app.refused_trust
        assert NOT_TRUSTED in [line.text for line in app.buffers.get("tlschat").lines]

    asyncio.run(scenario())
    assert not (home / "known_hosts").exists()


# ----- issue 15: /search results in one place -----


def test_search_results_stay_together_where_the_search_was_typed(
    harness: Harness, server: Server
) -> None:
    bob = harness.joined_client("bob", server.port)
    app = tui_app(harness.home("alice"), server.port, "alice", pin=server.fingerprint)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await joined(pilot, app)
            await until(pilot, lambda: "bob" in app.chat.members.get("#general", {}), "bob")
            bob.send("deploy on monday 1a1a")
            await until(pilot, lambda: "deploy on monday" in pane(app), "bob's line in #general")
            await type_line(pilot, "/join #rust")
            await until(pilot, lambda: app.buffers.current == "#rust", "#rust")
            bob.send("/join #rust")
            await until(pilot, lambda: "bob" in app.chat.members.get("#rust", {}), "bob")
            bob.send("deploy on friday 2b2b")
            await until(pilot, lambda: "deploy on friday" in pane(app), "bob's line in #rust")
            await pilot.press("ctrl+p")
            assert app.buffers.current == "#general"

            await type_line(pilot, "/search deploy")
            general = app.buffers.get("#general").lines
            heading = "Search for 'deploy': 2 results, newest first"
            await until(pilot, lambda: any(ln.text == heading for ln in general), "the results")
            start = [line.text for line in general].index(heading)
            results = general[start + 1 : start + 3]
            assert [(line.note, line.room) for line in results] == [
                (FOUND, "#rust"),
                (FOUND, "#general"),
            ]
            assert "friday" in results[0].text and "monday" in results[1].text
            # Each result names its room on screen; none went to the room it came from, and
            # the line there is still the original.
            assert any("#rust" in row and "friday" in row for row in pane(app).splitlines())
            rust = app.buffers.get("#rust").lines
            assert [line.note for line in rust if "friday" in line.text] == [""]
            assert app.buffers.get("#rust").unread == 0
            await leave(pilot, app)

    asyncio.run(scenario())
