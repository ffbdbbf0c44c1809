"""Two browsers and a terminal client chat in a room: every line is signed by its sender and
verified by the others (✓), whichever client wrote it. Each browser is a context of its own
(its own IndexedDB, so its own identity key made in the page); the terminal client is the real
``tlschat client --json`` process."""

from __future__ import annotations

import json

from .chromium import require

require()

from playwright.sync_api import expect  # noqa: E402

from tests.e2e.harness import Harness, json_event  # noqa: E402

from .web import NewContext, WebPage, free_ports, message, web_server  # noqa: E402


def test_two_browsers_and_a_terminal_client_chat_with_verified_lines(
    harness: Harness, new_context: NewContext
) -> None:
    port, web_port = free_ports(2)
    server = web_server(harness, harness.root / "data", port, web_port)
    carol = harness.joined_client("carol", port, json=True)
    alice = WebPage(new_context(), web_port)
    bob = WebPage(new_context(), web_port)
    alice.join("alice", server.fingerprint)
    bob.join("bob", server.fingerprint)
    assert alice.fingerprint != bob.fingerprint  # two identities, each made in its own browser
    expect(alice.by("room-item").filter(has_text="#general")).to_have_attribute(
        "aria-current", "true"
    )

    text = "morning from alice's tab 1a1a"
    alice.say(text)
    alice.expect_delivered(text)
    bob.expect_verified("alice", text)
    seen = json.loads(carol.wait_for_line(json_event(**message("alice", text))))
    assert (seen["room"], seen["fingerprint"]) == ("#general", alice.fingerprint), seen

    text = "and from bob's <b>tab</b>, markup shown as typed 2b2b"
    bob.say(text)
    bob.expect_delivered(text)
    alice.expect_verified("bob", text)
    seen = json.loads(carol.wait_for_line(json_event(**message("bob", text))))
    assert seen["fingerprint"] == bob.fingerprint, seen

    carol.send("the terminal answers 3c3c")
    for page in (alice, bob):
        page.expect_verified("carol", "the terminal answers 3c3c")

    for page in (alice, bob):
        assert page.problems() == [], page.problems()
