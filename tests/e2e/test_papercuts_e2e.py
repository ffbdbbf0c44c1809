"""Issue 15's papercuts in the line modes, with a real server and real ``--plain`` clients: the
message of the day where the user lands, /help with every command once, and a known server key
reached under another name."""

from __future__ import annotations

import re
from pathlib import Path

from tlschat.chat.client.commands import CLIENT_COMMANDS
from tlschat.chat.server.commands import COMMANDS as SERVER_COMMANDS

from .harness import CLOCK, HOST, Harness, Process, Server, json_event, stop

CHANGED_KEY = "REMOTE HOST IDENTIFICATION HAS CHANGED"
HELP_ROW = re.compile(rf"^{CLOCK} \*\*\*   (/\S+)")


def test_the_motd_shows_in_the_room_the_user_lands_in(harness: Harness) -> None:
    server = harness.server(extra=("--motd", "Be kind.\nNo spam."))
    plain = harness.joined_client("ann", server.port)
    lines = plain.snapshot()
    motd = [n for n, line in enumerate(lines) if re.fullmatch(rf"{CLOCK} \*\*\* Be kind\.", line)]
    joined = [n for n, line in enumerate(lines) if "You are ann in #general" in line]
    assert motd and joined and motd[0] < joined[0], plain.describe()
    assert re.fullmatch(rf"{CLOCK} \*\*\* No spam\.", lines[motd[0] + 1])
    # JSON says where it belongs: the room the user lands in.
    bot = harness.client("bot", server.port, json=True)
    bot.wait_for_line(json_event(kind="motd", text="Be kind.", room="#general"))


def test_help_lists_every_command_once_with_one_syntax(harness: Harness, server: Server) -> None:
    plain = harness.joined_client("bea", server.port)
    start = plain.mark()
    plain.send("/help")
    # The server answers in order: once /rooms is answered, all of /help has been shown.
    plain.send("/rooms")
    rooms = plain.wait_for_line(re.compile(rf"^{CLOCK} \*\*\* Rooms:$"), start=start)
    end = plain.snapshot().index(rooms, start)
    listed = [m.group(1) for m in map(HELP_ROW.match, plain.snapshot()[start:end]) if m]
    assert len(listed) == len(set(listed)), listed
    users = {
        name
        for name, command in SERVER_COMMANDS.items()
        if command.listed and not command.operator_only
    }
    assert sorted(listed) == sorted(f"/{name}" for name in users | set(CLIENT_COMMANDS))
    help_text = plain.output()
    assert "/part [#room]" in help_text and "/part #room" not in help_text
    assert "/topic [#room] [TEXT]" in help_text and "/topic #room [TEXT]" not in help_text


def by_name(harness: Harness, name: str, host: str, port: int, home: Path) -> Process:
    """A --plain client that names the server ``host``."""
    argv = ("client", "--plain", "--host", f"{host}:{port}", "--nick", name, "--home", str(home))
    return harness.start(name, *argv)


def test_a_known_key_under_another_name_is_remembered_not_asked_again(harness: Harness) -> None:
    first_dir = harness.root / "first"
    first = harness.server(first_dir, name="first")
    port = first.port
    home = harness.home("cid")
    known_hosts = home / "known_hosts"
    numeric = by_name(harness, "cid", HOST, port, home)
    numeric.wait_for_line("You are cid in #general")
    assert numeric.find("New server", stream="stderr")
    numeric.close_stdin()
    assert numeric.wait_exit() == 0, numeric.describe()

    named = by_name(harness, "cid", "localhost", port, home)
    named.wait_for_line("You are cid in #general")
    said = named.find("[KNOWN_HOSTS]", stream="stderr")
    assert said == (
        f"[KNOWN_HOSTS] Server key {first.fingerprint} is known as {HOST}:{port}; "
        f"remembering localhost:{port} too"
    ), named.describe()
    assert named.find("New server", stream="stderr") is None
    named.close_stdin()
    assert named.wait_exit() == 0, named.describe()
    assert known_hosts.read_text() == (
        f"{HOST}:{port} {first.fingerprint}\nlocalhost:{port} {first.fingerprint}\n"
    )
    assert stop(first) == 0

    # Another key on that port: under either name, refused as loudly as ever.
    second = harness.server(harness.root / "second", port=port, name="second")
    for name, line in ((HOST, 1), ("localhost", 2)):
        refused = by_name(harness, "cid", name, port, home)
        assert refused.wait_exit() == 2, refused.describe()
        warning = refused.output("stderr")
        assert CHANGED_KEY in warning and second.fingerprint in warning
        assert f"Offending key in {known_hosts}:{line}" in warning
    assert len(known_hosts.read_text().splitlines()) == 2
