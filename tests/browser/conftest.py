"""Fixtures for the browser tests: one headless Debian Chromium driven by Playwright for each test
module (each test opens its own browser contexts: each its own IndexedDB and localStorage, so its
own identity and pins), and the end-to-end tests' harness (tests/e2e/conftest.py), which starts
the real server and terminal clients and kills whatever is left.

Playwright's sync API keeps an asyncio event loop running in the main thread while it is started,
and every other test that calls ``asyncio.run`` then fails: so it is started and stopped with each
module of this directory, never left running for the rest of the session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.conftest import harness
from tests.e2e.harness import Harness

__all__ = ["harness"]  # the fixture, shared with tests/e2e

if TYPE_CHECKING:  # imported only where the tests run: chromium.require() skips them otherwise
    from playwright.sync_api import Browser, BrowserContext

    from .web import NewContext


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    from .web import launch

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def new_context(harness: Harness, chromium: Browser) -> Iterator[NewContext]:
    """Makes browser contexts (Playwright's options as keywords), each one browser profile of
    its own; all closed at the end, before the harness stops the processes."""
    contexts: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        context = chromium.new_context(**options)
        contexts.append(context)
        return context

    try:
        yield make
    finally:
        for context in contexts:
            context.close()
