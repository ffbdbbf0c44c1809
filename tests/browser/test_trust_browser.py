"""The server's key in the browser: first contact shows its fingerprint and asks, before the
page says who it is; trusting pins it, and a reload asks nothing; a "no" stops the page with
nothing sent; a server presenting another key later stops the page with the terminal client's
loud warning, and it never completes a handshake with that server."""

from __future__ import annotations

from .chromium import require

require()

from playwright.sync_api import expect  # noqa: E402

from tests.e2e.harness import Harness, stop  # noqa: E402

from .web import RECONNECT_WAIT_MS, NewContext, WebPage, free_ports, web_server  # noqa: E402

PIN = "tlschat.pin"  # where the page keeps the pinned key (localStorage, per origin)
HANDSHAKE_DONE = "Handshake complete"
IDENTITY_SENT = "identity SHA256:"  # the server logs the client's key once it has proved it
# The browser's alert when it refuses the server's key, as the server logs it.
REFUSED_KEY = "bad_certificate (client alert received)"
# Every connection's lines as they happen, a failed handshake's too (not held until it completes).
VERBOSE = ("--verbose",)


def pinned(page: WebPage) -> object:
    return page.page.evaluate(f"localStorage.getItem({PIN!r})")


def test_first_contact_asks_trusting_pins_and_a_reload_asks_nothing(
    harness: Harness, new_context: NewContext
) -> None:
    port, web_port = free_ports(2)
    server = web_server(harness, harness.root / "data", port, web_port, extra=VERBOSE)
    alice = WebPage(new_context(), web_port)
    alice.open()
    alice.choose_nick("alice")
    expect(alice.by("trust-dialog")).to_be_visible()
    expect(alice.by("trust-fingerprint")).to_have_text(server.fingerprint)
    alice.wait_state("trust")
    # The question comes before the browser proves who it is: the server has not seen its key.
    server.wait_for_line("[TLS] Step 2: ServerHello + Certificate sent")
    assert server.find(IDENTITY_SENT) is None, server.describe()
    assert pinned(alice) is None

    alice.trust(server.fingerprint)
    alice.wait_connected("alice")
    assert pinned(alice) == server.fingerprint
    expect(alice.by("server-fingerprint")).to_have_text(server.fingerprint)
    server.wait_for_line(f"{IDENTITY_SENT}{alice.fingerprint.removeprefix('SHA256:')}")
    assert alice.dialogs_opened() == ["nick-dialog", "trust-dialog"]

    alice.reload()
    alice.wait_connected("alice")
    assert alice.dialogs_opened() == []  # neither the nick nor the key asked again
    alice.say("after the reload 4d4d")
    alice.expect_delivered("after the reload 4d4d")
    assert alice.problems() == [], alice.problems()


def test_not_trusting_a_new_server_stops_with_nothing_sent(
    harness: Harness, new_context: NewContext
) -> None:
    port, web_port = free_ports(2)
    server = web_server(harness, harness.root / "data", port, web_port, extra=VERBOSE)
    mallory = WebPage(new_context(), web_port)
    mallory.open()
    mallory.choose_nick("mallory")
    expect(mallory.by("trust-dialog")).to_be_visible()
    mallory.by("trust-reject").click()
    expect(mallory.by("stopped-notice")).to_be_visible()
    expect(mallory.by("stopped-notice")).to_contain_text("Not trusted; nothing was sent.")
    mallory.wait_state("stopped")
    server.wait_for_line(REFUSED_KEY)
    assert server.find(IDENTITY_SENT) is None and server.find(HANDSHAKE_DONE) is None, (
        server.describe()
    )
    assert pinned(mallory) is None


def test_a_changed_server_key_stops_the_page(harness: Harness, new_context: NewContext) -> None:
    port, web_port = free_ports(2)
    first = web_server(harness, harness.root / "first", port, web_port, name="first")
    alice = WebPage(new_context(), web_port)
    alice.join("alice", first.fingerprint)
    assert stop(first) == 0, first.describe()

    # Another key on the same address: the page, reconnecting by itself, finds it.
    second = web_server(
        harness, harness.root / "second", port, web_port, name="second", extra=VERBOSE
    )
    assert second.fingerprint != first.fingerprint
    warning = alice.by("key-changed-warning")
    expect(warning).to_be_visible(timeout=RECONNECT_WAIT_MS)
    expect(warning).to_contain_text("WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!")
    expect(warning).to_contain_text(f"remote host 127.0.0.1:{web_port} is\n{second.fingerprint}.")
    expect(warning).to_contain_text(f"This browser pinned {first.fingerprint}")
    alice.wait_state("stopped")
    second.wait_for_line(REFUSED_KEY)

    # A reload meets the same key, and stops the same way.
    alice.reload()
    expect(warning).to_be_visible()
    alice.wait_state("stopped")
    assert alice.dialogs_opened() == []  # never asked to trust the other key
    second.wait_for_lines(REFUSED_KEY, 2)
    assert second.find(HANDSHAKE_DONE) is None and second.find(IDENTITY_SENT) is None, (
        second.describe()
    )
    assert pinned(alice) == first.fingerprint
    assert alice.page.get_by_text("You are alice in").count() == 0  # no welcome
    assert alice.problems() == [], alice.problems()
