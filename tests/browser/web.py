"""The web client in a real browser, for tests/browser and tools/web_screenshot.py: the real
server process with ``--web`` on ports chosen beforehand (so that a restart comes back on the
same ones), and :class:`WebPage`, one tab of the page driven through its ``data-testid``
attributes. Every wait is bounded (Playwright's timeouts are set on each page)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Locator, Playwright, expect

from tests.e2e.harness import HOST, WAIT, Harness, Server

from .chromium import CHROMIUM

# The tests' factory of browser contexts (conftest.py's new_context): Playwright's options.
NewContext = Callable[..., BrowserContext]
WAIT_MS = int(WAIT * 1000)
# The page's waits between attempts while the server is down are jittered and grow (up to 1, 2,
# 4, 8 s...): a restart is seen within a few of them.
RECONNECT_WAIT_MS = 25_000
# Which dialogs the page opens, recorded before any of its own scripts runs (an init script is
# not the page's, so its Content-Security-Policy does not stop it).
RECORD_DIALOGS = """
window.__dialogsOpened = [];
const showModal = HTMLDialogElement.prototype.showModal;
HTMLDialogElement.prototype.showModal = function () {
  window.__dialogsOpened.push(this.id);
  return showModal.call(this);
};
"""
INTERNAL_ERROR = "internal error in the web client"


def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless; Playwright's own browser builds are never downloaded."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, timeout=WAIT_MS)


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on loopback now (held together while they are picked)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def web_server(
    harness: Harness,
    data_dir: Path,
    port: int,
    web_port: int,
    name: str = "server",
    extra: tuple[str, ...] = (),
) -> Server:
    """The server on ``port`` with its web client on ``web_port``, once it serves both."""
    server = harness.server(
        data_dir, port=port, name=name, extra=("--web", f"{HOST}:{web_port}", *extra)
    )
    server.wait_for_line(f"[WEB] Web client on http://{HOST}:{web_port}/")
    return server


def message(nick: str, text: str) -> dict[str, object]:
    """The fields of a --json client's line for a verified room message (for ``json_event``)."""
    return {"kind": "message", "nick": nick, "text": text, "verified": True}


class WebPage:
    """One tab of the web client at ``http://127.0.0.1:web_port/`` in ``context``."""

    def __init__(self, context: BrowserContext, web_port: int) -> None:
        self.url = f"http://{HOST}:{web_port}/"
        self.page = context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.page.set_default_navigation_timeout(WAIT_MS)
        self.page.add_init_script(RECORD_DIALOGS)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def by(self, testid: str) -> Locator:
        return self.page.get_by_test_id(testid)

    @property
    def status(self) -> Locator:
        return self.by("status-line")

    def open(self) -> None:
        self.page.goto(self.url)

    def reload(self) -> None:
        self.page.reload()

    def choose_nick(self, nick: str) -> None:
        expect(self.by("nick-dialog")).to_be_visible()
        self.by("nick-input").fill(nick)
        self.by("nick-submit").click()

    def trust(self, fingerprint: str) -> None:
        """Answer the first-contact question with yes, once it shows ``fingerprint``."""
        dialog = self.by("trust-dialog")
        expect(dialog).to_be_visible()
        expect(self.by("trust-fingerprint")).to_have_text(fingerprint)
        self.by("trust-accept").click()
        expect(dialog).to_be_hidden()

    def join(self, nick: str, fingerprint: str) -> None:
        """First start: open the page, choose ``nick``, trust the server, wait for the welcome."""
        self.open()
        self.choose_nick(nick)
        self.trust(fingerprint)
        self.wait_connected(nick)

    def wait_connected(self, nick: str, timeout_ms: int = WAIT_MS) -> None:
        expect(self.status).to_have_attribute("data-state", "connected", timeout=timeout_ms)
        expect(self.status).to_contain_text(f" as {nick}")

    def wait_state(self, state: str, timeout_ms: int = WAIT_MS) -> None:
        expect(self.status).to_have_attribute("data-state", state, timeout=timeout_ms)

    @property
    def fingerprint(self) -> str:
        """This browser's identity, as the "You" panel shows it."""
        return self.by("you-fingerprint").inner_text().strip()

    def dialogs_opened(self) -> list[str]:
        """The ids of the dialogs opened since the page was (re)loaded, in order."""
        opened = self.page.evaluate("window.__dialogsOpened")
        assert isinstance(opened, list), opened
        return [str(name) for name in opened]

    def say(self, text: str) -> None:
        composer = self.by("composer")
        composer.fill(text)
        composer.press("Enter")
        expect(composer).to_have_value("")

    def line(self, text: str) -> Locator:
        """The message line that contains ``text`` in the buffer shown."""
        return self.by("message-list").get_by_test_id("message-line").filter(has_text=text)

    def expect_delivered(self, text: str, timeout_ms: int = WAIT_MS) -> None:
        """Our own line, delivered: the server took it (✓)."""
        row = self.line(text)
        expect(row).to_have_attribute("data-delivery", "delivered", timeout=timeout_ms)
        expect(row.get_by_test_id("delivery-state")).to_have_text("✓ delivered")

    def expect_verified(self, nick: str, text: str, timeout_ms: int = WAIT_MS) -> None:
        """Someone else's line from ``nick``, its signature checked (✓)."""
        row = self.line(text)
        expect(row).to_have_attribute("data-verified", "true", timeout=timeout_ms)
        expect(row.get_by_test_id("verification")).to_have_text("✓ verified")
        expect(row.locator(".nick")).to_have_text(f"<{nick}>")

    def show(self, buffer: str) -> None:
        """Switch to ``buffer`` (a room, or a conversation ``@nick``), once it is listed."""
        item = self.page.locator(f'[data-testid="room-item"][data-buffer="{buffer}"]')
        item.click()
        expect(item).to_have_attribute("aria-current", "true")

    def notice(self, text: str) -> Locator:
        """The non-message line (notice, join...) that contains ``text`` in the buffer shown."""
        return self.by("message-list").get_by_test_id("event-line").filter(has_text=text)

    def expect_encrypted_sent(self, text: str) -> None:
        """Our own line, encrypted (🔒) and delivered (✓)."""
        self.expect_delivered(text)
        self._expect_lock(self.line(text))

    def expect_encrypted_from(
        self, nick: str, text: str, private: bool = False, trusted: bool = False
    ) -> None:
        """Someone else's line from ``nick``, decrypted (🔒) and its signature checked: ✓, or
        ✓✓ once their key is one we verified (``trusted``)."""
        row = self.line(text)
        expect(row).to_have_attribute("data-verified", "true")
        self._expect_lock(row)
        mark = "✓✓ verified, by a key you verified" if trusted else "✓ verified"
        expect(row.get_by_test_id("verification")).to_have_text(mark)
        if trusted:
            expect(row).to_have_attribute("data-trusted", "true")
        else:
            expect(row).not_to_have_attribute("data-trusted", "true")
        expect(row.locator(".nick")).to_have_text(f"*{nick}*" if private else f"<{nick}>")

    @staticmethod
    def _expect_lock(row: Locator) -> None:
        expect(row).to_have_attribute("data-encrypted", "true")
        expect(row.get_by_test_id("encrypted-mark")).to_have_text("🔒 end-to-end encrypted")

    def sas(self) -> tuple[str, str]:
        """The emoji and the numbers the verification dialog shows to compare, as the terminal
        client prints them: ``"  🐶 Dog  🐱 Cat ..."`` and ``"1234 5678 9012"``."""
        numbers = self.by("verify-numbers")
        expect(numbers).to_be_visible()
        items = self.by("verify-emoji").locator("li")
        pictures = items.locator(".picture").all_text_contents()
        names = items.locator("span:not(.picture)").all_text_contents()
        pairs = zip(pictures, names, strict=True)
        emoji = "".join(f"  {picture} {name}" for picture, name in pairs)
        return emoji, numbers.inner_text().removeprefix("Or the numbers: ")

    def problems(self) -> list[str]:
        """Uncaught errors in the page, and lines saying the client hit an internal error."""
        shown = self.page.get_by_text(INTERNAL_ERROR).all_inner_texts()
        return self.errors + shown
