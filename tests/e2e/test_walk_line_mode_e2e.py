"""A walk through the README with ``--plain`` and piped input, with real server and client
processes: a script acts as the same lines typed one by one (what follows a ``/join`` is for the
room it joins; local errors come in input order, after the welcome); the end of input and
``/quit`` end a client that cannot connect at once; a client turned away at the door names the
lines it did not send, with the nick asked for."""

from __future__ import annotations

import re
import signal
import socket

from .harness import CLOCK, HOST, Client, Harness, Server, stop
from .test_chat_features_e2e import error, notice, said

EXIT_CONNECTION_FAILED = 1
EXIT_REFUSED_BY_SERVER = 3


def free_port() -> int:
    """A loopback port nothing listens on (bound for a moment, then let go)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def piped(client: Client, *lines: str) -> None:
    """``lines`` on the client's stdin at once, then its end: a pipe, arriving whole."""
    for line in lines:
        client.send(line)
    client.close_stdin()


def outcome(nick: str, text: str, kind: str = "sent") -> re.Pattern[str]:
    """The whole outcome line of the user's own message, in the current room."""
    return re.compile(rf"^{CLOCK} {kind} <{re.escape(nick)}> {re.escape(text)}$")


# ----- a /join in a pipe -----


def test_piped_lines_after_a_join_act_in_the_room_it_joins(
    harness: Harness, server: Server
) -> None:
    bob = harness.joined_client("bob", server.port)
    bob.send("/join #rust")
    bob.wait_for_line("You are bob in #rust")
    alice = harness.client("alice", server.port, pin=server.fingerprint)
    piped(
        alice,
        "morning all",
        "/join #rust",
        "/topic borrow checker support group",
        "/me sighs at lifetimes",
        "/join #not a room",  # refused: what follows stays in #rust
        "still in rust",
    )
    assert alice.wait_exit() == 0, alice.describe()

    # Bob reads #rust: the topic and the lines after the join are there, unprefixed.
    bob.wait_for_line(said("alice", "morning all", "#general"))
    bob.wait_for_line(notice("alice set the topic of #rust: borrow checker support group"))
    bob.wait_for_line(re.compile(rf"^{CLOCK} ✓ \* alice sighs at lifetimes$"))
    bob.wait_for_line(said("alice", "still in rust"))
    assert bob.find("set the topic of #general") is None, bob.describe()
    # Alice's own outcomes: each in the room she was in when she typed it.
    alice.wait_for_line(outcome("alice", "morning all"))
    alice.wait_for_line(re.compile(rf"^{CLOCK} sent \* alice sighs at lifetimes$"))
    alice.wait_for_line(outcome("alice", "still in rust"))
    alice.wait_for_line(error("is not a valid room name"))
    lines = alice.snapshot()
    joined = lines.index(alice.wait_for_line("You are alice in #rust"))
    topic = lines.index(alice.wait_for_line("alice set the topic of #rust"))
    assert joined < topic, alice.describe()
    assert not any("#general" in line and "sighs" in line for line in lines), alice.describe()
    bob.close_stdin()
    assert bob.wait_exit() == 0, bob.describe()


# ----- local errors in input order -----


def test_local_errors_of_piped_lines_come_after_the_welcome_in_input_order(
    harness: Harness, server: Server
) -> None:
    alice = harness.client("alice", server.port, pin=server.fingerprint)
    piped(alice, "/nick", "first line", "/join", "/msg", "last line")
    assert alice.wait_exit() == 0, alice.describe()
    alice.wait_for_line(outcome("alice", "last line"))
    lines = alice.snapshot()
    assert "Welcome to tlschat, alice" in lines[0], alice.describe()

    def at(text: str) -> int:
        return next(n for n, line in enumerate(lines) if text in line)

    joined = at("You are alice in #general")
    # /nick with nothing after it says the nick it would change: known once welcomed.
    assert joined < at("Your nick is alice") < at("usage: /nick"), alice.describe()
    assert at("usage: /nick") < at("usage: /join") < at("usage: /msg"), alice.describe()
    assert at("sent <alice> first line") < at("sent <alice> last line"), alice.describe()


# ----- the end of input and /quit without a connection -----


def test_the_end_of_input_stops_a_client_that_never_connected(harness: Harness) -> None:
    port = free_port()
    unreachable = f"Can't reach {HOST}:{port} (nothing is listening there)"

    silent = harness.client("alice", port)
    silent.close_stdin()  # </dev/null
    assert silent.wait_exit() == EXIT_CONNECTION_FAILED, silent.describe()
    silent.wait_for_line(f"[!] {unreachable}.", stream="stderr")
    assert silent.find("not delivered", stream="stderr") is None, silent.describe()

    talker = harness.client("bob", port)
    piped(talker, "hi", "/topic never set")  # echo hi | ...
    assert talker.wait_exit() == EXIT_CONNECTION_FAILED, talker.describe()
    never = "the client never connected to a server"
    talker.wait_for_line(f"!!! not sent ({never}): <bob> hi")
    talker.wait_for_line(error(f"not sent ({never}): /topic never set"))
    talker.wait_for_line("[!] 2 lines were not delivered:", stream="stderr")

    quitter = harness.client("carol", port)
    piped(quitter, "/quit")  # echo /quit | ...
    assert quitter.wait_exit() == 0, quitter.describe()
    assert quitter.find("not delivered", stream="stderr") is None, quitter.describe()


def test_quit_while_waiting_to_reconnect_ends_the_client_at_once(harness: Harness) -> None:
    server = harness.server()
    alice = harness.joined_client("alice", server.port)
    bob = harness.joined_client("bob", server.port)
    assert stop(server, signal.SIGKILL) != 0
    for client in (alice, bob):
        client.wait_for_line("reconnecting", stream="stderr")

    # A /quit while the client waits to reconnect: it leaves now, and never comes back.
    alice.send("/quit")
    assert alice.wait_exit() == 0, alice.describe()
    # The end of the input, with nothing sent waiting for its outcome: it stops (exit 1).
    bob.close_stdin()
    assert bob.wait_exit() == EXIT_CONNECTION_FAILED, bob.describe()


# ----- turned away at the door -----


def test_a_client_turned_away_names_the_lines_it_did_not_send_with_its_nick(
    harness: Harness,
) -> None:
    alice_home, bob_home = harness.home("alice"), harness.home("bob")
    server = harness.server(
        extra=("--allowlist-only", "--allow", harness.key_fingerprint(alice_home))
    )
    bob = harness.client("bob", server.port, home=bob_home, pin=server.fingerprint)
    piped(bob, "hi", "/join #rust")
    assert bob.wait_exit() == EXIT_REFUSED_BY_SERVER, bob.describe()
    bob.wait_for_line("this server admits listed keys only")
    stopped = "the client stopped before the server answered"
    bob.wait_for_line(f"!!! not sent ({stopped}): <bob> hi")
    bob.wait_for_line(f"!!! not sent ({stopped}): /join #rust")
    bob.wait_for_line("[!] 2 lines were not delivered:", stream="stderr")
