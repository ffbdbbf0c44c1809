"""End to end: private rooms and room roles (issue 15) with the real server and real ``--plain``
clients. alice creates #team, makes it invite-only (so end-to-end encrypted) and invites bob;
carol can neither join it nor see anything of it; bob joins and their lines are encrypted (🔒);
alice kicks bob from #team only; and all of it holds after the server restarts.

Every wait is for a line the processes print, bounded by the harness's deadlines; absence is
checked only after a barrier that the same client received later.
"""

from __future__ import annotations

import re
import signal

from .harness import CLOCK, Client, Harness, stop
from .test_chat_features_e2e import barrier, error, notice, quit_cleanly, said
from .test_e2ee_e2e import joined, locked

INVITE_ONLY = "#team is invite-only; ask one of its operators for an invitation"


def sees_nothing_of_team(carol: Client, *secrets: str) -> None:
    """carol is refused #team and its members and topic; /rooms and /whois show no #team; and
    nothing she was sent names it or any of ``secrets``."""
    start = carol.mark()
    carol.send("/join #team")
    carol.wait_for_line(error(INVITE_ONLY), start=start)
    carol.send("/names #team")
    carol.wait_for_line(
        error("#team is invite-only; only its members see who is in it"), start=start
    )
    carol.send("/topic #team")
    carol.wait_for_line(error("#team is invite-only; only its members see its topic"), start=start)
    carol.send("/whois alice")
    carol.wait_for_line(re.compile(rf"^{CLOCK} \*\*\*   rooms: #general$"), start=start)
    barrier(carol)  # /rooms, answered after all of the above
    listing = carol.snapshot()[start:]
    refusals = {INVITE_ONLY, "only its members see"}
    leaks = [
        line
        for line in listing
        if ("#team" in line and not any(r in line for r in refusals))
        or any(secret in line for secret in secrets)
    ]
    assert not leaks, carol.describe()
    assert not [line for line in carol.snapshot() if "#team" in line and "invite-only" not in line]


def test_a_private_room_end_to_end_and_after_a_restart(harness: Harness) -> None:
    homes = {nick: harness.home(nick) for nick in ("alice", "bob", "carol")}
    data = harness.root / "data"
    server = harness.server(data)
    alice, bob, carol = (joined(harness, nick, server.port, home=homes[nick]) for nick in homes)

    # alice creates #team (so owns it), makes it invite-only, sets its topic, invites bob.
    alice.send("/join #team")
    alice.wait_for_line("You are alice in #team (nobody else is here)")
    alice.send("/private #team")
    alice.wait_for_line(notice("#team is invite-only now, and end-to-end encrypted for good"))
    alice.wait_for_line(notice("#team is now end-to-end encrypted (by alice)"))
    alice.send("/topic #team the launch plan 77aa")
    alice.wait_for_line(lambda line: "the launch plan 77aa" in line)
    alice.send("/invite bob #team")
    alice.wait_for_line(notice("invited bob to #team"))
    bob.wait_for_line(notice("alice invited you to #team: /join #team"))

    sees_nothing_of_team(carol, "the launch plan 77aa")

    # bob joins; what each says there is end-to-end encrypted, and read by the other.
    bob.send("/join #team")
    bob.wait_for_line("You are bob in #team with alice")
    alice.wait_for_line(lambda line: "bob joined #team" in line)
    alice.send("the plan is ready 4f2a")
    bob.wait_for_line(locked("alice", "the plan is ready 4f2a"))
    bob.send("agreed 9b1c")
    alice.wait_for_line(locked("bob", "agreed 9b1c"))
    sees_nothing_of_team(carol, "the launch plan 77aa", "the plan is ready 4f2a", "agreed 9b1c")

    # alice kicks bob from #team: he stays connected and in #general, and cannot come back.
    start = bob.mark()
    alice.send("/rkick bob #team enough for today")
    bob.wait_for_line(notice("you were kicked from #team by alice: enough for today"), start=start)
    bob.wait_for_line(lambda line: "You left #team" in line, start=start)
    alice.wait_for_line(lambda line: "bob left #team (kicked by alice: enough for today)" in line)
    alice.wait_for_line(notice("kicked bob from #team: enough for today"))
    carol.send("still in general bob? 1a2b")
    bob.wait_for_line(said("carol", "still in general bob? 1a2b"), start=start)
    bob.send("/join #team")
    bob.wait_for_line(error(INVITE_ONLY), start=start)
    quit_cleanly(alice, bob, carol)

    # The server restarts: the room's owner, its rule and its members are as they were.
    assert stop(server, signal.SIGTERM) == 0, server.describe()
    again = harness.server(data, name="restarted")
    alice, bob, carol = (joined(harness, nick, again.port, home=homes[nick]) for nick in homes)
    sees_nothing_of_team(carol, "the launch plan 77aa", "the plan is ready 4f2a")
    bob.send("/join #team")
    bob.wait_for_line(error(INVITE_ONLY))
    alice.send("/join #team")
    alice.wait_for_line("You are alice in #team (nobody else is here)")
    alice.wait_for_line(locked("alice", "the plan is ready 4f2a"))  # its history, readable
    alice.send("/names #team")
    alice.wait_for_line(
        lambda line: line.endswith(f"{harness.key_fingerprint(homes['alice'])} (owner)")
    )
    alice.send("/rooms")
    alice.wait_for_line(
        lambda line: (
            "#team (1 member, invite-only, end-to-end encrypted): the launch plan 77aa" in line
        )
    )
    # Invited again, bob is back, and reads what is said from now on.
    alice.send("/invite bob #team")
    bob.wait_for_line(notice("alice invited you to #team: /join #team"))
    bob.send("/join #team")
    bob.wait_for_line("You are bob in #team with alice")
    alice.wait_for_line(lambda line: "bob joined #team" in line)
    alice.send("welcome back 5c3d")
    bob.wait_for_line(locked("alice", "welcome back 5c3d"))
    quit_cleanly(alice, bob, carol)
