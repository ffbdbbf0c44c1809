"""The README's screenshot of the full-screen client: a real server, two real users, and alice's
full-screen client running headless under Textual's pilot. Writes docs/tui.svg.

    python tools/tui_screenshot.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import Client, Harness  # noqa: E402
from tests.tui.pilot import tui_app, until  # noqa: E402

SIZE = (118, 30)


def wait(client: Client, text: str) -> None:
    client.wait_for_line(text)


async def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        harness = Harness(Path(scratch))
        try:
            server = harness.server(extra=("--motd", "Welcome to the tlschat demo. Be kind."))
            port = server.port
            carol = harness.joined_client("carol", port)
            bob = harness.joined_client("bob", port)
            bob.send("morning all")
            carol.send("/away lunch")
            wait(carol, "You are marked away")
            home = harness.home("alice")
            app = tui_app(home, port, "alice", pin=server.fingerprint)
            async with app.run_test(size=SIZE) as pilot:

                async def say(client: Client, text: str, seen: Callable[[], object]) -> None:
                    client.send(text)
                    await until(pilot, seen, text)

                def said(text: str) -> Callable[[], object]:
                    return lambda: any(
                        text in line.text for b in app.buffers.buffers.values() for line in b.lines
                    )

                await until(pilot, lambda: "#general" in app.chat.rooms, "the welcome")
                await pilot.press(*"/join #rust", "enter")
                await until(pilot, lambda: app.buffers.current == "#rust", "#rust")
                await pilot.press("ctrl+p")
                await say(bob, "alice: the build is green again", said("build is green"))
                await pilot.press(*"bo", "tab", *"nice, thanks!", "enter")
                await asyncio.to_thread(wait, bob, "<alice> bob: nice, thanks!")
                await say(bob, "/me goes for coffee", said("goes for coffee"))
                await say(carol, "/msg alice are you coming to the review?", said("review"))
                await until(pilot, lambda: " ms" in str(app.query_one("#status").render()), "ms")
                await pilot.pause(0.2)
                path = app.save_screenshot("tui.svg", str(ROOT / "docs"))
                print(path)
            time.sleep(0.1)
        finally:
            harness.close()


if __name__ == "__main__":
    asyncio.run(main())
