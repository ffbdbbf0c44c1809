"""Reloading the configuration file: which settings change live and which need a restart, how each
change is described, and a real ChatService taking a new file, or keeping its settings when the
new file is refused."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from tlschat.server.app import ChatService, attach_reloader
from tlschat.server.config import ServerSettings, load_settings
from tlschat.server.reload import (
    LIVE,
    RESTART,
    RESTART_IN_A_CLUSTER,
    Change,
    ConfigSource,
    Reloader,
    setting_changes,
)

FP_A = "SHA256:" + "A" * 43
FP_B = "SHA256:" + "B" * 43
FP_C = "SHA256:" + "C" * 43


def test_every_setting_is_either_live_or_needs_a_restart() -> None:
    names = {setting.name for setting in dataclasses.fields(ServerSettings)}
    assert names == LIVE | RESTART
    assert not LIVE & RESTART
    assert RESTART_IN_A_CLUSTER <= LIVE


def test_changes_are_described_setting_by_setting() -> None:
    old = ServerSettings(operators=[FP_A, FP_B], rate=2.0, port=8443, motd="hi")
    new = ServerSettings(operators=[FP_B, FP_C], rate=5.0, port=9000, motd="hello", history=10)
    assert setting_changes(old, new, "hi", "hello", clustered=False) == [
        Change(
            "port", "port: 8443 -> 9000: needs a restart (8443 stays in force until then)", False
        ),
        Change("motd", "motd: 'hi' -> 'hello'", True),
        Change("history", "history: 50 -> 10", True),
        Change("operators", f"operators: + {FP_C}, - {FP_A}", True),
        Change("rate", "rate: 2 -> 5", True),
    ]
    assert setting_changes(old, old, "hi", "hi", clustered=False) == []


def test_history_needs_a_restart_in_a_cluster() -> None:
    old, new = ServerSettings(broker="redis://x"), ServerSettings(broker="redis://x", history=5)
    assert setting_changes(old, new, "", "", clustered=True) == [
        Change("history", "history: 50 -> 5: needs a restart (50 stays in force until then)", False)
    ]


def test_a_motd_file_whose_text_changed_is_a_change(tmp_path: Path) -> None:
    settings = ServerSettings(motd_file=tmp_path / "motd.txt")
    long = "x" * 100
    assert setting_changes(settings, settings, "old", long, clustered=False) == [
        Change(
            "motd_file", f"motd_file: {tmp_path / 'motd.txt'}: its text is now '{'x' * 59}…'", True
        )
    ]


# --- a real server ---------------------------------------------------------------------------


class Running:
    """A ChatService listening on a free port, with its configuration file's reloader."""

    def __init__(self, service: ChatService, reloader: Reloader, config: Path) -> None:
        self.service = service
        self.reloader = reloader
        self.config = config

    def rewrite(self, text: str) -> None:
        self.config.write_text(text, encoding="utf-8")


def with_server(
    tmp_path: Path,
    text: str,
    scenario: Callable[[Running], None],
    overrides: dict[str, object] | None = None,
) -> None:
    config = tmp_path / "server.toml"
    config.write_text(text, encoding="utf-8")
    source = ConfigSource(config, dict(overrides or {}))
    settings = load_settings(config, source.overrides)

    async def main() -> None:
        service = ChatService(settings)
        await service.start()
        try:
            scenario(Running(service, attach_reloader(service, settings, source), config))
        finally:
            await service.stop()

    asyncio.run(main())


def base_file(tmp_path: Path, extra: str = "") -> str:
    return f'host = "127.0.0.1"\nport = 0\ndata_dir = "{tmp_path / "data"}"\n{extra}'


def test_an_accepted_file_is_applied_live(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def scenario(running: Running) -> None:
        service = running.service
        running.rewrite(
            base_file(
                tmp_path,
                f'motd = "New rules"\noperators = ["{FP_A}", "{FP_B}"]\nrate = 4\n'
                "handshake_timeout = 3\nhandshakes_per_block = 7\nhandshake_burst = 9\n"
                'history_max_age = "1h"\nmax_sessions_per_key = 2\nallowlist_only = true\n',
            )
        )
        with caplog.at_level(logging.INFO, logger="tlschat.server"):
            outcome = running.reloader.reload("SIGHUP")
        assert outcome.refused == "" and outcome.out == ()
        assert outcome.source == str(running.config)
        assert outcome.changes == (
            "motd: '' -> 'New rules'",
            f"operators: + {FP_B}",
            "allowlist_only: False -> True",
            "rate: 2 -> 4",
            "handshake_timeout: 10 -> 3",
            "max_sessions_per_key: 8 -> 2",
            "handshakes_per_block: 20 -> 7",
            "handshake_burst: 40 -> 9",
            "history_max_age: 2592000 -> 3600",
        )
        chat = service.chat.settings
        assert chat.motd == "New rules" and chat.operators == {FP_A, FP_B}
        assert chat.rate_per_second == 4.0 and chat.allowlist == frozenset()
        assert service.settings.max_sessions_per_key == 2
        assert service._config is not None and service._config.handshake_timeout == 3.0
        assert (service.handshakes.rate, service.handshakes.burst) == (7.0, 9)
        assert service.retention is not None and service.retention.retention.max_age == 3600.0
        messages = [record.getMessage() for record in caplog.records]
        assert f"[CONFIG] SIGHUP: reloaded {running.config}: 9 settings changed" in messages
        assert f"[CONFIG]   operators: + {FP_B}" in messages
        # The same file again: nothing changed.
        assert running.reloader.reload("SIGHUP").changes == ()

    with_server(tmp_path, base_file(tmp_path, f'operators = ["{FP_A}"]\n'), scenario)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('motd = "unterminated\n', "Illegal character '\\n' (at line 4, column 21)"),
        ("rate = 0\n", "history must be >= 0, burst >= 1 and rate > 0"),
        ("bogus = 1\n", "unknown settings bogus"),
        ('history = "lots"\n', "history has the wrong type"),
        (
            'motd_file = "/nonexistent/motd.txt"\n',
            "motd_file /nonexistent/motd.txt is not a readable",
        ),
        ('operators = ["alice"]\n', "operators: 'alice' is not a SHA256:... fingerprint"),
    ],
)
def test_a_refused_file_changes_nothing_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str, reason: str
) -> None:
    def scenario(running: Running) -> None:
        before = (running.service.settings, running.service.chat.settings)
        running.rewrite(base_file(tmp_path, text))
        with caplog.at_level(logging.INFO, logger="tlschat.server"):
            outcome = running.reloader.reload("/reload by alice")
        assert reason in outcome.refused, outcome
        assert outcome.changes == () and outcome.out == ()
        assert (running.service.settings, running.service.chat.settings) == before
        assert running.service.chat.settings.motd == "Old rules"
        logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[CONFIG]")]
        assert logged == [
            f"[CONFIG] /reload by alice: {running.config} refused: {outcome.refused}; "
            "the old configuration stays in force"
        ]
        # Fixed, it is taken.
        running.rewrite(base_file(tmp_path, 'motd = "Fixed"\n'))
        assert running.reloader.reload("SIGHUP").changes == ("motd: 'Old rules' -> 'Fixed'",)

    with_server(tmp_path, base_file(tmp_path, 'motd = "Old rules"\n'), scenario)


def test_a_setting_that_needs_a_restart_keeps_its_running_value(tmp_path: Path) -> None:
    def scenario(running: Running) -> None:
        port = running.service.port
        running.rewrite(
            base_file(tmp_path, "presence_burst = 3\nburst = 5\n").replace("port = 0", "port = 1")
        )
        restart = "needs a restart ({} stays in force until then)"
        expected = (
            f"port: 0 -> 1: {restart.format(0)}",
            "burst: 10 -> 5",
            f"presence_burst: 10 -> 3: {restart.format(10)}",
        )
        assert running.reloader.reload("SIGHUP").changes == expected
        settings = running.service.settings
        assert (settings.port, settings.presence_burst, settings.burst) == (0, 10, 5)
        assert running.service.port == port
        # Still not in force: the next reload says so again.
        assert running.reloader.reload("SIGHUP").changes == (expected[0], expected[2])

    with_server(tmp_path, base_file(tmp_path), scenario)


def test_flags_still_win_over_the_file(tmp_path: Path) -> None:
    def scenario(running: Running) -> None:
        running.rewrite(base_file(tmp_path, 'motd = "from the file"\nburst = 4\n'))
        assert running.reloader.reload("SIGHUP").changes == ("burst: 10 -> 4",)
        assert running.service.chat.settings.motd == "from a flag"

    with_server(tmp_path, base_file(tmp_path), scenario, {"motd": "from a flag"})


def test_allow_flags_are_refused_by_a_file_that_turns_the_allowlist_off(tmp_path: Path) -> None:
    def scenario(running: Running) -> None:
        running.rewrite(base_file(tmp_path, "allowlist_only = false\n"))
        outcome = running.reloader.reload("SIGHUP")
        assert outcome.refused == (
            "--allow (given at start) does nothing without allowlist_only = true"
        )
        assert running.service.chat.settings.allowlist == frozenset({FP_A})

    text = base_file(tmp_path, "allowlist_only = true\n")
    with_server(tmp_path, text, scenario, {"allowlist": [FP_A]})


def test_without_a_configuration_file_there_is_nothing_to_reload(tmp_path: Path) -> None:
    async def main() -> None:
        settings = ServerSettings(port=0, data_dir=tmp_path / "data")
        service = ChatService(settings)
        await service.start()
        try:
            outcome = attach_reloader(service, settings, ConfigSource()).reload("SIGHUP")
        finally:
            await service.stop()
        assert outcome.refused == (
            "the server was started without --config: there is no file to read"
        )

    asyncio.run(main())
