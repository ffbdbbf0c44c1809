"""The page and a server restart (SIGTERM, then the same port and data dir again): the status
line says it is reconnecting, then connected, without asking anything; a line typed while the
server is down waits (⋯) and is delivered after the reconnect; lines after it flow both ways."""

from __future__ import annotations

import json
import re

from .chromium import require

require()

from playwright.sync_api import expect  # noqa: E402

from tests.e2e.harness import Client, Harness, Server, json_event, stop  # noqa: E402

from .web import RECONNECT_WAIT_MS, NewContext, WebPage, free_ports, message, web_server  # noqa: E402

WELCOME_BACK = re.compile(r"You are carol in #general")


def stopped(server: Server, page: WebPage, carol: Client) -> int:
    """Stop ``server`` cleanly; once ``page`` has seen it go. Where carol's output stood."""
    mark = carol.mark()
    assert stop(server) == 0, server.describe()
    page.wait_state("reconnecting")
    expect(page.status).to_contain_text("reconnecting")
    return mark


def test_the_page_reconnects_after_a_server_restart(
    harness: Harness, new_context: NewContext
) -> None:
    port, web_port = free_ports(2)
    data = harness.root / "data"
    server = web_server(harness, data, port, web_port)
    carol = harness.joined_client("carol", port, json=True)
    alice = WebPage(new_context(), web_port)
    alice.join("alice", server.fingerprint)
    alice.say("before the restart 6e6e")
    alice.expect_delivered("before the restart 6e6e")

    mark = stopped(server, alice, carol)
    restarted = web_server(harness, data, port, web_port, name="restarted")
    alice.wait_connected("alice", timeout_ms=RECONNECT_WAIT_MS)
    carol.wait_for_line(WELCOME_BACK, timeout=RECONNECT_WAIT_MS / 1000, start=mark)
    restarted.wait_for_line(f"identity {alice.fingerprint}")
    assert alice.dialogs_opened() == ["nick-dialog", "trust-dialog"]  # none since the first
    expect(alice.line("before the restart 6e6e")).to_have_count(1)  # still on screen, once

    alice.say("back after the restart 7c7c")
    alice.expect_delivered("back after the restart 7c7c")
    seen = json.loads(
        carol.wait_for_line(json_event(**message("alice", "back after the restart 7c7c")))
    )
    assert seen["fingerprint"] == alice.fingerprint, seen
    carol.send("so am I 8d8d")
    alice.expect_verified("carol", "so am I 8d8d")
    assert alice.problems() == [], alice.problems()


def test_a_line_typed_while_the_server_is_down_is_delivered_after_the_reconnect(
    harness: Harness, new_context: NewContext
) -> None:
    port, web_port = free_ports(2)
    data = harness.root / "data"
    server = web_server(harness, data, port, web_port)
    carol = harness.joined_client("carol", port, json=True)
    alice = WebPage(new_context(), web_port)
    alice.join("alice", server.fingerprint)

    mark = stopped(server, alice, carol)
    text = "typed while the server was down 5e5e"
    alice.say(text)
    row = alice.line(text)
    expect(row).to_have_attribute("data-delivery", "pending")
    expect(row.get_by_test_id("delivery-state")).to_have_text("⋯ sending")
    assert carol.find(json_event(text=text), start=mark) is None

    web_server(harness, data, port, web_port, name="restarted")
    alice.wait_connected("alice", timeout_ms=RECONNECT_WAIT_MS)
    alice.expect_delivered(text)
    expect(row).to_have_count(1)  # the same line, now delivered: not sent twice, not shown twice
    seen = json.loads(
        carol.wait_for_line(json_event(**message("alice", text)), timeout=RECONNECT_WAIT_MS / 1000)
    )
    assert seen["fingerprint"] == alice.fingerprint, seen
    # Once only: a later line arrives after it, and it did not come again.
    alice.say("and the next one 9f9f")
    carol.wait_for_line(json_event(**message("alice", "and the next one 9f9f")))
    assert len([line for line in carol.snapshot()[mark:] if json_event(text=text)(line)]) == 1
    assert alice.problems() == [], alice.problems()
