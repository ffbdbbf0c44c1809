"""The full-screen client driven by simulated keys against a real server process.

The app runs in this process under Textual's pilot; the server and the other users are real
processes from the end-to-end harness (``--plain`` clients), so everything crosses the network.
"""

from __future__ import annotations

import asyncio
import shutil
import signal

from textual import events

from tlschat.client.tui_widgets import ChatInput

from ..e2e.harness import Harness, Server
from ..e2e.test_chat_features_e2e import notice, said, whispered
from .pilot import (
    SIZE,
    WIDE,
    in_thread,
    joined,
    modal,
    pane,
    status,
    trace,
    tui_app,
    type_line,
    until,
    widget_text,
)


def test_trust_on_first_use_then_send_and_receive_verified(
    harness: Harness, server: Server
) -> None:
    home = harness.home("alice")
    bob = harness.joined_client("bob", server.port)
    app = tui_app(home, server.port, "alice")

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: modal(app) is not None, "the trust question")
            shown = modal(app)
            assert shown is not None and server.fingerprint in shown.message
            await pilot.press("y")
            await joined(pilot, app)
            assert server.fingerprint in (home / "known_hosts").read_text()
            await until(pilot, lambda: "connected" in status(app), "the connected state")
            assert f"127.0.0.1:{server.port}" in status(app)
            assert "Step 6: Server Finished verified" in trace(app)
            await until(pilot, lambda: "bob" in widget_text(app, "#members"), "bob as member")

            await type_line(pilot, "hello bob")
            await in_thread(bob.wait_for_line, said("alice", "hello bob"))
            # My own line, from the chat client: ✓ once the server took it, in place.
            await until(pilot, lambda: "✓ <alice> hello bob" in pane(app), "the delivery")
            assert pane(app).count("hello bob") == 1 and "⋯" not in pane(app)

            bob.send("hi alice, welcome")
            await until(pilot, lambda: "✓ <bob> hi alice, welcome" in pane(app), "bob's line")
            line = app.buffers.get("#general").lines[-1]
            assert (line.nick, line.verified, line.key_changed) == ("bob", True, False)

            await type_line(pilot, "/trust")
            await until(pilot, lambda: "known_hosts entry" in pane(app), "/trust")
            shown_lines = [line.text for line in app.buffers.get("#general").lines]
            assert any(
                f"127.0.0.1:{server.port} {server.fingerprint}" in text for text in shown_lines
            )

            await until(pilot, lambda: " ms" in status(app), "a latency measurement")
            await pilot.press("ctrl+q")
            await until(pilot, lambda: app.return_code is not None, "a clean exit")
        assert app.return_value == 0

    asyncio.run(scenario())
    bob.close_stdin()
    assert bob.wait_exit() == 0


def test_switch_rooms_complete_a_nick_and_talk_privately(harness: Harness, server: Server) -> None:
    home = harness.home("alice")
    bob = harness.joined_client("bob", server.port)
    app = tui_app(home, server.port, "alice", pin=server.fingerprint)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await joined(pilot, app)
            await type_line(pilot, "/join #rust")
            await until(pilot, lambda: app.buffers.current == "#rust", "the switch to #rust")
            assert app.chat.room == "#rust"
            bob.send("/join #rust")
            await until(pilot, lambda: "bob" in app.chat.members.get("#rust", {}), "bob in #rust")

            await pilot.press("b", "o", "tab")
            field = app.query_one("#input")
            assert field.value == "bob: "  # type: ignore[attr-defined]
            await type_line(pilot, "ready?")
            await in_thread(bob.wait_for_line, said("alice", "bob: ready?"))

            await pilot.press("ctrl+p")
            assert app.buffers.current == "#general" and app.chat.room == "#general"
            await type_line(pilot, "back in general")
            await in_thread(bob.wait_for_line, said("alice", "back in general", "#general"))

            bob.send("in rust again")
            await until(pilot, lambda: app.buffers.get("#rust").unread == 1, "an unread count")
            assert "#rust (1)" in app.buffers.get("#rust").label()

            bob.send("/msg alice psst")
            await until(pilot, lambda: "@bob" in app.buffers.names(), "a private conversation")
            assert app.buffers.get("@bob").label() == "@bob (1) @"
            await pilot.press("ctrl+n", "ctrl+n")
            assert app.buffers.current == "@bob"
            assert "🔒 ✓ *bob* psst" in pane(app)
            await type_line(pilot, "psst yourself")
            await in_thread(bob.wait_for_line, whispered("alice", "psst yourself"))

            await pilot.press("ctrl+q")
            await until(pilot, lambda: app.return_code is not None, "a clean exit")

    asyncio.run(scenario())


def test_a_changed_key_under_a_known_nick_is_flagged_after_a_reconnect(harness: Harness) -> None:
    """bob's nick is taken by another key on a server that lost its database (same server key,
    same port): the client reconnects by itself and flags bob's new key loudly."""
    data = harness.root / "data"
    server = harness.server(data)
    port = server.port
    home = harness.home("alice")
    bob = harness.joined_client("bob", port)
    impostor_home = harness.home("impostor")
    app = tui_app(home, port, "alice", pin=server.fingerprint)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await joined(pilot, app)
            bob.send("the real bob")
            await until(pilot, lambda: "✓ <bob> the real bob" in pane(app), "the real bob")
            bob.close_stdin()
            assert await in_thread(bob.wait_exit) == 0

            server.signal(signal.SIGKILL)
            await in_thread(server.wait_exit)
            await until(pilot, lambda: "reconnecting" in status(app), "the reconnecting state")

            fresh = harness.root / "data2"
            fresh.mkdir()
            for name in ("server_key.pem", "server_cert.der"):
                shutil.copy2(data / name, fresh / name)
            await in_thread(lambda: harness.server(fresh, port=port, name="server2"))
            await until(pilot, lambda: "connected" in status(app), "the reconnection")
            await until(pilot, lambda: "#general" in app.chat.rooms, "the rejoin")

            impostor = await in_thread(lambda: harness.client("bob", port, home=impostor_home))
            await in_thread(impostor.wait_joined)
            impostor.send("trust me")
            await until(pilot, lambda: "KEY CHANGED" in pane(app), "the changed-key warning")
            line = app.buffers.get("#general").lines[-1]
            assert (line.nick, line.text, line.key_changed) == ("bob", "trust me", True)
            assert "⚠ KEY CHANGED: bob now signs with" in pane(app)
            await pilot.press("ctrl+q")
            await until(pilot, lambda: app.return_code is not None, "a clean exit")

    asyncio.run(scenario())


def test_a_muted_user_sees_the_line_not_sent_with_the_reason(harness: Harness) -> None:
    """The server refuses a muted user's line: the line the user typed says so, on that line."""
    operator_home, home = harness.home("op"), harness.home("alice")
    server = harness.server(extra=("--operator", harness.key_fingerprint(operator_home)))
    operator = harness.joined_client("op", server.port, home=operator_home)
    app = tui_app(home, server.port, "alice", pin=server.fingerprint)

    async def scenario() -> None:
        async with app.run_test(size=WIDE) as pilot:
            await joined(pilot, app)
            await in_thread(operator.wait_for_line, notice("alice joined #general"))
            await type_line(pilot, "before the mute")
            await in_thread(operator.wait_for_line, said("alice", "before the mute"))
            await until(pilot, lambda: "✓ <alice> before the mute" in pane(app), "the delivery")

            operator.send("/mute alice")
            await until(pilot, lambda: "you were muted by op" in pane(app), "the mute")
            await type_line(pilot, "muted words 7a7a")
            refused = "✗ NOT SENT: message rejected: you are muted <alice> muted words 7a7a"
            await until(pilot, lambda: refused in pane(app), "the refusal on the line")
            rows = [row for row in pane(app).splitlines() if "muted words" in row]
            assert len(rows) == 1 and "⋯" not in pane(app)
            [line] = app.chat.undelivered
            assert (line.text, line.delivery) == ("muted words 7a7a", "refused")
            assert app.buffers.get("#general").lines[-1] == line
            await pilot.press("ctrl+q")
            await until(pilot, lambda: app.return_code is not None, "a clean exit")

    asyncio.run(scenario())
    assert operator.find("muted words") is None, operator.describe()
    operator.close_stdin()
    assert operator.wait_exit() == 0


def test_a_reply_shows_in_the_conversation_with_the_sender(
    harness: Harness, server: Server
) -> None:
    home = harness.home("alice")
    bob = harness.joined_client("bob", server.port)
    app = tui_app(home, server.port, "alice", pin=server.fingerprint)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await joined(pilot, app)
            bob.send("/msg alice are you there?")
            await until(pilot, lambda: "@bob" in app.buffers.names(), "bob's private message")
            assert app.buffers.current == "#general"
            await type_line(pilot, "/reply yes, here")
            await in_thread(bob.wait_for_line, whispered("alice", "yes, here"))
            conversation = app.buffers.get("@bob")

            def delivered() -> bool:
                return [(line.text, line.delivery) for line in conversation.lines] == [
                    ("are you there?", ""),
                    ("yes, here", "delivered"),
                ]

            await until(pilot, delivered, "my reply, delivered, in the conversation with bob")
            assert app.buffers.current == "#general" and "yes, here" not in pane(app)
            assert app.buffers.names() == ["tlschat", "#general", "@bob"]
            await pilot.press("ctrl+n")
            assert app.buffers.current == "@bob"
            text = pane(app)
            assert "🔒 ✓ *bob* are you there?" in text and "🔒 ✓ *alice* yes, here" in text
            await pilot.press("ctrl+q")
            await until(pilot, lambda: app.return_code is not None, "a clean exit")

    asyncio.run(scenario())
    bob.close_stdin()
    assert bob.wait_exit() == 0


def test_a_paste_arrives_as_one_message_with_its_lines(harness: Harness, server: Server) -> None:
    home = harness.home("alice")
    (home / "known_hosts").write_text(f"127.0.0.1:{server.port} {server.fingerprint}\n")
    bob = harness.joined_client("bob", server.port)
    app = tui_app(home, server.port, "alice")
    texts = [f"pasted line {n:02d}" for n in range(30)]

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await joined(pilot, app)
            app.query_one("#input", ChatInput).post_message(events.Paste("\n".join(texts)))
            await until(pilot, lambda: modal(app) is not None, "the paste question")
            await pilot.press("y")
            await in_thread(lambda: bob.wait_for_line(said("alice", " ↵ ".join(texts))))
            # Shown as one message: its first line after the nick, the others indented.
            await until(pilot, lambda: "✓ <alice> pasted line 00" in pane(app), "the delivery")
            assert pane(app).count("│ pasted line") == 29
            assert "NOT SENT" not in pane(app)
            await pilot.press("ctrl+q")
            await until(pilot, lambda: app.return_code is not None, "a clean exit")
        assert app.return_value == 0

    asyncio.run(scenario())
    assert len([line for line in bob.snapshot() if "pasted line" in line]) == 1
    bob.close_stdin()
    assert bob.wait_exit() == 0
