"""The README's screenshot of the web client: a real server with --web, two real terminal
users (bob, carol), and alice's page in headless Chromium (Debian's, driven by Playwright, as in
tests/browser), chatting in #general and #rust. Writes docs/web.png.

    python tools/web_screenshot.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.chromium import missing  # noqa: E402

REASON = missing()
if REASON is not None:
    sys.exit(f"web_screenshot: {REASON}")

from playwright.sync_api import ViewportSize, expect, sync_playwright  # noqa: E402

from tests.browser.web import WebPage, free_ports, launch, web_server  # noqa: E402
from tests.e2e.harness import Client, Harness  # noqa: E402

SIZE: ViewportSize = {"width": 1200, "height": 760}
OUTPUT = ROOT / "docs" / "web.png"


def joins(alice: WebPage, client: Client, room: str) -> None:
    client.send(f"/join {room}")
    event = alice.by("message-list").get_by_test_id("event-line")
    expect(event.filter(has_text=f"{client.name} joined {room}")).to_have_count(1)


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        harness = Harness(Path(scratch))
        try:
            port, web_port = free_ports(2)
            motd = ("--motd", "Welcome to the tlschat demo. Be kind.")
            server = web_server(harness, harness.root / "data", port, web_port, extra=motd)
            bob = harness.joined_client("bob", port)
            carol = harness.joined_client("carol", port)
            with sync_playwright() as playwright:
                browser = launch(playwright)
                context = browser.new_context(viewport=SIZE, locale="en-GB")
                alice = WebPage(context, web_port)
                alice.join("alice", server.fingerprint)

                bob.send("morning all")
                alice.expect_verified("bob", "morning all")
                carol.send("morning! the release notes are up on the wiki")
                alice.expect_verified("carol", "release notes")
                alice.say("thanks carol, reading them now")
                alice.expect_delivered("reading them now")

                alice.say("/join #rust")
                rust = alice.by("room-item").filter(has_text="#rust")
                expect(rust).to_have_attribute("aria-current", "true")
                alice.say("/topic Builds, reviews and the wasm toolchain")
                expect(alice.page.locator("#buffer-topic")).to_contain_text("wasm toolchain")
                bob.send("anyone up for lunch at 12?")  # still in #general: unread for alice
                general = alice.by("room-item").filter(has_text="#general")
                expect(general).to_have_attribute("data-unread", "1")
                joins(alice, bob, "#rust")
                joins(alice, carol, "#rust")
                bob.send("alice: the build is green again")
                alice.expect_verified("bob", "the build is green again")
                alice.say("nice, thanks! was it the lockfile?")
                alice.expect_delivered("was it the lockfile?")
                carol.send("yes, the wasm build is pinned now and CI is happy")
                alice.expect_verified("carol", "CI is happy")
                alice.say("great, I'll review the key rotation PR after lunch")
                alice.expect_delivered("key rotation PR")
                carol.send("thanks! the tests cover a restart in the middle of it")
                alice.expect_verified("carol", "restart in the middle")
                bob.send("/me goes for coffee")
                expect(alice.line("goes for coffee")).to_have_attribute("data-verified", "true")
                alice.page.evaluate("document.activeElement.blur()")
                alice.page.screenshot(path=str(OUTPUT))
                assert alice.problems() == [], alice.problems()
                browser.close()
            print(OUTPUT)
        finally:
            harness.close()


if __name__ == "__main__":
    main()
