"""`tlschat client` opens the full-screen UI on a terminal only; --plain and --line keep theirs."""

from __future__ import annotations

import io
from typing import Any

import pytest

from tlschat import cli
from tlschat.client import app as client_app
from tlschat.client.addresses import ServerAddress
from tlschat.client.settings import ClientSettings
from tlschat.client.terminal import Terminal


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
    ("args", "stdin_tty", "stdout_tty", "fullscreen", "plain", "refuse_new_keys"),
    [
        ((), True, True, True, False, False),
        (("--plain",), True, True, False, True, False),
        (("--line",), True, True, False, False, False),
        # Input from a pipe or a file: line mode (said on stderr), and no trust question.
        ((), False, True, False, True, True),
        ((), False, False, False, True, True),
        (("--line",), False, True, False, False, True),
        # --plain trusts a new server on first use, as documented, piped or not.
        (("--plain",), False, True, False, True, False),
        # Output to a pipe, input from the terminal: the prompt, which can ask.
        ((), True, False, False, False, False),
    ],
)
def test_full_screen_by_default_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
    captured: list[ClientSettings],
    capsys: Any,
    args: tuple[str, ...],
    stdin_tty: bool,
    stdout_tty: bool,
    fullscreen: bool,
    plain: bool,
    refuse_new_keys: bool,
) -> None:
    monkeypatch.setattr("sys.stdin", FakeStream(stdin_tty))
    monkeypatch.setattr("sys.stdout", FakeStream(stdout_tty))
    assert cli.main(["client", "--home", "/nonexistent", *args]) == 0
    (settings,) = captured
    assert settings.fullscreen is fullscreen
    assert settings.plain is plain
    assert settings.refuse_new_keys is refuse_new_keys
    assert settings.bell is True
    chosen_for_the_user = plain and "--plain" not in args
    assert capsys.readouterr().err == (f"{cli.AUTO_PLAIN}\n" if chosen_for_the_user else "")


def test_json_goes_with_the_line_mode_chosen_for_piped_input(
    monkeypatch: pytest.MonkeyPatch, captured: list[ClientSettings]
) -> None:
    monkeypatch.setattr("sys.stdin", FakeStream(False))
    assert cli.main(["client", "--home", "/nonexistent", "--json"]) == 0
    assert captured[0].plain and captured[0].json


def test_no_bell_is_refused_with_piped_input(
    monkeypatch: pytest.MonkeyPatch, captured: list[ClientSettings], capsys: Any
) -> None:
    monkeypatch.setattr("sys.stdin", FakeStream(False))
    assert cli.main(["client", "--home", "/nonexistent", "--no-bell"]) == 2
    assert captured == []
    assert capsys.readouterr().err.startswith(
        "[!] --no-bell does nothing when stdin is not a terminal"
    )


def test_verbose(monkeypatch: pytest.MonkeyPatch, captured: list[ClientSettings]) -> None:
    monkeypatch.setattr("sys.stdin", FakeStream(False))
    cli.main(["client", "--home", "/nonexistent"])
    cli.main(["client", "--home", "/nonexistent", "-v"])
    cli.main(["client", "--home", "/nonexistent", "--verbose"])
    assert [settings.verbose for settings in captured] == [False, True, True]


def test_no_bell(monkeypatch: pytest.MonkeyPatch, captured: list[ClientSettings]) -> None:
    monkeypatch.setattr("sys.stdin", FakeStream(True))
    monkeypatch.setattr("sys.stdout", FakeStream(True))
    cli.main(["client", "--home", "/nonexistent", "--no-bell"])
    assert captured[0].bell is False


def test_the_line_modes_output_ignores_connection_states(capsys: Any) -> None:
    terminal = Terminal(ClientSettings(home=None, plain=True))  # type: ignore[arg-type]
    terminal.status("connected", "SHA256:x")
    terminal.status("reconnecting", "in 1 s")
    assert capsys.readouterr() == ("", "")


def test_several_hosts_repeated_and_comma_separated(
    monkeypatch: pytest.MonkeyPatch, captured: list[ClientSettings]
) -> None:
    monkeypatch.setattr("sys.stdin", FakeStream(False))
    hosts = ["--host", "chat.example,10.0.0.2:9000", "--host", "[::1]:7"]
    assert cli.main(["client", "--home", "/nonexistent", "--port", "8500", *hosts]) == 0
    (settings,) = captured
    assert settings.servers == (
        ServerAddress("chat.example", 8500),
        ServerAddress("10.0.0.2", 9000),
        ServerAddress("::1", 7),
    )
    # known_hosts knows the cluster by the first name given.
    assert (settings.host, settings.port) == ("chat.example", 8500)
    assert settings.known_as == ServerAddress("chat.example", 8500)


def test_one_host_and_the_default(
    monkeypatch: pytest.MonkeyPatch, captured: list[ClientSettings]
) -> None:
    monkeypatch.setattr("sys.stdin", FakeStream(False))
    cli.main(["client", "--home", "/nonexistent"])
    cli.main(["client", "--home", "/nonexistent", "--host", "127.0.0.1", "--port", "9"])
    assert [settings.addresses for settings in captured] == [
        (ServerAddress("localhost", 8443),),
        (ServerAddress("127.0.0.1", 9),),
    ]


def test_a_bad_host_is_refused_before_connecting(
    monkeypatch: pytest.MonkeyPatch, captured: list[ClientSettings], capsys: Any
) -> None:
    assert cli.main(["client", "--home", "/nonexistent", "--host", "a,b:99999"]) == 2
    assert captured == []
    assert capsys.readouterr().err == (
        "[!] Bad --host: 'b:99999': the port must be a number from 1 to 65535\n"
    )
