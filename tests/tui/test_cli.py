"""`tlschat client` opens the full-screen UI on a terminal only; --plain and --line keep theirs."""

from __future__ import annotations

import io
from typing import Any

import pytest

from tlschat import cli
from tlschat.client import app as client_app
from tlschat.client.app import ClientSettings


class FakeStream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[ClientSettings]:
    seen: list[ClientSettings] = []

    async def fake_run_client(settings: ClientSettings) -> int:
        seen.append(settings)
        return 0

    monkeypatch.setattr(client_app, "run_client", fake_run_client)
    return seen


@pytest.mark.parametrize(
    ("args", "stdin_tty", "stdout_tty", "fullscreen"),
    [
        ((), True, True, True),
        (("--plain",), True, True, False),
        (("--line",), True, True, False),
        ((), False, True, False),
        ((), True, False, False),
    ],
)
def test_full_screen_by_default_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
    captured: list[ClientSettings],
    args: tuple[str, ...],
    stdin_tty: bool,
    stdout_tty: bool,
    fullscreen: bool,
) -> None:
    monkeypatch.setattr("sys.stdin", FakeStream(stdin_tty))
    monkeypatch.setattr("sys.stdout", FakeStream(stdout_tty))
    assert cli.main(["client", "--home", "/nonexistent", *args]) == 0
    (settings,) = captured
    assert settings.fullscreen is fullscreen
    assert settings.plain is ("--plain" in args)
    assert settings.bell is True


def test_no_bell(monkeypatch: pytest.MonkeyPatch, captured: list[ClientSettings]) -> None:
    monkeypatch.setattr("sys.stdin", FakeStream(True))
    monkeypatch.setattr("sys.stdout", FakeStream(True))
    cli.main(["client", "--home", "/nonexistent", "--no-bell"])
    assert captured[0].bell is False


def test_the_line_modes_output_ignores_connection_states(capsys: Any) -> None:
    terminal = client_app.Terminal(ClientSettings(home=None, plain=True))  # type: ignore[arg-type]
    terminal.status("connected", "SHA256:x")
    terminal.status("reconnecting", "in 1 s")
    assert capsys.readouterr() == ("", "")
