"""Issue 20's rough edges of the line modes, with real client processes against real server
processes: piped input without --plain (line mode, and a new server key refused with how to
trust it, never answered by the first piped line); failures said in plain words, once per
outage, the detail with -v; a server down at start retried like a lost connection; Ctrl-C at the
`You:` prompt and at its trust question."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

from tlschat.cli import AUTO_PLAIN
from tlschat.client.backoff import MAX_BACKOFF
from tlschat.client.trust import NOT_TRUSTED
from tlschat.client.user_input import CLEARED

from ..e2e.harness import HOST, WAIT, Harness, Process, Server
from ..e2e.test_chat_features_e2e import said
from ..e2e.test_client_closure_e2e import TerminalClient

EXIT_OK, EXIT_CONNECTION_FAILED, EXIT_UNTRUSTED_SERVER = 0, 1, 2
JARGON = ("Errno", "close_notify", "truncated", "Connect call", "alert")
QUESTION = "Trust this server and remember its key?"


def piped_client(harness: Harness, name: str, port: int, home: Path, *extra: str) -> Process:
    """`tlschat client` with no mode flag, its stdin a pipe (as `cmd | tlschat client`)."""
    return harness.start(
        name, "client", "--host", f"{HOST}:{port}", "--nick", name, "--home", str(home), *extra
    )


def plain_words(process: Process) -> bool:
    return not any(jargon in process.output("stderr") for jargon in JARGON)


# ----- point 3: piped input -----


def test_piped_input_is_line_mode_and_its_first_line_is_a_message(
    harness: Harness, server: Server
) -> None:
    bob = harness.joined_client("bob", server.port)
    alice = piped_client(
        harness, "alice", server.port, harness.home("alice"), "--pin", server.fingerprint
    )
    alice.send("the first piped line")
    alice.send("and the second")
    alice.close_stdin()
    bob.wait_for_line(said("alice", "the first piped line"))
    bob.wait_for_line(said("alice", "and the second"))
    assert alice.wait_exit() == EXIT_OK, alice.describe()
    errors = alice.snapshot("stderr")
    assert errors[0] == AUTO_PLAIN and errors.count(AUTO_PLAIN) == 1
    assert "Input is not a terminal (fd=0)" not in alice.output("stderr")  # prompt_toolkit's
    assert alice.find("[y/N]", stream="stderr") is None and alice.find("[y/N]") is None


def test_piped_input_refuses_a_new_servers_key_and_says_how_to_trust_it(
    harness: Harness, server: Server
) -> None:
    bob = harness.joined_client("bob", server.port)
    home = harness.home("alice")
    alice = piped_client(harness, "alice", server.port, home)
    alice.send("y")  # what the old client took as the answer to its trust question
    alice.send("hello from a script")
    alice.close_stdin()
    assert alice.wait_exit() == EXIT_UNTRUSTED_SERVER, alice.describe()
    refusals = [line for line in alice.snapshot("stderr") if line.startswith("[!]")]
    assert refusals == [
        f"[!] Not trusted: {HOST}:{server.port} is a new server (key {server.fingerprint}) and "
        "stdin is not a terminal to ask you on; nothing was sent. If this is its key, give "
        f"--pin {server.fingerprint} (or connect once from a terminal and answer y)."
    ]
    assert QUESTION not in alice.output("stderr") + alice.output()
    assert not (home / "known_hosts").exists()
    assert bob.find("alice joined") is None

    # As told: the same command with --pin, and the first piped line is a message.
    pin = re.search(r"give --pin (\S+) ", refusals[0])
    assert pin is not None
    again = piped_client(harness, "alice-again", server.port, home, "--pin", pin.group(1))
    again.send("hello from a script")
    again.close_stdin()
    bob.wait_for_line(said("alice-again", "hello from a script"))
    assert again.wait_exit() == EXIT_OK, again.describe()


def test_the_line_prompt_on_piped_input_never_takes_a_line_as_the_answer(
    harness: Harness, server: Server
) -> None:
    alice = piped_client(harness, "alice", server.port, harness.home("alice"), "--line")
    alice.send("y")
    assert alice.wait_exit() == EXIT_UNTRUSTED_SERVER, alice.describe()
    # The prompt's mode prints its warnings through prompt_toolkit, to stdout.
    assert alice.find("[!] Not trusted: "), alice.describe()
    assert QUESTION not in alice.output("stderr") + alice.output()


# ----- points 4 and 6: plain words, once per outage; retried at start -----


def stopped_server(harness: Harness, data_dir: Path) -> tuple[int, str]:
    """A server's port and key, the server stopped: nothing listens there now."""
    server = harness.server(data_dir=data_dir, name="first-run")
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0, server.describe()
    return server.port, server.fingerprint


def unreachable(port: int) -> str:
    return f"[*] Can't reach {HOST}:{port} (nothing is listening there); retrying "


def test_a_server_down_at_start_is_retried_said_once_and_in_detail_with_v(
    harness: Harness,
) -> None:
    data_dir = harness.root / "server-data"
    port, fingerprint = stopped_server(harness, data_dir)
    pinned = ("--plain", "--pin", fingerprint)
    quiet = harness.client("quiet", port, extra=pinned)
    verbose = harness.client("verbose", port, extra=(*pinned, "-v"))
    for client in (quiet, verbose):
        client.wait_for_line(unreachable(port), stream="stderr")
    # Waits drawn below 1, 2, 4 s…: 3 s down is at least three attempts for each (a refused
    # connection fails at once).
    down_until = time.monotonic() + 3.5
    while time.monotonic() < down_until:
        assert quiet.running and verbose.running
        time.sleep(0.1)
    restarted = harness.server(data_dir=data_dir, port=port, name="restarted")
    # The wait drawn for the attempt in progress may be as long as the cap (full jitter: a few
    # short draws reach attempt 5, whose wait is drawn below 30 s), so the welcome may come that
    # much later.
    quiet.wait_joined(timeout=MAX_BACKOFF + WAIT)
    verbose.wait_joined(timeout=MAX_BACKOFF + WAIT)

    assert sum(unreachable(port) in line for line in quiet.snapshot("stderr")) == 1
    assert plain_words(quiet), quiet.describe()
    attempts = [line for line in verbose.snapshot("stderr") if unreachable(port) in line]
    assert len(attempts) >= 3 and "(attempt 3)" in attempts[2], verbose.describe()
    assert verbose.find(
        f"    (detail: [Errno 111] Connect call failed ('{HOST}', {port}))", stream="stderr"
    ), verbose.describe()

    # The server dies: a line of its own for this outage, in plain words.
    err = quiet.mark("stderr")
    restarted.signal(signal.SIGKILL)
    restarted.wait_exit()
    lost = "[*] The server closed the connection unexpectedly; reconnecting "
    quiet.wait_for_line(lost, stream="stderr", start=err)
    verbose.wait_for_line(lost, stream="stderr")
    verbose.wait_for_line("    (detail: truncated", stream="stderr")
    assert plain_words(quiet), quiet.describe()
    # A signal while it waits to reconnect is the user's quit: 0.
    quiet.signal(signal.SIGTERM)
    assert quiet.wait_exit() == EXIT_OK, quiet.describe()
    verbose.close_stdin()
    verbose.signal(signal.SIGINT)
    assert verbose.wait_exit() == EXIT_OK, verbose.describe()


def test_without_reconnecting_a_server_down_at_start_is_one_plain_line(
    harness: Harness,
) -> None:
    port, fingerprint = stopped_server(harness, harness.root / "server-data")
    alice = harness.client("alice", port, pin=fingerprint, extra=("--no-reconnect",))
    assert alice.wait_exit() == EXIT_CONNECTION_FAILED, alice.describe()
    problems = [line for line in alice.snapshot("stderr") if line.startswith(("[!]", "[*]"))]
    assert problems == [f"[!] Can't reach {HOST}:{port} (nothing is listening there)."]


# ----- point 5: Ctrl-C at the `You:` prompt and at its trust question -----


def test_ctrl_c_at_the_prompt_clears_a_half_typed_line_then_quits(
    harness: Harness, server: Server
) -> None:
    bob = harness.joined_client("bob", server.port)
    home = harness.home("lin")
    terminal = TerminalClient(
        harness, server.port, home, "--nick", "lin", "--pin", server.fingerprint
    )
    try:
        terminal.wait_for("You are lin in #general")
        terminal.type(b"/help\r")
        terminal.wait_for("Ctrl-C   clear the line you are typing; on an empty line, quit")
        # The last line of /help: the prompt prints nothing more, and is back in raw mode.
        terminal.wait_for("/runmute NICK|FP #room")
        terminal.type(b"half a thought")
        terminal.wait_for("You: half a thought")  # drawn by the prompt: in its buffer
        terminal.type(b"\x03")
        terminal.wait_for(CLEARED)
        terminal.type(b"a whole line\r")
        bob.wait_for_line(said("lin", "a whole line"))
        terminal.wait_for("sent <lin> a whole line")
        # Ctrl-C that comes as a SIGINT (the terminal out of raw mode while a line is printed
        # above the prompt) does the same.
        terminal.type(b"another half")
        terminal.wait_for("You: another half")
        cleared = terminal.output().count(CLEARED)
        terminal.signal(signal.SIGINT)
        deadline = time.monotonic() + WAIT
        while terminal.output().count(CLEARED) == cleared:
            assert time.monotonic() < deadline and terminal.proc.poll() is None, terminal.output()
            time.sleep(0.05)
        terminal.type(b"\x03")
        assert terminal.wait_exit(WAIT) == EXIT_OK, terminal.output()
    finally:
        terminal.kill()
    assert bob.find("half a thought") is None and bob.find("another half") is None
    assert "Traceback" not in terminal.output()


def test_ctrl_c_at_the_trust_question_is_a_no(harness: Harness, server: Server) -> None:
    home = harness.home("lin")
    terminal = TerminalClient(harness, server.port, home, "--nick", "lin")
    try:
        terminal.wait_for(QUESTION)
        terminal.type(b"\x03")
        assert terminal.wait_exit(WAIT) == EXIT_UNTRUSTED_SERVER, terminal.output()
    finally:
        terminal.kill()
    assert NOT_TRUSTED in terminal.output()
    assert not (home / "known_hosts").exists()
