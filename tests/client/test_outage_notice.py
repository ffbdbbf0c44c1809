"""One message per outage (issue 20, point 4): what an output is told while the client has no
connection, and what the line modes print of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tlschat.client.sessions import OutageNotice
from tlschat.client.settings import ClientSettings
from tlschat.client.terminal import Terminal
from tlschat.client.trouble import Trouble

LOST = Trouble("The server closed the connection unexpectedly", "truncated")
DOWN = Trouble("Can't reach h:1 (nothing is listening there)", "[Errno 111] refused")


class Recorder:
    def __init__(self) -> None:
        self.outages: list[tuple[str, bool, bool]] = []
        self.warnings: list[str] = []

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def outage(self, text: str, first: bool, changed: bool) -> None:
        self.outages.append((text, first, changed))


def test_first_and_changed_are_marked() -> None:
    output = Recorder()
    notice = OutageNotice(output, verbose=False)  # type: ignore[arg-type]
    notice.retrying(LOST, 0.5, 1, after_loss=True)
    notice.retrying(DOWN, 1.5, 2, after_loss=False)
    notice.retrying(DOWN, 3.0, 3, after_loss=False)
    notice.over()  # connected again
    notice.retrying(DOWN, 0.2, 1, after_loss=True)
    assert [(first, changed) for _, first, changed in output.outages] == [
        (True, True),
        (False, True),
        (False, False),
        (True, True),
    ]
    assert output.outages[2][0] == (
        "[*] Can't reach h:1 (nothing is listening there); retrying in 3.0 s (attempt 3)…"
    )
    assert output.warnings == []  # no detail without -v


def test_verbose_says_every_attempt_with_its_detail() -> None:
    output = Recorder()
    notice = OutageNotice(output, verbose=True)  # type: ignore[arg-type]
    notice.retrying(DOWN, 1.0, 2, after_loss=False)
    notice.retrying(DOWN, 2.0, 3, after_loss=False)
    assert [changed for _, _, changed in output.outages] == [True, True]
    assert output.warnings == ["    (detail: [Errno 111] refused)"] * 2


def test_the_line_modes_print_what_is_new_only(tmp_path: Path, capsys: Any) -> None:
    terminal = Terminal(ClientSettings(home=tmp_path, plain=True))
    notice = OutageNotice(terminal, verbose=False)
    notice.retrying(LOST, 0.5, 1, after_loss=True)
    for attempt in range(2, 6):
        notice.retrying(DOWN, 1.0, attempt, after_loss=False)
    notice.final(DOWN)
    assert capsys.readouterr().err.splitlines() == [
        "[*] The server closed the connection unexpectedly; reconnecting in 0.5 s…",
        "[*] Can't reach h:1 (nothing is listening there); retrying in 1.0 s (attempt 2)…",
        "[!] Can't reach h:1 (nothing is listening there).",
    ]
