"""End-to-end encryption in a real browser, with the terminal client's devices: private
messages between two browsers and between a browser and ``tlschat client --json`` each way, an
encrypted room shared by a browser and a terminal client, a canary that the server never sees
(its log, its files), and SAS verification between a browser and a terminal client that turns
✓ into ✓✓. Each browser's Olm device is made in its page (its own context, its own IndexedDB)."""

from __future__ import annotations

import contextlib
import sqlite3

from .chromium import require

require()

from playwright.sync_api import expect  # noqa: E402

from tests.e2e.harness import Client, Harness, stop  # noqa: E402
from tests.e2e.test_canary_e2e import canaries, files_under, found_in, where  # noqa: E402
from tests.e2e.test_chat_features_e2e import quit_cleanly  # noqa: E402
from tests.e2e.test_e2ee_e2e import (  # noqa: E402
    event,
    joined,
    json_barrier,
    received,
    sas_shown,
    sent,
    wait_text,
)

from .web import NewContext, WebPage, free_ports, web_server  # noqa: E402

ROOM = "#vault"


def private_both_ways(page: WebPage, nick: str, terminal: Client, to: str, back: str) -> None:
    """``page`` (``nick``) writes ``to`` to the terminal client with /msg, which answers
    ``back`` with /msg: each side shows the other's line decrypted and verified (🔒 ✓), and
    its own as encrypted and delivered."""
    page.say(f"/msg {terminal.nick} {to}")
    page.show(f"@{terminal.nick}")
    page.expect_encrypted_sent(to)
    assert received(terminal, "private", nick, to)["fingerprint"] == page.fingerprint

    terminal.send(f"/msg {nick} {back}")
    assert sent(terminal, "private", back)["room"] == f"@{nick}"
    page.expect_encrypted_from(terminal.nick, back, private=True)


def encrypted_room(page: WebPage, nick: str, terminal: Client, said: str, answer: str) -> None:
    """``page`` (``nick``) makes #vault (its first member owns it) end-to-end encrypted, the
    terminal client joins, and each says a line that the other reads decrypted (🔒 ✓)."""
    page.say(f"/join {ROOM}")
    expect(page.by("buffer-title")).to_have_text(ROOM)
    page.say(f"/encrypt {ROOM}")
    expect(page.notice(f"{ROOM} is now end-to-end encrypted (by {nick})")).to_be_visible()

    terminal.send(f"/join {ROOM}")
    event(terminal, kind="joined", room=ROOM)
    # The page shares its room key with the members it knows of: it must have seen the join.
    expect(page.notice(f"{terminal.nick} joined {ROOM}")).to_be_visible()

    page.say(said)
    page.expect_encrypted_sent(said)
    assert received(terminal, "message", nick, said)["room"] == ROOM

    terminal.send(answer)
    assert sent(terminal, "message", answer)["room"] == ROOM
    page.expect_encrypted_from(terminal.nick, answer)


def test_private_messages_between_browsers_and_a_terminal_are_encrypted_and_verified(
    harness: Harness, new_context: NewContext
) -> None:
    port, web_port = free_ports(2)
    server = web_server(harness, harness.root / "data", port, web_port)
    carol = joined(harness, "carol", port, json=True)
    alice = WebPage(new_context(), web_port)
    bob = WebPage(new_context(), web_port)
    alice.join("alice", server.fingerprint)
    bob.join("bob", server.fingerprint)

    # Browser to browser: /msg one way, the conversation's own box the other way.
    first = "alice to bob, sealed in her tab 5e1a"
    alice.say(f"/msg bob {first}")
    alice.show("@bob")
    alice.expect_encrypted_sent(first)
    bob.show("@alice")
    bob.expect_encrypted_from("alice", first, private=True)
    answer = "bob answers in the conversation box 6f2b"
    bob.say(answer)
    bob.expect_encrypted_sent(answer)
    alice.expect_encrypted_from("bob", answer, private=True)

    # Browser and terminal, both ways.
    private_both_ways(
        alice, "alice", carol, "alice to the terminal 7a3c", "the terminal to alice 8b4d"
    )

    # The terminal read none of the browsers' conversation (all it was sent is printed by the
    # time the server answers its next command).
    json_barrier(carol)
    assert first not in carol.output() and answer not in carol.output(), carol.describe()
    for page in (alice, bob):
        assert page.problems() == [], page.problems()
    quit_cleanly(carol)


def test_an_encrypted_room_between_a_browser_and_a_terminal(
    harness: Harness, new_context: NewContext
) -> None:
    port, web_port = free_ports(2)
    server = web_server(harness, harness.root / "data", port, web_port)
    carol = joined(harness, "carol", port, json=True)
    alice = WebPage(new_context(), web_port)
    alice.join("alice", server.fingerprint)

    encrypted_room(alice, "alice", carol, "the tab in the vault 9c5e", "the terminal too 0d6f")
    assert alice.problems() == [], alice.problems()
    quit_cleanly(carol)


def test_the_server_never_sees_the_canary_of_a_browsers_encrypted_lines(
    harness: Harness, new_context: NewContext
) -> None:
    secret, control = canaries()
    data_dir = harness.root / "data"
    port, web_port = free_ports(2)
    server = web_server(harness, data_dir, port, web_port, extra=("--verbose",))
    carol = joined(harness, "carol", port, json=True)
    alice = WebPage(new_context(), web_port)
    alice.join("alice", server.fingerprint)

    # The control, in the clear in #general: the server keeps it, as the checks below find.
    plain = f"in the clear: {control}"
    alice.say(plain)
    alice.expect_delivered(plain)
    line = event(carol, kind="message", nick="alice", text=plain)
    assert line["verified"] is True and "encrypted" not in line, line

    private_both_ways(alice, "alice", carol, f"privately: {secret}", f"and back: {secret}")
    alice.show("#general")
    encrypted_room(alice, "alice", carol, f"in the vault: {secret}", f"{secret}, said carol")

    # While the server runs: its files, the database's write-ahead log included.
    files = files_under(data_dir)
    assert any(path.name.startswith("chat.db") for path in files), sorted(files)
    assert where(files, control), "control: the plain line should be in the database files"
    assert not where(files, secret), where(files, secret)

    # Once it stopped (the log checkpointed into chat.db): its files, and all it logged.
    quit_cleanly(carol)
    assert stop(server) == 0, server.describe()
    files = files_under(data_dir)
    assert str(data_dir / "chat.db") in where(files, control), where(files, control)
    assert not where(files, secret), where(files, secret)
    # What was searched holds the encrypted lines: the room's history, stored encrypted.
    with contextlib.closing(sqlite3.connect(data_dir / "chat.db")) as db:
        history = db.execute("SELECT encrypted FROM messages WHERE room = ?", (ROOM,)).fetchall()
    assert len(history) == 2 and all(encrypted for (encrypted,) in history), history
    log = "\n".join(server.snapshot("stdout") + server.snapshot("stderr"))
    assert f"[WEB] Web client on http://127.0.0.1:{web_port}/" in log and "[SHUTDOWN]" in log
    assert not found_in(log.encode(), secret), server.describe()


def test_sas_between_a_browser_and_a_terminal_marks_later_lines_trusted(
    harness: Harness, new_context: NewContext
) -> None:
    port, web_port = free_ports(2)
    server = web_server(harness, harness.root / "data", port, web_port)
    carol = joined(harness, "carol", port, json=True)
    alice = WebPage(new_context(), web_port)
    alice.join("alice", server.fingerprint)
    carol_fp = harness.key_fingerprint(harness.root / "homes" / "carol")

    # Before: ✓, not ✓✓.
    carol.send("/msg alice before comparing 1e7a")
    alice.show("@carol")
    alice.expect_encrypted_from("carol", "before comparing 1e7a", private=True)

    start = carol.mark()
    alice.say("/verify carol")
    wait_text(
        carol,
        f"alice ({alice.fingerprint}) wants to verify you: /verify yes to start, "
        "/verify no to refuse.",
        start,
    )
    carol.send("/verify yes")
    terminal_sees = sas_shown(carol, "alice", start)
    dialog = alice.by("verify-dialog")
    expect(dialog).to_be_visible()
    expect(alice.by("verify-yes")).to_have_text("They match")
    assert alice.sas() == terminal_sees, (alice.sas(), terminal_sees)

    alice.by("verify-yes").click()
    expect(dialog).to_be_hidden()
    carol.send("/verify yes")
    verified = "✓✓ {} is verified: their key {} is the one you compared with."
    wait_text(carol, verified.format("alice", alice.fingerprint), start)
    expect(alice.notice(verified.format("carol", carol_fp))).to_be_visible()

    # From now on the browser shows carol's lines ✓✓, and the terminal alice's.
    carol.send("/msg alice after comparing 2f8b")
    alice.expect_encrypted_from("carol", "after comparing 2f8b", private=True, trusted=True)
    alice.say("and alice's next line 3a9c")
    assert received(carol, "private", "alice", "and alice's next line 3a9c")["trusted"] is True
    assert alice.problems() == [], alice.problems()
    quit_cleanly(carol)
