"""An automated accessibility audit of the web client: axe-core (web/package.json's
devDependency, pinned in web/package-lock.json) injected into the real page, connected and
showing lines, with the help dialog open, and on a phone-sized screen (360x640) with the rooms
pane open too. Every rule axe runs by default must pass: zero violations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .chromium import require

require()

from playwright.sync_api import ViewportSize, expect  # noqa: E402

from tests.e2e.harness import Harness  # noqa: E402

from .web import NewContext, WebPage, free_ports, web_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
PHONE: ViewportSize = {"width": 360, "height": 640}
# What axe found, small enough to read in a failure: each rule, its impact, and where.
RUN_AXE = """async () => {
  const results = await axe.run(document, { resultTypes: ["violations"] });
  return results.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${n.failureSummary}`),
  }));
}"""


def audit(page: WebPage) -> list[dict[str, Any]]:
    if not page.page.evaluate("typeof window.axe !== 'undefined'"):
        page.page.add_script_tag(path=AXE)
    violations = page.page.evaluate(RUN_AXE)
    assert isinstance(violations, list), violations
    return violations


def describe(violations: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']}\n    " + "\n    ".join(v["nodes"])
        for v in violations
    )


def test_the_page_passes_an_accessibility_audit(harness: Harness, new_context: NewContext) -> None:
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run `npm ci` in web/ (make test does)")
    port, web_port = free_ports(2)
    server = web_server(harness, harness.root / "data", port, web_port)
    carol = harness.joined_client("carol", port)
    # axe-core goes in as an inline script, which the page's Content-Security-Policy forbids.
    alice = WebPage(new_context(bypass_csp=True), web_port)
    alice.join("alice", server.fingerprint)
    alice.say("a line of my own 1f1f")
    carol.send("alice: one with a mention 2e2e")
    alice.expect_delivered("a line of my own 1f1f")
    alice.expect_verified("carol", "one with a mention 2e2e")

    found = audit(alice)
    assert found == [], "connected:\n" + describe(found)

    alice.by("help-button").click()
    expect(alice.by("help-dialog")).to_be_visible()
    found = audit(alice)
    assert found == [], "help dialog open:\n" + describe(found)
    alice.page.keyboard.press("Escape")
    expect(alice.by("help-dialog")).to_be_hidden()

    alice.page.set_viewport_size(PHONE)
    expect(alice.by("composer")).to_be_in_viewport()
    found = audit(alice)
    assert found == [], "at 360x640:\n" + describe(found)
    toggle = alice.page.locator("#nav-toggle")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(alice.by("room-list")).to_be_in_viewport()
    found = audit(alice)
    assert found == [], "at 360x640, rooms pane open:\n" + describe(found)
    assert alice.problems() == [], alice.problems()
