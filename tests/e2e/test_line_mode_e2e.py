"""The interactive line mode (``--line``: the ``You:`` prompt) on a real terminal (a pty) against a
real server: the message of the day inline, /help with every command once, and a known server key
under another name taken without the trust question."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tlschat.chat.client.commands import CLIENT_COMMANDS
from tlschat.chat.server.commands import COMMANDS as SERVER_COMMANDS

from .harness import EXIT_WAIT, HOST, WAIT, Harness

QUESTION = "Trust this server and remember its key? [y/N]"
# Cursor moves, colours and modes: what a terminal acts on rather than shows.
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
CURSOR_POSITION_REQUEST = b"\x1b[6n"


class TerminalClient:
    """`tlschat client --line` with a pty for its terminal; it answers the prompt's cursor
    position requests as a terminal would."""

    def __init__(self, harness: Harness, host: str, port: int, home: Path) -> None:
        argv = harness.command(
            "client", "--line", "--host", f"{host}:{port}", "--nick", "lin", "--home", str(home)
        )
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**harness.env, "TERM": "xterm"},
            cwd=harness.root,
            close_fds=True,
        )
        os.close(slave)
        self._output = b""
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if not ready:
                if self.proc.poll() is not None:
                    return
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:  # the client exited: the pty is closed
                return
            if not data:
                return
            if CURSOR_POSITION_REQUEST in data:
                os.write(self.master, b"\x1b[1;1R")
            with self._lock:
                self._output += data

    def text(self) -> str:
        with self._lock:
            shown = self._output.decode("utf-8", "replace")
        return ESCAPES.sub("", shown).replace("\r", "")

    def wait_for(self, pattern: str, after: int = 0) -> int:
        """Where ``pattern`` (a regex) first shows in the output after ``after``: its end."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            found = re.compile(pattern, re.MULTILINE).search(self.text(), after)
            if found is not None:
                return found.end()
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} within {WAIT}s:\n{self.text()}")

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def quit(self) -> int:
        """/quit: the exit code (checked: no traceback on the terminal)."""
        self.type("/quit")
        code = self.proc.wait(EXIT_WAIT)
        self._reader.join(EXIT_WAIT)
        assert "Traceback" not in self.text(), self.text()
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(EXIT_WAIT)
        self._reader.join(EXIT_WAIT)
        with contextlib.suppress(OSError):
            os.close(self.master)


@contextlib.contextmanager
def line_client(harness: Harness, host: str, port: int, home: Path) -> Iterator[TerminalClient]:
    client = TerminalClient(harness, host, port, home)
    try:
        yield client
    finally:
        client.close()


def test_the_line_prompt_shows_the_motd_help_once_and_knows_a_key_by_another_name(
    harness: Harness,
) -> None:
    server = harness.server(extra=("--motd", "Be kind."))
    home = harness.home("lin")
    with line_client(harness, HOST, server.port, home) as client:
        client.wait_for(re.escape(QUESTION))
        client.type("y")
        motd = client.wait_for(r"\*\*\* Be kind\.$")
        client.wait_for(r"\*\*\* You are lin in #general", motd)

        start = len(client.text())
        client.type("/help")
        client.type("/rooms")  # answered in order: after all of /help
        end = client.wait_for(r"\*\*\* Rooms:$", start)
        listed = re.findall(r"\*\*\*   (/\S+)", client.text()[start:end])
        assert len(listed) == len(set(listed)), listed
        users = {
            name
            for name, command in SERVER_COMMANDS.items()
            if command.listed and not command.operator_only
        }
        assert sorted(listed) == sorted(f"/{name}" for name in users | set(CLIENT_COMMANDS))
        assert client.quit() == 0

    with line_client(harness, "localhost", server.port, home) as client:
        client.wait_for(r"\*\*\* You are lin in #general")
        said = f"is known as {HOST}:{server.port}; remembering localhost:{server.port} too"
        assert said in client.text()
        assert QUESTION not in client.text()
        assert client.quit() == 0
    assert (home / "known_hosts").read_text().splitlines() == [
        f"{HOST}:{server.port} {server.fingerprint}",
        f"localhost:{server.port} {server.fingerprint}",
    ]
