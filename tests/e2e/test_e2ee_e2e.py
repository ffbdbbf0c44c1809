"""End to end: the end-to-end layer (issue 14) with the real server and real clients.

Three users, alice, bob and carol; bob has two devices (two homes holding the same identity key,
each with its own device). Private messages reach every device of the recipient and the
sender's other devices, also a device that is offline when they are sent; an operator makes a
room end-to-end encrypted, and a member who left reads nothing sent while away; ``/verify``
between two clients shows both the same emoji and numbers, and only when both confirm do later
lines carry ✓✓.

Every wait is for a line the clients print, bounded by the harness's deadlines; absence is
checked only after a barrier that the same client received later.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .harness import CLOCK, WAIT, Client, Harness, json_event
from .test_chat_features_e2e import barrier, notice, quit_cleanly

OTHER_DEVICE = "from another device of yours"
ENCRYPTED_BY_ALICE = "#general is now end-to-end encrypted (by alice)"
SAS_NUMBERS = re.compile(r"^  or the numbers (\d{4} \d{4} \d{4})$")
SAS_EMOJI_COUNT = 7
SAS_PROMPT = "Do they match? /verify yes or /verify no"


# ----- helpers (the cluster and canary tests use them too) -----


def second_device(harness: Harness, home: Path, name: str) -> Path:
    """Another home holding ``home``'s identity key: another device of the same user (it makes
    its own device keys when its client first runs)."""
    device = harness.root / "homes" / name
    device.mkdir(mode=0o700, parents=True)
    shutil.copy2(home / "identity.pem", device / "identity.pem")
    return device


def event(client: Client, start: int = 0, timeout: float = WAIT, **fields: Any) -> dict[str, Any]:
    """The first ``--json`` line (from ``start``) with all of ``fields``, parsed."""
    found: dict[str, Any] = json.loads(
        client.wait_for_line(json_event(**fields), timeout, start=start)
    )
    return found


def received(client: Client, kind: str, nick: str, text: str, **fields: Any) -> dict[str, Any]:
    """A line from ``nick`` that ``client`` (``--json``) decrypted and verified: 🔒 and ✓."""
    line = event(client, kind=kind, nick=nick, text=text, **fields)
    assert line["verified"] is True and line["encrypted"] is True, line
    assert "delivery" not in line and "problem" not in line, line
    return line


def sent(client: Client, kind: str, text: str) -> dict[str, Any]:
    """``client``'s own line, once the server has taken it ('sent'): encrypted."""
    line = event(client, kind=kind, text=text, delivery="delivered")
    assert line["encrypted"] is True, line
    return line


def json_barrier(client: Client) -> None:
    """:func:`barrier` for a ``--json`` client."""
    start = client.mark()
    client.send("/rooms")
    client.wait_for_line(json_event(text="Rooms:"), start=start)


def keyed(client: Client) -> Client:
    """``client`` once the server has answered a command of its: its hello, with its device's
    first one-time keys, and any top-up after it, have been applied."""
    if "--json" in client.argv:
        json_barrier(client)
    else:
        barrier(client)
    return client


def joined(harness: Harness, nick: str, port: int, **kwargs: Any) -> Client:
    """A client that has joined #general and whose one-time keys are on the server."""
    return keyed(harness.joined_client(nick, port, **kwargs))


# nick, port, home -> a ``--json`` client that has joined and whose one-time keys are on the
# server (a cluster's servers wait for Redis differently: tests/cluster).
Join = Callable[[str, int, Path], Client]


def joiner(harness: Harness) -> Join:
    return lambda nick, port, home: joined(harness, nick, port, home=home, json=True)


def locked(nick: str, text: str, mark: str = "✓") -> re.Pattern[str]:
    """A whole plain line: an encrypted, verified room line (``mark`` ✓✓ once verified)."""
    return re.compile(rf"^{CLOCK} 🔒{mark} <{re.escape(nick)}> {re.escape(text)}$")


def locked_private(nick: str, text: str, mark: str = "✓") -> re.Pattern[str]:
    """A whole plain line: an encrypted, verified private message."""
    return re.compile(rf"^{CLOCK} 🔒{mark} \*{re.escape(nick)}\* {re.escape(text)}$")


def shown(line: str) -> str:
    """The text of a notice as either mode prints it (``--json`` or plain)."""
    if line.startswith("{"):
        return str(json.loads(line).get("text", ""))
    return re.sub(rf"^{CLOCK} \*\*\* ", "", line)


def texts(client: Client, start: int = 0) -> list[str]:
    return [shown(line) for line in client.snapshot()[start:]]


def device_list(client: Client) -> list[str]:
    """``/devices``: the ids it lists, this device's first."""
    start = client.mark()
    client.send("/devices")
    client.wait_for_line(
        lambda line: shown(line) == "  /devices remove ID removes one", start=start
    )
    listing = texts(client, start)
    first = listing.index("Your devices:") + 1
    last = listing.index("  /devices remove ID removes one")
    ids = [entry.split()[0] for entry in listing[first:last]]
    assert listing[first].endswith(" (this device)"), listing
    return ids


def sas_shown(client: Client, nick: str, start: int = 0) -> tuple[str, str]:
    """The emoji and the numbers ``client`` shows to compare with ``nick``."""
    wait_text(client, SAS_PROMPT, start)  # the last of the four lines
    listing = texts(client, start)
    at = listing.index(f"Verify {nick}: compare with what {nick} sees (in person or on a call):")
    emoji, numbers = listing[at + 1], SAS_NUMBERS.match(listing[at + 2])
    assert numbers is not None and listing[at + 3] == SAS_PROMPT
    assert len(emoji.split("  ")) == SAS_EMOJI_COUNT + 1, emoji  # a leading "  " indent
    return emoji, numbers.group(1)


def wait_text(client: Client, text: str, start: int = 0) -> None:
    client.wait_for_line(lambda line: shown(line) == text, start=start)


# ----- private messages: every device, also one that is offline -----


def test_private_messages_reach_every_device_of_both_users_even_one_offline(
    harness: Harness,
) -> None:
    homes = {nick: harness.home(nick) for nick in ("alice", "bob", "carol")}
    phone_home = second_device(harness, homes["bob"], "bob-phone")
    server = harness.server()
    # bob's phone makes its device (the server lists it from now on), then goes offline.
    phone = joined(harness, "bob", server.port, home=phone_home, json=True)
    quit_cleanly(phone)
    alice = joined(harness, "alice", server.port, home=homes["alice"], json=True)
    bob = joined(harness, "bob", server.port, home=homes["bob"], json=True)
    carol = joined(harness, "carol", server.port, home=homes["carol"])
    alice_fp = harness.key_fingerprint(homes["alice"])

    # To bob while his phone is offline: 'sent' at once, and on his laptop at once.
    to_bob = "for both of bob's devices 61c2"
    alice.send(f"/msg bob {to_bob}")
    assert sent(alice, "private", to_bob)["room"] == "@bob"
    assert received(bob, "private", "alice", to_bob)["fingerprint"] == alice_fp
    # From bob's laptop, while the phone is offline: the phone gets a copy too.
    to_carol = "from bob's laptop to carol 7d0e"
    bob.send(f"/msg carol {to_carol}")
    carol.wait_for_line(locked_private("bob", to_carol))
    sent(bob, "private", to_carol)

    # The phone comes back: its inbox held both, alice's message and its user's own.
    phone = joined(harness, "bob", server.port, home=phone_home, json=True)
    assert received(phone, "private", "alice", to_bob)["fingerprint"] == alice_fp
    copy = event(phone, kind="private", text=to_carol, note=OTHER_DEVICE)
    assert (copy["nick"], copy["room"], copy["delivery"], copy["encrypted"]) == (
        "bob",
        "@carol",
        "delivered",
        True,
    ), copy

    # Both online: what the phone sends reaches alice, and the laptop shows it as its own.
    from_phone = "from bob's phone to alice 3a9f"
    phone.send(f"/msg alice {from_phone}")
    received(alice, "private", "bob", from_phone)
    sent(phone, "private", from_phone)
    copy = event(bob, kind="private", text=from_phone, note=OTHER_DEVICE)
    assert (copy["room"], copy["encrypted"]) == ("@alice", True), copy

    # Two devices of one user, listed alike by each.
    laptop_ids, phone_ids = device_list(bob), device_list(phone)
    assert len(laptop_ids) == 2 and len(set(laptop_ids)) == 2, laptop_ids
    assert phone_ids == laptop_ids[::-1], (phone_ids, laptop_ids)

    # Nobody else read them, and nothing was shown twice.
    barrier(carol)
    json_barrier(alice)
    assert to_bob not in carol.output() and from_phone not in carol.output(), carol.describe()
    assert to_carol not in alice.output(), alice.describe()
    for device in (bob, phone):
        assert sum(to_bob in line for line in device.snapshot()) == 1, device.describe()
    quit_cleanly(alice, bob, carol, phone)


# ----- encrypted rooms: a member who left reads nothing sent meanwhile -----


def encrypted_room(
    harness: Harness, homes: dict[str, Path], ports: dict[str, int], join: Join
) -> tuple[Client, Client, Client]:
    """alice (an operator), bob and carol, each through ``ports[nick]``: alice makes #general
    end-to-end encrypted, and each says a line all others read; carol leaves, alice says a line
    only bob reads, carol comes back (then restarts, through ``ports["carol again"]``) and still
    cannot read it, though she reads what was said before and after. The clients, running."""
    alice, bob, carol = (join(nick, ports[nick], homes[nick]) for nick in ("alice", "bob", "carol"))

    bob.send("/encrypt #general")
    event(bob, kind="error", text="/encrypt is for operators")
    alice.send("/encrypt #general")
    event(alice, kind="notice", text="#general is end-to-end encrypted now, for good")
    for member in (alice, bob, carol):
        event(member, kind="notice", text=ENCRYPTED_BY_ALICE)

    # One line each, in turn (so that history has them in this order); each member reads the
    # others' (a line that came before its key is shown waiting, then replaced: same ref).
    members = {"alice": alice, "bob": bob, "carol": carol}
    before = {
        "alice": "alice in the sealed room 0b1e",
        "bob": "bob in the sealed room 5f3a",
        "carol": "carol in the sealed room 9c77",
    }
    for nick, text in before.items():
        members[nick].send(text)
        sent(members[nick], "message", text)
    for nick, text in before.items():
        for reader in members.values():
            if reader.name != nick:
                assert received(reader, "message", nick, text)["room"] == "#general"

    # carol leaves; alice's next line goes under a new session that carol never gets.
    carol.send("/part #general")
    for member in (alice, bob):
        event(member, kind="leave", nick="carol", text="carol left #general (part)")
    while_away = "said while carol was away 4d21"
    alice.send(while_away)
    sent(alice, "message", while_away)
    received(bob, "message", "alice", while_away)

    # Back in the room: the line she missed is shown as waiting for its key, and stays so
    # after she gets the key of what alice says next (shared from its current index only).
    start, alice_mark = carol.mark(), alice.mark()
    carol.send("/join #general")
    missed = carol.wait_for_line(json_event(text="1 missed message of #general:"), start=start)
    waiting = event(carol, carol.snapshot().index(missed, start), kind="message", nick="alice")
    assert (waiting["encrypted"], "text" in waiting, "verified" in waiting) == (True, False, False)
    # (alice encrypts for the members she knows of: she must have seen carol come back.)
    event(alice, alice_mark, kind="join", nick="carol", text="carol joined #general")
    welcome_back = "welcome back carol 8e02"
    alice.send(welcome_back)
    received(carol, "message", "alice", welcome_back)
    json_barrier(carol)
    assert while_away not in carol.output(), carol.describe()
    same_ref = [
        json.loads(line) for line in carol.snapshot() if json_event(ref=waiting["ref"])(line)
    ]
    assert same_ref == [waiting], carol.describe()  # never replaced by a decrypted line

    # Restarted, her client shows the room's history: what she was there for, readable (its
    # keys are kept in her device); what was said while she was away, still waiting.
    quit_cleanly(carol)
    carol = harness.client("carol", ports["carol again"], home=homes["carol"])
    carol.wait_for_line(notice("Last 5 messages of #general:"))
    carol.wait_for_line(locked("alice", welcome_back))
    history = [re.sub(rf"^{CLOCK} ", "", line) for line in carol.snapshot()[-5:]]
    assert history == [
        f"🔒✓ <alice> {before['alice']}",
        f"🔒✓ <bob> {before['bob']}",
        f"🔒✓ <carol> {before['carol']}",
        "🔒 waiting for the key <alice>",
        f"🔒✓ <alice> {welcome_back}",
    ], carol.describe()
    barrier(carol)
    assert while_away not in carol.output(), carol.describe()
    return alice, bob, carol


def test_an_encrypted_room_and_a_member_who_left_reading_nothing_sent_meanwhile(
    harness: Harness,
) -> None:
    homes = {nick: harness.home(nick) for nick in ("alice", "bob", "carol")}
    server = harness.server(extra=("--operator", harness.key_fingerprint(homes["alice"])))
    ports = dict.fromkeys(("alice", "bob", "carol", "carol again"), server.port)
    alice, bob, carol = encrypted_room(harness, homes, ports, joiner(harness))
    # For good: a second time is refused.
    alice.send("/encrypt #general")
    event(alice, kind="error", text="#general is already encrypted")
    quit_cleanly(alice, bob, carol)


# ----- verification -----


def _compare(alice: Client, bob: Client, alice_fp: str) -> tuple[int, int]:
    """alice asks to verify bob and bob accepts: both show the same emoji and numbers.
    Where each client's output stood before (for later waits)."""
    starts = alice.mark(), bob.mark()
    alice.send("/verify bob")
    wait_text(
        bob,
        f"alice ({alice_fp}) wants to verify you: /verify yes to start, /verify no to refuse.",
        starts[1],
    )
    bob.send("/verify yes")
    alice_sees = sas_shown(alice, "bob", starts[0])
    bob_sees = sas_shown(bob, "alice", starts[1])
    assert alice_sees == bob_sees, (alice_sees, bob_sees)
    return starts


def test_verification_confirmed_by_both_marks_later_lines_trusted(harness: Harness) -> None:
    homes = {nick: harness.home(nick) for nick in ("alice", "bob")}
    alice_fp, bob_fp = (harness.key_fingerprint(homes[nick]) for nick in ("alice", "bob"))
    server = harness.server()
    alice = joined(harness, "alice", server.port, home=homes["alice"], json=True)
    bob = joined(harness, "bob", server.port, home=homes["bob"])

    # Before: ✓ but not ✓✓.
    bob.send("/msg alice before verifying 2e6b")
    assert "trusted" not in received(alice, "private", "bob", "before verifying 2e6b")

    starts = _compare(alice, bob, alice_fp)
    alice.send("/verify yes")
    wait_text(alice, "You said yes; waiting for bob to answer.", starts[0])
    bob.send("/verify yes")
    verified = "✓✓ {} is verified: their key {} is the one you compared with."
    wait_text(alice, verified.format("bob", bob_fp), starts[0])
    wait_text(bob, verified.format("alice", alice_fp), starts[1])

    # From now on each shows the other's lines ✓✓, encrypted or not.
    bob.send("/msg alice after verifying 6c10")
    assert received(alice, "private", "bob", "after verifying 6c10")["trusted"] is True
    bob.send("a plain room line after verifying 91d4")
    line = event(alice, kind="message", nick="bob", text="a plain room line after verifying 91d4")
    assert (line["verified"], line["trusted"], "encrypted" in line) == (True, True, False), line
    alice.send("/msg bob and back 7f55")
    bob.wait_for_line(locked_private("alice", "and back 7f55", mark="✓✓"))
    alice.send("in the room too 0d3c")
    bob.wait_for_line(re.compile(rf"^{CLOCK} ✓✓ <alice> in the room too 0d3c$"))

    # The verified key is kept in the home: still ✓✓ after a restart.
    quit_cleanly(alice)
    alice = joined(harness, "alice", server.port, home=homes["alice"], json=True)
    bob.send("/msg alice after the restart 5b8e")
    assert received(alice, "private", "bob", "after the restart 5b8e")["trusted"] is True
    quit_cleanly(alice, bob)


def test_verification_refused_by_one_side_verifies_nobody(harness: Harness) -> None:
    homes = {nick: harness.home(nick) for nick in ("alice", "bob")}
    alice_fp = harness.key_fingerprint(homes["alice"])
    server = harness.server()
    alice = joined(harness, "alice", server.port, home=homes["alice"], json=True)
    bob = joined(harness, "bob", server.port, home=homes["bob"], json=True)

    starts = _compare(alice, bob, alice_fp)
    alice.send("/verify yes")  # alice's MAC goes out; bob says they differ
    wait_text(alice, "You said yes; waiting for bob to answer.", starts[0])
    bob.send("/verify no")
    wait_text(
        bob,
        "Verification of alice ended: you said they do not match. Nothing was verified.",
        starts[1],
    )
    wait_text(
        alice,
        "Verification of bob ended: bob cancelled it (the emoji did not match). "
        "Nothing was verified.",
        starts[0],
    )
    start = alice.mark()
    alice.send("/verify yes")
    wait_text(alice, "There is no verification to answer.", start)

    # Lines either way: ✓ (and 🔒), never ✓✓.
    bob.send("/msg alice still unverified 3e1f")
    assert "trusted" not in received(alice, "private", "bob", "still unverified 3e1f")
    alice.send("/msg bob still unverified either 8a40")
    assert "trusted" not in received(bob, "private", "alice", "still unverified either 8a40")
    bob.send("a room line still unverified c2d9")
    line = event(alice, kind="message", nick="bob", text="a room line still unverified c2d9")
    assert line["verified"] is True and "trusted" not in line, line
    for client in (alice, bob):
        assert "is verified" not in client.output(), client.describe()
        assert '"trusted"' not in client.output(), client.describe()
    quit_cleanly(alice, bob)


# ----- a new device is never listed without keys -----


def outcome(client: Client, text: str) -> dict[str, Any]:
    """``client``'s own line ``text`` once the server took it or it was refused."""
    line = client.wait_for_line(
        lambda line: (
            json_event(text=text)(line)
            and json.loads(line).get("delivery") in ("delivered", "refused")
        )
    )
    found: dict[str, Any] = json.loads(line)
    return found


def test_a_private_message_sent_the_moment_a_new_device_joins_reaches_it(
    harness: Harness,
) -> None:
    """A new device's first one-time keys come in its ``hello``, before its join is announced:
    a peer that writes to it as soon as it appears finds a key to start a session with (no
    waiting for the server to hold the keys, unlike the other tests here)."""
    server = harness.server()
    alice = joined(harness, "alice", server.port, json=True)
    bob = harness.joined_client("bob", server.port, json=True)
    event(alice, kind="join", nick="bob")
    first = "the moment bob is here 1f0c"
    alice.send(f"/msg bob {first}")
    assert outcome(alice, first)["delivery"] == "delivered"
    received(bob, "private", "alice", first)
    quit_cleanly(alice, bob)
