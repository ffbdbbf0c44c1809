"""Flags that do nothing in the mode chosen are refused with one line, before anything starts."""

from __future__ import annotations

import io
from typing import Any

import pytest

from tlschat import cli
from tlschat.client import app as client_app
from tlschat.client.settings import ClientSettings

FP = "SHA256:" + "A" * 43


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[ClientSettings]:
    """The settings of every client that would have started (on a terminal)."""
    seen: list[ClientSettings] = []

    async def fake_run_client(settings: ClientSettings) -> int:
        seen.append(settings)
        return 0

    monkeypatch.setattr(client_app, "run_client", fake_run_client)
    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("sys.stdout", Terminal())
    return seen


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--json"], "--json does nothing without --plain (it makes --plain print JSON lines)"),
        (["--line", "--json"], "--json does nothing without --plain"),
        (["--plain", "--line"], "--plain and --line are two line modes: give one"),
        (["--plain", "--no-bell"], "--no-bell does nothing with --plain or --line"),
        (["--line", "--no-bell"], "--no-bell does nothing with --plain or --line"),
        (["--host", "a:1,b:2", "--port", "5"], "--port does nothing: every --host names its own"),
    ],
)
def test_client_flags_that_do_nothing_are_refused(
    started: list[ClientSettings], capsys: Any, flags: list[str], said: str
) -> None:
    assert cli.main(["client", "--home", "/nonexistent", *flags]) == 2
    assert started == []
    err = capsys.readouterr().err
    assert err.startswith(f"[!] {said}") and err.count("\n") == 1


@pytest.mark.parametrize(
    "flags",
    [
        ["--plain", "--json"],
        ["--no-bell"],
        ["--line"],
        ["--host", "a:1,b", "--port", "5"],  # b takes --port
        ["--port", "5"],  # so does the default host
        ["--host", "a:1"],
    ],
)
def test_client_flags_that_work_together_are_taken(
    started: list[ClientSettings], flags: list[str]
) -> None:
    assert cli.main(["client", "--home", "/nonexistent", *flags]) == 0
    assert len(started) == 1


def test_the_port_goes_to_the_hosts_without_one(started: list[ClientSettings]) -> None:
    cli.main(["client", "--home", "/nonexistent", "--host", "a:1,b", "--port", "5"])
    assert [(s.host, s.port) for s in started[0].addresses] == [("a", 1), ("b", 5)]


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--history", "5", "--no-history"], "--history and --no-history: give one"),
        (["--motd", "hi", "--motd-file", "/nonexistent"], "--motd-file replaces --motd: give one"),
        (["--allow", FP], "--allow does nothing without --allowlist-only"),
    ],
)
def test_server_flags_that_do_nothing_are_refused(capsys: Any, flags: list[str], said: str) -> None:
    assert cli.main(["server", "--data-dir", "/nonexistent", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"[!] {said}") and err.count("\n") == 1


def test_allow_is_taken_when_the_config_file_admits_listed_keys_only(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[Any] = []

    async def fake_serve(settings: Any, source: Any) -> None:
        served.append((settings, source))

    monkeypatch.setattr("tlschat.server.app.serve", fake_serve)
    config = tmp_path / "tlschat.toml"
    config.write_text("allowlist_only = true\n", encoding="utf-8")
    assert cli.main(["server", "--config", str(config), "--allow", FP]) == 0
    settings, source = served[0]
    assert settings.allowlist == [FP]
    # What SIGHUP and /reload read again: the same file, with the same flags over it.
    assert (source.file, source.overrides["allowlist"]) == (config, [FP])


def test_fingerprint_takes_a_home_or_a_data_dir_not_both(capsys: Any) -> None:
    assert cli.main(["fingerprint", "--home", "/nonexistent", "--data-dir", "/nonexistent"]) == 2
    assert capsys.readouterr().err == (
        "[!] --home does nothing with --data-dir (the server key's fingerprint): give one\n"
    )
    with pytest.raises(SystemExit):  # it makes no key: no --key-type
        cli.main(["fingerprint", "--key-type", "ed25519"])
