"""The full-screen client across a reconnect (a clean restart of the server, or failover to another
server of the same network), driven by Textual's pilot against real server processes: each room
keeps the lines it showed, the history replayed on rejoin adds only what was missed, each message
once, and scrolling up still loads the older lines, the start of the history marked only where the
server has nothing older."""

from __future__ import annotations

import asyncio
import signal

from tlschat.client.tui import ChatApp

from ..e2e.harness import Harness, stop
from .pilot import SIZE, in_thread, joined, pane, status, tui_app, type_line, until

HISTORY = 12  # replayed on join
EARLIER = 13  # stored before those: one page
FLAGS = ("--history", str(HISTORY), "--rate", "1000", "--burst", "1000")
START = "— start of history —"


def messages(app: ChatApp, room: str = "#general") -> list[str]:
    return [line.text for line in app.buffers.get(room).lines if line.kind == "message"]


def test_a_restart_keeps_the_rooms_lines_and_the_rejoin_adds_only_what_was_missed(
    harness: Harness,
) -> None:
    data = harness.root / "data"
    server = harness.server(data, extra=FLAGS)
    talker = harness.joined_client("talker", server.port)
    total = EARLIER + HISTORY
    for counter in range(1, total + 1):
        talker.send(f"line {counter}")
    talker.wait_for_line(f"sent <talker> line {total}")
    talker.close_stdin()
    assert talker.wait_exit() == 0, talker.describe()
    # Alice reaches the server through a proxy: aimed at the stopped server's port, it turns her
    # away until the line she is to miss has been said on the server that comes back.
    gate = harness.proxy(server.port)
    app = tui_app(harness.home("alice"), gate.port, "alice", pin=server.fingerprint)
    app.jitter = lambda: 0.1  # the same backoff, quicker
    seen_before: list[str] = []

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await joined(pilot, app)
            await until(pilot, lambda: len(messages(app)) == HISTORY, "the history on join")
            await type_line(pilot, "before restart")
            await until(pilot, lambda: "✓ <alice> before restart" in pane(app), "the delivery")
            seen_before.extend(messages(app))
            assert seen_before == [f"line {n}" for n in range(EARLIER + 1, total + 1)] + [
                "before restart"
            ]

            assert await in_thread(stop, server, signal.SIGTERM) == 0
            await until(pilot, lambda: "reconnecting" in status(app), "the reconnect")
            # Nothing of the room went while the client reconnects.
            assert messages(app) == seen_before and app.buffers.current == "#general"
            back = await in_thread(lambda: harness.server(data, name="back", extra=FLAGS))
            carol = await in_thread(harness.joined_client, "carol", back.port)
            carol.send("said while alice was away")
            await in_thread(carol.wait_for_line, "sent <carol> said while alice was away")
            gate.upstream_port = back.port

            await until(pilot, lambda: "said while alice was away" in pane(app), "the missed line")
            await until(pilot, lambda: app.chat.outstanding == 0, "the rejoin settled")
            assert "connected" in status(app)
            assert messages(app) == [*seen_before, "said while alice was away"]
            texts = [line.text for line in app.buffers.get("#general").lines]
            assert "1 missed message of #general:" in texts
            shown = pane(app)
            assert shown.count("line 25") == 1 and shown.count("before restart") == 1
            assert START not in shown and app.buffers.current == "#general"

            # Scrolling up still loads the lines before the ones shown, then marks the start.
            for _ in range(20):
                await pilot.press("pageup")
                await pilot.pause(0.1)
                if len(messages(app)) > len(seen_before) + 1:
                    break
            await until(pilot, lambda: app.buffers.get("#general").at_start, "the start")
            assert messages(app) == [f"line {n}" for n in range(1, total + 1)] + [
                "before restart",
                "said while alice was away",
            ]
            assert pane(app).splitlines()[0] == START
            await pilot.press("ctrl+q")
            await until(pilot, lambda: app.return_code is not None, "a clean exit")
            carol.close_stdin()
            assert await in_thread(carol.wait_exit) == 0

    asyncio.run(scenario())


def test_a_reconnect_leaves_the_user_in_their_room_and_a_line_typed_meanwhile_goes_there(
    harness: Harness,
) -> None:
    data = harness.root / "data"
    server = harness.server(data)
    app = tui_app(harness.home("alice"), server.port, "alice", pin=server.fingerprint)
    app.jitter = lambda: 0.1

    def rooms() -> set[str]:
        return set(app.chat.rooms)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await joined(pilot, app)
            await type_line(pilot, "/join #rust")
            await until(pilot, lambda: app.buffers.current == "#rust", "the switch to #rust")
            await type_line(pilot, "/join #go")
            await until(pilot, lambda: app.buffers.current == "#go", "the switch to #go")
            await pilot.press("ctrl+n")  # #go, then #rust in the room list
            assert (app.buffers.current, app.chat.room) == ("#rust", "#rust")

            await in_thread(stop, server, signal.SIGKILL)
            await until(pilot, lambda: "reconnecting" in status(app), "the reconnect")
            await type_line(pilot, "typed while away")  # waits for the rejoin
            assert "⋯ <alice> typed while away" in pane(app)
            await in_thread(lambda: harness.server(data, port=server.port, name="restarted"))
            await until(pilot, lambda: rooms() == {"#general", "#rust", "#go"}, "the rejoin")
            await until(pilot, lambda: "✓ <alice> typed while away" in pane(app), "the delivery")
            # Still where the user was: the rejoin moved neither the view nor the chat.
            assert (app.buffers.current, app.chat.room) == ("#rust", "#rust")
            [line] = [ln for ln in app.buffers.get("#rust").lines if ln.text == "typed while away"]
            assert line.room == "#rust"

            # Leaving a room after the reconnect still takes it off the room list.
            await type_line(pilot, "/part #go")
            await until(pilot, lambda: "#go" not in app.buffers.names(), "#go off the list")
            assert app.buffers.current == "#rust"
            await pilot.press("ctrl+q")
            await until(pilot, lambda: app.return_code is not None, "a clean exit")

    asyncio.run(scenario())
