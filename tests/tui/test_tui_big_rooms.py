"""The full-screen client in big rooms, against a real server process: older lines loaded when
the user scrolls to the top of a room, and a large room's members fetched and watched while its
member pane shows."""

from __future__ import annotations

import asyncio

from textual import events

from tlschat.client.tui import ChatApp
from tlschat.client.view import SERVER_BUFFER

from ..e2e.harness import Harness
from .pilot import SIZE, in_thread, joined, pane, tui_app, until

TOTAL = 130  # history on join (50), a page (50), and the start of the history (30)


def messages(app: ChatApp) -> list[str]:
    return [line.text for line in app.buffers.get("#general").lines if line.kind == "message"]


def top_row(app: ChatApp) -> str:
    log = app.messages
    return log.lines[round(log.scroll_y)].text


def test_scrolling_to_the_top_loads_older_lines_above(harness: Harness) -> None:
    server = harness.server(extra=("--rate", "1000", "--burst", "1000"))
    talker = harness.joined_client("talker", server.port)
    for counter in range(1, TOTAL + 1):
        talker.send(f"line {counter}")
    talker.wait_for_line(f"sent <talker> line {TOTAL}")
    app = tui_app(harness.home("alice"), server.port, "alice", pin=server.fingerprint)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await joined(pilot, app)
            await until(pilot, lambda: len(messages(app)) == 50, "the history on join")
            assert messages(app)[0] == "line 81"
            top = pane(app).splitlines()[0]
            assert "You are alice in #general" in top
            for _ in range(20):  # a page of the pane at a time, up to its top
                await pilot.press("pageup")
                await pilot.pause(0.1)
                if len(messages(app)) > 50:
                    break
            assert len(messages(app)) == 100 and messages(app)[:2] == ["line 31", "line 32"]
            # What the user looked at (the top of the pane) stays in view: the page went above.
            assert app.messages.scroll_y > 0 and top_row(app) == top
            assert "start of history" not in pane(app)

            for _ in range(100):  # the mouse wheel, up to the top
                wheel = events.MouseScrollUp(app.messages, 1, 1, 0, -1, 0, False, False, False)
                app.messages.post_message(wheel)
                await pilot.pause(0.02)
                if len(messages(app)) > 100:
                    break
            await until(pilot, lambda: len(messages(app)) == TOTAL, "the last page above")
            assert messages(app) == [f"line {n}" for n in range(1, TOTAL + 1)]
            assert app.buffers.get("#general").at_start
            assert pane(app).splitlines()[0] == "— start of history —"
            state = app.chat.scrollback["#general"]
            assert (state.older, state.pending) == (False, "")
            # Nothing more to ask for: the top stays the top, and nothing goes out.
            await pilot.press("ctrl+home")
            await pilot.pause(0.2)
            assert len(messages(app)) == TOTAL and app.chat.outstanding == 0
            await pilot.press("ctrl+q")
            await until(pilot, lambda: app.return_code is not None, "a clean exit")

    asyncio.run(scenario())
    talker.close_stdin()
    assert talker.wait_exit() == 0


def test_a_large_rooms_members_show_while_its_pane_does(harness: Harness) -> None:
    server = harness.server(extra=("--large-room", "2"))
    others = [harness.joined_client(f"m{index}", server.port) for index in range(3)]
    app = tui_app(harness.home("alice"), server.port, "alice", pin=server.fingerprint)

    def members_title() -> str:
        return str(app.query_one("#members").border_title)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await joined(pilot, app)
            assert app.chat.lazy_rooms == {"#general"}
            await until(pilot, lambda: app.chat.watching == {"#general"}, "the watch")
            await until(pilot, lambda: len(app.chat.members["#general"]) == 4, "the member list")
            await until(pilot, lambda: members_title() == "Members (4)", "the count in the title")
            late = await in_thread(harness.joined_client, "late", server.port)
            others.append(late)
            await until(pilot, lambda: members_title() == "Members (5)", "an arrival, watched")
            assert "late joined #general" in pane(app)

            await pilot.press("ctrl+p")  # to the server buffer: the room's members no longer show
            assert app.buffers.current == SERVER_BUFFER
            await until(pilot, lambda: app.chat.watching == set(), "the unwatch")
            await pilot.press("ctrl+n")
            await until(pilot, lambda: app.chat.watching == {"#general"}, "the watch again")
            await pilot.press("f3")  # the member pane hidden
            await until(pilot, lambda: app.chat.watching == set(), "the unwatch on F3")
            await pilot.pause(0.3)
            shown = [line.text for buffer in app.buffers.buffers.values() for line in buffer.lines]
            assert not any("watch" in text for text in shown), shown
            await pilot.press("ctrl+q")
            await until(pilot, lambda: app.return_code is not None, "a clean exit")

    asyncio.run(scenario())
    for other in others:
        other.close_stdin()
        assert other.wait_exit() == 0
