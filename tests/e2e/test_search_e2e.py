"""End to end: ``/search`` with the real server and real clients. The server finds the plain
lines of the caller's rooms (the client checks each one: ✓) and never an end-to-end encrypted
one, which it holds only as ciphertext; the client adds what it decrypted itself (🔒)."""

from __future__ import annotations

import json

from .harness import Client, Harness
from .test_chat_features_e2e import quit_cleanly
from .test_e2ee_e2e import event, joined, received

PLAIN = "plain canary 7d1e"
SEALED = "sealed canary 4a2b"


def test_search_finds_plain_lines_on_the_server_and_decrypted_ones_locally(
    harness: Harness,
) -> None:
    homes = {nick: harness.home(nick) for nick in ("alice", "bob", "carol")}
    server = harness.server(extra=("--operator", harness.key_fingerprint(homes["alice"])))
    alice = joined(harness, "alice", server.port, home=homes["alice"], json=True)
    bob = joined(harness, "bob", server.port, home=homes["bob"], json=True)
    carol = joined(harness, "carol", server.port, home=homes["carol"], json=True)
    bob.send(PLAIN)
    event(alice, kind="message", nick="bob", text=PLAIN, verified=True)

    for client in (alice, bob):
        client.send("/join #sealed")
        event(client, kind="joined", nick=client.name, room="#sealed")
    alice.send("/encrypt #sealed")
    event(alice, kind="notice", text="#sealed is end-to-end encrypted now, for good")
    event(bob, kind="notice", text="#sealed is now end-to-end encrypted (by alice)")
    bob.send(SEALED)
    received(alice, "message", "bob", SEALED, room="#sealed")

    start = alice.mark()
    alice.send("/search canary")
    event(alice, start, kind="notice", text="Search for 'canary': 2 results, newest first")
    sealed = event(alice, start, text=SEALED, history=True)
    plain = event(alice, start, text=PLAIN, history=True)
    assert sealed["verified"] is True and sealed["encrypted"] is True, sealed
    assert plain["verified"] is True and "encrypted" not in plain, plain
    assert position(alice, start, SEALED) < position(alice, start, PLAIN)  # newest first

    # carol is not in #sealed: she finds the plain line only, and nothing of #sealed by name.
    start = carol.mark()
    carol.send("/search canary")
    event(carol, start, kind="notice", text="Search for 'canary': 1 result, newest first")
    assert event(carol, start, text=PLAIN, history=True)["verified"] is True
    carol.send("/search canary #sealed")
    event(carol, start, kind="error", text="you are not in #sealed")

    quit_cleanly(alice, bob, carol)
    stored = b"".join(path.read_bytes() for path in (harness.root / "server").glob("chat.db*"))
    assert PLAIN.encode() in stored and SEALED.encode() not in stored


def position(client: Client, start: int, text: str) -> int:
    """Where (from ``start``) the ``--json`` line with ``text`` is in ``client``'s output."""
    lines = client.snapshot()[start:]
    found = [at for at, line in enumerate(lines) if json.loads(line).get("text") == text]
    assert found, client.describe()
    return found[0]
